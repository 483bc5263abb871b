"""Time and peak memory of gancore's FID, KID and precision/recall against peer implementations.

    python benchmarks/metrics.py [--quick] [--sizes 10000 50000] [--out benchmarks/results/metrics.json]

Features are random (standard normal, float32, dimension 2048 by default): the cost of the metrics
does not depend on the values. Each (implementation, metric, N) case runs in a fresh Python process
so that its peak memory can be read from ``ru_maxrss``: the figure reported is the growth of the
peak resident set during the metric, over the process's size once the features exist. Times are
medians over ``--repeats`` runs after ``--warmup`` runs.

What each case times:

- FID (ours): two :class:`gancore.metrics.FeatureStats` fed in batches of 1000, then
  :func:`gancore.metrics.frechet_distance`. torchmetrics: ``FrechetInceptionDistance`` with an
  identity feature module, ``update`` in batches of 1000, ``compute``. Both in float64.
- KID (ours): :func:`gancore.metrics.kernel_inception_distance` on the float32 features (subsets
  are converted to float64). torchmetrics: ``KernelInceptionDistance`` with an identity module, fed
  float64 features so both compute in float64. 100 subsets of 1000 (10 in ``--quick``).
- stream (ours only, with ``--metrics stream``): the whole ``fid`` component, generating N random
  16x16 images per side batch by batch and extracting digits-classifier features, to show that
  generation and extraction stream: peak memory does not grow with N.
- PR (ours): :func:`gancore.metrics.precision_recall` with k = 3 (float64 distances, in blocks).
  torchmetrics has no k-NN precision/recall for generative models, so the peer for PR is ``prdc``
  (Naeem et al. 2020, the reference code of density/coverage, which computes precision and recall
  by the same k-NN definition): ``compute_prdc(real, fake, nearest_k=3)`` on the same float32
  features. It holds three full ``N x N`` distance matrices and also returns density and coverage
  from them, so its time covers all four values; it is skipped above ``--prdc-max`` (at N = 50,000
  the matrices alone need 30 GB). The value reported for PR is ``precision + 10 * recall``.

Cases that need more than a minute per run (N >= ``--single-above``) are timed once, without a
warm-up run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _machine import machine

BATCH = 1000


def _features(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(n, dim, generator=generator)
    # In place: a temporary copy would raise the peak memory before the metric is measured.
    fake = torch.randn(n, dim, generator=generator).mul_(1.1).add_(0.05)
    return real, fake


class _Identity(torch.nn.Module):
    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _ours_fid(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int) -> float:
    from gancore.metrics import FeatureStats, frechet_distance

    stats = [FeatureStats(), FeatureStats()]
    for accumulator, features in zip(stats, (real, fake), strict=True):
        for start in range(0, len(features), BATCH):
            accumulator.update(features[start : start + BATCH])
    a, b = stats
    return frechet_distance(a.mean(), a.covariance(), b.mean(), b.covariance())


def _torchmetrics_fid(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Identity(real.shape[1]))
    for features, is_real in ((real, True), (fake, False)):
        for start in range(0, len(features), BATCH):
            metric.update(features[start : start + BATCH], real=is_real)
    return float(metric.compute())


def _ours_kid(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int) -> float:
    from gancore.metrics import kernel_inception_distance

    return kernel_inception_distance(real, fake, num_subsets=kid_subsets, subset_size=1000).mean


def _torchmetrics_kid(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int) -> float:
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():  # its "keeps all features in memory" notice
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=_Identity(real.shape[1]), subsets=kid_subsets, subset_size=1000
        )
    for features, is_real in ((real, True), (fake, False)):
        for start in range(0, len(features), BATCH):
            metric.update(features[start : start + BATCH].double(), real=is_real)
    return float(metric.compute()[0])


def _ours_pr(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int) -> float:
    from gancore.metrics import precision_recall

    result = precision_recall(real, fake, k=3)
    return result.precision + 10 * result.recall  # both in one number: recall in the tens


def _prdc_pr(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int) -> float:
    import contextlib
    import io

    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the sample counts
        result = compute_prdc(real.numpy(), fake.numpy(), nearest_k=3)
    return float(result["precision"] + 10 * result["recall"])


class _RandomDigits:
    """A stand-in MetricContext: N random 1x16x16 images per side, made batch by batch, so that
    only the metric's own memory shows in the peak."""

    def __init__(self, n: int) -> None:
        self.dataset = range(n)  # only its length is used
        self.device = torch.device("cpu")

    def _batches(self, num: int, batch_size: int, seed: int) -> Any:
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, num, batch_size):
            size = min(batch_size, num - start)
            yield torch.rand(size, 1, 16, 16, generator=generator) * 2 - 1

    def generate(self, num: int, batch_size: int, seed: int) -> Any:
        return self._batches(num, batch_size, seed + 1)

    def real(self, num: int, batch_size: int, seed: int) -> Any:
        return self._batches(num, batch_size, seed)


def _ours_stream(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int) -> float:
    """The whole `fid` component: generation and digits-classifier extraction of N images per
    side, streamed in batches of 500 (real features not cached)."""
    from gancore.metrics import FIDMetric

    n = int(real.item())
    metric = FIDMetric(
        extractor="digits-classifier", num_generated=n, batch_size=500, cache_reference=False
    )
    return float(metric.evaluate(_RandomDigits(n))["fd-digits"])


