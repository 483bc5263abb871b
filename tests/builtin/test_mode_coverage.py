"""Tests of the mode-coverage function and metric (VEEGAN / PacGAN protocol)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping

import numpy as np
import pytest
import torch

from gancore.builtin.datasets import Toy2dOptions, build_toy2d
from gancore.builtin.mode_coverage import ModeCoverageMetric, mode_coverage
from gancore.protocols import Dataset, Metric

RING = torch.tensor(
    [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)],
    dtype=torch.float64,
)


class TestModeCoverage:
    def test_samples_at_every_mode(self) -> None:
        """Samples exactly at every mode cover all of them, all high quality, KL zero."""
        result = mode_coverage(RING.repeat(5, 1), RING, std=0.01)
        assert result.modes_covered == 8
        assert result.num_modes == 8
        assert result.high_quality == 100.0
        assert result.kl == 0.0
        assert result.num_samples == 40
        assert result.mode_counts == (5,) * 8

    def test_one_mode(self) -> None:
        """Samples all on one mode of eight cover one mode with KL log 8."""
        samples = RING[3].repeat(10, 1) + 0.005
        result = mode_coverage(samples, RING, std=0.01)
        assert result.modes_covered == 1
        assert result.high_quality == 100.0
        assert result.kl == pytest.approx(math.log(8), abs=1e-12)
        assert result.mode_counts == (0, 0, 0, 10, 0, 0, 0, 0)

    def test_far_away(self) -> None:
        """Samples far from every mode are never high quality and leave KL undefined (NaN)."""
        result = mode_coverage(torch.full((6, 2), 100.0), RING, std=0.01)
        assert result.modes_covered == 0
        assert result.high_quality == 0.0
        assert math.isnan(result.kl)
        assert result.mode_counts == (0,) * 8

    def test_mixed_case(self) -> None:
        """A hand-computed mix of near, borderline-outside and far samples scores as derived."""
        # std 0.1, threshold 3: high quality within 0.3 of the nearest mode.
        samples = torch.stack(
            [
                RING[0] + torch.tensor([0.1, 0.0], dtype=torch.float64),
                RING[0] + torch.tensor([0.0, -0.2], dtype=torch.float64),
                RING[0],
                RING[2] + torch.tensor([0.0, 0.29], dtype=torch.float64),
                RING[4] + torch.tensor([0.31, 0.0], dtype=torch.float64),  # 0.31 > 0.3
                torch.zeros(2, dtype=torch.float64),  # distance 1 to every mode
            ]
        )
        result = mode_coverage(samples, RING, std=0.1, threshold=3.0)
        assert result.mode_counts == (3, 0, 1, 0, 0, 0, 0, 0)
        assert result.modes_covered == 2
        assert result.high_quality == pytest.approx(100.0 * 4 / 6, abs=1e-12)
        expected_kl = 0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8)
        assert result.kl == pytest.approx(expected_kl, abs=1e-12)
        assert result.num_samples == 6

    def test_boundary_is_inclusive(self) -> None:
        """A sample at exactly threshold * std counts as high quality; one just beyond does not."""
        modes = np.array([[0.0, 0.0], [10.0, 0.0]])
        samples = np.array([[1.0, 0.0], [0.0, 1.0 + 1e-9]])
        result = mode_coverage(samples, modes, std=0.5, threshold=2.0)
        assert result.mode_counts == (1, 0)
        assert result.high_quality == 50.0

    def test_non_finite_samples(self) -> None:
        """NaN and infinite samples are counted but never high quality."""
        samples = torch.tensor([[math.nan, 0.0], [math.inf, 1.0], [1.0, 0.0]])
        result = mode_coverage(samples, RING, std=0.01)
        assert result.num_samples == 3
        assert result.mode_counts == (1, 0, 0, 0, 0, 0, 0, 0)

    def test_float32_numpy_input(self) -> None:
        """float32 numpy samples give the same result as float64 tensors."""
        samples = (RING.repeat(3, 1) + 0.001).numpy().astype(np.float32)
        assert mode_coverage(samples, RING, 0.01) == mode_coverage(
            torch.from_numpy(samples).double(), RING, 0.01
        )

    def test_dimension_mismatch(self) -> None:
        """Samples and modes of different dimension are rejected with both shapes."""
        with pytest.raises(ValueError, match="mode_coverage") as exc:
            mode_coverage(torch.zeros(4, 3), RING, std=0.01)
        assert str(exc.value) == (
            "mode_coverage: samples [N, D] and modes [M, D] must have the same D "
            "(got samples [4, 3], modes [8, 2])"
        )

    def test_bad_shapes_and_std(self) -> None:
        """Empty or one-dimensional samples and non-positive std are rejected."""
        with pytest.raises(ValueError, match="mode_coverage") as exc:
            mode_coverage(torch.zeros(0, 2), RING, std=0.01)
        assert str(exc.value) == (
            "mode_coverage: samples must have shape [N, D] with at least one row (got [0, 2])"
        )
        with pytest.raises(ValueError, match="mode_coverage") as exc:
            mode_coverage(torch.zeros(2, 2), RING, std=0.0)
        assert str(exc.value) == "mode_coverage: 'std' must be a positive number (got 0.0)"


class _Data:
    def __init__(self, modes: torch.Tensor | None, mode_std: float | None) -> None:
        self.modes = modes
        self.mode_std = mode_std
        self.shapes: Mapping[str, tuple[int, ...]] = {"x": (2,)}

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": torch.zeros(2)}


class _Context:
    """A metric context whose generator yields fixed points, recording its calls."""

    def __init__(self, dataset: Dataset, points: torch.Tensor) -> None:
        self.dataset = dataset
        self.device = torch.device("cpu")
        self.points = points
        self.calls: list[tuple[int, int, int]] = []

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        self.calls.append((num, batch_size, seed))
        for start in range(0, num, batch_size):
            yield self.points[start : min(start + batch_size, num)].float()

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        raise AssertionError("the metric uses generated samples only")


class TestModeCoverageMetric:
    def test_defaults(self) -> None:
        """Defaults follow the VEEGAN / PacGAN protocol: 2,500 samples, 3 std."""
        metric = ModeCoverageMetric()
        assert (metric.num_samples, metric.threshold, metric.seed) == (2500, 3.0, 0)
        assert isinstance(metric, Metric)

    def test_evaluate(self) -> None:
        """Evaluate scores the generated points and reports the protocol with the values."""
        points = torch.cat([RING[:6].repeat(2, 1), torch.full((3, 2), 50.0, dtype=torch.float64)])
        context = _Context(_Data(RING, 0.01), points)
        metric = ModeCoverageMetric(num_samples=15, threshold=3, seed=7, batch_size=4)
        result = metric.evaluate(context)
        assert context.calls == [(15, 4, 7)]
        assert result == {
            "modes_covered": 6,
            "num_modes": 8,
            "high_quality_percent": pytest.approx(80.0, abs=1e-12),
            "kl_uniform": pytest.approx(math.log(8 / 6), abs=1e-12),
            "num_samples": 15,
            "seed": 7,
            "threshold_std": 3.0,
            "protocol": {
                "metric": "mode-coverage",
                "num_samples": 15,
                "seed": 7,
                "threshold_std": 3.0,
                "num_modes": 8,
                "mode_std": 0.01,
                "modes_sha256": hashlib.sha256(RING.numpy().tobytes()).hexdigest(),
            },
        }

    def test_evaluate_on_toy2d(self) -> None:
        """Real toy2d ring points, used as generated samples, cover all 8 modes."""
        dataset = build_toy2d(Toy2dOptions(mixture="ring", size=2500, seed=1), None)
        context = _Context(dataset, dataset.points)
        result = ModeCoverageMetric().evaluate(context)
        assert result["modes_covered"] == 8
        # P(||z|| <= 3) for a 2-D standard normal is 1 - exp(-4.5) = 98.89%.
        assert result["high_quality_percent"] == pytest.approx(98.89, abs=0.7)

    def test_dataset_without_modes(self) -> None:
        """A dataset without modes is rejected with a message naming the metric."""
        context = _Context(_Data(None, None), torch.zeros(4, 2))
        with pytest.raises(ValueError, match="mode-coverage") as exc:
            ModeCoverageMetric(num_samples=4).evaluate(context)
        assert str(exc.value) == (
            "mode-coverage: dataset _Data has no 'modes' and 'mode_std'; use a toy2d mixture "
            "other than 'swissroll' or an npz that stores them"
        )

    def test_wrong_sample_shape(self) -> None:
        """Generated samples of the wrong shape are rejected with got and expected."""
        context = _Context(_Data(RING, 0.01), torch.zeros(4, 3))
        with pytest.raises(ValueError, match="mode-coverage") as exc:
            ModeCoverageMetric(num_samples=4).evaluate(context)
        assert str(exc.value) == (
            "mode-coverage: expected 4 generated samples of shape [4, 2] (got [4, 3])"
        )

    def test_invalid_options(self) -> None:
        """Non-positive sample counts and thresholds are rejected in attrs' voice."""
        with pytest.raises(ValueError, match=r"'num_samples' must be >= 1"):
            ModeCoverageMetric(num_samples=0)
        with pytest.raises(ValueError, match=r"'threshold' must be > 0\.0"):
            ModeCoverageMetric(threshold=0.0)
