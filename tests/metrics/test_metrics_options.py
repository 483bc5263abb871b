"""Options documented as not changing a metric's result do not change it, on the loop's own
metric context (real generation, seeded inputs), for every built-in metric."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from gancore._task import Unconditional
from gancore.builtin.datasets import DigitsOptions, Toy2dOptions, build_digits, build_toy2d
from gancore.builtin.mode_coverage import ModeCoverageMetric
from gancore.metrics import (
    DensityCoverageMetric,
    FIDMetric,
    ISMetric,
    KIDMetric,
    PrecisionRecallMetric,
)
from gancore.metrics.loop import SEED_BLOCK, LoopMetricContext


class _Images(nn.Module):
    """A fixed random map from 4-d latents to 8x8 images in [-1, 1]."""

    latent_dim = 4

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 64)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(3 * self.linear(z)).view(-1, 1, 8, 8)


class _Points(nn.Module):
    """Latents to 2-D points that land near some modes of the ring and off the others."""

    latent_dim = 4

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(4 * z[:, :2]) + 0.003 * z[:, 2:]


def _images_context() -> LoopMetricContext:
    digits = build_digits(DigitsOptions(resolution=8, limit=150), None)
    return LoopMetricContext(Unconditional(), {"generator": _Images()}, digits, torch.device("cpu"))


def _points_context() -> LoopMetricContext:
    ring = build_toy2d(Toy2dOptions(mixture="ring", size=100), None)
    return LoopMetricContext(Unconditional(), {"generator": _Points()}, ring, torch.device("cpu"))


def _assert_same(first: dict[str, Any], second: dict[str, Any], rel: float = 1e-9) -> None:
    assert first.keys() == second.keys()
    for key, value in first.items():
        if isinstance(value, float):
            assert value == pytest.approx(second[key], rel=rel, abs=1e-12), key
        else:
            assert value == second[key], key


FEATURE_METRICS = {
    "fid": FIDMetric,
    "kid": KIDMetric,
    "is": ISMetric,
    "precision-recall": PrecisionRecallMetric,
    "density-coverage": DensityCoverageMetric,
}
EXTRA = {"kid": {"num_subsets": 5, "subset_size": 50}, "is": {"splits": 3}}


class TestResultDoesNotDependOnMemoryOptions:
    """batch_size and cache_reference change memory and time, never a value or a protocol."""

    @pytest.mark.parametrize("name", sorted(FEATURE_METRICS))
    def test_batch_size(self, name: str) -> None:
        """A feature metric gives equal values and protocols with batch sizes 7 and 130."""
        make = FEATURE_METRICS[name]
        options = {"extractor": "digits-classifier", "num_generated": 137, **EXTRA.get(name, {})}
        context = _images_context()
        small = make(**options, batch_size=7).evaluate(context)  # type: ignore[arg-type]
        large = make(**options, batch_size=130).evaluate(context)  # type: ignore[arg-type]
        # IS moves by float32 rounding of the classifier's logits with the batch size (3e-9
        # relative on the score, 1e-7 on its std, seen with a fresh venv); the others stay at 1e-9.
        _assert_same(small, large, rel=1e-6 if name == "is" else 1e-9)

    @pytest.mark.parametrize("name", sorted(FEATURE_METRICS))
    def test_cache_reference(self, name: str) -> None:
        """A feature metric gives equal values with the reference cache on (hit) and off."""
        make = FEATURE_METRICS[name]
        options = {"extractor": "digits-classifier", "num_generated": 60, **EXTRA.get(name, {})}
        context = _images_context()
        make(**options).evaluate(context)  # type: ignore[arg-type]  # fills the cache
        cached = make(**options).evaluate(context)  # type: ignore[arg-type]
        fresh = make(**options, cache_reference=False).evaluate(context)  # type: ignore[arg-type]
        _assert_same(cached, fresh)

    def test_mode_coverage_batch_size(self) -> None:
        """mode-coverage gives equal values and protocols with batch sizes 1, 64 and 500."""
        context = _points_context()
        results = [
            ModeCoverageMetric(num_samples=250, batch_size=b).evaluate(context)
            for b in (1, 64, 500)
        ]
        assert 0 < results[0]["modes_covered"] < 8  # a result that a changed sample would move
        _assert_same(results[0], results[1])
        _assert_same(results[0], results[2])


class TestSeedBlocks:
    """Generated inputs come in seed blocks, so a sample is fixed by its index and the seed."""

    def test_prefix(self) -> None:
        """The first samples of a longer draw are the samples of a shorter one, in any batches."""
        context = _points_context()
        short = torch.cat(list(context.generate(SEED_BLOCK + 3, 9, seed=5)))
        long = torch.cat(list(context.generate(3 * SEED_BLOCK, 1000, seed=5)))
        assert torch.equal(short, long[: SEED_BLOCK + 3])
        other = torch.cat(list(context.generate(SEED_BLOCK + 3, 9, seed=6)))
        assert not torch.equal(short, other)


class TestModeCoverageProtocol:
    """mode-coverage's protocol names the mixture exactly."""

    def test_modes_hash(self) -> None:
        """Two rings with the same mode count and std but another radius differ in modes_sha256."""
        unit = build_toy2d(Toy2dOptions(mixture="ring", size=10), None)
        wide = build_toy2d(Toy2dOptions(mixture="ring", size=10, radius=2.0), None)
        protocols = [
            ModeCoverageMetric(num_samples=20).evaluate(
                LoopMetricContext(Unconditional(), {"generator": _Points()}, d, cpu)
            )["protocol"]
            for d, cpu in ((unit, torch.device("cpu")), (wide, torch.device("cpu")))
        ]
        assert protocols[0]["num_modes"] == protocols[1]["num_modes"] == 8
        assert protocols[0]["mode_std"] == protocols[1]["mode_std"]
        assert protocols[0]["modes_sha256"] != protocols[1]["modes_sha256"]
        assert len(protocols[0]["modes_sha256"]) == 64
