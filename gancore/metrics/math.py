"""The mathematics of the sample-quality metrics, as pure functions of feature sets.

Every function accepts NumPy arrays or torch tensors, computes in float64 on the CPU and returns
Python floats or small frozen result classes. Feature sets are ``[N, d]``: one row per sample.

- :class:`FeatureStats`: streaming mean and covariance of features (memory independent of ``N``).
- :func:`frechet_distance`: Fréchet distance of two Gaussians (Heusel et al. 2017, the "F" of FID).
- :func:`kernel_inception_distance`: unbiased polynomial-kernel MMD² over subsets (Bińkowski et al.
  2018, the "K" of KID); :func:`mmd2_unbiased` is one subset.
- :func:`inception_score`: ``exp(E_x KL(p(y|x) || p(y)))`` over splits (Salimans et al. 2016).
- :func:`precision_recall`: k-NN manifold precision and recall (Kynkäänniemi et al. 2019).
- :func:`density_coverage`: k-NN density and coverage (Naeem et al. 2020).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeAlias

import attrs
import numpy as np
import torch

__all__ = [
    "ArrayLike",
    "DensityCoverage",
    "FeatureStats",
    "InceptionScore",
    "InceptionScoreAccumulator",
    "KernelDistance",
    "PrecisionRecall",
    "density_coverage",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "kth_neighbour_distances",
    "mmd2_unbiased",
    "polynomial_kernel",
    "precision_recall",
]

ArrayLike: TypeAlias = np.ndarray | torch.Tensor

# Largest number of float64 entries of a distance block held at once by the k-NN metrics:
# 2**24 entries = 128 MiB. The block has ``rows x N`` entries, so rows shrink as N grows.
DEFAULT_BLOCK_ELEMENTS = 2**24


def _as_float64(array: ArrayLike, name: str, ndim: int) -> torch.Tensor:
    """``array`` as a float64 CPU tensor with ``ndim`` dimensions, or a ValueError."""
    tensor = torch.as_tensor(array).detach().to(device="cpu", dtype=torch.float64)
    if tensor.ndim != ndim:
        expected = {1: "[d]", 2: "[N, d]"}.get(ndim, f"{ndim} dimensions")
        raise ValueError(f"'{name}' must have shape {expected} (got {tuple(tensor.shape)})")
    return tensor


def _as_cpu_matrix(array: ArrayLike, name: str) -> torch.Tensor:
    """``array`` as a ``[N, d]`` CPU tensor in its own float dtype (no float64 copy of a large set)."""
    tensor = torch.as_tensor(array).detach().to(device="cpu")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    if tensor.ndim != 2:
        raise ValueError(f"'{name}' must have shape [N, d] (got {tuple(tensor.shape)})")
    return tensor


def _check_same_dim(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{names} must have the same feature dimension (got {a.shape[-1]} and {b.shape[-1]})"
        )


# -------------------------------------------------------------------------------------------------
# Streaming statistics
# -------------------------------------------------------------------------------------------------


class FeatureStats:
    """Running mean and covariance of feature vectors, fed one batch ``[B, d]`` at a time.

    Memory is ``O(d^2)`` whatever the number of samples: the state is the count, a shift ``K``
    (the mean of the first batch), ``sum_n (x_n - K)`` and ``sum_n (x_n - K)(x_n - K)^T``, all
    float64. Accumulating about a shift close to the mean ("shifted data", Chan, Golub and LeVeque
    1983) avoids the cancellation of ``sum x x^T - n mean mean^T`` when the features have a large
    mean compared with their spread, and costs one in-place matrix product per batch (no
    ``d x d`` temporaries). The centred scatter is ``M2 = S2 - n m m^T`` with ``m`` the mean of the
    shifted data.

    ``keep_features=True`` also keeps every raw feature vector (as float32, the precision extractors
    produce), for the metrics that need the samples themselves: KID, precision/recall and
    density/coverage. That costs ``4 N d`` bytes (400 MB for 50,000 features of dimension 2048).
    """

    def __init__(self, *, keep_features: bool = False) -> None:
        self.keep_features = keep_features
        self.count = 0
        self._shift: torch.Tensor | None = None  # [d] float64, K
        self._sum: torch.Tensor | None = None  # [d] float64, sum of (x - K)
        self._outer: torch.Tensor | None = None  # [d, d] float64, sum of (x - K)(x - K)^T
        self._kept: list[torch.Tensor] = []

    @property
    def dim(self) -> int | None:
        """Feature dimension ``d``, or None before the first batch."""
        return None if self._shift is None else int(self._shift.shape[0])

    def update(self, batch: ArrayLike) -> None:
        """Add a batch of feature vectors ``[B, d]``."""
        x = _as_float64(batch, "batch", 2)
        if self._shift is not None and x.shape[1] != self._shift.shape[0]:
            raise ValueError(
                f"batch has feature dimension {x.shape[1]}; "
                f"earlier batches had {self._shift.shape[0]}"
            )
        if x.shape[0] == 0:
            return
        if self.keep_features:
            self._kept.append(x.to(torch.float32))
        if self._shift is None or self._sum is None or self._outer is None:
            d = x.shape[1]
            self._shift = x.mean(dim=0)
            self._sum = torch.zeros(d, dtype=torch.float64)
            self._outer = torch.zeros(d, d, dtype=torch.float64)
        shifted = x - self._shift
        self._sum += shifted.sum(dim=0)
        self._outer.addmm_(shifted.T, shifted)  # in place: S2 += y^T y
        self.count += x.shape[0]

    def _centred(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean [d], M2 [d, d])``: the mean and the scatter about it."""
        if self._shift is None or self._sum is None or self._outer is None or not self.count:
            raise ValueError("FeatureStats needs at least 1 sample (got 0)")
        m = self._sum / self.count
        return self._shift + m, self._outer - torch.outer(m, m) * self.count

    def merge(self, other: FeatureStats) -> None:
        """Add everything ``other`` has seen (for statistics gathered from several processes)."""
        if other._shift is None or other._sum is None or other._outer is None:
            return
        if self._shift is None or self._sum is None or self._outer is None:
            self.count = other.count
            self._shift = other._shift.clone()
            self._sum, self._outer = other._sum.clone(), other._outer.clone()
        else:
            # other's sums are about its own shift; move them to ours: y = y_other + delta.
            delta = other._shift - self._shift
            self._sum += other._sum + delta * other.count
            self._outer += (
                other._outer
                + torch.outer(other._sum, delta)
                + torch.outer(delta, other._sum)
                + torch.outer(delta, delta) * other.count
            )
            self.count += other.count
        if self.keep_features:
            self._kept.extend(other._kept)

    def mean(self) -> np.ndarray:
        """Mean feature vector ``[d]`` (float64)."""
        if not self.count:
            raise ValueError("FeatureStats.mean needs at least 1 sample (got 0)")
        return self._centred()[0].numpy()

    def covariance(self) -> np.ndarray:
        """Unbiased sample covariance ``[d, d]`` (divided by ``N - 1``, float64)."""
        if self.count < 2:
            raise ValueError(f"FeatureStats.covariance needs at least 2 samples (got {self.count})")
        return (self._centred()[1] / (self.count - 1)).numpy()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The state as tensors (``count``, ``mean``, ``scatter`` about the mean and, when kept,
        ``features``), e.g. to cache the statistics of a dataset in a safetensors file."""
        if not self.count:
            raise ValueError("FeatureStats.state_dict needs at least 1 sample (got 0)")
        mean, scatter = self._centred()
        state = {
            "count": torch.tensor(self.count, dtype=torch.int64),
            "mean": mean,
            "scatter": scatter,
        }
        if self.keep_features:
            state["features"] = self.features().clone()
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> FeatureStats:
        """Statistics saved by :meth:`state_dict`; raw features are kept if they were saved."""
        stats = cls(keep_features="features" in state)
        stats.count = int(state["count"])
        stats._shift = state["mean"].to(torch.float64).clone()  # shift = mean: sum of y is 0
        stats._sum = torch.zeros_like(stats._shift)
        stats._outer = state["scatter"].to(torch.float64).clone()
        if "features" in state:
            stats._kept = [state["features"].to(torch.float32)]
        return stats

    def features(self) -> torch.Tensor:
        """All raw features seen, ``[N, d]`` float32; only with ``keep_features=True``."""
        if not self.keep_features:
            raise ValueError("FeatureStats.features needs keep_features=True")
        if not self._kept:
            return torch.empty(0, 0)
        if len(self._kept) > 1:  # concatenate once, so repeated calls do not copy again
            self._kept = [torch.cat(self._kept)]
        return self._kept[0]


# -------------------------------------------------------------------------------------------------
# Fréchet distance
# -------------------------------------------------------------------------------------------------


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``d^2 = ||mu1 - mu2||^2 + Tr sigma1 + Tr sigma2 - 2 Tr (sigma1 sigma2)^(1/2)`` (Dowson and
    Landau 1982; used as FID by Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
    Converge to a Local Nash Equilibrium"). ``Tr (sigma1 sigma2)^(1/2)`` is the sum of the square
    roots of the eigenvalues of ``sigma1 sigma2``: they are real and non-negative in exact
    arithmetic (the product of two PSD matrices is similar to a PSD matrix), so the real part of the
    principal complex square root is taken, which also maps round-off negatives to 0. No
    ``scipy.linalg.sqrtm``. The result is clamped at 0, and identical inputs give exactly 0.

    Means are ``[d]``, covariances ``[d, d]``; computed in float64.
    """
    m1, m2 = _as_float64(mu1, "mu1", 1), _as_float64(mu2, "mu2", 1)
    s1, s2 = _as_float64(sigma1, "sigma1", 2), _as_float64(sigma2, "sigma2", 2)
    d = m1.shape[0]
    for name, value in (("mu2", m2), ("sigma1", s1), ("sigma2", s2)):
        expected = (d,) if name == "mu2" else (d, d)
        if tuple(value.shape) != expected:
            raise ValueError(f"'{name}' must have shape {list(expected)} (got {list(value.shape)})")
    if torch.equal(m1, m2) and torch.equal(s1, s2):
        return 0.0  # exact: the eigenvalue route would leave round-off of either sign
    mean_term = float((m1 - m2).square().sum())
    eigenvalues = torch.linalg.eigvals(s1 @ s2)
    # Re(sqrt(lambda)) >= 0 for the principal root; = sqrt(max(lambda, 0)) for real lambda.
    trace_sqrt = float(eigenvalues.sqrt().real.sum())
    distance = mean_term + float(s1.trace()) + float(s2.trace()) - 2.0 * trace_sqrt
    return max(distance, 0.0)


