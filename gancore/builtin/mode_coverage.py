"""Mode coverage of a Gaussian mixture: how many modes a generator reaches, and how cleanly.

The protocol of VEEGAN (Srivastava et al. 2017, Sec. 5.1) and PacGAN (Lin et al. 2018, Sec. 5.1):
draw 2,500 samples; a sample is *high quality* if it lies within ``threshold`` (3) standard
deviations of its nearest mode; a mode is *covered* if at least one high-quality sample is nearest
to it. PacGAN also reports the KL divergence of the histogram of high-quality samples over the modes
to the uniform distribution.

Two additions, both off by default so that the published protocol's numbers stay comparable:
``min_samples`` raises the bar for "covered" (a mode then needs at least that many high-quality
samples: one stray sample is not a learned mode), and ``kl_weights`` compares the histogram with the
mixture's true weights (a dataset's ``mode_weights``) instead of the uniform distribution, which is
the right reference for a mixture with unequal weights.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch

if TYPE_CHECKING:
    from gancore.protocols import MetricContext

__all__ = ["ModeCoverage", "ModeCoverageMetric", "mode_coverage", "mode_weights_or_uniform"]


@attrs.frozen(kw_only=True)
class ModeCoverage:
    """The result of ``mode_coverage``."""

    modes_covered: int  # modes with at least min_samples high-quality samples, 0..num_modes
    num_modes: int  # M
    high_quality: float  # percentage (0..100) of samples within threshold*std of their nearest mode
    kl: float  # KL(p || uniform) in nats of the high-quality histogram p; NaN if it is empty
    num_samples: int  # N, all samples (high quality or not)
    mode_counts: tuple[int, ...]  # high-quality samples nearest to each mode, in the modes' order
    kl_weights: float  # KL(p || w) in nats against the mixture weights w; = kl when w is uniform
    min_samples: int  # high-quality samples a mode needs to count as covered


def _as_float64(name: str, rows: str, value: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(value).detach().to(device="cpu", dtype=torch.float64)
    if tensor.ndim != 2 or tensor.shape[0] == 0:
        raise ValueError(
            f"mode_coverage: {name} must have shape [{rows}, D] with at least one row "
            f"(got {list(tensor.shape)})"
        )
    return tensor


def _modes_bytes(modes: np.ndarray | torch.Tensor) -> bytes:
    """The modes' float64 values, row by row, as bytes (what ``modes_sha256`` hashes)."""
    return _as_float64("modes", "M", modes).contiguous().numpy().tobytes()


def mode_weights_or_uniform(
    weights: Sequence[float] | np.ndarray | torch.Tensor | None,
    num_modes: int,
    who: str = "mode_coverage: 'weights'",
) -> torch.Tensor:
    """``weights`` ``[M]`` as float64 summing to 1, or the uniform ``1/M`` when ``None``.

    Every weight must be finite and > 0 (a mode of weight 0 is no mode); they are divided by their
    sum, so ``[1, 2, 1]`` means ``[0.25, 0.5, 0.25]``; equal weights give exactly ``1/M``. A mistake
    is one line that starts with ``who`` (what the weights are).
    """
    if weights is None:
        return torch.full((num_modes,), 1.0 / num_modes, dtype=torch.float64)
    # dtype given to as_tensor: a list of Python floats must not pass through float32.
    values = torch.as_tensor(weights, dtype=torch.float64).detach().cpu()
    if values.shape != (num_modes,):
        raise ValueError(
            f"{who} must have shape [M] = [{num_modes}], one per mode (got {list(values.shape)})"
        )
    if not bool(torch.isfinite(values).all() and (values > 0).all()):
        raise ValueError(f"{who} must be finite numbers > 0 (got {values.tolist()!r})")
    if bool((values == values[0]).all()):  # equal weights: exactly the uniform ones, same hash
        return torch.full((num_modes,), 1.0 / num_modes, dtype=torch.float64)
    return values / values.sum()


