"""Agreement with peers: torchmetrics' FID and KID fed the same features (and, for FID, the same
images through the same network), and prdc's precision, recall, density and coverage.

torchmetrics accepts any ``nn.Module`` as ``feature``: it calls it on whatever ``update`` receives,
and reads the feature dimension from a ``num_features`` attribute. An identity module therefore lets
it score features we choose, through its own accumulation and its own compute.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gancore.metrics import FIDMetric, build_extractor, quantize_8bit
from gancore.metrics.extractors import load_digits_split
from gancore.metrics.math import (
    FeatureStats,
    density_coverage,
    frechet_distance,
    kernel_inception_distance,
    mmd2_unbiased,
    precision_recall,
)

# torchmetrics warns at construction that KID keeps every feature in memory (which is the point
# here); the warning is about its design, not about our use.
KID_MEMORY_WARNING = "ignore:Metric `Kernel Inception Distance` will save all:UserWarning"


class _Identity(nn.Module):
    """Returns its input: the 'extractor' for features that are already computed."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _features(seed: int, n: int, d: int, shift: float) -> torch.Tensor:
    """Correlated, non-centred Gaussian features, float64."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=generator, dtype=torch.float64) / d**0.5
    noise = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return noise @ mixing + shift


class TestFrechetDistanceParity:
    def test_matches_torchmetrics_fid(self) -> None:
        """Streaming stats + frechet_distance equal torchmetrics' FID to relative 1e-6."""
        d = 64
        real, fake = _features(0, 600, d, 0.5), _features(1, 500, d, 0.0)
        reference = FrechetInceptionDistance(feature=_Identity(d))
        ours_real, ours_fake = FeatureStats(), FeatureStats()
        for start in range(0, 600, 128):
            reference.update(real[start : start + 128], real=True)
            ours_real.update(real[start : start + 128])
        for start in range(0, 500, 128):
            reference.update(fake[start : start + 128], real=False)
            ours_fake.update(fake[start : start + 128])
        expected = float(reference.compute())
        ours = frechet_distance(
            ours_real.mean(), ours_real.covariance(), ours_fake.mean(), ours_fake.covariance()
        )
        assert expected > 1.0
        assert ours == pytest.approx(expected, rel=1e-6)


@pytest.mark.filterwarnings(KID_MEMORY_WARNING)
class TestKernelDistanceParity:
    def test_matches_torchmetrics_kid_subsets(self) -> None:
        """Given torchmetrics' own subsets, the mean and std of mmd2_unbiased equal its KID.

        torchmetrics draws each subset with ``torch.randperm(n_real)`` then
        ``torch.randperm(n_fake)`` from the global generator; the same seed replays them.
        """
        d, subsets, size = 32, 6, 80
        real, fake = _features(2, 300, d, 0.2), _features(3, 250, d, 0.0)
        reference = KernelInceptionDistance(feature=_Identity(d), subsets=subsets, subset_size=size)
        reference.update(real, real=True)
        reference.update(fake, real=False)
        torch.manual_seed(1234)
        expected_mean, expected_std = (float(v) for v in reference.compute())
        torch.manual_seed(1234)
        values = []
        for _ in range(subsets):
            rows_real = torch.randperm(300)[:size]
            rows_fake = torch.randperm(250)[:size]
            values.append(mmd2_unbiased(real[rows_real], fake[rows_fake]))
        assert np.mean(values) == pytest.approx(expected_mean, rel=1e-6)
        assert np.std(values) == pytest.approx(expected_std, rel=1e-6)

    def test_matches_torchmetrics_kid_whole_sets(self) -> None:
        """With subsets as large as the sets (order does not matter) the values are equal."""
        d = 16
        real, fake = _features(4, 200, d, 0.3), _features(5, 200, d, 0.0)
        reference = KernelInceptionDistance(feature=_Identity(d), subsets=1, subset_size=200)
        reference.update(real, real=True)
        reference.update(fake, real=False)
        expected = float(reference.compute()[0])
        ours = kernel_inception_distance(real, fake, num_subsets=1, subset_size=200).mean
        assert ours == pytest.approx(expected, rel=1e-6)


class _DigitsFeatures(nn.Module):
    """The bundled digits classifier as torchmetrics' feature module (float64 output, so that
    torchmetrics returns its value in float64)."""

    num_features = 128

    def __init__(self) -> None:
        super().__init__()
        self.net = build_extractor("digits-classifier")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).double()


class _Stream:
    """A MetricContext serving fixed generated and real images in order."""

    def __init__(self, generated: torch.Tensor, real: torch.Tensor) -> None:
        self.generated, self.images = generated, real
        self.dataset = [{"x": image} for image in real]
        self.device = torch.device("cpu")

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        return iter(self.generated[:num].split(batch_size))

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        return iter(self.images[:num].split(batch_size))


class TestFIDComponentParity:
    def test_fid_metric_matches_torchmetrics_on_images(self) -> None:
        """The whole `fid` component (8-bit rounding, digits-classifier features, streaming
        statistics, Fréchet distance) equals torchmetrics' FID fed the same rounded images
        through the same network, to relative 1e-6."""
        train, _, test, _ = load_digits_split()
        real, fake = test[:300], train[:300]
        ours = FIDMetric(extractor="digits-classifier", num_generated=300, batch_size=64).evaluate(
            _Stream(fake, real)
        )["fd-digits"]
        reference = FrechetInceptionDistance(feature=_DigitsFeatures())
        for start in range(0, 300, 100):
            reference.update(quantize_8bit(real[start : start + 100]), real=True)
            reference.update(quantize_8bit(fake[start : start + 100]), real=False)
        expected = float(reference.compute())
        assert expected > 0.1
        assert ours == pytest.approx(expected, rel=1e-6)


class TestPrdcParity:
    """Agreement with ``prdc``, the reference code of Naeem et al. 2020 (density and coverage),
    whose precision and recall follow Kynkäänniemi et al. 2019. prdc counts a point inside a ball
    when its distance is strictly below the radius, gancore when it is not above; with continuous
    random features no distance equals a radius, so the fractions are identical."""

    @pytest.fixture
    def features(self) -> tuple[np.ndarray, np.ndarray]:
        real = _features(6, 300, 16, 0.0).numpy()
        fake = _features(7, 250, 16, 0.3).numpy()
        return real, fake

    def test_precision_recall(self, features: tuple[np.ndarray, np.ndarray]) -> None:
        """Precision and recall with k = 3 equal prdc's exactly."""
        prdc = pytest.importorskip("prdc")
        real, fake = features
        with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
            expected = prdc.compute_prdc(real, fake, nearest_k=3)
        ours = precision_recall(real, fake, k=3)
        assert 0.05 < ours.precision < 0.95 and 0.05 < ours.recall < 0.95
        assert (ours.precision, ours.recall) == (expected["precision"], expected["recall"])

    def test_density_coverage(self, features: tuple[np.ndarray, np.ndarray]) -> None:
        """Density and coverage with k = 5 equal prdc's (density to relative 1e-12)."""
        prdc = pytest.importorskip("prdc")
        real, fake = features
        with contextlib.redirect_stdout(io.StringIO()):
            expected = prdc.compute_prdc(real, fake, nearest_k=5)
        ours = density_coverage(real, fake, k=5)
        assert 0.05 < ours.coverage < 0.95
        assert ours.coverage == expected["coverage"]
        assert ours.density == pytest.approx(expected["density"], rel=1e-12)
