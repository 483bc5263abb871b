"""Each component passes gancore's conformance check for its kind, and its known answers."""

from __future__ import annotations

import math

import pytest
import torch
from gan_example.augmenters import AdaptiveNoise, AdaptiveNoiseOptions
from gan_example.extractors import NO_WEIGHTS_SHA256
from gan_example.losses import SmoothedNonSaturating
from gan_example.metrics import sliced_wasserstein
from gan_example.regularizers import R2
from gan_example.tasks import pack

import gancore.testing as gt


class TestNetworks:
    @pytest.mark.parametrize("data_shape", [(2,), (1, 8, 8)])
    def test_conform(self, data_shape: tuple[int, ...]) -> None:
        """Generator and critic conform for vectors and images."""
        generator = gt.check_generator("residual-mlp", {"latent_dim": 3}, data_shape=data_shape)
        assert generator.latent_dim == 3
        gt.check_critic("residual-mlp", {"blocks": 0}, data_shape=data_shape)


class TestSmoothedNonSaturating:
    def test_conforms(self) -> None:
        """The loss contract holds."""
        gt.check_loss("smoothed-non-saturating")

    def test_zero_scores_cost_two_log_two(self) -> None:
        """At D = 0 each binary cross-entropy is log 2, whatever the target."""
        loss = SmoothedNonSaturating(real_target=0.8)
        zeros = torch.zeros(5)
        assert float(loss.critic_loss(zeros, zeros)) == pytest.approx(2 * math.log(2))
        assert float(loss.generator_loss(zeros)) == pytest.approx(math.log(2))


class TestR2:
    def test_conforms(self) -> None:
        """The regularizer contract holds, for vectors and images."""
        gt.check_regularizer("r2")
        gt.check_regularizer("r2", data_shape=(1, 4, 4))

    def test_linear_critic_penalty_is_gamma_half_weight_norm(self) -> None:
        """For D(x) = w . x + b the gradient is w everywhere: the penalty is gamma/2 ||w||^2."""
        w = torch.tensor([3.0, 4.0])
        critic = lambda x: x @ w + 1.0  # noqa: E731
        penalty = R2(gamma=2.0).penalty(critic, torch.zeros(4, 2), torch.randn(4, 2), ())
        assert float(penalty) == pytest.approx(25.0)


class TestAdaptiveNoise:
    def test_conforms(self) -> None:
        """The augmenter contract holds."""
        gt.check_augmenter("adaptive-noise")

    def test_std_follows_the_overfitting_heuristic(self) -> None:
        """Above the target the std grows by max_std * images / adjust_images; below it shrinks,
        clamped at 0."""
        noise = AdaptiveNoise(AdaptiveNoiseOptions(max_std=0.5, adjust_images=1000))
        noise.feedback(0.9, 100)
        noise.feedback(0.9, 100)
        assert float(noise.std) == pytest.approx(0.1)
        noise.feedback(0.1, 300)
        assert float(noise.std) == 0.0
        assert torch.equal(noise(torch.ones(2, 3)), torch.ones(2, 3))  # std 0: identity


class TestTwoMoons:
    def test_conforms_and_is_seeded(self) -> None:
        """The dataset contract holds (get_batch included); the seed fixes the points."""
        dataset = gt.check_dataset("two-moons", {"size": 100})
        again = gt.check_dataset("two-moons", {"size": 100})
        assert torch.equal(dataset.points, again.points)

    def test_noiseless_points_lie_on_the_two_half_circles(self) -> None:
        """Without noise, each half lies at distance 1 from its circle's centre."""
        dataset = gt.check_dataset("two-moons", {"size": 10, "noise": 0.0})
        points = dataset.points * 1.5 + torch.tensor([0.5, 0.25])
        upper = torch.linalg.vector_norm(points[:5], dim=1)
        lower = torch.linalg.vector_norm(points[5:] - torch.tensor([1.0, 0.5]), dim=1)
        assert torch.allclose(upper, torch.ones(5))
        assert torch.allclose(lower, torch.ones(5))


class TestPacking:
    def test_consecutive_samples_share_a_pack(self) -> None:
        """Packs of 2 put samples 0 and 1 side by side along channels."""
        x = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 1, 2, 2)
        packed = pack(x, 2)
        assert packed.shape == (2, 2, 2, 2)
        assert packed[0, :, 0, 0].tolist() == [0.0, 1.0]
        assert packed[1, :, 0, 0].tolist() == [2.0, 3.0]
        assert pack(torch.ones(6, 2), 3).shape == (2, 6)

    def test_indivisible_batch_is_a_clear_error(self) -> None:
        """A batch that packs do not divide says what to change."""
        with pytest.raises(ValueError, match=r"make training\.batch_size a multiple of 3"):
            pack(torch.ones(4, 2), 3)


class TestSlicedWasserstein:
    def test_conforms(self) -> None:
        """The metric contract holds on a fake context."""
        result = gt.check_metric("sliced-wasserstein", {"num_samples": 64, "num_projections": 8})
        assert result["sliced-wasserstein"] > 0

    def test_known_answers(self) -> None:
        """Zero for identical sets; for a shift c in d dimensions, sqrt(E[(theta . c)^2]) =
        |c| / sqrt(d) over uniform unit directions (here 2000 of them)."""
        points = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
        assert sliced_wasserstein(points, points, 16, 0) == 0.0
        shifted = points + torch.tensor([3.0, 4.0])
        assert sliced_wasserstein(shifted, points, 2000, 0) == pytest.approx(
            5 / math.sqrt(2), rel=0.03
        )


class TestPixels:
    def test_conforms(self) -> None:
        """The extractor contract holds; it states the hash of no weights."""
        extractor = gt.check_extractor("pixels", {"size": 4})
        assert extractor.weights_sha256 == NO_WEIGHTS_SHA256

    def test_features_are_block_means(self) -> None:
        """A 4x4 image downsampled to 2x2 gives the means of its four 2x2 blocks."""
        image = torch.arange(16.0).reshape(1, 1, 4, 4)
        extractor = gt.check_extractor("pixels", {"size": 2})
        assert extractor(image).tolist() == [[2.5, 4.5, 10.5, 12.5]]
