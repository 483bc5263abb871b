"""A warning line when FID or KID is computed on fewer samples than makes sense: FID (Inception)
below 10,000, KID below 1,000; none at or above; once per metric and count."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import torch
from einops import rearrange
from torch import nn

from gancore.metrics import FIDMetric, KIDMetric, components


class _StandIn(nn.Module):
    """Calls itself inception-v3 (the FID papers' extractor) but is the identity on 4x4 images:
    features are the 16 pixels, so 10,000 samples take a moment, not minutes."""

    name = "inception-v3"
    input_size = 4
    resize_filter = "bilinear"
    weights_sha256 = "stand-in"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return rearrange(images, "n 1 h w -> n (h w)")


class _Dataset:
    def __init__(self, size: int) -> None:
        self.size = size
        self.shapes = {"x": (1, 4, 4)}

    def __len__(self) -> int:
        return self.size


class _Context:
    """Seeded uniform noise as both the generated and the real images."""

    def __init__(self, size: int) -> None:
        self.dataset = _Dataset(size)
        self.device = torch.device("cpu")

    @staticmethod
    def _noise(num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, num, batch_size):
            size = min(batch_size, num - start)
            yield torch.rand(size, 1, 4, 4, generator=generator) * 2 - 1

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        return self._noise(num, batch_size, seed)

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        return self._noise(num, batch_size, seed + 1)


@pytest.fixture(autouse=True)
def _stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Metrics load the stand-in, and no warning has been given yet in this process."""
    monkeypatch.setattr(components, "build_extractor", lambda *args, **kwargs: _StandIn())
    monkeypatch.setattr(components, "_WARNED", set())


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gancore.metrics"]


class TestFIDWarning:
    def test_below_10000(self, caplog: pytest.LogCaptureFixture) -> None:
        """2,000 samples: one line naming the metric, the count and the recommendation; the same
        evaluation again adds none."""
        metric = FIDMetric(num_generated=2000, batch_size=1000, cache_reference=False)
        with caplog.at_level(logging.WARNING, logger="gancore.metrics"):
            metric.evaluate(_Context(5000))
            metric.evaluate(_Context(5000))
        assert _lines(caplog) == [
            "fid: computed on 2,000 samples (min of num_generated and num_real), fewer than "
            "10,000: FID is biased upwards at small N, so this value is higher than a "
            "50,000-sample one and comparable only with values at the same N; papers use "
            "50,000 (num_generated = 50000)"
        ]

    def test_counts_the_smaller_side(self, caplog: pytest.LogCaptureFixture) -> None:
        """Enough generated samples but a dataset of 3,000 images: 3,000 is the count."""
        metric = FIDMetric(num_generated=10_000, batch_size=2500, cache_reference=False)
        with caplog.at_level(logging.WARNING, logger="gancore.metrics"):
            metric.evaluate(_Context(3000))
        assert len(_lines(caplog)) == 1
        assert _lines(caplog)[0].startswith("fid: computed on 3,000 samples")

    def test_none_at_10000(self, caplog: pytest.LogCaptureFixture) -> None:
        """Exactly 10,000 on both sides: no warning."""
        metric = FIDMetric(num_generated=10_000, batch_size=2500, cache_reference=False)
        with caplog.at_level(logging.WARNING, logger="gancore.metrics"):
            metric.evaluate(_Context(20_000))
        assert _lines(caplog) == []

    def test_none_for_other_extractors(self, caplog: pytest.LogCaptureFixture) -> None:
        """fd-<x> values are not compared with papers: no warning at small N."""
        other = _StandIn()
        other.name = "digits-classifier"  # type: ignore[assignment]
        metric = FIDMetric(num_generated=200, batch_size=200, cache_reference=False)
        with caplog.at_level(logging.WARNING, logger="gancore.metrics"):
            metric._warn_if_few(200, 200, other)
        assert _lines(caplog) == []


class TestKIDWarning:
    def test_below_1000(self, caplog: pytest.LogCaptureFixture) -> None:
        """999 samples: one line saying kid_std is about 0."""
        metric = KIDMetric(num_generated=999, batch_size=999, num_subsets=3, cache_reference=False)
        with caplog.at_level(logging.WARNING, logger="gancore.metrics"):
            result = metric.evaluate(_Context(5000))
        assert result["protocol"]["subset_size"] == 999
        assert _lines(caplog) == [
            "kid: computed on 999 samples (min of num_generated and num_real), fewer than "
            "1,000: its subsets of min(n, subset_size) samples then hold (nearly) every sample, "
            "so kid_std is about 0 and says nothing about the spread; use at least 1,000 "
            "samples on each side"
        ]

    def test_none_at_1000(self, caplog: pytest.LogCaptureFixture) -> None:
        """1,000 samples: no KID warning (FID's threshold does not apply to KID)."""
        metric = KIDMetric(
            num_generated=1000, batch_size=1000, num_subsets=3, cache_reference=False
        )
        with caplog.at_level(logging.WARNING, logger="gancore.metrics"):
            metric.evaluate(_Context(5000))
        assert _lines(caplog) == []
