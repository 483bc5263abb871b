"""Mode coverage on 2-D Gaussian mixtures: non-saturating GAN vs WGAN (clipping) vs WGAN-GP.

    python benchmarks/mode_coverage.py [--quick] [--seeds 0 1 2] [--jobs 2]
        [--out benchmarks/results/mode_coverage.json]

The PacGAN / VEEGAN protocol (see ``gancore.builtin.mode_coverage``): the ring of 8 Gaussians on
the unit circle (std 0.01) and the grid of 25 Gaussians at {-4,-2,0,2,4}^2 (std 0.05); 2,500
samples from the trained (raw, not EMA) generator; a sample is high quality within 3 std of its
nearest mode; a mode is covered if it has a high-quality sample; KL of the high-quality mode
histogram to uniform, in nats.

Matched networks and budgets: every model trains the same MLP generator and critic (``--hidden``
units, 3 hidden layers, ReLU, 2-D latents) on batches of ``--batch`` points for the same number of
critic updates (``--critic-updates``: the same real data seen, about the same compute). The
non-saturating GAN makes one critic update per generator update, the WGANs make 5 (their papers'
ratio), so they make 5x fewer generator updates. Every learning rate decays linearly to 0 over
the run (the WGAN-GP code's schedule), for every model alike. Each model keeps its own paper's
loss, constraint and optimizer:

- ``gan``: non-saturating loss, Adam lr 1e-3, betas (0.5, 0.999) (examples/ring-gan.toml);
- ``wgan-clip``: Wasserstein loss, weights clipped to [-0.01, 0.01], RMSprop lr 5e-4 (the paper
  uses 5e-5 for images over 100k+ generator steps; 10x that for a budget of 2,000);
- ``wgan-gp``: Wasserstein loss, the WGAN-GP authors' toy-data recipe (gan_toy.py): gradient
  penalty lambda 0.1, Adam betas (0.5, 0.9), lr 3e-4 (their 1e-4 runs 100k iterations, 50x ours);
- ``wgan-gp-paper``: the WGAN-GP paper's image recipe: lambda 10, Adam lr 1e-4, betas (0, 0.9).

Each (model, mixture, seed) trains in its own process (``--jobs`` at a time, one thread each) and
the table reports mean ± standard error over seeds next to the published numbers. Results, the
command line, the machine and each run's CPU time go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import machine

MODELS = ("gan", "wgan-clip", "wgan-gp", "wgan-gp-paper")
MIXTURES = ("ring", "grid")
CRITIC_STEPS = {"gan": 1, "wgan-clip": 5, "wgan-gp": 5, "wgan-gp-paper": 5}


def _optimizer(name: str, lr: float, **options: Any) -> dict[str, Any]:
    # Linear decay to 0 over the run, for every model.
    return {"name": name, "lr": lr, "schedule": "linear", "decay_start": 0} | options


# (loss, regularizers, optimizer) of each model; the same optimizer settings for G and D.
RECIPES: dict[str, tuple[str, list[dict[str, Any]], dict[str, Any]]] = {
    "gan": ("non-saturating", [], _optimizer("adam", 1e-3, betas=[0.5, 0.999])),
    "wgan-clip": ("wgan", [{"name": "weight-clip", "clip": 0.01}], _optimizer("rmsprop", 5e-4)),
    "wgan-gp": (
        "wgan",
        [{"name": "wgan-gp", "weight": 0.1}],
        _optimizer("adam", 3e-4, betas=[0.5, 0.9]),
    ),
    "wgan-gp-paper": (
        "wgan",
        [{"name": "wgan-gp", "weight": 10.0}],
        _optimizer("adam", 1e-4, betas=[0.0, 0.9]),
    ),
}

# Published (modes covered, % high quality), from ../shared/REFERENCE.md.
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "GAN (VEEGAN Table 1)": {"ring": (1, 99.3), "grid": (3.3, 0.5)},
    "Unrolled GAN (VEEGAN Table 1)": {"ring": (7.6, 35.6), "grid": (23.6, 16)},
    "VEEGAN (VEEGAN Table 1)": {"ring": (8, 52.9), "grid": (24.6, 40)},
    "GAN (PacGAN Table 1)": {"ring": (6.3, 98.2), "grid": (17.3, 94.8)},
    "PacGAN4 (PacGAN Table 1)": {"ring": (7.8, 95.9), "grid": (24.8, 93.6)},
}


def run_document(model: str, mixture: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """The run's config as a TOML-shaped dict."""
    steps = args.critic_updates // CRITIC_STEPS[model]
    document: dict[str, Any] = {
        "run": {"name": f"{model}-{mixture}-{seed}", "seed": seed, "steps": steps},
        "data": {"name": "toy2d", "mixture": mixture, "seed": seed},
        "generator": {"name": "mlp", "latent_dim": 2, "hidden": args.hidden, "depth": 3},
        "critic": {"name": "mlp", "hidden": args.hidden, "depth": 3},
        "metrics": [{"name": "mode-coverage", "num_samples": 2500, "seed": 1000 + seed}],
        "training": {
            "batch_size": args.batch,
            "critic_steps": CRITIC_STEPS[model],
            "log_every": max(1, steps // 10),
            "sample_every": 0,
            "metrics_every": 0,  # at the end only
            "checkpoint_every": 0,
        },
    }
    loss, regularizers, optimizer = RECIPES[model]
    document["loss"] = {"name": loss}
    document["regularizers"] = regularizers
    document["optimizers"] = {"generator": dict(optimizer), "critic": dict(optimizer)}
    return document


def run_case(model: str, mixture: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one case in this (worker) process; its final mode-coverage scores and wall time."""
    import torch

    torch.set_num_threads(1)
    import gancore

    document = run_document(model, mixture, seed, args)
    config = gancore.parse_config(document, gancore.get_registry(), source=f"{model}/{mixture}")
    started, cpu_started = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        result = gancore.train(config, Path(tmp) / "run", progress=False)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    m = result.metrics
    return {
        "model": model,
        "mixture": mixture,
        "seed": seed,
        "generator_steps": result.step,
        "critic_updates": result.step * CRITIC_STEPS[model],
        "modes_covered": m["mode-coverage.modes_covered"],
        "num_modes": m["mode-coverage.num_modes"],
        "high_quality_percent": m["mode-coverage.high_quality_percent"],
        "kl_uniform": m["mode-coverage.kl_uniform"],
        "train_seconds": round(seconds, 1),  # wall clock: depends on the machine's other load
        "cpu_seconds": round(cpu_seconds, 1),  # CPU time of the (one-thread) training process
        "config": document,
    }


def _quiet_worker() -> None:
    # Workers print only errors: the parent prints one line per finished case.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the worker)


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(n)); NaNs are dropped."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    if len(finite) == 1:
        return finite[0], math.nan
    return statistics.fmean(finite), statistics.stdev(finite) / math.sqrt(len(finite))


def summarize(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for model in MODELS:
        for mixture in MIXTURES:
            rows = [c for c in cases if c["model"] == model and c["mixture"] == mixture]
            if not rows:
                continue
            entry: dict[str, Any] = {"seeds": len(rows)}
            keys = ("modes_covered", "high_quality_percent", "kl_uniform", "cpu_seconds")
            for key in (*keys, "train_seconds"):
                mean, se = mean_se([float(r[key]) for r in rows])
                entry[key] = {"mean": mean, "se": se}
            entry["kl_undefined_seeds"] = sum(math.isnan(r["kl_uniform"]) for r in rows)
            summary[f"{model}/{mixture}"] = entry
    return summary


def _fmt(stat: dict[str, float], digits: int) -> str:
    mean, se = stat["mean"], stat["se"]
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def table(summary: dict[str, dict[str, Any]]) -> str:
    """Markdown: ours (mean ± s.e.) and the published rows."""
    lines = [
        "| model | ring: modes (of 8) | ring: % HQ | ring: KL | grid: modes (of 25) | "
        "grid: % HQ | grid: KL |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        cells = [f"{model} (ours)"]
        for mixture in MIXTURES:
            entry = summary.get(f"{model}/{mixture}")
            if entry is None:
                cells += ["-", "-", "-"]
                continue
            cells += [
                _fmt(entry["modes_covered"], 1),
                _fmt(entry["high_quality_percent"], 1),
                _fmt(entry["kl_uniform"], 2),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    for name, numbers in PUBLISHED.items():
        ring, grid = numbers["ring"], numbers["grid"]
        lines.append(f"| {name} | {ring[0]} | {ring[1]} | - | {grid[0]} | {grid[1]} | - |")
    lines += ["", "| model | ring: CPU s per run | grid: CPU s per run |", "|---|---|---|"]
    for model in MODELS:
        cells = [model]
        for mixture in MIXTURES:
            entry = summary.get(f"{model}/{mixture}")
            cells.append("-" if entry is None else _fmt(entry["cpu_seconds"], 0))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--mixtures", nargs="+", default=list(MIXTURES), choices=MIXTURES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--critic-updates", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--jobs", type=int, default=2, help="cases trained at once")
    parser.add_argument("--quick", action="store_true", help="500 critic updates, seed 0 only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mode_coverage.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.critic_updates, args.seeds = 500, [0]
    # Every model gets the same number of critic updates: a multiple of every critic_steps.
    args.critic_updates -= args.critic_updates % 5

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cases = [(m, x, s) for x in args.mixtures for m in args.models for s in args.seeds]
    print(f"{len(cases)} runs, {args.jobs} at a time", file=sys.stderr, flush=True)
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        args.jobs, mp_context=context, initializer=_quiet_worker
    ) as pool:
        futures = {pool.submit(run_case, m, x, s, args): (m, x, s) for m, x, s in cases}
        for future in concurrent.futures.as_completed(futures):
            row = future.result()
            results.append(row)
            print(
                f"{row['model']:>9} {row['mixture']:>4} seed {row['seed']}: "
                f"{row['modes_covered']}/{row['num_modes']} modes, "
                f"{row['high_quality_percent']:.1f}% HQ, KL {row['kl_uniform']:.3f}, "
                f"{row['cpu_seconds']:.0f} CPU s ({row['train_seconds']:.0f} s wall)",
                file=sys.stderr,
                flush=True,
            )
    results.sort(key=lambda r: (MIXTURES.index(r["mixture"]), MODELS.index(r["model"]), r["seed"]))
    summary = summarize(results)
    report = {
        "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": machine(1, "gan-wgan"),
        "total_seconds": round(time.perf_counter() - started, 1),
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"
        },
        "protocol": {
            "num_samples": 2500,
            "threshold_std": 3.0,
            "generator": "raw (no EMA)",
            "ring": "8 Gaussians on the unit circle, std 0.01",
            "grid": "25 Gaussians at {-4,-2,0,2,4}^2, std 0.05",
        },
        "published": {name: dict(v) for name, v in PUBLISHED.items()},
        "summary": summary,
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(summary))
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
