"""Tests of the mode-coverage function and metric (VEEGAN / PacGAN protocol)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping

import numpy as np
import pytest
import torch

from gancore.builtin.datasets import Toy2dOptions, build_toy2d
from gancore.builtin.mode_coverage import (
    ModeCoverageMetric,
    mode_coverage,
    mode_weights_or_uniform,
)
from gancore.protocols import Dataset, Metric

RING = torch.tensor(
    [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)],
    dtype=torch.float64,
)
LINE = torch.tensor([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]], dtype=torch.float64)
UNIFORM_8_SHA256 = hashlib.sha256(torch.full((8,), 1 / 8, dtype=torch.float64).numpy().tobytes())


def _on_modes(modes: torch.Tensor, counts: tuple[int, ...]) -> torch.Tensor:
    """``counts[i]`` samples exactly at mode ``i``, in mode order."""
    return torch.cat([modes[i].repeat(n, 1) for i, n in enumerate(counts)])


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
        assert result.kl_weights == 0.0
        assert result.min_samples == 1

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


class TestMinSamples:
    def test_covered_needs_min_samples(self) -> None:
        """With counts (3, 0, 1, 0, ...) one, two or no modes are covered as min_samples grows."""
        samples = _on_modes(RING, (3, 0, 1))
        covered = [mode_coverage(samples, RING, 0.01, min_samples=k).modes_covered for k in (1, 2)]
        assert covered == [2, 1]
        strict = mode_coverage(samples, RING, 0.01, min_samples=4)
        assert strict.modes_covered == 0
        assert strict.min_samples == 4
        assert strict.mode_counts == (3, 0, 1, 0, 0, 0, 0, 0)

    def test_min_samples_leaves_the_rest_alone(self) -> None:
        """min_samples changes modes_covered only: high quality and both KLs stay."""
        samples = _on_modes(RING, (3, 0, 1)) + 0.001
        loose = mode_coverage(samples, RING, 0.01)
        strict = mode_coverage(samples, RING, 0.01, min_samples=20)
        assert (strict.high_quality, strict.kl, strict.kl_weights, strict.mode_counts) == (
            loose.high_quality,
            loose.kl,
            loose.kl_weights,
            loose.mode_counts,
        )

    @pytest.mark.parametrize("bad", [0, -1, True, 2.0])
    def test_invalid(self, bad: object) -> None:
        """min_samples must be an int >= 1."""
        with pytest.raises(ValueError, match="min_samples") as exc:
            mode_coverage(RING, RING, 0.01, min_samples=bad)  # type: ignore[arg-type]
        assert str(exc.value) == f"mode_coverage: 'min_samples' must be an int >= 1 (got {bad!r})"


class TestKlWeights:
    def test_histogram_equal_to_the_weights(self) -> None:
        """Counts (2, 1, 1) against weights (1/2, 1/4, 1/4): KL(p || w) is 0, KL(p || u) is not."""
        result = mode_coverage(_on_modes(LINE, (2, 1, 1)), LINE, 0.1, weights=[0.5, 0.25, 0.25])
        assert result.kl_weights == 0.0
        expected_uniform = 0.5 * math.log(0.5 * 3) + 2 * 0.25 * math.log(0.25 * 3)
        assert result.kl == pytest.approx(expected_uniform, abs=1e-15)

    def test_closed_form(self) -> None:
        """Counts (1, 1, 2) against weights (1/2, 1/4, 1/4) give sum p log(p / w)."""
        result = mode_coverage(_on_modes(LINE, (1, 1, 2)), LINE, 0.1, weights=[2, 1, 1])
        expected = 0.25 * math.log(0.25 / 0.5) + 0.25 * math.log(1.0) + 0.5 * math.log(0.5 / 0.25)
        assert result.kl_weights == pytest.approx(expected, abs=1e-15)
        assert result.kl_weights == pytest.approx(0.25 * math.log(2), abs=1e-15)

    def test_one_mode(self) -> None:
        """All samples on mode j give -log w_j; empty modes add nothing (0 log 0 = 0)."""
        weights = [0.2, 0.3, 0.5]
        for j, w in enumerate(weights):
            counts = tuple(5 if i == j else 0 for i in range(3))
            result = mode_coverage(_on_modes(LINE, counts), LINE, 0.1, weights=weights)
            assert result.kl_weights == pytest.approx(-math.log(w), abs=1e-15)

    def test_unnormalized_weights(self) -> None:
        """Weights are divided by their sum: (2, 1, 1) scores as (1/2, 1/4, 1/4)."""
        samples = _on_modes(LINE, (4, 1, 3))
        assert mode_coverage(samples, LINE, 0.1, weights=[2, 1, 1]) == mode_coverage(
            samples, LINE, 0.1, weights=np.array([0.5, 0.25, 0.25])
        )

    def test_equal_weights_are_uniform(self) -> None:
        """Equal weights, or none, give kl_weights equal to kl_uniform bit for bit."""
        samples = _on_modes(RING, (7, 0, 1, 2, 0, 0, 3, 1))
        for weights in (None, [3.0] * 8, torch.full((8,), 1 / 8)):
            result = mode_coverage(samples, RING, 0.01, weights=weights)
            assert result.kl_weights == result.kl
            assert result.kl > 0

    def test_no_high_quality_sample(self) -> None:
        """With no high-quality sample both KLs are NaN."""
        result = mode_coverage(torch.full((3, 2), 99.0), LINE, 0.1, weights=[1, 2, 3])
        assert math.isnan(result.kl) and math.isnan(result.kl_weights)

    @pytest.mark.parametrize(
        ("weights", "message"),
        [
            ([1.0, 2.0], "must have shape [M] = [3], one per mode (got [2])"),
            ([[1.0, 1.0, 1.0]], "must have shape [M] = [3], one per mode (got [1, 3])"),
            ([1.0, 0.0, 1.0], "must be finite numbers > 0 (got [1.0, 0.0, 1.0])"),
            ([1.0, -1.0, 1.0], "must be finite numbers > 0 (got [1.0, -1.0, 1.0])"),
            ([1.0, math.nan, 1.0], "must be finite numbers > 0 (got [1.0, nan, 1.0])"),
            ([1.0, math.inf, 1.0], "must be finite numbers > 0 (got [1.0, inf, 1.0])"),
        ],
    )
    def test_invalid(self, weights: list[float], message: str) -> None:
        """Weights of the wrong shape, zero, negative or non-finite are one line."""
        with pytest.raises(ValueError, match="'weights'") as exc:
            mode_coverage(LINE, LINE, 0.1, weights=weights)
        assert str(exc.value) == f"mode_coverage: 'weights' {message}"


class TestModeWeightsOrUniform:
    def test_uniform(self) -> None:
        """None and equal weights both give exactly 1/M; others are divided by their sum."""
        uniform = torch.full((7,), 1 / 7, dtype=torch.float64)
        assert torch.equal(mode_weights_or_uniform(None, 7), uniform)
        assert torch.equal(mode_weights_or_uniform([0.3] * 7, 7), uniform)
        weights = mode_weights_or_uniform(torch.tensor([1.0, 3.0]), 2)
        assert weights.dtype == torch.float64
        assert weights.tolist() == [0.25, 0.75]


class _Data:
    def __init__(
        self,
        modes: torch.Tensor | None,
        mode_std: float | None,
        mode_weights: torch.Tensor | None = None,
    ) -> None:
        self.modes = modes
        self.mode_std = mode_std
        self.mode_weights = mode_weights
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
            "kl_weights": result["kl_uniform"],
            "min_mode_count": 0,
            "min_samples": 1,
            "num_samples": 15,
            "seed": 7,
            "threshold_std": 3.0,
            "protocol": {
                "metric": "mode-coverage",
                "num_samples": 15,
                "seed": 7,
                "threshold_std": 3.0,
                "min_samples": 1,
                "num_modes": 8,
                "mode_std": 0.01,
                "modes_sha256": hashlib.sha256(RING.numpy().tobytes()).hexdigest(),
                "mode_weights_sha256": UNIFORM_8_SHA256.hexdigest(),
            },
        }

    def test_min_samples(self) -> None:
        """min_samples 2 counts only modes with two or more high-quality samples, and is in the
        protocol; min_mode_count is the fewest samples of any mode."""
        points = _on_modes(RING, (3, 2, 1, 1, 1, 1, 1, 1))
        context = _Context(_Data(RING, 0.01), points)
        loose = ModeCoverageMetric(num_samples=11).evaluate(context)
        strict = ModeCoverageMetric(num_samples=11, min_samples=2).evaluate(context)
        assert (loose["modes_covered"], strict["modes_covered"]) == (8, 2)
        assert loose["min_mode_count"] == strict["min_mode_count"] == 1
        assert strict["min_samples"] == strict["protocol"]["min_samples"] == 2
        assert strict["kl_uniform"] == loose["kl_uniform"]

    def test_weights_from_the_dataset(self) -> None:
        """The dataset's mode_weights give kl_weights and their hash; equal weights hash like
        none."""
        weights = torch.tensor([4.0, 1, 1, 1, 1, 1, 1, 1], dtype=torch.float64) / 11
        points = _on_modes(RING, (4, 1, 1, 1, 1, 1, 1, 1))
        weighted = ModeCoverageMetric(num_samples=11).evaluate(
            _Context(_Data(RING, 0.01, weights), points)
        )
        assert weighted["kl_weights"] == pytest.approx(0.0, abs=1e-15)
        assert weighted["kl_uniform"] == pytest.approx(
            (4 / 11) * math.log(32 / 11) + (7 / 11) * math.log(8 / 11), abs=1e-15
        )
        normalized = weights / weights.sum()  # what the metric scores against (and hashes)
        assert weighted["protocol"]["mode_weights_sha256"] == (
            hashlib.sha256(normalized.numpy().tobytes()).hexdigest()
        )
        equal = ModeCoverageMetric(num_samples=11).evaluate(
            _Context(_Data(RING, 0.01, torch.full((8,), 0.125, dtype=torch.float64)), points)
        )
        none = ModeCoverageMetric(num_samples=11).evaluate(_Context(_Data(RING, 0.01), points))
        assert equal == none
        assert none["protocol"]["mode_weights_sha256"] == UNIFORM_8_SHA256.hexdigest()

    def test_invalid_dataset_weights(self) -> None:
        """A dataset's mode_weights of the wrong length are one line naming the dataset."""
        context = _Context(_Data(RING, 0.01, torch.ones(3)), RING)
        with pytest.raises(ValueError, match="mode-coverage") as exc:
            ModeCoverageMetric(num_samples=8).evaluate(context)
        assert str(exc.value) == (
            "mode-coverage: dataset _Data's 'mode_weights' must have shape [M] = [8], one per "
            "mode (got [3])"
        )

    def test_weighted_toy2d(self) -> None:
        """Real points of a weighted toy2d ring, scored as generated samples, match its weights."""
        weights = (1.0, 2.0, 3.0, 4.0)
        dataset = build_toy2d(
            Toy2dOptions(mixture="ring", ring_modes=4, size=2500, seed=2, weights=weights), None
        )
        result = ModeCoverageMetric().evaluate(_Context(dataset, dataset.points))
        assert result["modes_covered"] == 4
        # A multinomial histogram of ~2,470 draws: KL(p || w) ~ chi2(3) / (2n), about 6e-4.
        assert result["kl_weights"] < 0.005
        assert result["kl_uniform"] == pytest.approx(
            sum(w / 10 * math.log(w / 10 * 4) for w in weights), abs=0.01
        )

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
        with pytest.raises(ValueError, match=r"'min_samples' must be >= 1"):
            ModeCoverageMetric(min_samples=0)
