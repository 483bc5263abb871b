"""Known answers for the metric mathematics in gancore.metrics.math."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gancore.metrics.math import (
    FeatureStats,
    InceptionScoreAccumulator,
    density_coverage,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    kth_neighbour_distances,
    mmd2_unbiased,
    precision_recall,
)


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


class TestFeatureStats:
    def test_streaming_equals_one_shot(self) -> None:
        """Batches of uneven sizes give np.mean and np.cov (ddof 1) of all rows."""
        rng = np.random.default_rng(0)
        features = rng.normal(size=(100, 6)) @ rng.normal(size=(6, 6)) + 1000.0
        stats = FeatureStats()
        for start, stop in [(0, 1), (1, 8), (8, 40), (40, 100)]:
            stats.update(features[start:stop])
        assert stats.count == 100
        np.testing.assert_allclose(stats.mean(), features.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(stats.covariance(), np.cov(features, rowvar=False), rtol=1e-9)

    def test_merge(self) -> None:
        """Merging two accumulators equals feeding one with all the batches."""
        rng = np.random.default_rng(1)
        features = rng.normal(size=(50, 4))
        whole, first, second = FeatureStats(), FeatureStats(), FeatureStats()
        whole.update(features)
        first.update(features[:20])
        second.update(features[20:])
        first.merge(second)
        assert first.count == 50
        np.testing.assert_allclose(first.covariance(), whole.covariance(), rtol=1e-12)
        np.testing.assert_allclose(first.mean(), whole.mean(), rtol=1e-12)

    def test_keeps_features_only_when_asked(self) -> None:
        """Raw features are kept as float32 with keep_features=True and refused otherwise."""
        kept = FeatureStats(keep_features=True)
        kept.update(torch.ones(2, 3))
        kept.update(torch.zeros(1, 3))
        assert kept.features().dtype == torch.float32
        assert kept.features().tolist() == [[1.0] * 3, [1.0] * 3, [0.0] * 3]
        with pytest.raises(ValueError, match="keep_features=True"):
            FeatureStats().features()

    def test_state_dict_round_trip(self) -> None:
        """Statistics rebuilt from their state dict have the same count, mean, covariance (to
        round-off) and features, and keep accumulating alike."""
        rng = np.random.default_rng(15)
        features = rng.normal(size=(30, 3))
        stats = FeatureStats(keep_features=True)
        stats.update(features[:20])
        copy = FeatureStats.from_state_dict(stats.state_dict())
        for accumulator in (stats, copy):
            accumulator.update(features[20:])
        assert copy.count == 30
        np.testing.assert_allclose(copy.mean(), stats.mean(), rtol=1e-13)
        np.testing.assert_allclose(copy.covariance(), stats.covariance(), rtol=1e-12)
        assert torch.equal(copy.features(), stats.features())

    def test_errors(self) -> None:
        """Too few samples and a changing dimension are errors that say what they got."""
        stats = FeatureStats()
        stats.update(np.zeros((1, 3)))
        with pytest.raises(ValueError, match=r"at least 2 samples \(got 1\)"):
            stats.covariance()
        with pytest.raises(ValueError, match="feature dimension 4; earlier batches had 3"):
            stats.update(np.zeros((2, 4)))


class TestFrechetDistance:
    def test_one_dimensional(self) -> None:
        """N(0, 1) to N(3, 4): 3^2 + (1 - 2)^2 = 10."""
        value = frechet_distance(np.zeros(1), np.eye(1), np.full(1, 3.0), 4 * np.eye(1))
        assert value == pytest.approx(10.0, rel=1e-12)

    def test_diagonal_closed_form(self) -> None:
        """Diagonal covariances give ||mu1 - mu2||^2 + sum (sqrt a_i - sqrt b_i)^2."""
        rng = np.random.default_rng(2)
        mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
        a, b = rng.uniform(0.1, 3.0, size=32), rng.uniform(0.1, 3.0, size=32)
        expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
        value = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
        assert value == pytest.approx(expected, rel=1e-10)

    def test_commuting_closed_form(self) -> None:
        """Covariances with shared eigenvectors give the diagonal formula on their eigenvalues."""
        rng = np.random.default_rng(3)
        q = _rotation(rng, 16)
        a, b = rng.uniform(0.1, 3.0, size=16), rng.uniform(0.1, 3.0, size=16)
        mu = rng.normal(size=16)
        expected = np.sum(mu**2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
        value = frechet_distance(mu, q @ np.diag(a) @ q.T, np.zeros(16), q @ np.diag(b) @ q.T)
        assert value == pytest.approx(expected, rel=1e-9)

    def test_non_commuting_against_sqrtm(self) -> None:
        """General covariances match the trace of scipy's matrix square root (test-only)."""
        rng = np.random.default_rng(4)
        s1, s2 = _random_spd(rng, 24), _random_spd(rng, 24)
        mu1, mu2 = rng.normal(size=24), rng.normal(size=24)
        root = scipy.linalg.sqrtm(s1 @ s2)
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)

    def test_torch_inputs(self) -> None:
        """Torch tensors of any float dtype give the same value as NumPy arrays."""
        rng = np.random.default_rng(5)
        s1, s2 = _random_spd(rng, 8), _random_spd(rng, 8)
        mu = rng.normal(size=8)
        from_numpy = frechet_distance(mu, s1, -mu, s2)
        from_torch = frechet_distance(
            torch.tensor(mu), torch.tensor(s1), torch.tensor(-mu), torch.tensor(s2)
        )
        assert from_torch == pytest.approx(from_numpy, rel=1e-12)

    def test_identical_sets_are_exactly_zero(self) -> None:
        """The same features on both sides give exactly 0.0, never a round-off negative."""
        rng = np.random.default_rng(6)
        stats = FeatureStats()
        stats.update(rng.normal(size=(300, 64)))
        value = frechet_distance(stats.mean(), stats.covariance(), stats.mean(), stats.covariance())
        assert value == 0.0

    def test_clamped_at_zero(self) -> None:
        """Nearly identical Gaussians never give a negative distance."""
        rng = np.random.default_rng(7)
        sigma = _random_spd(rng, 64)
        mu = rng.normal(size=64)
        assert frechet_distance(mu, sigma, mu, sigma * (1 + 1e-15)) >= 0.0

    def test_shape_error(self) -> None:
        """Mismatched shapes name the argument, the expected and the given shape."""
        with pytest.raises(ValueError, match=r"'sigma2' must have shape \[3, 3\] \(got \[2, 2\]\)"):
            frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2))


