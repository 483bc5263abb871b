"""Penalties and constraints on hand-written critics, with closed-form answers."""

from __future__ import annotations

import math

import pytest
import torch
from einops import reduce
from gan_wgan.regularizers import (
    DRAGAN,
    Drift,
    GradientPenalty,
    LipschitzPenalty,
    SpectralNorm,
    WeightClip,
    gradient_norms,
    interpolate,
)
from torch import nn
from torch.nn.utils import parametrize


class LinearCritic(nn.Module):
    """D(x) = <w, x>: its gradient is w everywhere, so ||grad D|| = ||w||."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return reduce(x * self.weight, "n ... -> n", "sum")


class DistanceCritic(nn.Module):
    """D(x) = ||x - c||: 1-Lipschitz with gradient norm exactly 1 away from c."""

    def __init__(self, centre: torch.Tensor) -> None:
        super().__init__()
        self.centre = nn.Parameter(centre.clone())

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm((x - self.centre).flatten(1), dim=1)


def _mlp_critic(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1)
    )


def _batch(n: int = 6, shape: tuple[int, ...] = (1, 4, 4)) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(n, *shape, generator=gen, dtype=torch.float64)
    fake = torch.randn(n, *shape, generator=gen, dtype=torch.float64)
    return real, fake


class TestGradientNorms:
    def test_norm_over_every_non_batch_dimension(self) -> None:
        """For a linear critic on images, every sample's norm is ||w|| over C, H, W."""
        weight = torch.randn(2, 3, 3, dtype=torch.float64)
        real, _ = _batch(4, (2, 3, 3))
        norms = gradient_norms(LinearCritic(weight), real, ())
        torch.testing.assert_close(
            norms, torch.full((4,), weight.norm().item(), dtype=torch.float64)
        )

    def test_patch_scores_are_averaged_per_sample(self) -> None:
        """A patch critic's score for a sample is the mean of its patch scores."""
        weight = torch.randn(1, 4, 4, dtype=torch.float64)

        def patch_critic(x: torch.Tensor) -> torch.Tensor:
            return x * weight  # [N, 1, 4, 4] scores, one per pixel

        norms = gradient_norms(patch_critic, _batch(3)[0], ())
        expected = weight.norm().item() / 16
        torch.testing.assert_close(norms, torch.full((3,), expected, dtype=torch.float64))
        # SinGAN's form: the gradient of the patch scores' sum, its norm over the channels per
        # pixel: |w_ij| at pixel (i, j) for this one-channel critic.
        pixels = gradient_norms(patch_critic, _batch(3)[0], (), per_pixel=True)
        torch.testing.assert_close(pixels, weight.abs().expand(3, 4, 4))
        penalty = GradientPenalty(weight=0.1, per_pixel=True).penalty(patch_critic, *_batch(3), ())
        expected_penalty = 0.1 * (weight.abs() - 1.0).square().mean().item()
        assert penalty.item() == pytest.approx(expected_penalty)

    def test_rejects_scores_without_the_batch_dimension(self) -> None:
        """Scores must keep the batch dimension."""
        with pytest.raises(ValueError, match="leading batch dimension of 3"):
            gradient_norms(lambda x: x.sum(), torch.randn(3, 2), ())


class TestInterpolate:
    def test_points_lie_between_real_and_fake_one_coefficient_per_sample(self) -> None:
        """x_hat = a*x + (1-a)*x_fake with one a in [0, 1] per sample."""
        real, fake = _batch(8)
        torch.manual_seed(0)
        points = interpolate(real, fake)
        a = (points - fake) / (real - fake)
        per_sample = a.flatten(1)
        torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample))
        assert ((per_sample >= 0) & (per_sample <= 1)).all()
        assert per_sample[:, 0].std() > 0  # different samples get different a

    def test_rejects_mismatched_shapes(self) -> None:
        """Real and fake batches of different shapes are an error that shows both."""
        with pytest.raises(ValueError, match=r"real \[2, 3\], fake \[3, 3\]"):
            interpolate(torch.zeros(2, 3), torch.zeros(3, 3))