def mode_coverage(
    samples: np.ndarray | torch.Tensor,
    modes: np.ndarray | torch.Tensor,
    std: float,
    threshold: float = 3.0,
    *,
    min_samples: int = 1,
    weights: Sequence[float] | np.ndarray | torch.Tensor | None = None,
) -> ModeCoverage:
    """Mode coverage of ``samples`` ``[N, D]`` against the mixture ``modes`` ``[M, D]``.

    ``std`` is the per-coordinate standard deviation of each mixture component and ``threshold`` the
    high-quality radius in units of ``std``; a sample at distance exactly ``threshold * std`` counts
    as high quality. Each sample belongs to its nearest mode (Euclidean; ties go to the first mode).
    Non-finite samples are never high quality. A mode is covered when at least ``min_samples``
    high-quality samples belong to it (1 = the VEEGAN / PacGAN protocol).

    With ``p_i`` the fraction of high-quality samples nearest to mode ``i``, the KL divergence to
    the uniform distribution is ``KL(p || u) = sum_{i: p_i > 0} p_i * log(p_i * M)``, with the
    convention ``0 log 0 = 0``: empty modes contribute nothing, so it is finite, 0 for a uniform
    histogram and ``log M`` when all samples fall on one mode. Against the mixture ``weights`` ``w``
    (``[M]``, > 0, normalized here; ``None`` = uniform) it is ``KL(p || w) = sum_{i: p_i > 0} p_i *
    log(p_i / w_i)``, 0 when the histogram matches the weights and ``-log w_j`` when all samples
    fall on mode ``j``; with equal weights it is exactly ``KL(p || u)``. Both are NaN when there are
    no high-quality samples (``p`` is undefined). ``min_samples`` does not change either KL: they
    describe the whole histogram. Everything is computed in float64.
    """
    if not std > 0 or not math.isfinite(std):
        raise ValueError(f"mode_coverage: 'std' must be a positive number (got {std!r})")
    if not threshold > 0 or not math.isfinite(threshold):
        raise ValueError(
            f"mode_coverage: 'threshold' must be a positive number (got {threshold!r})"
        )
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise ValueError(f"mode_coverage: 'min_samples' must be an int >= 1 (got {min_samples!r})")
    points = _as_float64("samples", "N", samples)
    centres = _as_float64("modes", "M", modes)
    if points.shape[1] != centres.shape[1]:
        raise ValueError(
            f"mode_coverage: samples [N, D] and modes [M, D] must have the same D "
            f"(got samples {list(points.shape)}, modes {list(centres.shape)})"
        )
    num_modes = centres.shape[0]
    w = mode_weights_or_uniform(weights, num_modes)
    # Exact pairwise differences, not the |x|^2 - 2x.y + |y|^2 expansion, which loses precision.
    distances = torch.cdist(points, centres, compute_mode="donot_use_mm_for_euclid_dist")  # [N, M]
    nearest_distance, nearest_mode = distances.min(dim=1)
    high_quality = nearest_distance <= threshold * std  # NaN compares False
    counts = torch.bincount(nearest_mode[high_quality], minlength=num_modes)
    num_high_quality = int(counts.sum())
    if num_high_quality == 0:
        kl = kl_weights = math.nan
    else:
        present = counts > 0
        p = counts[present].double() / num_high_quality
        kl = float((p * torch.log(p * num_modes)).sum())
        # Equal weights are the uniform distribution: the same formula, so the same bits.
        uniform = bool((w == w[0]).all())
        kl_weights = kl if uniform else float((p * torch.log(p / w[present])).sum())
    return ModeCoverage(
        modes_covered=int((counts >= min_samples).sum()),
        num_modes=num_modes,
        high_quality=100.0 * num_high_quality / points.shape[0],
        kl=kl,
        num_samples=points.shape[0],
        mode_counts=tuple(int(c) for c in counts),
        kl_weights=kl_weights,
        min_samples=min_samples,
    )