def _mmd2_reference(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD² estimator written out with loops, kernel (x.y/d + 1)^3."""
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / d + 1.0) ** 3)

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


class TestKernelInceptionDistance:
    def test_mmd2_matches_reference_formula(self) -> None:
        """mmd2_unbiased equals the estimator written out pair by pair."""
        rng = np.random.default_rng(8)
        x, y = rng.normal(size=(7, 3)), rng.normal(1.0, 2.0, size=(5, 3))
        assert mmd2_unbiased(x, y) == pytest.approx(_mmd2_reference(x, y), rel=1e-12)

    def test_identical_sets_near_zero(self) -> None:
        """A whole set against itself gives 2/(m(m-1)) (sum K / m - trace K), a small negative
        number, far below a shifted set."""
        rng = np.random.default_rng(9)
        features = rng.normal(size=(400, 16))
        kernel = (features @ features.T / 16 + 1.0) ** 3
        m = 400
        expected = 2 / (m * (m - 1)) * (kernel.sum() / m - np.trace(kernel))
        same = kernel_inception_distance(features, features, num_subsets=2, subset_size=m)
        shifted = kernel_inception_distance(features, features + 1.0, num_subsets=2, subset_size=m)
        assert same.mean == pytest.approx(expected, rel=1e-9)
        assert -0.05 < same.mean < 0 < 1.0 < shifted.mean
        assert same.subset_size == m

    def test_unbiased(self) -> None:
        """Over many pairs of samples of one distribution the mean is 0 within 3 standard errors,
        and single values fall on both sides of 0."""
        values = []
        for seed in range(30):
            rng = np.random.default_rng(100 + seed)
            a, b = rng.normal(size=(100, 8)), rng.normal(size=(100, 8))
            values.append(kernel_inception_distance(a, b, num_subsets=1, seed=seed).mean)
        mean, error = np.mean(values), np.std(values, ddof=1) / math.sqrt(len(values))
        assert abs(mean) < 3 * error
        assert min(values) < 0 < max(values)

    def test_subsets_and_seed(self) -> None:
        """m = min(n1, n2, subset_size); the same seed gives the same value, another seed not."""
        rng = np.random.default_rng(10)
        a, b = rng.normal(size=(60, 4)), rng.normal(0.5, 1.0, size=(50, 4))
        first = kernel_inception_distance(a, b, num_subsets=4, subset_size=1000, seed=1)
        again = kernel_inception_distance(a, b, num_subsets=4, subset_size=1000, seed=1)
        small = kernel_inception_distance(a, b, num_subsets=4, subset_size=20, seed=1)
        other = kernel_inception_distance(a, b, num_subsets=4, subset_size=20, seed=2)
        assert first.subset_size == 50
        assert first == again
        assert small.mean != other.mean
        assert small.std > 0


class TestInceptionScore:
    def test_uniform_predictions_score_one(self) -> None:
        """Identical uniform predictions give exactly the minimum, 1."""
        result = inception_score(np.zeros((50, 10)), splits=5)
        assert result.mean == pytest.approx(1.0, abs=1e-12)
        assert result.std == pytest.approx(0.0, abs=1e-12)

    def test_confident_diverse_predictions_score_num_classes(self) -> None:
        """One-hot predictions spread evenly over K classes give K, from probs and from logits."""
        labels = np.arange(100) % 10  # every split of 10 consecutive rows holds each class once
        probs = np.eye(10)[labels]
        assert inception_score(probs=probs, splits=10).mean == pytest.approx(10.0, rel=1e-12)
        logits = 1000.0 * probs  # softmax is exactly one-hot in float64
        result = inception_score(torch.tensor(logits), splits=10)
        assert result.mean == pytest.approx(10.0, rel=1e-12)
        assert result.std == pytest.approx(0.0, abs=1e-9)
        assert result.splits == 10

    def test_hand_computed(self) -> None:
        """p = [1, 0] and [0.5, 0.5]: p(y) = [0.75, 0.25], IS = exp((log(4/3) + 0.5 log(2/3)
        + 0.5 log 2) / 2)."""
        probs = np.array([[1.0, 0.0], [0.5, 0.5]])
        expected = math.exp((math.log(4 / 3) + 0.5 * math.log(2 / 3) + 0.5 * math.log(2)) / 2)
        assert inception_score(probs=probs, splits=1).mean == pytest.approx(expected, rel=1e-12)

    def test_argument_errors(self) -> None:
        """Exactly one of logits and probs; splits within [1, N]."""
        with pytest.raises(ValueError, match="exactly one of 'logits' and 'probs'"):
            inception_score()
        with pytest.raises(ValueError, match=r"'splits' must be in \[1, N = 4\] \(got 5\)"):
            inception_score(np.zeros((4, 3)), splits=5)


class TestInceptionScoreAccumulator:
    def test_streaming_equals_one_shot(self) -> None:
        """Uneven batches that straddle split boundaries give inception_score of all rows, and a
        direct evaluation of exp(mean KL(p(y|x) || p(y))) per split."""
        logits = torch.randn(
            103, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        accumulator = InceptionScoreAccumulator(103, splits=4)
        for start, stop in [(0, 5), (5, 30), (30, 31), (31, 103)]:
            accumulator.update(logits[start:stop])
        streamed, whole = accumulator.result(), inception_score(logits, splits=4)
        p = torch.softmax(logits, dim=1).numpy()
        direct = []
        for i in range(4):
            part = p[i * 103 // 4 : (i + 1) * 103 // 4]
            kl = (part * (np.log(part) - np.log(part.mean(axis=0)))).sum(axis=1)
            direct.append(math.exp(kl.mean()))
        assert streamed.mean == pytest.approx(np.mean(direct), rel=1e-12)
        assert streamed.std == pytest.approx(np.std(direct), rel=1e-9)
        assert (whole.mean, whole.std) == pytest.approx((streamed.mean, streamed.std), rel=1e-12)

    def test_memory_does_not_grow_with_n(self) -> None:
        """The state is a few [splits, K] tensors, however many rows were fed."""
        accumulator = InceptionScoreAccumulator(100_000, splits=10)
        for _ in range(100):
            accumulator.update(torch.zeros(1000, 5))
        sizes = [t.numel() for t in vars(accumulator).values() if isinstance(t, torch.Tensor)]
        assert sum(sizes) <= 10 * 5 + 3 * 11
        assert accumulator.result().mean == pytest.approx(1.0, abs=1e-12)

    def test_row_count_errors(self) -> None:
        """Feeding more or fewer rows than announced is an error that says how many."""
        accumulator = InceptionScoreAccumulator(4, splits=2)
        accumulator.update(torch.zeros(3, 2))
        with pytest.raises(ValueError, match=r"expects 4 rows \(got 3\)"):
            accumulator.result()
        with pytest.raises(ValueError, match=r"expects 4 rows \(got 5\)"):
            accumulator.update(torch.zeros(2, 2))


def _on_line(xs: list[float], y: float = 0.0) -> np.ndarray:
    return np.array([[x, y] for x in xs])


class TestPrecisionRecall:
    def test_hand_computed(self) -> None:
        """Reals at x = 0..9 (k = 1: radius 1); fakes 0.5 and 1.2 (radius 0.7) and two far points
        at x = 50 (radius 1): precision 2/4, recall 2/10 (reals 0 and 1)."""
        real = _on_line(list(range(10)))
        fake = np.array([[0.5, 0.0], [1.2, 0.0], [50.0, 0.0], [50.0, 1.0]])
        result = precision_recall(real, fake, k=1)
        assert (result.precision, result.recall, result.k) == (0.5, 0.2, 1)

    def test_identical_sets(self) -> None:
        """A set compared with itself has precision and recall 1."""
        features = np.random.default_rng(11).normal(size=(80, 5))
        result = precision_recall(features, features, k=3)
        assert (result.precision, result.recall) == (1.0, 1.0)

    def test_matches_brute_force(self) -> None:
        """Random sets agree with a direct evaluation of the definitions, with tiny blocks too."""
        rng = np.random.default_rng(12)
        real, fake = rng.normal(size=(40, 5)), rng.normal(0.7, 1.3, size=(30, 5))
        k = 3
        d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
        d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
        d_rf = np.linalg.norm(real[:, None] - fake[None], axis=-1)
        r_real, r_fake = np.sort(d_rr, axis=1)[:, k], np.sort(d_ff, axis=1)[:, k]
        precision = np.mean([(d_rf[:, j] <= r_real).any() for j in range(30)])
        recall = np.mean([(d_rf[i] <= r_fake).any() for i in range(40)])
        for block in (7, 1 << 24):
            result = precision_recall(real, fake, k=k, block_elements=block)
            assert result.precision == pytest.approx(precision, abs=1e-12)
            assert result.recall == pytest.approx(recall, abs=1e-12)
        np.testing.assert_allclose(kth_neighbour_distances(real, k), r_real, rtol=1e-9)

    def test_k_error(self) -> None:
        """k must leave at least one other sample."""
        with pytest.raises(ValueError, match=r"'k' must be in \[1, N - 1 = 2\] \(got 3\)"):
            precision_recall(np.zeros((3, 2)), np.zeros((3, 2)), k=3)


class TestDensityCoverage:
    def test_hand_computed(self) -> None:
        """Unit-square corners (k = 1: radius 1); a fake at the centre lies in all 4 balls, a far
        one in none: density 4 / (1 * 2) = 2, coverage 1."""
        real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        centre, far = [0.5, 0.5], [10.0, 10.0]
        both = density_coverage(real, np.array([centre, far]), k=1)
        assert (both.density, both.coverage, both.k) == (2.0, 1.0, 1)
        none = density_coverage(real, np.array([far, far]), k=1)
        assert (none.density, none.coverage) == (0.0, 0.0)

    def test_matches_brute_force(self) -> None:
        """Random sets agree with a direct evaluation of the definitions."""
        rng = np.random.default_rng(13)
        real, fake = rng.normal(size=(50, 4)), rng.normal(0.3, 0.8, size=(35, 4))
        k = 5
        radius = np.sort(np.linalg.norm(real[:, None] - real[None], axis=-1), axis=1)[:, k]
        inside = np.linalg.norm(real[:, None] - fake[None], axis=-1) <= radius[:, None]
        result = density_coverage(real, fake, k=k, block_elements=11)
        assert result.density == pytest.approx(inside.sum() / (k * 35), abs=1e-12)
        assert result.coverage == pytest.approx(inside.any(axis=1).mean(), abs=1e-12)

    def test_identical_sets_full_coverage(self) -> None:
        """A set compared with itself covers every real ball."""
        features = np.random.default_rng(14).normal(size=(60, 3))
        assert density_coverage(features, features).coverage == 1.0