# -------------------------------------------------------------------------------------------------
# Kernel inception distance
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class KernelDistance:
    """Unbiased MMD² over random subsets: their mean and (population) standard deviation."""

    mean: float
    std: float
    num_subsets: int
    subset_size: int


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``k(x, y) = (x . y / d + 1)^3`` for all pairs of rows, ``[N, M]`` (Bińkowski et al. 2018)."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: ArrayLike, y: ArrayLike) -> float:
    """Unbiased MMD² between the samples ``x [m, d]`` and ``y [n, d]`` with the polynomial kernel.

    ``1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
    - 2/(m n) sum_{i, j} k(x_i, y_j)`` (Gretton et al. 2012, Eq. 3). Can be negative.
    """
    a, b = _as_float64(x, "x", 2), _as_float64(y, "y", 2)
    _check_same_dim(a, b, "'x' and 'y'")
    m, n = a.shape[0], b.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"mmd2_unbiased needs at least 2 samples per set (got {m} and {n})")
    k_xx, k_yy, k_xy = polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
    # Off-diagonal sums: total minus the diagonal k(x_i, x_i).
    xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    xy = k_xy.sum() / (m * n)
    return float(xx + yy - 2.0 * xy)


def kernel_inception_distance(
    features1: ArrayLike,
    features2: ArrayLike,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KernelDistance:
    """Kernel distance of Bińkowski et al. 2018 ("Demystifying MMD GANs"), the "K" of KID.

    ``num_subsets`` times, draws ``m = min(n1, n2, subset_size)`` rows of each set without
    replacement (``numpy.random.default_rng(seed)``) and computes :func:`mmd2_unbiased` with the
    kernel ``(x . y / d + 1)^3``. Returns the mean over subsets and their standard deviation
    (population, ``ddof=0``, as torch-fidelity and torchmetrics report it). Unbiased: the mean can
    be negative when both sets come from the same distribution.
    """
    # Only the subsets are converted to float64, so a large float32 set is never copied whole.
    f1, f2 = _as_cpu_matrix(features1, "features1"), _as_cpu_matrix(features2, "features2")
    _check_same_dim(f1, f2, "'features1' and 'features2'")
    if num_subsets < 1:
        raise ValueError(f"'num_subsets' must be >= 1 (got {num_subsets})")
    m = min(f1.shape[0], f2.shape[0], subset_size)
    if m < 2:
        raise ValueError(f"KID needs subsets of at least 2 samples (got m = {m})")
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets, dtype=np.float64)
    for s in range(num_subsets):
        rows1 = torch.from_numpy(rng.choice(f1.shape[0], size=m, replace=False))
        rows2 = torch.from_numpy(rng.choice(f2.shape[0], size=m, replace=False))
        values[s] = mmd2_unbiased(f1[rows1], f2[rows2])
    return KernelDistance(
        mean=float(values.mean()), std=float(values.std()), num_subsets=num_subsets, subset_size=m
    )