@attrs.frozen(kw_only=True)
class ModeCoverageMetric:
    """``mode-coverage``: modes covered, percentage of high-quality samples, KL to uniform and to
    the mixture's weights.

    Scores generated samples against the dataset's ``modes`` and ``mode_std`` (``toy2d`` mixtures
    other than 'swissroll', or an ``npz`` that stores them) and its optional ``mode_weights``
    (``[M]``, the mixture weights; absent or ``None`` = equal weights) with ``mode_coverage``.
    Returns ``modes_covered`` (modes with at least ``min_samples`` high-quality samples),
    ``num_modes``, ``high_quality_percent``, ``kl_uniform`` and ``kl_weights`` (nats; NaN when no
    sample is high quality), ``min_mode_count`` (the fewest high-quality samples of any mode),
    ``min_samples``, ``num_samples``, ``seed``, ``threshold_std``, and a ``protocol`` dict with those
    settings and the dataset's ``num_modes``, ``mode_std``, ``modes_sha256`` (the sha256 of the
    modes' float64 values, in order: which mixture, exactly) and ``mode_weights_sha256`` (the same
    for the normalized weights; equal weights hash alike whether the dataset states them or not).
    ``batch_size`` is not in it: the samples do not depend on it (a metric context draws sample
    ``k`` the same way whatever the batch size).
    """

    num_samples: int = attrs.field(
        default=2500,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "generated samples to score; >= 1 (VEEGAN and PacGAN use 2,500)"},
    )
    threshold: float = attrs.field(
        default=3.0,
        converter=float,
        validator=attrs.validators.gt(0.0),
        metadata={
            "doc": "a sample is high quality within this many mode standard deviations of its "
            "nearest mode; > 0 (VEEGAN and PacGAN use 3)"
        },
    )
    seed: int = attrs.field(
        default=0,
        validator=attrs.validators.instance_of(int),
        metadata={"doc": "seed of the generator's latents, so scores are comparable across runs"},
    )
    min_samples: int = attrs.field(
        default=1,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "a mode counts as covered with at least this many high-quality samples; >= 1 "
            "(1 = VEEGAN and PacGAN, whose figures it keeps comparable; 20 asks for a learned "
            "mode, not a stray sample)"
        },
    )
    batch_size: int = attrs.field(
        default=500,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "samples generated per forward pass; >= 1 (memory, not result: sample k is "
            "the same whatever the batch size)"
        },
    )

    def evaluate(self, context: MetricContext) -> dict[str, Any]:
        """Score ``context.generate(num_samples, batch_size, seed)`` against the dataset's modes."""
        dataset = context.dataset
        modes = getattr(dataset, "modes", None)
        mode_std = getattr(dataset, "mode_std", None)
        if modes is None or mode_std is None:
            raise ValueError(
                f"mode-coverage: dataset {type(dataset).__name__} has no 'modes' and 'mode_std'; "
                "use a toy2d mixture other than 'swissroll' or an npz that stores them"
            )
        with torch.no_grad():
            batches = [
                batch.detach().to(device="cpu", dtype=torch.float64)
                for batch in context.generate(self.num_samples, self.batch_size, self.seed)
            ]
        samples = torch.cat(batches) if batches else torch.empty(0, 0, dtype=torch.float64)
        expected = (self.num_samples, modes.shape[1])
        if tuple(samples.shape) != expected:
            raise ValueError(
                f"mode-coverage: expected {self.num_samples} generated samples of shape "
                f"[{self.num_samples}, {modes.shape[1]}] (got {list(samples.shape)})"
            )
        weights = mode_weights_or_uniform(
            getattr(dataset, "mode_weights", None),
            modes.shape[0],
            f"mode-coverage: dataset {type(dataset).__name__}'s 'mode_weights'",
        )
        result = mode_coverage(
            samples,
            modes,
            float(mode_std),
            self.threshold,
            min_samples=self.min_samples,
            weights=weights,
        )
        return {
            "modes_covered": result.modes_covered,
            "num_modes": result.num_modes,
            "high_quality_percent": result.high_quality,
            "kl_uniform": result.kl,
            "kl_weights": result.kl_weights,
            "min_mode_count": min(result.mode_counts),
            "min_samples": self.min_samples,
            "num_samples": result.num_samples,
            "seed": self.seed,
            "threshold_std": self.threshold,
            "protocol": {
                "metric": "mode-coverage",
                "num_samples": result.num_samples,
                "seed": self.seed,
                "threshold_std": self.threshold,
                "min_samples": self.min_samples,
                "num_modes": result.num_modes,
                "mode_std": float(mode_std),
                "modes_sha256": hashlib.sha256(_modes_bytes(modes)).hexdigest(),
                "mode_weights_sha256": hashlib.sha256(weights.numpy().tobytes()).hexdigest(),
            },
        }
