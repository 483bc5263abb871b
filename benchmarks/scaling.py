"""Scaling on a CPU: processes, metric sample counts, data loading.

    python benchmarks/scaling.py [--quick] [--parts processes metrics data]

Three parts, each case in a fresh process:

- ``processes``: training iterations per second of ``examples/ring-gan.toml`` and
  ``examples/digits-dcgan.toml`` (same global batch) as 1 process with 1 thread, 1 process with 2
  threads, and 2 gloo processes with 1 thread each (``torchrun --nproc_per_node 2 -m gancore
  train``). The rate is read from ``sec_per_step`` of metrics.jsonl: the median over log intervals
  after the first (``log_every`` = 10). Samples, metrics and checkpoints only at the end.
- ``metrics``: time and peak memory of the ``fid`` metric with the bundled ``digits-classifier``
  extractor as the number of generated samples N grows. It runs through the loop's own metric
  context (:class:`gancore.metrics.loop.LoopMetricContext`) on a 16x16 DCGAN generator against the
  digits (real features not cached, so both sides are extracted each time). Peak memory is the
  growth of ``ru_maxrss`` during the evaluation: flat in N because features are streamed into
  running sums, never kept.
- ``data``: batches per second of the loop's batch stream (:func:`gancore._data.batches`) for
  the in-memory digits (one vectorised gather per batch) and for a folder of PNG digits at 32x32
  (decoded per image, uncached) with 0, 1 and 2 loader workers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import machine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path("benchmarks/results/scaling.json")
PLUGINS_OFF = "gancore-test-broken,gancore-test-collide"


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env.setdefault("GANCORE_DISABLE_PLUGINS", PLUGINS_OFF)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -------------------------------------------------------------------------------------------------
# Processes
# -------------------------------------------------------------------------------------------------


def train_rate(recipe: str, steps: int, processes: int, threads: int, port: int) -> dict[str, Any]:
    """Iterations per second of ``recipe`` trained by ``processes`` processes of ``threads``."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        train = [str(ROOT / "examples" / f"{recipe}.toml"), "--run-dir", str(run_dir)]
        train += ["--progress", "lines"]
        for override in (
            f"run.steps={steps}",
            "training.log_every=10",
            "training.sample_every=0",
            "training.checkpoint_every=0",
            "training.metrics_every=0",
        ):
            train += ["--set", override]
        if processes == 1:
            command = [sys.executable, "-m", "gancore", "train", *train]
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node"]
            command += [str(processes), "--master_port", str(port), "-m", "gancore", "train"]
            command += train
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=_env(threads))
        wall = time.perf_counter() - started
        if done.returncode:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            return {"error": lines[-1] if lines else "failed"}
        records = [
            json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        ]
        seconds = [r["sec_per_step"] for r in records if r["event"] == "train"][1:]
        return {
            "recipe": recipe,
            "processes": processes,
            "threads_per_process": threads,
            "steps": steps,
            "steps_per_s": 1.0 / statistics.median(seconds),
            "intervals": len(seconds),
            "wall_s": wall,
        }


# -------------------------------------------------------------------------------------------------
# Metrics as N grows
# -------------------------------------------------------------------------------------------------


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fid_case(n: int) -> dict[str, Any]:
    """The fid component on ``n`` generated and ``n`` real digits, in this process."""
    import gancore
    from gancore._build import build_run
    from gancore.metrics import FIDMetric
    from gancore.metrics.loop import LoopMetricContext

    config = gancore.load_config(ROOT / "examples" / "digits-dcgan.toml")
    built = build_run(config)
    metric = FIDMetric(
        extractor="digits-classifier", num_generated=n, num_real=n, cache_reference=False
    )
    metric.load_extractor()
    generators = {name: g.eval() for name, g in built.generators.items()}
    context = LoopMetricContext(
        built.task, generators, built.dataset, torch.device("cpu"), generator_kind="raw"
    )
    # Warm-up on a few samples: lazy initialisations are not part of the growth with N.
    FIDMetric(
        extractor="digits-classifier", num_generated=64, num_real=64, cache_reference=False
    ).evaluate(context)
    before = _max_rss_mb()
    started = time.perf_counter()
    result = metric.evaluate(context)
    seconds = time.perf_counter() - started
    return {
        "n": n,
        "seconds": seconds,
        "peak_rss_growth_mb": max(0.0, _max_rss_mb() - before),
        "rss_before_mb": before,
        "value": float(result["fd-digits"]),
    }


# -------------------------------------------------------------------------------------------------
# Data loading
# -------------------------------------------------------------------------------------------------