class TestGradientPenalty:
    def test_defaults_follow_the_paper(self) -> None:
        """lambda 10, target 1, every critic step."""
        gp = GradientPenalty()
        assert (gp.weight, gp.target, gp.interval, gp.player) == (10.0, 1.0, 1, "critic")

    @pytest.mark.parametrize("norm", [0.25, 1.0, 3.0])
    def test_linear_critic_closed_form(self, norm: float) -> None:
        """For D(x) = <w, x> the penalty is lambda * (||w|| - 1)^2, wherever x_hat falls."""
        weight = torch.randn(1, 4, 4, dtype=torch.float64)
        weight = weight * (norm / weight.norm())
        real, fake = _batch()
        penalty = GradientPenalty(weight=7.0).penalty(LinearCritic(weight), real, fake, ())
        assert penalty.shape == ()
        assert penalty.item() == pytest.approx(7.0 * (norm - 1.0) ** 2, abs=1e-5)

    def test_one_lipschitz_critic_has_near_zero_penalty(self) -> None:
        """A distance function (gradient norm 1 almost everywhere) has a penalty near zero."""
        real, fake = _batch(64)
        critic = DistanceCritic(torch.zeros(1, 4, 4, dtype=torch.float64))
        assert GradientPenalty().penalty(critic, real, fake, ()).item() < 1e-8

    def test_gradient_reaches_critic_parameters(self) -> None:
        """Double backward: d/dw lambda(||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||."""
        weight = torch.tensor([[3.0, 4.0]], dtype=torch.float64)  # ||w|| = 5
        critic = LinearCritic(weight)
        real, fake = torch.randn(5, 1, 2), torch.randn(5, 1, 2)
        penalty = GradientPenalty(weight=10.0).penalty(critic, real.double(), fake.double(), ())
        (grad,) = torch.autograd.grad(penalty, critic.weight)
        torch.testing.assert_close(
            grad, 2 * 10.0 * (5.0 - 1.0) * weight / 5.0, rtol=1e-5, atol=1e-5
        )

    def test_gradient_reaches_a_deep_critic(self) -> None:
        """Every weight of an MLP critic gets a finite, non-zero penalty gradient.

        (In a ReLU network grad_x D is piecewise constant in the biases, so theirs are zero.)
        """
        critic = _mlp_critic()
        real, fake = torch.randn(16, 2), torch.randn(16, 2)
        GradientPenalty().penalty(critic, real, fake, ()).backward()
        for name, param in critic.named_parameters():
            if name.endswith("weight"):
                assert param.grad is not None, name
                assert torch.isfinite(param.grad).all(), name
                assert param.grad.abs().sum() > 0, name

    def test_critic_ignoring_its_input(self) -> None:
        """A constant critic has zero gradient: the penalty is lambda * 1, and it backpropagates."""
        bias = nn.Parameter(torch.tensor(0.3))
        penalty = GradientPenalty(weight=2.0).penalty(
            lambda x: bias.expand(x.shape[0]), torch.randn(3, 2), torch.randn(3, 2), ()
        )
        assert penalty.item() == pytest.approx(2.0)
        (grad,) = torch.autograd.grad(penalty, bias)
        assert grad.item() == 0.0

    def test_dead_critic_gives_finite_gradients(self) -> None:
        """A critic whose input gradient is exactly zero (dead ReLUs) gives no NaN."""
        critic = _mlp_critic()
        with torch.no_grad():
            critic[0].bias.fill_(-100.0)  # every first-layer unit off: grad_x D = 0
        GradientPenalty().penalty(critic, torch.randn(4, 2), torch.randn(4, 2), ()).backward()
        for param in critic.parameters():
            assert param.grad is None or torch.isfinite(param.grad).all()

    def test_passes_extra_inputs(self) -> None:
        """Conditioning inputs go to the critic unchanged; the gradient is only wrt x."""
        seen: list[tuple[torch.Tensor, ...]] = []
        label = torch.tensor([[2.0], [3.0]], dtype=torch.float64)

        def critic(x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
            seen.append(extra)
            return (x * extra[0]).sum(dim=1)  # grad_x = label_n * (1, 1), norm label_n * sqrt(2)

        real, fake = _batch(2, (2,))
        penalty = GradientPenalty(weight=1.0).penalty(critic, real, fake, (label,))
        assert seen[0][0] is label
        expected = ((2 * math.sqrt(2) - 1) ** 2 + (3 * math.sqrt(2) - 1) ** 2) / 2
        assert penalty.item() == pytest.approx(expected, rel=1e-6)

    def test_flows_through_augmentation(self) -> None:
        """With the augmenter inside the scorer, the gradient is through it: aug(x) = 2x doubles it."""
        weight = torch.tensor([[0.3, 0.4]], dtype=torch.float64)  # ||w|| = 0.5
        critic = LinearCritic(weight)
        real, fake = _batch(4, (1, 2))
        penalty = GradientPenalty().penalty(lambda x: critic(2.0 * x), real, fake, ())
        assert penalty.item() == pytest.approx(0.0, abs=1e-10)  # ||2w|| = 1

    def test_does_not_touch_its_inputs(self) -> None:
        """Leaves real and fake without gradient or graph."""
        real, fake = torch.randn(2, 3), torch.randn(2, 3)
        GradientPenalty().penalty(LinearCritic(torch.ones(3)), real, fake, ())
        assert not real.requires_grad
        assert not fake.requires_grad

    def test_rejects_negative_weight(self) -> None:
        """A negative lambda is refused in attrs' words."""
        with pytest.raises(ValueError, match="'weight' must be >= 0"):
            GradientPenalty(weight=-1.0)


class TestLipschitzPenalty:
    @pytest.mark.parametrize(("norm", "expected"), [(0.5, 0.0), (1.0, 0.0), (2.0, 1.0), (3.0, 4.0)])
    def test_linear_critic_closed_form(self, norm: float, expected: float) -> None:
        """For D(x) = <w, x> the penalty is lambda * max(0, ||w|| - 1)^2: one-sided."""
        weight = torch.randn(1, 4, 4, dtype=torch.float64)
        weight = weight * (norm / weight.norm())
        real, fake = _batch()
        penalty = LipschitzPenalty(weight=3.0).penalty(LinearCritic(weight), real, fake, ())
        assert penalty.item() == pytest.approx(3.0 * expected, abs=1e-5)

    def test_one_lipschitz_network_has_zero_penalty(self) -> None:
        """A spectrally normalized ReLU network (1-Lipschitz) is never penalised."""
        critic = _mlp_critic()
        SpectralNorm(power_iterations=50).setup_critic(critic)
        critic(torch.randn(4, 2))  # power iteration converges in training mode
        critic.eval()
        penalty = LipschitzPenalty().penalty(critic, torch.randn(64, 2), torch.randn(64, 2), ())
        assert penalty.item() == 0.0


class TestDRAGAN:
    def test_linear_critic_closed_form(self) -> None:
        """The gradient of a linear critic is w everywhere: lambda * (||w|| - 1)^2."""
        weight = torch.tensor([[0.6, 0.8, 1.2]], dtype=torch.float64)
        real, fake = _batch(5, (1, 3))
        penalty = DRAGAN(weight=10.0).penalty(LinearCritic(weight), real, fake, ())
        assert penalty.item() == pytest.approx(10.0 * (weight.norm().item() - 1.0) ** 2, rel=1e-6)

    def test_perturbation_of_the_authors_code(self) -> None:
        """x_hat - x lies in [0, 0.5 * std(x)) element-wise, scaled by one a per sample."""
        real = torch.randn(32, 3, 4, 4, dtype=torch.float64) * 3.0
        torch.manual_seed(0)
        points = DRAGAN().perturb(real)
        delta = points - real
        assert (delta >= 0).all()
        assert (delta < 0.5 * real.std()).all()
        assert delta.flatten(1).max(dim=1).values.std() > 0  # per-sample scale differs

    def test_normal_noise_is_centred(self) -> None:
        """noise = 'normal' perturbs in both directions around the real points."""
        real = torch.zeros(256, 8, dtype=torch.float64).add_(torch.randn(256, 8).double())
        delta = DRAGAN(noise="normal").perturb(real) - real
        assert (delta < 0).any()
        assert (delta > 0).any()
        assert abs(delta.mean().item()) < 0.05

    def test_ignores_fake_data(self) -> None:
        """The penalty is taken near real data only: fake data does not change it."""
        critic = _mlp_critic()
        real, fake, far = torch.randn(8, 2), torch.randn(8, 2), torch.full((8, 2), 100.0)
        torch.manual_seed(3)
        a = DRAGAN().penalty(critic, real, fake, ())
        torch.manual_seed(3)
        b = DRAGAN().penalty(critic, real, far, ())
        assert a.item() == b.item()

    def test_rejects_unknown_noise(self) -> None:
        """Only 'uniform' and 'normal' perturbations exist."""
        with pytest.raises(ValueError, match="'noise' must be in"):
            DRAGAN(noise="laplace")  # type: ignore[arg-type]


class TestDrift:
    def test_closed_form(self) -> None:
        """epsilon * mean(D(x_real)^2)."""
        critic = LinearCritic(torch.tensor([1.0, 2.0]))
        real = torch.tensor([[1.0, 1.0], [0.0, -1.0]])  # scores 3 and -2
        penalty = Drift(epsilon=0.1).penalty(critic, real, real, ())
        assert penalty.item() == pytest.approx(0.1 * (9.0 + 4.0) / 2)

    def test_default_epsilon_is_progan(self) -> None:
        """epsilon defaults to 0.001 (Karras et al. 2018)."""
        assert Drift().epsilon == 0.001


class TestWeightClip:
    def test_every_weight_within_bounds_after_a_step(self) -> None:
        """After an optimizer step that pushes weights far out, clipping brings all back in."""
        critic = nn.Sequential(nn.Linear(2, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 1))
        clip = WeightClip(clip=0.01)
        clip.setup_critic(critic)
        opt = torch.optim.RMSprop(critic.parameters(), lr=0.5)
        for _ in range(3):
            opt.zero_grad()
            critic(torch.randn(8, 2)).mean().backward()
            opt.step()
            assert max(p.abs().max().item() for p in critic.parameters()) > 0.01
            clip.after_step(critic)
            for name, param in critic.named_parameters():
                assert param.abs().max().item() <= 0.01, name

    def test_setup_clips_the_fresh_critic(self) -> None:
        """The freshly built critic is clipped before its first update."""
        critic = nn.Linear(3, 1)
        with torch.no_grad():
            critic.weight.fill_(1.0)
        WeightClip(clip=0.05).setup_critic(critic)
        assert critic.weight.max().item() == pytest.approx(0.05)

    def test_is_a_pure_constraint(self) -> None:
        """No penalty."""
        assert (
            WeightClip().penalty(
                LinearCritic(torch.ones(2)), torch.ones(1, 2), torch.ones(1, 2), ()
            )
            is None
        )

    def test_rejects_non_positive_clip(self) -> None:
        """The bound must be positive."""
        with pytest.raises(ValueError, match="'clip' must be > 0"):
            WeightClip(clip=0.0)


class ConditionalConvCritic(nn.Module):
    """A conv critic with a class embedding (projection discriminator shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4 * 8 * 8, 1)
        self.embed = nn.Embedding(10, 4 * 8 * 8)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(1)
        return self.head(h).squeeze(1) + (self.embed(label) * h).sum(dim=1)


class TestSpectralNorm:
    def test_normalizes_every_conv_linear_and_embedding_layer(self) -> None:
        """Every supported layer is reparametrized; the critic still takes its extra inputs."""
        critic = ConditionalConvCritic()
        SpectralNorm().setup_critic(critic)
        for layer in (critic.features[0], critic.head, critic.embed):
            assert parametrize.is_parametrized(layer, "weight")
        scores = critic(torch.randn(2, 1, 8, 8), torch.tensor([3, 7]))
        assert scores.shape == (2,)

    def test_largest_singular_value_becomes_one(self) -> None:
        """After power iteration converges, sigma_max(W / sigma(W)) = 1 for every layer."""
        critic = _mlp_critic()
        with torch.no_grad():
            critic[2].weight.mul_(10.0)
        SpectralNorm(power_iterations=100).setup_critic(critic)
        critic(torch.randn(4, 2))
        critic.eval()
        for index in (0, 2, 4):
            sigma = torch.linalg.matrix_norm(critic[index].weight, ord=2)
            assert sigma.item() == pytest.approx(1.0, rel=1e-3)

    def test_gradient_penalty_through_spectral_norm(self) -> None:
        """A gradient penalty backpropagates through the reparametrization to the raw weights."""
        critic = _mlp_critic()
        SpectralNorm().setup_critic(critic)
        GradientPenalty().penalty(critic, torch.randn(8, 2), torch.randn(8, 2), ()).backward()
        original = critic[0].parametrizations.weight.original  # type: ignore[union-attr]
        assert original.grad is not None
        assert torch.isfinite(original.grad).all()

    def test_leaves_already_normalized_layers_alone(self) -> None:
        """A layer the critic normalises itself is not normalised twice."""
        critic = _mlp_critic()
        torch.nn.utils.parametrizations.spectral_norm(critic[0])
        SpectralNorm().setup_critic(critic)
        assert len(critic[0].parametrizations.weight) == 1  # type: ignore[union-attr, arg-type]

    def test_critic_without_layers_is_an_error(self) -> None:
        """A critic with nothing to normalise is refused, naming it."""

        class NoLayers(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x.sum(dim=1)

        with pytest.raises(ValueError, match="spectral-norm: critic NoLayers has no Linear"):
            SpectralNorm().setup_critic(NoLayers())


class RepeatedPatches(nn.Module):
    """A patch critic: the score <w, x> repeated on an h x w grid, [N, 1, h, w]."""

    def __init__(self, weight: torch.Tensor, side: int) -> None:
        super().__init__()
        self.scalar = LinearCritic(weight)
        self.side = side

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        score = self.scalar(x)
        return score[:, None, None, None].expand(-1, 1, self.side, self.side)


PENALTIES = {
    "wgan-gp": GradientPenalty(weight=3.0, target=0.5),
    "wgan-lp": LipschitzPenalty(weight=3.0, target=0.5),
    "dragan": DRAGAN(weight=3.0, target=0.5),
}


class TestPatchCriticConvention:
    """Every gradient penalty takes a sample's score as the mean of its patch scores, in the
    input's dtype."""

    @pytest.mark.parametrize("name", sorted(PENALTIES))
    def test_penalty_does_not_depend_on_the_number_of_patches(self, name: str) -> None:
        """A critic repeating one score on 2x2 or 8x8 patches has the one-score penalty."""
        weight = torch.full((1, 4, 4), 0.25, dtype=torch.float64)  # ||w|| = 1
        real, fake = _batch(3)
        torch.manual_seed(0)
        single = PENALTIES[name].penalty(LinearCritic(weight), real, fake, ())
        # (||w|| - target)^2 * weight = 0.25 * 3 for the two-sided, and for the one-sided
        assert single.item() == pytest.approx(0.75, rel=1e-12)
        for side in (2, 8):
            torch.manual_seed(0)
            patches = PENALTIES[name].penalty(RepeatedPatches(weight, side), real, fake, ())
            assert patches.item() == pytest.approx(single.item(), rel=1e-12)

    @pytest.mark.parametrize("name", sorted(PENALTIES))
    def test_float64_stays_float64(self, name: str) -> None:
        """float64 inputs give float64 gradient norms and a float64 penalty."""
        weight = torch.full((1, 4, 4), 1.0 / 3.0, dtype=torch.float64)  # ||w|| = 4/3
        real, fake = _batch(3)
        norms = gradient_norms(RepeatedPatches(weight, 2), real, ())
        assert norms.dtype == torch.float64
        torch.testing.assert_close(norms, torch.full((3,), 4 / 3, dtype=torch.float64))
        penalty = PENALTIES[name].penalty(LinearCritic(weight), real, fake, ())
        assert penalty.dtype == torch.float64
        assert penalty.item() == pytest.approx(3.0 * (4 / 3 - 0.5) ** 2, rel=1e-15)

    def test_drift_keeps_float64(self) -> None:
        """The drift penalty of float64 scores is float64."""
        real, _ = _batch(3)
        penalty = Drift(epsilon=1.0).penalty(lambda x: x.flatten(1).sum(1) / 3, real, real, ())
        assert penalty.dtype == torch.float64
        expected = (real.flatten(1).sum(1) / 3).square().mean().item()
        assert penalty.item() == pytest.approx(expected, rel=1e-15)