CASES: dict[str, Callable[[torch.Tensor, torch.Tensor, int], float]] = {
    "ours:fid": _ours_fid,
    "torchmetrics:fid": _torchmetrics_fid,
    "ours:kid": _ours_kid,
    "torchmetrics:kid": _torchmetrics_kid,
    "ours:pr": _ours_pr,
    "prdc:pr": _prdc_pr,
    "ours:stream": _ours_stream,
}

# Imported before the clock starts, so no case pays for an import.
_IMPORTS = {
    "ours": ["gancore.metrics"],
    "torchmetrics": ["torchmetrics.image.fid", "torchmetrics.image.kid"],
    "prdc": ["prdc"],
}


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_case(case: str, n: int, dim: int, repeats: int, warmup: int, kid_subsets: int) -> dict:
    """One case in this process: times, peak memory growth, value."""
    import importlib

    if case == "ours:stream":  # images are made inside, batch by batch; pass only N
        real, fake = torch.tensor(n), torch.tensor(n)
    else:
        real, fake = _features(n, dim, seed=0)
    function = CASES[case]
    for module in _IMPORTS[case.split(":")[0]]:
        importlib.import_module(module)
    before = _max_rss_mb()
    times, value = [], float("nan")
    for run in range(warmup + repeats):
        started = time.perf_counter()
        value = function(real, fake, kid_subsets)
        if run >= warmup:
            times.append(time.perf_counter() - started)
    implementation, metric = case.split(":")
    return {
        "implementation": implementation,
        "metric": metric,
        "n": n,
        "dim": 128 if case == "ours:stream" else dim,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "peak_rss_growth_mb": max(0.0, _max_rss_mb() - before),
        "value": value,
    }


def _machine() -> dict[str, Any]:
    return machine(None, "torchmetrics", "prdc", "numpy")


def _table(results: list[dict]) -> str:
    header = f"{'metric':<6} {'N':>6}  {'impl':<12} {'median s':>9} {'peak MB':>8}  "
    header += f"{'value':>12}  {'time ours/peer':>14}"
    lines = [header, "-" * len(header)]
    by_key = {(r["metric"], r["n"], r["implementation"]): r for r in results}
    for r in results:
        other = by_key.get((r["metric"], r["n"], "torchmetrics"))
        ratio = ""
        if other is None:
            other = by_key.get((r["metric"], r["n"], "prdc"))
        if r["implementation"] == "ours" and other is not None:
            ratio = f"{r['median_s'] / other['median_s']:.2f}"
        lines.append(
            f"{r['metric']:<6} {r['n']:>6}  {r['implementation']:<12} {r['median_s']:>9.2f} "
            f"{r['peak_rss_growth_mb']:>8.0f}  {r['value']:>12.6g}  {ratio:>14}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 2000, 5000; 1 repeat; 10 subsets")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--single-above",
        type=int,
        default=50_000,
        help="N from which a case runs once, without warm-up (they take minutes)",
    )
    parser.add_argument("--pr-max", type=int, default=50_000, help="largest N for precision/recall")
    parser.add_argument("--prdc-max", type=int, default=10_000, help="largest N for prdc")
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=["fid", "kid", "pr"],
        help="fid, kid, pr, and stream (the fid component end to end on generated 16x16 images "
        "through the digits classifier: flat memory in N)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/metrics.json"))
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads per case (torch, OpenMP, BLAS); default: torch's default. On a machine "
        "shared with other jobs, 1 gives steadier times",
    )
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats, args.kid_subsets = [2000, 5000], 1, 10

    if args.case:
        if args.threads:
            torch.set_num_threads(args.threads)
        n = args.sizes[0]
        print(
            json.dumps(
                run_case(args.case, n, args.dim, args.repeats, args.warmup, args.kid_subsets)
            )
        )
        return

    results: list[dict] = []
    skipped: list[dict] = []
    load_at_start = list(os.getloadavg())
    for n in args.sizes:
        for case in CASES:
            metric = case.split(":")[1]
            if metric not in args.metrics or (metric == "pr" and n > args.pr_max):
                continue
            if case == "prdc:pr" and n > args.prdc_max:
                skipped.append({"case": case, "n": n, "reason": f"N > --prdc-max {args.prdc_max}"})
                continue
            single = n >= args.single_above
            repeats, warmup = (1, 0) if single else (args.repeats, args.warmup)
            command = [sys.executable, __file__, "--case", case, "--sizes", str(n)]
            command += ["--dim", str(args.dim), "--repeats", str(repeats)]
            command += ["--warmup", str(warmup), "--kid-subsets", str(args.kid_subsets)]
            env = dict(os.environ)
            if args.threads:
                command += ["--threads", str(args.threads)]
                for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                    env[name] = str(args.threads)
            print(f"running {case} N={n} ...", file=sys.stderr, flush=True)
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(_table(results))
    report = {
        "machine": {**_machine(), "load_average_at_start": load_at_start},
        "settings": {
            "sizes": args.sizes,
            "dim": args.dim,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "kid_subsets": args.kid_subsets,
            "kid_subset_size": 1000,
            "threads": args.threads or torch.get_num_threads(),
            "pr_k": 3,
            "pr_max": args.pr_max,
            "prdc_max": args.prdc_max,
            "single_run_from_n": args.single_above,
            "batch": BATCH,
            "memory": "growth of ru_maxrss during the metric, fresh process per case",
        },
        "results": results,
        "skipped": skipped,
        "command": " ".join(["python", "benchmarks/metrics.py", *sys.argv[1:]]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
