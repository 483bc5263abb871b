"""Time and peak memory of gancore's FID, KID and precision/recall against torchmetrics.

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
- PR (ours only; torchmetrics has no k-NN precision/recall for generative models):
  :func:`gancore.metrics.precision_recall` with k = 3, only for N <= ``--pr-max``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

BATCH = 1000


def _features(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(n, dim, generator=generator)
    fake = torch.randn(n, dim, generator=generator) * 1.1 + 0.05
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
    return result.precision  # recall is computed in the same call


CASES: dict[str, Callable[[torch.Tensor, torch.Tensor, int], float]] = {
    "ours:fid": _ours_fid,
    "torchmetrics:fid": _torchmetrics_fid,
    "ours:kid": _ours_kid,
    "torchmetrics:kid": _torchmetrics_kid,
    "ours:pr": _ours_pr,
}


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_case(case: str, n: int, dim: int, repeats: int, warmup: int, kid_subsets: int) -> dict:
    """One case in this process: times, peak memory growth, value."""
    real, fake = _features(n, dim, seed=0)
    function = CASES[case]
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
        "dim": dim,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "peak_rss_growth_mb": max(0.0, _max_rss_mb() - before),
        "value": value,
    }


def _machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import torchmetrics

    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchmetrics": torchmetrics.__version__,
        "numpy": numpy.__version__,
        # The machine may be shared: a load average above the core count means the times are
        # inflated by other processes.
        "load_average_1_5_15_min": list(os.getloadavg()),
    }


def _table(results: list[dict]) -> str:
    header = f"{'metric':<6} {'N':>6}  {'impl':<12} {'median s':>9} {'peak MB':>8}  "
    header += f"{'value':>12}  {'time ours/tm':>12}"
    lines = [header, "-" * len(header)]
    by_key = {(r["metric"], r["n"], r["implementation"]): r for r in results}
    for r in results:
        other = by_key.get((r["metric"], r["n"], "torchmetrics"))
        ratio = ""
        if r["implementation"] == "ours" and other is not None:
            ratio = f"{r['median_s'] / other['median_s']:.2f}"
        lines.append(
            f"{r['metric']:<6} {r['n']:>6}  {r['implementation']:<12} {r['median_s']:>9.2f} "
            f"{r['peak_rss_growth_mb']:>8.0f}  {r['value']:>12.6g}  {ratio:>12}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 2000, 5000; 1 repeat; 10 subsets")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--pr-max", type=int, default=10_000, help="largest N for precision/recall")
    parser.add_argument("--metrics", nargs="+", default=["fid", "kid", "pr"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/metrics.json"))
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    parser.add_argument("--kid-subsets", type=int, default=100)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats, args.kid_subsets = [2000, 5000], 1, 10

    if args.case:
        n = args.sizes[0]
        print(
            json.dumps(
                run_case(args.case, n, args.dim, args.repeats, args.warmup, args.kid_subsets)
            )
        )
        return

    results = []
    load_at_start = list(os.getloadavg())
    for n in args.sizes:
        for case in CASES:
            metric = case.split(":")[1]
            if metric not in args.metrics or (metric == "pr" and n > args.pr_max):
                continue
            command = [sys.executable, __file__, "--case", case, "--sizes", str(n)]
            command += ["--dim", str(args.dim), "--repeats", str(args.repeats)]
            command += ["--warmup", str(args.warmup), "--kid-subsets", str(args.kid_subsets)]
            print(f"running {case} N={n} ...", file=sys.stderr, flush=True)
            done = subprocess.run(command, capture_output=True, text=True, check=True)
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
            "pr_k": 3,
            "pr_max": args.pr_max,
            "batch": BATCH,
            "memory": "growth of ru_maxrss during the metric, fresh process per case",
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
