"""The cyclegan and pix2pix tasks: losses, weights and samples on hand-built players."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
import torch
from gan_cyclegan.tasks import (
    CycleGAN,
    CycleGANOptions,
    Pix2Pix,
    Pix2PixOptions,
    cycle_losses,
    identity_losses,
)
from torch import nn

import gancore


class Scale(nn.Module):
    """x -> factor * x."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor * x


class MeanCritic(nn.Module):
    """A patch critic: scores [N, 1, H, W] = weight * channel mean + bias."""

    def __init__(self, weight: float, bias: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight))
        self.bias = nn.Parameter(torch.tensor(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x.mean(dim=1, keepdim=True) + self.bias


class Recorder:
    """An identity augmenter that remembers the shape of everything the critics see."""

    feedback_interval = 0

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return x

    def feedback(self, real_sign_mean: float, images: int) -> None:
        del real_sign_mean, images


def _loss(name: str) -> object:
    registry, _ = gancore.load_registry()
    spec = registry.get("loss", name)
    return spec.build(spec.defaults())


def _step(
    generators: Mapping[str, nn.Module],
    critics: Mapping[str, nn.Module],
    loss: object,
    augmenter: object | None = None,
) -> gancore.StepContext:
    return gancore.StepContext(
        players={"generator": dict(generators), "critic": dict(critics)},
        modules={**generators, **critics},
        loss=loss,  # type: ignore[arg-type]
        augmenter=augmenter or Recorder(),  # type: ignore[arg-type]
        feedback=None,
        device=torch.device("cpu"),
        seed=0,
        rank=0,
        world_size=1,
    )


def _ls_critic(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    # least squares, a = 0, b = 1: 0.5 (D(x) - 1)^2 + 0.5 D(G(z))^2
    return 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean()


def _ls_generator(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1).square().mean()


A = torch.linspace(-1, 1, 2 * 1 * 4 * 4).view(2, 1, 4, 4)
B = torch.linspace(1, -0.5, 2 * 1 * 4 * 4).view(2, 1, 4, 4)


class TestCycleAndIdentityLosses:
    def test_identity_generators_give_zero(self) -> None:
        """G = F = identity: both cycle losses and both identity losses are exactly zero."""
        same = nn.Identity()
        cycle_a, cycle_b, fake_b, fake_a = cycle_losses(same, same, A, B)
        assert float(cycle_a) == 0.0
        assert float(cycle_b) == 0.0
        assert torch.equal(fake_b, A)
        assert torch.equal(fake_a, B)
        assert [float(t) for t in identity_losses(same, same, A, B)] == [0.0, 0.0]

    def test_inverse_generators_give_zero_cycle(self) -> None:
        """G = 2x and F = x/2 invert each other: no cycle loss, but identity loss remains."""
        g, f = Scale(2.0).requires_grad_(False), Scale(0.5).requires_grad_(False)
        cycle_a, cycle_b, _, _ = cycle_losses(g, f, A, B)
        assert float(cycle_a) == 0.0
        assert float(cycle_b) == 0.0
        identity_a, identity_b = identity_losses(g, f, A, B)
        assert float(identity_a) == pytest.approx(float(A.abs().mean()) / 2)
        assert float(identity_b) == pytest.approx(float(B.abs().mean()))

    def test_shifting_generators(self) -> None:
        """G = F = x + 1: each cycle adds 2 to every pixel, an L1 of exactly 2."""
        g = f = _Shift()
        cycle_a, cycle_b, _, _ = cycle_losses(g, f, A, B)
        assert float(cycle_a) == pytest.approx(2.0)
        assert float(cycle_b) == pytest.approx(2.0)


class _Shift(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


class TestCycleGANSteps:
    def _players(self) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        gens = {"a_to_b": Scale(2.0), "b_to_a": Scale(0.25)}
        critics = {"critic_a": MeanCritic(0.5, 0.1), "critic_b": MeanCritic(-1.5, 0.3)}
        return gens, critics

    def test_generator_loss_weights(self) -> None:
        """adv * (L_G(D_B) + L_G(D_A)) + lambda * cycles + identity * lambda * identities."""
        gens, critics = self._players()
        task = CycleGAN(
            CycleGANOptions(cycle_weight=3.0, identity_weight=0.25, adversarial_weight=2.0)
        )
        step = _step(gens, critics, _loss("least-squares"))
        total = task.generator_step(step, {"a": A, "x": B})
        fake_b, fake_a = 2 * A, B / 4
        adversarial = _ls_generator(critics["critic_b"](fake_b)) + _ls_generator(
            critics["critic_a"](fake_a)
        )
        cycle = (fake_b / 4 - A).abs().mean() + (2 * fake_a - B).abs().mean()
        identity = (A / 4 - A).abs().mean() + (2 * B - B).abs().mean()
        expected = 2.0 * adversarial + 3.0 * cycle + 0.25 * 3.0 * identity
        assert total.item() == pytest.approx(expected.item(), rel=1e-6)
        assert step.logs["loss/cycle_a"].item() == pytest.approx(float(A.abs().mean()) * 0.5)
        assert set(step.logs) >= {
            "loss/identity_a",
            "loss/identity_b",
            "loss/generator/critic_a",
            "loss/generator/critic_b",
        }

    def test_identity_weight_zero_skips_identity(self) -> None:
        """identity_weight = 0: no identity term is computed or logged."""
        gens, critics = self._players()
        task = CycleGAN(CycleGANOptions(identity_weight=0.0))
        step = _step(gens, critics, _loss("least-squares"))
        total = task.generator_step(step, {"a": A, "x": B})
        fake_b, fake_a = 2 * A, B / 4
        expected = (
            _ls_generator(critics["critic_b"](fake_b))
            + _ls_generator(critics["critic_a"](fake_a))
            + 10.0 * ((fake_b / 4 - A).abs().mean() + (2 * fake_a - B).abs().mean())
        )
        assert total.item() == pytest.approx(expected.item(), rel=1e-6)
        assert "loss/identity_a" not in step.logs

    @pytest.mark.parametrize("critic_weight", [0.5, 1.0])
    def test_critic_loss_is_halved(self, critic_weight: float) -> None:
        """Critic loss = critic_weight * (L_D(D_B; b, G(a)) + L_D(D_A; a, F(b))), 0.5 by default."""
        gens, critics = self._players()
        task = CycleGAN(CycleGANOptions(pool_size=0, critic_weight=critic_weight))
        step = _step(gens, critics, _loss("least-squares"))
        total = task.critic_step(step, {"a": A, "x": B})
        d_a, d_b = critics["critic_a"], critics["critic_b"]
        expected = critic_weight * (_ls_critic(d_b(B), d_b(2 * A)) + _ls_critic(d_a(A), d_a(B / 4)))
        assert total.item() == pytest.approx(expected.item(), rel=1e-6)
        assert CycleGANOptions().critic_weight == 0.5

    def test_critics_see_pooled_fakes(self) -> None:
        """With a pool, the critics' fakes come from it: the first batch fills both pools."""
        gens, critics = self._players()
        task = CycleGAN(CycleGANOptions(pool_size=3))
        task.critic_step(_step(gens, critics, _loss("least-squares")), {"a": A, "x": B})
        state = task.state_dict()
        assert torch.equal(state["pool_b"]["images"], 2 * A)
        assert torch.equal(state["pool_a"]["images"], B / 4)

    def test_triplet_samples(self) -> None:
        """The grid shows a, G(a), F(G(a)), b, F(b), G(F(b)) per row, six columns."""
        gens, _ = self._players()
        task = CycleGAN(CycleGANOptions())
        grid = task.sample(gens, {"a": A, "x": B})
        assert grid.columns == 6
        assert grid.images.shape == (12, 1, 4, 4)
        row = grid.images[:6]
        expected = [A[0], 2 * A[0], 0.5 * A[0], B[0], B[0] / 4, B[0] / 2]
        for got, want in zip(row, expected, strict=True):
            assert torch.allclose(got, want)
        only = CycleGAN(CycleGANOptions(samples="translations")).sample(gens, {"a": A, "x": B})
        assert torch.equal(only.images, 2 * A)


class TestPix2PixSteps:
    def test_losses_and_concatenated_critic_input(self) -> None:
        """G loss = adv * L_G(D(a, G(a))) + 100 L1; D loss = 0.5 L_D; the augmenter (and the
        critic) see the input and the image as one [N, C_a + C_b, H, W] tensor."""
        gens = {"a_to_b": Scale(-1.0)}
        critic = MeanCritic(0.7, -0.2)
        recorder = Recorder()
        step = _step(gens, {"critic": critic}, _loss("non-saturating"), recorder)
        task = Pix2Pix(Pix2PixOptions())
        total = task.generator_step(step, {"a": A, "x": B})
        fake = -A
        expected = (
            nn.functional.softplus(-critic(torch.cat([A, fake], 1))).mean()
            + 100.0 * (fake - B).abs().mean()
        )
        assert total.item() == pytest.approx(expected.item(), rel=1e-6)
        assert recorder.shapes == [(2, 2, 4, 4)]
        critic_total = task.critic_step(step, {"a": A, "x": B})
        real_scores, fake_scores = critic(torch.cat([A, B], 1)), critic(torch.cat([A, fake], 1))
        expected_critic = 0.5 * (
            nn.functional.softplus(-real_scores).mean() + nn.functional.softplus(fake_scores).mean()
        )
        assert critic_total.item() == pytest.approx(expected_critic.item(), rel=1e-6)
        assert recorder.shapes[1:] == [(2, 2, 4, 4), (2, 2, 4, 4)]
        grid = task.sample(gens, {"a": A, "x": B})
        assert grid.columns == 3
        assert torch.equal(grid.images[1], -A[0])


DOCUMENT = {
    "data": {"name": "digits-translation", "resolution": 8, "limit": 8},
    "task": {"name": "cyclegan"},
    "generator": {"name": "resnet", "blocks": 1, "channels": 4, "downsamplings": 1},
    "critic": {"name": "patchgan", "layers": 1, "channels": 4},
}


class TestBuild:
    def test_cyclegan_builds_two_of_each(self) -> None:
        """G: A -> B and F: B -> A from one [generator] table, D_A and D_B from one [critic]."""
        registry, _ = gancore.load_registry()
        config = gancore.parse_config(
            DOCUMENT | {"task": {"name": "cyclegan", "identity_weight": 0.0}}, registry
        )
        dataset = config.data.build(None)
        gens, critics = config.task.build(None).build(
            gancore.TaskBuildContext(config=config, dataset=dataset)
        )
        assert set(gens) == {"a_to_b", "b_to_a"}
        assert set(critics) == {"critic_a", "critic_b"}
        assert gens["a_to_b"](torch.zeros(1, 1, 8, 8)).shape == (1, 3, 8, 8)
        assert gens["b_to_a"](torch.zeros(1, 3, 8, 8)).shape == (1, 1, 8, 8)
        assert critics["critic_b"](torch.zeros(1, 3, 8, 8)).shape[1] == 1

    def test_identity_needs_equal_channels(self) -> None:
        """The identity loss on 1-channel A and 3-channel B is a one-line error naming the fix."""
        registry, _ = gancore.load_registry()
        config = gancore.parse_config(DOCUMENT, registry)
        with pytest.raises(
            ValueError, match=re.escape("A has 1, B has 3); set task.identity_weight = 0")
        ):
            config.task.build(None).build(
                gancore.TaskBuildContext(config=config, dataset=config.data.build(None))
            )

    def test_triplets_with_metrics_is_an_error(self) -> None:
        """Metrics would score inputs and reconstructions: samples = 'triplets' is refused."""
        registry, _ = gancore.load_registry()
        document = DOCUMENT | {
            "task": {"name": "pix2pix"},
            "metrics": [{"name": "fid", "extractor": "digits-classifier"}],
        }
        config = gancore.parse_config(document, registry)
        with pytest.raises(ValueError, match=re.escape("set task.samples = 'translations'")):
            config.task.build(None).build(
                gancore.TaskBuildContext(config=config, dataset=config.data.build(None))
            )
