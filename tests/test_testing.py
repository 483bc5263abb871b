"""gancore.testing: every check passes on conforming components and fails, with one exact line
naming the component and the fault, on broken ones."""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import torch
from torch import nn

import gancore
import gancore.testing as gt
from gancore.builtin.losses import Hinge, LeastSquares, Minimax, NonSaturating
from gancore.protocols import Augmenter, Critic, CriticRegularizer, Dataset, Generator
from tests.conftest import require_test_plugins


def fails(message: str) -> Any:
    """``pytest.raises`` for an AssertionError whose text is exactly ``message``."""
    return pytest.raises(AssertionError, match=f"^{re.escape(message)}$")


def plugin_module(name: str, **hooks: Callable[..., None]) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, gancore.hookimpl(function))
    return module


# -------------------------------------------------------------------------------------------------
# Components, good and broken
# -------------------------------------------------------------------------------------------------


class NoLatent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 64)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z).reshape(-1, 1, 8, 8)


class WrongSize(gt.TinyGenerator):
    def __init__(self) -> None:
        super().__init__((1, 4, 4))


class Float64(gt.TinyGenerator):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(z).double()


class NaNOutput(gt.TinyGenerator):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(z) * float("nan")


class Detached(gt.TinyGenerator):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(z).detach()


class Translator(nn.Module):
    """Image-to-image: a 1x1 convolution from 3 to 1 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


@attrs.frozen(kw_only=True)
class TinyGeneratorOptions:
    latent_dim: int = attrs.field(
        default=4, validator=attrs.validators.ge(1), metadata={"doc": "latent size; >= 1"}
    )


def build_tiny_generator(
    options: TinyGeneratorOptions, context: gancore.BuildContext
) -> gt.TinyGenerator:
    return gt.TinyGenerator(context.data_shape, options.latent_dim)


def build_nothing(options: TinyGeneratorOptions, context: gancore.BuildContext) -> None:
    return None


class TwoScores(gt.TinyCritic):
    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return torch.stack([super().forward(x), super().forward(x)], dim=1)


class PatchCritic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class BlindCritic(gt.TinyCritic):
    """Scores only depend on its bias: no gradient reaches x."""

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.out.bias.expand(x.shape[0])


class IntegerCritic(gt.TinyCritic):
    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return super().forward(x).round().long()


class ConditionalCritic(gt.TinyCritic):
    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        (label,) = extra
        return self.out(self.net(x)).squeeze(1) * (1 + label.float())


@attrs.frozen
class PerElement:
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake - real

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


@attrs.frozen
class Flipped:
    """The Wasserstein loss with the critic's sign wrong."""

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return real.mean() - fake.mean()

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


@attrs.frozen
class GeneratorUp(Flipped):
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean()


@attrs.frozen
class FakeOnly(GeneratorUp):
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean()


@attrs.frozen
class CriticOnly:
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()


@attrs.frozen
class InPlace(Flipped):
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real.data.clamp_(max=0.0)  # modifies the caller's scores
        return fake.mean() - real.mean()


@attrs.frozen
class NaNLoss(Flipped):
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return (fake.mean() - real.mean()) * float("nan")