def _write_pngs(folder: Path) -> None:
    import numpy as np
    from PIL import Image

    from gancore.builtin.datasets import DigitsDataset, DigitsOptions

    images = DigitsDataset(DigitsOptions(resolution=32)).images
    pixels = ((images[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(pixels):
        Image.fromarray(np.ascontiguousarray(image), mode="L").save(folder / f"{i:05d}.png")


def data_case(kind: str, workers: int, batches: int, batch_size: int) -> dict[str, Any]:
    """Batches per second of the loop's stream of ``kind`` ('digits' or 'folder')."""
    from gancore._data import BatchPlan
    from gancore._data import batches as stream
    from gancore.builtin.datasets import (
        DigitsDataset,
        DigitsOptions,
        ImageFolderDataset,
        ImageFolderOptions,
    )

    with tempfile.TemporaryDirectory() as tmp:
        dataset: Any
        if kind == "digits":
            dataset = DigitsDataset(DigitsOptions(resolution=32))
        else:
            _write_pngs(Path(tmp) / "pngs")
            dataset = ImageFolderDataset(
                ImageFolderOptions(
                    path=str(Path(tmp) / "pngs"), resolution=32, channels=1, cache=False
                )
            )
        plan = BatchPlan(len(dataset), batch_size, seed=0)
        data = stream(dataset, plan, torch.device("cpu"), workers)
        for _ in range(3):  # warm-up: workers start, first batches
            next(data)
        started = time.perf_counter()
        for _ in range(batches):
            next(data)
        seconds = time.perf_counter() - started
        del data
    return {
        "data": kind,
        "workers": workers,
        "batch_size": batch_size,
        "batches_per_s": batches / seconds,
        "images_per_s": batches * batch_size / seconds,
    }


# -------------------------------------------------------------------------------------------------
# Driver
# -------------------------------------------------------------------------------------------------


def _in_subprocess(args: list[str], threads: int = 1) -> dict[str, Any]:
    command = [sys.executable, __file__, *args, "--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=_env(threads))
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return {"error": lines[-1] if lines else "failed"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["processes", "metrics", "data"])
    parser.add_argument("--quick", action="store_true", help="fewer steps and sizes")
    parser.add_argument("--repeats", type=int, default=2, help="runs per process configuration")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--fid-case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batches_timed = 20 if args.quick else 60
    if args.fid_case:
        print(json.dumps(fid_case(args.fid_case)))
        return
    if args.data_case:
        kind, workers = args.data_case[0], int(args.data_case[1])
        print(json.dumps(data_case(kind, workers, batches_timed, 64)))
        return
    if args.quick:
        args.sizes, args.repeats = [500, 2000], 1
    load_at_start = list(os.getloadavg())
    report: dict[str, Any] = {"processes": [], "metrics": [], "data": []}
    lines: list[str] = []

    if "processes" in args.parts:
        recipes = {
            "ring-gan": 100 if args.quick else 300,
            "digits-dcgan": 40 if args.quick else 100,
        }
        layouts = [(1, 1), (1, 2), (2, 1)]
        port = 29500 + os.getpid() % 1000
        lines += [
            f"{'recipe':<14} {'processes x threads':>19} {'steps/s':>8} {'vs 1x1':>7}",
            "-" * 51,
        ]
        for recipe, steps in recipes.items():
            base = None
            for processes, threads in layouts:
                runs = []
                for _ in range(args.repeats):
                    print(f"processes: {recipe} {processes}x{threads}", file=sys.stderr)
                    runs.append(train_rate(recipe, steps, processes, threads, port))
                ok = [r for r in runs if "error" not in r]
                if not ok:
                    report["processes"].append(
                        {"recipe": recipe, "processes": processes, **runs[0]}
                    )
                    lines.append(
                        f"{recipe:<14} {processes}x{threads:<17} failed: {runs[0]['error']}"
                    )
                    continue
                rate = statistics.median(r["steps_per_s"] for r in ok)
                base = base or rate
                entry = {
                    **ok[0],
                    "steps_per_s": rate,
                    "runs_steps_per_s": [r["steps_per_s"] for r in ok],
                }
                entry["speedup_vs_1x1"] = rate / base
                report["processes"].append(entry)
                lines.append(
                    f"{recipe:<14} {f'{processes} x {threads}':>19} {rate:>8.2f} {rate / base:>7.2f}"
                )
        lines.append("")

    if "metrics" in args.parts:
        lines += [f"{'fid N':>7} {'seconds':>8} {'peak MB':>8} {'value':>9}", "-" * 35]
        for n in args.sizes:
            print(f"metrics: fid N={n}", file=sys.stderr)
            result = _in_subprocess(["--fid-case", str(n)], args.threads)
            report["metrics"].append(result)
            if "error" in result:
                lines.append(f"{n:>7} failed: {result['error']}")
                continue
            lines.append(
                f"{n:>7} {result['seconds']:>8.2f} {result['peak_rss_growth_mb']:>8.1f} "
                f"{result['value']:>9.4g}"
            )
        lines.append("")

    if "data" in args.parts:
        lines += [f"{'data':<8} {'workers':>7} {'batches/s':>10} {'images/s':>9}", "-" * 37]
        for kind, workers in (("digits", 0), ("folder", 0), ("folder", 1), ("folder", 2)):
            print(f"data: {kind} workers={workers}", file=sys.stderr)
            result = _in_subprocess(["--data-case", kind, str(workers)], args.threads)
            report["data"].append(result)
            if "error" in result:
                lines.append(f"{kind:<8} {workers:>7} failed: {result['error']}")
                continue
            lines.append(
                f"{kind:<8} {workers:>7} {result['batches_per_s']:>10.1f} "
                f"{result['images_per_s']:>9.0f}"
            )

    print("\n".join(lines))
    out = {
        "machine": {**machine(), "load_average_at_start": load_at_start},
        "settings": {
            "repeats": args.repeats,
            "sizes": args.sizes,
            "threads": args.threads,
            "batches_timed": batches_timed,
            "rate": "median sec_per_step over log intervals after the first (log_every 10)",
            "memory": "growth of ru_maxrss during the metric, fresh process per N",
        },
        **report,
        "command": " ".join(["python", "benchmarks/scaling.py", *(argv or sys.argv[1:])]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