# -------------------------------------------------------------------------------------------------
# Inception score
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class InceptionScore:
    """Inception score: mean and (population) standard deviation over splits."""

    mean: float
    std: float
    splits: int


def _log_probabilities(logits: ArrayLike | None, probs: ArrayLike | None) -> torch.Tensor:
    """``log p(y|x)`` ``[N, K]`` in float64 from exactly one of ``logits`` and ``probs``."""
    if (logits is None) == (probs is None):
        raise ValueError("inception_score needs exactly one of 'logits' and 'probs'")
    if logits is not None:
        return torch.log_softmax(_as_float64(logits, "logits", 2), dim=1)
    p = _as_float64(probs, "probs", 2)  # type: ignore[arg-type]
    if bool((p < 0).any()) or not torch.allclose(p.sum(dim=1), torch.ones(len(p)).double()):
        raise ValueError("'probs' rows must be non-negative and sum to 1")
    return p.log()  # log 0 = -inf; the 0 * log 0 terms are dropped where they are summed


class InceptionScoreAccumulator:
    """The Inception score of ``num`` samples fed as class scores ``[B, K]``, one batch at a time.

    Memory is ``O(splits * K)`` whatever ``num``: the ``num`` rows are cut into ``splits``
    consecutive parts (part ``i`` holds rows ``i num // splits`` to ``(i + 1) num // splits``, as
    in the original code), and each part keeps only its row count, ``sum_x p(y|x)`` and
    ``sum_x sum_y p(y|x) log p(y|x)``. That is enough because the mean KL divergence of a part is
    ``E_x KL(p(y|x) || p(y)) = E_x sum_y p(y|x) log p(y|x) - sum_y p(y) log p(y)`` with
    ``p(y) = E_x p(y|x)`` (the cross term averages to ``sum_y p(y) log p(y)``).
    """

    def __init__(self, num: int, splits: int = 10) -> None:
        if not 1 <= splits <= num:
            raise ValueError(f"'splits' must be in [1, N = {num}] (got {splits})")
        self.num, self.splits = num, splits
        self.count = 0
        self._bounds = torch.tensor([i * num // splits for i in range(splits + 1)])
        self._rows = torch.zeros(splits, dtype=torch.float64)
        self._p_sum: torch.Tensor | None = None  # [splits, K]
        self._neg_entropy_sum = torch.zeros(splits, dtype=torch.float64)

    def update(self, logits: ArrayLike | None = None, *, probs: ArrayLike | None = None) -> None:
        """Add the next rows, as ``logits`` (softmax applied here) or as ``probs``."""
        self._add(_log_probabilities(logits, probs))

    def _add(self, log_p: torch.Tensor) -> None:
        """Add rows of ``log p(y|x)`` ``[B, K]`` (float64)."""
        if self.count + len(log_p) > self.num:
            raise ValueError(
                f"InceptionScoreAccumulator expects {self.num} rows (got {self.count + len(log_p)})"
            )
        if self._p_sum is None:
            self._p_sum = torch.zeros(self.splits, log_p.shape[1], dtype=torch.float64)
        elif log_p.shape[1] != self._p_sum.shape[1]:
            raise ValueError(
                f"batch has {log_p.shape[1]} classes; earlier batches had {self._p_sum.shape[1]}"
            )
        rows = torch.arange(self.count, self.count + len(log_p))
        part = torch.bucketize(rows, self._bounds, right=True) - 1  # the split of each row
        p = log_p.exp()
        # sum_y p log p with 0 log 0 = 0
        neg_entropy = torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(dim=1)
        self._rows.index_add_(0, part, torch.ones(len(part), dtype=torch.float64))
        self._p_sum.index_add_(0, part, p)
        self._neg_entropy_sum.index_add_(0, part, neg_entropy)
        self.count += len(log_p)

    def result(self) -> InceptionScore:
        """Mean and population standard deviation of the per-split scores."""
        if self.count != self.num or self._p_sum is None:
            raise ValueError(
                f"InceptionScoreAccumulator expects {self.num} rows (got {self.count})"
            )
        marginal = self._p_sum / self._rows[:, None]  # p(y) per split
        marginal_term = torch.where(
            marginal > 0, marginal * marginal.log(), torch.zeros_like(marginal)
        ).sum(dim=1)
        scores = (self._neg_entropy_sum / self._rows - marginal_term).exp().numpy()
        return InceptionScore(
            mean=float(scores.mean()), std=float(scores.std()), splits=self.splits
        )


def inception_score(
    logits: ArrayLike | None = None, *, probs: ArrayLike | None = None, splits: int = 10
) -> InceptionScore:
    """``exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016, "Improved Techniques for Training
    GANs").

    Give class scores ``[N, K]`` as ``logits`` (softmax applied here) or as ``probs`` (rows summing
    to 1). The ``N`` samples are cut into ``splits`` consecutive parts (part ``i`` is rows
    ``i N // splits`` to ``(i + 1) N // splits``, as in the original code); in each part ``p(y)`` is
    the mean of ``p(y|x)`` and the score is computed; the mean and population standard deviation of
    the per-part scores are returned. Ranges from 1 (all predictions alike) to ``K``. The same
    computation as :class:`InceptionScoreAccumulator` fed all rows at once.
    """
    log_p = _log_probabilities(logits, probs)
    accumulator = InceptionScoreAccumulator(log_p.shape[0], splits)
    accumulator._add(log_p)
    return accumulator.result()


# -------------------------------------------------------------------------------------------------
# k-nearest-neighbour metrics
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PrecisionRecall:
    """Fraction of generated samples on the real manifold (precision) and vice versa (recall)."""

    precision: float
    recall: float
    k: int


@attrs.frozen(kw_only=True)
class DensityCoverage:
    """Density (mean count of real k-NN balls holding a fake, / k) and coverage (fraction of real
    balls holding at least one fake)."""

    density: float
    coverage: float
    k: int


def _squared_distance_blocks(
    x: torch.Tensor, y: torch.Tensor, block_elements: int
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yields ``(start, D2)`` with ``D2[i, j] = ||x[start + i] - y[j]||^2``, a few rows at a time.

    ``||x||^2 + ||y||^2 - 2 x.y`` in float64, clamped at 0 against round-off; each block holds at
    most ``max(block_elements, len(y))`` entries.
    """
    y_sq = y.square().sum(dim=1)
    rows = max(1, block_elements // max(1, y.shape[0]))
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        d2 = block.square().sum(dim=1, keepdim=True) + y_sq - 2.0 * (block @ y.T)
        yield start, d2.clamp_(min=0.0)


def kth_neighbour_distances(
    features: ArrayLike, k: int, *, block_elements: int = DEFAULT_BLOCK_ELEMENTS
) -> np.ndarray:
    """Distance from each row of ``features [N, d]`` to its ``k``-th nearest other row, ``[N]``.

    The row itself (distance 0) is not counted: this is the ``(k + 1)``-th smallest distance
    including it. Distances are computed in row blocks of at most ``block_elements`` entries.
    """
    x = _as_float64(features, "features", 2)
    return _kth_neighbour_squared(x, k, block_elements).sqrt().numpy()


def _kth_neighbour_squared(x: torch.Tensor, k: int, block_elements: int) -> torch.Tensor:
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"'k' must be in [1, N - 1 = {x.shape[0] - 1}] (got {k})")
    radii = torch.empty(x.shape[0], dtype=torch.float64)
    for start, d2 in _squared_distance_blocks(x, x, block_elements):
        radii[start : start + d2.shape[0]] = d2.kthvalue(k + 1, dim=1).values
    return radii


def precision_recall(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    k: int = 3,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall
    Metric for Assessing Generative Models", Eq. 1-2).

    Each sample ``x`` of a set gets a ball of radius ``NND_k(x)``, the distance to its ``k``-th
    nearest neighbour in the same set. Precision is the fraction of ``fake`` rows inside at least
    one real ball; recall the fraction of ``real`` rows inside at least one fake ball. Balls are
    closed (``distance <= radius``). Euclidean distances in float64, in blocks of at most
    ``block_elements`` entries, so memory stays bounded for large sets.
    """
    r, f = _as_float64(real, "real", 2), _as_float64(fake, "fake", 2)
    _check_same_dim(r, f, "'real' and 'fake'")
    real_radii = _kth_neighbour_squared(r, k, block_elements)
    fake_radii = _kth_neighbour_squared(f, k, block_elements)
    fake_on_real = torch.zeros(f.shape[0], dtype=torch.bool)
    real_on_fake = torch.zeros(r.shape[0], dtype=torch.bool)
    for start, d2 in _squared_distance_blocks(r, f, block_elements):
        rows = slice(start, start + d2.shape[0])
        fake_on_real |= (d2 <= real_radii[rows, None]).any(dim=0)  # fake j in real ball i
        real_on_fake[rows] = (d2 <= fake_radii[None, :]).any(dim=1)  # real i in fake ball j
    return PrecisionRecall(
        precision=float(fake_on_real.double().mean()),
        recall=float(real_on_fake.double().mean()),
        k=k,
    )


def density_coverage(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    k: int = 5,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> DensityCoverage:
    """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
    Generative Models", Eq. 3-4).

    Only real samples get balls, of radius ``NND_k`` within the real set. Density is
    ``1/(k M) sum_j sum_i 1[fake_j in ball(real_i)]`` over the ``M`` fakes (can exceed 1); coverage
    is the fraction of real balls that hold at least one fake. Balls are closed
    (``distance <= radius``); distances as in :func:`precision_recall`.
    """
    r, f = _as_float64(real, "real", 2), _as_float64(fake, "fake", 2)
    _check_same_dim(r, f, "'real' and 'fake'")
    real_radii = _kth_neighbour_squared(r, k, block_elements)
    inside_count = torch.zeros((), dtype=torch.float64)
    covered = torch.zeros(r.shape[0], dtype=torch.bool)
    for start, d2 in _squared_distance_blocks(r, f, block_elements):
        rows = slice(start, start + d2.shape[0])
        inside = d2 <= real_radii[rows, None]  # [real block, M]: fake j in real ball i
        inside_count += inside.sum()
        covered[rows] = inside.any(dim=1)
    return DensityCoverage(
        density=float(inside_count / (k * f.shape[0])),
        coverage=float(covered.double().mean()),
        k=k,
    )