@attrs.frozen(kw_only=True)
class Penalty:
    """weight * E[D(real)^2]: a well-formed critic penalty, its value set by ``weight``."""

    player: ClassVar[str] = "critic"
    weight: float = attrs.field(default=1.0, metadata={"doc": "weight"})
    interval: int = attrs.field(default=1, metadata={"doc": "interval"})

    def penalty(
        self,
        critic: Callable[..., torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: Any,
    ) -> torch.Tensor:
        return self.weight * critic(real, *extra).square().mean()

    def after_step(self, critic: nn.Module) -> None:
        """Nothing to do."""


@attrs.frozen(kw_only=True)
class Clamp(Penalty):
    """A pure constraint: no penalty, clamps weights after each step."""

    def penalty(self, *args: Any) -> None:
        return None

    def after_step(self, critic: nn.Module) -> None:
        for p in critic.parameters():
            p.data.clamp_(-0.01, 0.01)


@attrs.frozen(kw_only=True)
class NoPlayer:
    interval: int = 1


@attrs.frozen(kw_only=True)
class Vector(Penalty):
    def penalty(self, critic: Callable[..., torch.Tensor], real: torch.Tensor, *rest: Any) -> Any:
        return critic(real).square()


@attrs.frozen(kw_only=True)
class DetachedPenalty(Penalty):
    def penalty(self, critic: Callable[..., torch.Tensor], real: torch.Tensor, *rest: Any) -> Any:
        return critic(real).square().mean().detach()


@attrs.frozen(kw_only=True)
class Negative(Penalty):
    def penalty(self, critic: Callable[..., torch.Tensor], real: torch.Tensor, *rest: Any) -> Any:
        return 0 * critic(real).mean() - 1.0


class GradOnInput(Penalty):
    """R1 written carelessly: switches on requires_grad of the loop's real batch itself."""

    def penalty(self, critic: Callable[..., torch.Tensor], real: torch.Tensor, *rest: Any) -> Any:
        x = real.requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        return grad.square().sum(dim=1).mean()


class ScalesInput(Penalty):
    def penalty(self, critic: Callable[..., torch.Tensor], real: torch.Tensor, *rest: Any) -> Any:
        return critic(real.mul_(2.0)).square().mean()


@attrs.frozen(kw_only=True)
class NoAfterStep:
    player: ClassVar[str] = "critic"
    interval: int = 1

    def penalty(self, critic: Callable[..., torch.Tensor], real: torch.Tensor, *rest: Any) -> Any:
        return critic(real).square().mean()


@attrs.frozen(kw_only=True)
class OutputNorm:
    """A generator penalty: mean squared output."""

    player: ClassVar[str] = "generator"
    interval: int = 4

    def penalty(self, generator: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return generator(inputs).square().mean()


class Noise(nn.Module):
    """Adaptive additive noise: a well-formed augmenter with feedback and a buffer."""

    feedback_interval = 4

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("std", torch.tensor(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x)

    def feedback(self, real_sign_mean: float, images: int) -> None:
        self.std.add_(0.01 if real_sign_mean > 0 else -0.01).clamp_(min=0.0)


class Crop(Noise):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 1:-1, 1:-1]


class Detaching(Noise):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach() + 0.0


class Halve(Noise):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.half()


class BadInterval(Noise):
    feedback_interval = -1


class Picky(Noise):
    def feedback(self, real_sign_mean: float, images: int) -> None:
        if real_sign_mean < 0:
            raise ValueError("negative")


class NoFeedback(nn.Module):
    feedback_interval = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Points(gt.FakeDataset):
    def __init__(self) -> None:
        super().__init__({"x": (3,)}, size=8)


class WrongShape(Points):
    def __init__(self) -> None:
        super().__init__()
        self.shapes = {"x": (2,)}


class Random(Points):
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": torch.rand(3)}


class Bright(gt.FakeDataset):
    """Images in [0, 2]."""

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": torch.linspace(0, 2, 64).reshape(1, 8, 8)}


class ExtraKey(Points):
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": super().__getitem__(index)["x"], "label": torch.tensor(0)}


class Empty(Points):
    def __len__(self) -> int:
        return 0


class BadBatch(Points):
    def get_batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return {"x": torch.zeros(len(indices), 3)}


class GoodBatch(Points):
    def get_batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return {"x": torch.stack([self[i]["x"] for i in indices])}


@attrs.frozen(kw_only=True)
class MeanNorm:
    """Norm of the mean generated sample."""

    num_samples: int = attrs.field(default=64, metadata={"doc": "samples; >= 1"})

    def value_keys(self) -> list[str]:
        return ["norm"]

    def evaluate(self, context: Any) -> dict[str, Any]:
        total = sum(b.double().sum(dim=0) for b in context.generate(self.num_samples, 16, 0))
        real = sum(b.double().sum(dim=0) for b in context.real(self.num_samples, 16, 0))
        return {
            "norm": float(torch.linalg.vector_norm(total - real) / self.num_samples),
            "protocol": {"num_samples": self.num_samples},
        }


@attrs.frozen(kw_only=True)
class Nested(MeanNorm):
    def evaluate(self, context: Any) -> dict[str, Any]:
        return {"values": {"norm": 1.0}}


@attrs.frozen(kw_only=True)
class Liar(MeanNorm):
    def value_keys(self) -> list[str]:
        return ["norm", "b"]


@attrs.frozen(kw_only=True)
class Wordy(MeanNorm):
    def evaluate(self, context: Any) -> dict[str, Any]:
        return {"verdict": "fine"}


@attrs.frozen(kw_only=True)
class TensorValued(MeanNorm):
    def evaluate(self, context: Any) -> dict[str, Any]:
        return {"norm": torch.tensor(1.0)}


class Pixels(nn.Module):
    """Images averaged over channels and pooled to 4x4: 16 features, 2 logits."""

    input_size = 4
    resize_filter = "area"
    weights_sha256 = "0" * 64

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(images.mean(1, keepdim=True), 4).flatten(1)

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self(images)
        return features, features[:, :2]


class Bare(nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)


class Unflattened(Pixels):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return super().forward(images)[..., None]


class OtherLogits(Pixels):
    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self(images) + 1, self(images)[:, :2]


@attrs.frozen(kw_only=True)
class Undocumented:
    size: int = attrs.field(default=1, metadata={"doc": "documented"})
    scale: float = 1.0


@attrs.frozen(kw_only=True)
class IntForFloat:
    scale: float = attrs.field(default=1, metadata={"doc": "an int default for a float field"})


@attrs.frozen(kw_only=True)
class NoneForString:
    path: str | None = attrs.field(default="a", metadata={"doc": "None cannot be written"})


@attrs.frozen(kw_only=True)
class Nestable:
    betas: tuple[float, float] = attrs.field(default=(0.5, 0.99), metadata={"doc": "pair"})
    mode: str = attrs.field(default="a", metadata={"doc": "mode"})
    seed: int | None = attrs.field(default=None, metadata={"doc": "None = random"})


# -------------------------------------------------------------------------------------------------
# The checks
# -------------------------------------------------------------------------------------------------


class TestCheckGenerator:
    def test_builtin_generators_pass(self) -> None:
        """The built-in MLP and DCGAN generators pass for vectors and images."""
        assert isinstance(gt.check_generator("mlp", data_shape=(2,)), Generator)
        gt.check_generator("dcgan", {"latent_dim": 8}, data_shape=(3, 16, 16))

    def test_factory_with_options_passes(self) -> None:
        """A factory with an options instance or a TOML table builds and passes."""
        generator = gt.check_generator(
            build_tiny_generator, TinyGeneratorOptions(latent_dim=3), data_shape=(2,)
        )
        assert generator.latent_dim == 3
        spec = gancore.ComponentSpec(
            "generator", "tiny", "demo", build_tiny_generator, TinyGeneratorOptions, "Tiny."
        )
        assert gt.check_generator(spec, {"latent_dim": 5}).latent_dim == 5

    def test_image_to_image_generator_passes(self) -> None:
        """With input_shape, the generator receives images of that shape."""
        gt.check_generator(Translator(), data_shape=(1, 8, 8), input_shape=(3, 8, 8))

    def test_check_leaves_the_random_state(self) -> None:
        """The caller's random stream is unchanged by a check."""
        torch.manual_seed(1)
        expected = torch.rand(3)
        torch.manual_seed(1)
        gt.check_generator("mlp", data_shape=(2,))
        assert torch.equal(torch.rand(3), expected)

    @pytest.mark.parametrize(
        ("component", "data_shape", "message"),
        [
            (
                NoLatent(),
                (1, 8, 8),
                "generator NoLatent: an unconditional generator exposes an integer latent_dim "
                ">= 1 (got None)",
            ),
            (
                WrongSize(),
                (1, 8, 8),
                "generator WrongSize: output shape (4, 1, 4, 4), expected (4, 1, 8, 8) for "
                "data_shape (1, 8, 8)",
            ),
            (
                Float64(),
                (2,),
                "generator Float64: output dtype torch.float64, expected torch.float32",
            ),
            (NaNOutput(), (2,), "generator NaNOutput: output has non-finite values (nan or inf)"),
            (Detached(), (2,), "generator Detached: no gradient reaches its parameters"),
        ],
        ids=["no-latent-dim", "wrong-size", "float64", "nan", "detached"],
    )
    def test_broken_generators_fail(
        self, component: nn.Module, data_shape: tuple[int, ...], message: str
    ) -> None:
        """Each fault is one line naming the generator."""
        with fails(message):
            gt.check_generator(component, data_shape=data_shape)

    def test_factory_returning_no_module_fails(self) -> None:
        """A factory that returns None is named by its function."""
        with fails(
            "generator build_nothing: factory returned NoneType, expected a torch.nn.Module"
        ):
            gt.check_generator(build_nothing, TinyGeneratorOptions())

    def test_invalid_options_table_fails_like_a_run_file(self) -> None:
        """A table is validated as a run file's would be, with the same message."""
        spec = gancore.ComponentSpec(
            "generator", "tiny", "demo", build_tiny_generator, TinyGeneratorOptions, "Tiny."
        )
        with fails(
            "generator 'demo:tiny': invalid options: generator.latent_dim: 'latent_dim' must be "
            ">= 1 (got 0)"
        ):
            gt.check_generator(spec, {"latent_dim": 0})

    def test_registered_name_fails_with_its_name(self) -> None:
        """A registered component is looked up and named as a run file names it."""

        def register(register: gancore.RegisterCallback) -> None:
            register(
                "fixed-size",
                lambda options, context: gt.TinyGenerator((2,)),
                options=TinyGeneratorOptions,
                description="Ignores the data shape.",
            )

        with gt.registered_plugin(
            "demo", plugin_module("demo", gancore_register_generators=register)
        ):
            gt.check_generator("fixed-size", data_shape=(2,))
            with fails(
                "generator 'fixed-size': output shape (4, 2), expected (4, 3) for data_shape (3,)"
            ):
                gt.check_generator("fixed-size", data_shape=(3,))

    def test_wrong_kind_is_refused(self) -> None:
        """A spec of another kind is a TypeError, not a silent check of the wrong contract."""
        spec = gancore.get_registry().get("loss", "hinge")
        with pytest.raises(TypeError, match="'gancore:hinge' is a loss, not a generator"):
            gt.check_generator(spec)


class TestCheckCritic:
    def test_builtin_critics_pass(self) -> None:
        """The built-in critics pass; scores [N], [N, 1] and patches are all accepted."""
        assert isinstance(gt.check_critic("mlp", data_shape=(2,)), Critic)
        gt.check_critic("dcgan", data_shape=(1, 16, 16))
        gt.check_critic(PatchCritic(), data_shape=(1, 8, 8))
        gt.check_critic(gt.TinyCritic((1, 8, 8)))

    def test_builtin_critics_are_feature_critics(self) -> None:
        """mlp and dcgan expose features whose score is the critic's output."""
        from gancore.protocols import FeatureCritic

        mlp = gt.check_feature_critic("mlp", {"hidden": 16, "depth": 2}, data_shape=(2,))
        assert isinstance(mlp, FeatureCritic) and mlp.feature_dim == 16
        dcgan = gt.check_feature_critic("dcgan", {"channels": 8}, data_shape=(1, 16, 16))
        # channels 8 at 8x8, doubled to 16 at 4x4: 16 maps of 4x4 before the scoring conv
        assert dcgan.feature_dim == 16 * 4 * 4
        torch.manual_seed(0)
        x = torch.randn(3, 1, 16, 16)
        assert torch.equal(dcgan.score(dcgan.features(x)), dcgan(x))

    def test_a_critic_without_features_fails_the_feature_check(self) -> None:
        with pytest.raises(AssertionError, match="has no 'features': not a feature critic"):
            gt.check_feature_critic(PatchCritic(), data_shape=(1, 8, 8))

    def test_features_that_do_not_score_like_the_critic_fail(self) -> None:
        class Liar(nn.Module):
            feature_dim = 2

            def __init__(self) -> None:
                super().__init__()
                self.layer = nn.Linear(2, 1)

            def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
                return self.layer(x).squeeze(1)

            def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
                return x * 2

            def score(self, h: torch.Tensor) -> torch.Tensor:
                return self.layer(h).squeeze(1)

        with pytest.raises(AssertionError, match=r"score\(features\(x\)\) differs from critic"):
            gt.check_feature_critic(Liar(), data_shape=(2,))

    def test_conditioning_inputs_are_passed(self) -> None:
        """``extra`` tensors reach the critic after x."""
        gt.check_critic(ConditionalCritic((2,)), data_shape=(2,), extra=(torch.ones(4),))

    @pytest.mark.parametrize(
        ("component", "message"),
        [
            (
                TwoScores((2,)),
                "critic TwoScores: scores of shape (4, 2), expected [N], [N, 1] or [N, 1, h, w] "
                "with N = 4",
            ),
            (
                BlindCritic((2,)),
                "critic BlindCritic: no gradient reaches the input x from the scores",
            ),
            (
                IntegerCritic((2,)),
                "critic IntegerCritic: scores of dtype torch.int64, expected floating point",
            ),
        ],
        ids=["two-scores", "blind", "integer"],
    )
    def test_broken_critics_fail(self, component: nn.Module, message: str) -> None:
        """Each fault is one line naming the critic."""
        with fails(message):
            gt.check_critic(component, data_shape=(2,))


class TestCheckLoss:
    @pytest.mark.parametrize("loss", [Hinge, Minimax, NonSaturating, LeastSquares])
    def test_builtin_losses_pass(self, loss: type) -> None:
        """The built-in losses pass for every score shape."""
        assert isinstance(gt.check_loss(loss), loss)

    def test_least_squares_variant_passes(self) -> None:
        """LSGAN's a=-1, b=1, c=0 variant (the generator aims at 0) passes too."""
        gt.check_loss(LeastSquares, {"a": -1.0, "b": 1.0, "c": 0.0})

    @pytest.mark.parametrize(
        ("component", "message"),
        [
            (
                PerElement(),
                "loss PerElement: critic_loss returned shape (8,) for scores of shape (8,), "
                "expected a scalar",
            ),
            (
                Flipped(),
                "loss Flipped: critic_loss is not lower when real scores exceed fake ones (real 1, "
                "fake -1: 2; real -1, fake 1: -2); scores are high for real data",
            ),
            (
                GeneratorUp(),
                "loss GeneratorUp: generator_loss is higher for fake scores of 1 (1) than of -1 "
                "(-1); scores are high for real data",
            ),
            (
                FakeOnly(),
                "loss FakeOnly: critic_loss has no gradient with respect to the real scores",
            ),
            (
                CriticOnly(),
                "loss CriticOnly: lacks generator_loss; a loss has critic_loss(real_scores, "
                "fake_scores) and generator_loss(fake_scores)",
            ),
            (InPlace(), "loss InPlace: changed the scores it was given in place"),
            (
                NaNLoss(),
                "loss NaNLoss: critic_loss for scores of shape (8,) has non-finite values "
                "(nan or inf)",
            ),
        ],
        ids=[
            "per-element",
            "flipped",
            "generator-up",
            "fake-only",
            "critic-only",
            "in-place",
            "nan",
        ],
    )
    def test_broken_losses_fail(self, component: Any, message: str) -> None:
        """Each fault is one line naming the loss."""
        with fails(message):
            gt.check_loss(component)


class TestCheckRegularizer:
    @pytest.mark.parametrize("data_shape", [(2,), (1, 8, 8)])
    def test_r1_passes(self, data_shape: tuple[int, ...]) -> None:
        """The built-in R1 passes for vectors and images."""
        assert isinstance(gt.check_regularizer("r1", data_shape=data_shape), CriticRegularizer)

    def test_penalty_constraint_and_generator_regularizer_pass(self) -> None:
        """A penalty, a pure constraint (None, with after_step) and a generator penalty pass."""
        gt.check_regularizer(Penalty)
        critic = gt.TinyCritic((2,))
        gt.check_regularizer(Clamp, critic=critic)
        assert all(p.abs().max() <= 0.01 for p in critic.parameters())  # after_step ran
        assert gt.check_regularizer(OutputNorm()).interval == 4

    @pytest.mark.parametrize(
        ("component", "message"),
        [
            (NoPlayer(), "regularizer NoPlayer: player must be 'critic' or 'generator' (got None)"),
            (
                Penalty(interval=0),
                "regularizer Penalty: interval must be an integer >= 1 (got 0)",
            ),
            (
                Penalty(interval=True),  # type: ignore[arg-type]
                "regularizer Penalty: interval must be an integer >= 1 (got True)",
            ),
            (Negative(), "regularizer Negative: penalty is negative (-1); a penalty is >= 0"),
            (Vector(), "regularizer Vector: penalty of shape (4,), expected a scalar"),
            (
                DetachedPenalty(),
                "regularizer DetachedPenalty: no gradient reaches the critic's parameters",
            ),
            (
                NoAfterStep(),
                "regularizer NoAfterStep: lacks after_step(critic); a critic regularizer has one",
            ),
            (
                GradOnInput(),
                "regularizer GradOnInput: penalty switched on requires_grad of its real/fake "
                "inputs (the loop's own tensors); take x = real.detach().requires_grad_(True) "
                "instead",
            ),
            (
                ScalesInput(),
                "regularizer ScalesInput: penalty modified its real/fake inputs in place",
            ),
        ],
        ids=[
            "no-player",
            "interval-0",
            "interval-bool",
            "negative",
            "vector",
            "detached",
            "no-after-step",
            "grad-on-input",
            "in-place",
        ],
    )
    def test_broken_regularizers_fail(self, component: Any, message: str) -> None:
        """Each fault is one line naming the regularizer."""
        with fails(message):
            gt.check_regularizer(component)


class TestCheckRegularizerSeam:
    """check_regularizer calls a regularizer's optional check(players) as build_run does."""

    def test_check_sees_the_network_and_its_error_propagates(self) -> None:
        """check gets {"critic": {"critic": net}}; a ValueError from it reaches the caller."""
        seen: list[Any] = []

        @attrs.frozen
        class Picky(Penalty):
            def check(self, players: Any) -> None:
                seen.append(players)
                raise ValueError("picky: critic 'critic' has no 'head'")

        critic = gt.TinyCritic((2,))
        with pytest.raises(ValueError, match=r"^picky: critic 'critic' has no 'head'$"):
            gt.check_regularizer(Picky(), critic=critic)
        assert seen == [{"critic": {"critic": critic}}]


class TestCheckAugmenter:
    @pytest.mark.parametrize("name", ["none", "hflip"])
    def test_builtin_augmenters_pass(self, name: str) -> None:
        """The built-in augmenters pass."""
        assert isinstance(gt.check_augmenter(name), Augmenter)

    def test_adaptive_augmenter_receives_feedback(self) -> None:
        """feedback is called with both signs: +0.6 raises the std, -0.6 lowers it back."""
        noise = gt.check_augmenter(Noise())
        assert float(noise.std) == pytest.approx(0.1)

    @pytest.mark.parametrize(
        ("component", "message"),
        [
            (
                Crop(),
                "augmenter Crop: output shape (4, 3, 6, 6) differs from input shape (4, 3, 8, 8)",
            ),
            (Detaching(), "augmenter Detaching: no gradient reaches the input"),
            (
                Halve(),
                "augmenter Halve: output dtype torch.float16 differs from input dtype torch.float32",
            ),
            (
                BadInterval(),
                "augmenter BadInterval: feedback_interval must be an integer >= 0 (got -1)",
            ),
            (Picky(), "augmenter Picky: feedback(-0.6, 4) raised ValueError: negative"),
            (NoFeedback(), "augmenter NoFeedback: lacks feedback(real_sign_mean, images)"),
        ],
        ids=["crop", "detaching", "half", "interval", "picky", "no-feedback"],
    )
    def test_broken_augmenters_fail(self, component: Any, message: str) -> None:
        """Each fault is one line naming the augmenter."""
        with fails(message):
            gt.check_augmenter(component)


class TestCheckDataset:
    def test_builtin_and_fake_datasets_pass(self) -> None:
        """toy2d, digits and the fakes (with labels, with get_batch) pass."""
        assert isinstance(gt.check_dataset("toy2d", {"size": 16}), Dataset)
        gt.check_dataset("digits", {"resolution": 8})
        labelled = gt.check_dataset(gt.FakeDataset({"x": (1, 4, 4)}, size=5, num_classes=3))
        assert labelled.shapes == {"x": (1, 4, 4), "label": ()}
        assert labelled[4]["label"].dtype == torch.int64
        gt.check_dataset(GoodBatch())

    @pytest.mark.parametrize(
        ("component", "message"),
        [
            (WrongShape(), "dataset WrongShape: item 0['x'] has shape (3,), shapes says (2,)"),
            (
                Random(),
                "dataset Random: item 0 differs between two reads; items must be deterministic "
                "functions of the index",
            ),
            (
                Bright(),
                "dataset Bright: item 0['x'] has values in [0, 2]; images lie in [-1, 1]",
            ),
            (ExtraKey(), "dataset ExtraKey: item 0 has keys ['label', 'x'], shapes says ['x']"),
            (Empty(), "dataset Empty: is empty (len 0)"),
            (
                BadBatch(),
                "dataset BadBatch: get_batch([0, 1, 2, 3, 7]) differs from the stacked items at "
                "key 'x'",
            ),
        ],
        ids=["shape", "random", "range", "keys", "empty", "get-batch"],
    )
    def test_broken_datasets_fail(self, component: Any, message: str) -> None:
        """Each fault is one line naming the dataset."""
        with fails(message):
            gt.check_dataset(component)


class TestCheckMetric:
    def test_metric_passes_and_returns_its_result(self) -> None:
        """A flat result with a number, a protocol and its value keys passes."""
        result = gt.check_metric(MeanNorm, {"num_samples": 32})
        assert set(result) == {"norm", "protocol"} and result["norm"] > 0

    def test_builtin_mode_coverage_passes_on_a_mixture(self) -> None:
        """mode-coverage passes on a toy2d ring through a FakeMetricContext."""
        dataset = gancore.get_registry().get("dataset", "toy2d")
        context = gt.FakeMetricContext(dataset.build(dataset.options(size=100)))
        result = gt.check_metric("mode-coverage", {"num_samples": 50}, context=context)
        assert result["num_modes"] == 8

    def test_fake_context_draws_what_it_is_asked(self) -> None:
        """generate and real yield num samples in batches; real cycles through a small dataset."""
        context = gt.FakeMetricContext(gt.FakeDataset({"x": (2,)}, size=5))
        assert [b.shape[0] for b in context.generate(10, 4, 0)] == [4, 4, 2]
        real = torch.cat(list(context.real(10, 4, 0)))
        assert real.shape == (10, 2)
        assert torch.equal(real, torch.cat(list(context.real(10, 4, 0))))

    @pytest.mark.parametrize(
        ("component", "message"),
        [
            (Nested(), "metric Nested: result key 'values' holds dict; results are flat"),
            (Liar(), "metric Liar: value_keys() names ['b'], which evaluate did not return"),
            (Wordy(), "metric Wordy: result holds no number"),
            (
                TensorValued(),
                "metric TensorValued: result is not JSON-ready: Object of type Tensor is not JSON "
                "serializable",
            ),
        ],
        ids=["nested", "liar", "wordy", "tensor"],
    )
    def test_broken_metrics_fail(self, component: Any, message: str) -> None:
        """Each fault is one line naming the metric."""
        with fails(message):
            gt.check_metric(component)


class TestCheckExtractor:
    def test_extractor_passes(self) -> None:
        """A module with its protocol attributes, features [N, d] and logits passes."""
        gt.check_extractor(Pixels())

    @pytest.mark.parametrize(
        ("component", "message"),
        [
            (
                Bare(),
                "extractor Bare: lacks input_size, resize_filter, weights_sha256; an extractor "
                "states its input size (int), resize filter (str) and weights hash (str)",
            ),
            (
                Unflattened(),
                "extractor Unflattened: features of shape (2, 16, 1), expected [N, d] with N = 2",
            ),
            (
                OtherLogits(),
                "extractor OtherLogits: features_and_logits returns other features than forward",
            ),
        ],
        ids=["bare", "unflattened", "other-logits"],
    )
    def test_broken_extractors_fail(self, component: Any, message: str) -> None:
        """Each fault is one line naming the extractor."""
        with fails(message):
            gt.check_extractor(component)


class TestCheckOptionsRoundtrip:
    def test_every_builtin_component_round_trips(self) -> None:
        """The defaults of every built-in component with defaults survive TOML."""
        registry, _ = gancore.load_registry(entry_points=False, env={})
        checked = 0
        for spec in registry.specs():
            try:
                spec.defaults()
            except TypeError:  # a required option (a dataset's path): nothing to round-trip
                continue
            gt.check_options_roundtrip(spec, kind=spec.kind)
            checked += 1
        assert checked >= 20

    def test_tuples_none_and_table_options_round_trip(self) -> None:
        """Tuples come back as tuples, None defaults stay None, a table is validated first."""
        text = gt.check_options_roundtrip(Nestable, {"betas": [0.0, 0.9], "mode": "b"})
        assert text == 'betas = [\n    0.0,\n    0.9,\n]\nmode = "b"\n'

    @pytest.mark.parametrize(
        ("component", "options", "message"),
        [
            (
                Undocumented,
                None,
                "loss Undocumented: option 'scale' has no doc (metadata={'doc': ...})",
            ),
            (
                IntForFloat,
                None,
                "loss IntForFloat: option 'scale' changes through TOML: 1 became 1.0",
            ),
            (
                NoneForString,
                NoneForString(path=None),
                "loss NoneForString: option 'path' changes through TOML: None became 'a'",
            ),
        ],
        ids=["undocumented", "int-for-float", "none"],
    )
    def test_broken_options_fail(self, component: type, options: Any, message: str) -> None:
        """Each fault is one line naming the component and the option."""
        with fails(message):
            gt.check_options_roundtrip(component, options, kind="loss")


# -------------------------------------------------------------------------------------------------
# Registration helpers and whole runs
# -------------------------------------------------------------------------------------------------


def register_penalty(register: gancore.RegisterCallback) -> None:
    register("square-penalty", Penalty, description="weight * E[D(real)^2].")


DEMO = plugin_module("demo", gancore_register_regularizers=register_penalty)
demo_registry = gt.plugin_fixture("demo", DEMO)


class TestRegistration:
    def test_registered_plugin_is_process_wide_then_restored(self) -> None:
        """Inside the block, config lookups see the plugin; afterwards the old registry is back."""
        before = gancore.get_registry()
        with gt.registered_plugin("demo", DEMO) as registry:
            assert gancore.get_registry() is registry
            assert registry.get("regularizer", "square-penalty").provider == "demo"
            gt.check_regularizer("square-penalty")
            gt.check_options_roundtrip("demo:square-penalty", kind="regularizer")
        assert gancore.get_registry() is before

    def test_fixture_yields_the_registry(self, demo_registry: gancore.Registry) -> None:
        """plugin_fixture makes a pytest fixture that registers the plugin for the test."""
        assert gancore.get_registry() is demo_registry
        assert demo_registry.get("regularizer", "square-penalty").qualified_name == (
            "demo:square-penalty"
        )

    def test_a_plugin_that_fails_is_an_error(self) -> None:
        """Strict by default: a hook that raises fails the block with the plugin's error."""

        def broken(register: gancore.RegisterCallback) -> None:
            register("Bad_Name", Penalty, description="x")

        module = plugin_module("broken", gancore_register_regularizers=broken)
        with (
            pytest.raises(gancore.PluginError, match="must be lowercase kebab-case"),
            gt.registered_plugin("broken", module),
        ):
            pass
        with (
            pytest.warns(gancore.PluginWarning),
            fails(
                "plugin 'broken' did not load: gancore_register_regularizers raised PluginError: "
                "plugin 'broken', hook gancore_register_regularizers: regularizer name must be "
                "lowercase kebab-case like 'wgan-gp' (got 'Bad_Name')"
            ),
            gt.registered_plugin("broken", module, strict=False),
        ):
            pass

    def test_installed_plugin_loads(self) -> None:
        """check_plugin_loads finds an installed test plugin by its entry point."""
        require_test_plugins("gancore-test-good")
        _, info = gt.check_plugin_loads("gancore-test-good", module="gancore_test_good")
        assert ("loss", "scaled-hinge") in info.components

    def test_plugin_components_are_checked(self) -> None:
        """check_plugin_components passes the test plugin's full list, and names a missing
        component, another plugin's, and a component left off the list (one line each)."""
        require_test_plugins("gancore-test-good")
        names = [
            ("loss", "scaled-hinge"),
            ("task", "test-conditional"),
            ("task", "test-growing"),
            ("task", "test-q"),
            ("task", "test-vae"),
        ]
        registry = gt.check_plugin_components("gancore-test-good", names)
        assert registry.get("loss", "scaled-hinge").provider == "gancore-test-good"
        with fails("plugin 'gancore-test-good': loss 'nope' is not registered"):
            gt.check_plugin_components("gancore-test-good", [*names, ("loss", "nope")])
        with fails("plugin 'gancore-test-good': loss 'hinge' is provided by 'gancore'"):
            gt.check_plugin_components("gancore-test-good", [*names, ("loss", "hinge")])
        with fails("plugin 'gancore-test-good' also registers task 'test-vae'"):
            gt.check_plugin_components("gancore-test-good", names[:-1])
        gt.check_plugin_components("gancore-test-good", names[:-1], exact=False)

    def test_missing_and_broken_installed_plugins_fail(self) -> None:
        """Not installed, wrong module, and failing to import are one line each."""
        require_test_plugins("gancore-test-good", "gancore-test-broken")
        with fails(
            "plugin 'gan-nope' is not installed: no entry point 'gan-nope' in the group 'gancore'"
        ):
            gt.check_plugin_loads("gan-nope")
        with fails(
            "plugin 'gancore-test-good': entry point names 'gancore_test_good', not 'x.plugin'"
        ):
            gt.check_plugin_loads("gancore-test-good", module="x.plugin")
        with fails(
            "plugin 'gancore-test-broken': gancore plugin 'gancore-test-broken' "
            "failed to load: ModuleNotFoundError: No module named "
            "'gancore_test_missing_dependency' (strict mode)"
        ):
            gt.check_plugin_loads("gancore-test-broken")


class TestWholeRuns:
    def test_tiny_run_is_a_valid_config(self) -> None:
        """tiny_run's document validates, and sections replace the defaults."""
        config = gancore.parse_config(
            gt.tiny_run(5, loss={"name": "hinge"}), gancore.get_registry()
        )
        assert (config.run.steps, config.loss.name) == (5, "gancore:hinge")

    @pytest.mark.slow
    def test_check_task_trains_and_catches_nan(self, tmp_path: Path) -> None:
        """A tiny run of the built-in task passes; a loss that is NaN fails on the logged loss."""
        result = gt.check_task("unconditional", tmp_path / "good")
        assert result.step == 2

        def register(register: gancore.RegisterCallback) -> None:
            register("nan", NaNLoss, description="NaN critic loss.")

        with (
            gt.registered_plugin("demo", plugin_module("demo", gancore_register_losses=register)),
            fails("run 'tiny': logged loss/critic = nan at step 1"),
        ):
            gt.check_training(gt.tiny_run(loss={"name": "nan"}), tmp_path / "nan")

    def test_train_processes_returns_the_final_state(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """One process: the state holds the trained networks (equal to an in-process run of the
        same file) and the state of module regularizers; a bad run file fails with its error."""
        import tomli_w

        document = gt.tiny_run(3, regularizers=[{"name": "r1", "gamma": 1.0}])
        (tmp_path / "run.toml").write_text(tomli_w.dumps(document))
        (state,) = gt.train_processes(
            tmp_path / "run.toml", tmp_path / "one", processes=1, env=subprocess_env
        )
        here = gancore.train(
            gancore.parse_config(document, gancore.get_registry()), tmp_path / "here"
        )
        expected = {
            f"{group}.{name}.{key}": tensor
            for group, modules in (("generators", here.generators), ("critics", here.critics))
            for name, module in modules.items()
            for key, tensor in module.state_dict().items()
        }
        assert set(state) == set(expected)
        for key, tensor in expected.items():
            assert torch.equal(state[key], tensor), key
        assert (tmp_path / "one" / "run" / "checkpoints").is_dir()
        (tmp_path / "bad.toml").write_text('[run]\nname = "bad"\nsteps = "many"\n')
        with pytest.raises(AssertionError, match=r"training in 1 process\(es\) failed \(exit 1\)"):
            gt.train_processes(tmp_path / "bad.toml", tmp_path / "bad", processes=1)

    def test_run_processes_reports_where_a_hung_run_waits(self, tmp_path: Path) -> None:
        """Two processes, one waiting forever for the other at a barrier: after the timeout the
        error carries both processes' stacks (the barrier, the sleep), and nothing is left running."""
        import psutil

        script = tmp_path / "hang.py"
        script.write_text(
            "import os, time\n"
            "import torch.distributed as dist\n"
            "dist.init_process_group('gloo')\n"
            "def wait_forever():\n"
            "    time.sleep(600)\n"
            "if dist.get_rank() == 1:\n"
            "    wait_forever()\n"
            "dist.barrier()\n"
        )
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        with pytest.raises(AssertionError) as caught:
            gt.run_processes([str(script)], timeout=15)
        message = str(caught.value)
        assert message.startswith(f"2 process(es) of {str(script)!r} did not end within 15 s")
        assert "in wait_forever" in message  # rank 1's stack
        assert 'hang.py", line 8' in message  # rank 0's: the barrier
        if "native stacks of process" in message:  # gdb installed and allowed to attach
            assert "ProcessGroupGloo::runLoop" in message  # gloo's worker threads, by name
        assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
        done = gt.run_processes(["-c", "print('fine')"], processes=1, timeout=60)
        assert (done.returncode, done.stdout) == (0, "fine\n")


def _signature_text(function: Callable[..., Any]) -> str:
    """``name(a, b=1, *, c=(1, 2))``: a signature as the docs write it, without annotations."""
    import inspect

    parts: list[str] = []
    star = False
    for param in inspect.signature(function).parameters.values():
        if param.kind is param.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if param.kind is param.VAR_KEYWORD:
            parts.append(f"**{param.name}")
        elif param.default is param.empty:
            parts.append(param.name)
        else:
            parts.append(f"{param.name}={param.default!r}")
    return f"{function.__name__}({', '.join(parts)})"


class TestDocumentedSignatures:
    """docs/writing_plugins.md's table of checks shows each check's real signature and defaults."""

    def test_every_check_is_in_the_table_as_defined(self) -> None:
        """Each check_* of gancore.testing has a row whose signature equals inspect's."""
        docs = (Path(__file__).parents[1] / "docs" / "writing_plugins.md").read_text()
        rows = re.findall(r"^\| `(check_\w+\(.*?\))` \|", docs, re.M)
        checks = sorted(n for n in gt.__all__ if n.startswith("check_"))
        assert sorted(row.partition("(")[0] for row in rows) == checks
        for row in rows:
            function = getattr(gt, row.partition("(")[0])
            assert row == _signature_text(function)

    def test_vector_defaults_are_stated(self) -> None:
        """The docs say which checks default to image shapes, as the code does."""
        import inspect

        defaults = {
            name: inspect.signature(getattr(gt, name)).parameters["data_shape"].default
            for name in ("check_generator", "check_critic", "check_regularizer")
        }
        assert defaults == {
            "check_generator": (1, 8, 8),
            "check_critic": (1, 8, 8),
            "check_regularizer": (2,),
        }
        docs = (Path(__file__).parents[1] / "docs" / "writing_plugins.md").read_text()
        assert "must pass `data_shape=(2,)` to `check_generator` and `check_critic`" in docs


class TestBuildFailures:
    """A component that fails to build is an AssertionError chained to its own exception."""

    def test_factory_error_becomes_assertion_error(self) -> None:
        """The factory's ValueError is one line in the AssertionError and its __cause__."""

        @attrs.frozen(kw_only=True)
        class Options:
            size: int = attrs.field(default=3, metadata={"doc": "size"})

        def build(options: Options, context: Any) -> nn.Module:
            raise ValueError(f"my-net: size {options.size} is not a power of two")

        with pytest.raises(AssertionError) as exc:
            gt.check_generator(build, Options())
        assert str(exc.value) == (
            "generator build: building failed: ValueError: my-net: size 3 is not a power of two"
        )
        assert isinstance(exc.value.__cause__, ValueError)


class TestFakeMetricContext:
    """The fake context keeps the metric-context promise: samples do not depend on batch_size."""

    def test_samples_do_not_depend_on_batch_size(self) -> None:
        """Batches of 3 and of 64 give the same 40 samples; another seed gives others."""
        context = gt.FakeMetricContext()
        small = torch.cat(list(context.generate(40, 3, seed=1)))
        large = torch.cat(list(context.generate(40, 64, seed=1)))
        assert small.shape == (40, 2)
        # equal up to float32 rounding: the matrix products of a batch of 3 and of 64 may round
        # differently (8e-8 apart on an Intel Xeon; bit-equal on AMD EPYC)
        torch.testing.assert_close(small, large, rtol=1e-6, atol=1e-6)
        assert not torch.equal(small, torch.cat(list(context.generate(40, 64, seed=2))))
