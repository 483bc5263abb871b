"""Mode coverage on 2-D Gaussian mixtures: techniques (recipes) against mode collapse, side by side.

    python benchmarks/mode_coverage.py [--quick] [--seeds 0 1 2] [--jobs 2]
        [--builtins gan wgan-clip wgan-gp wgan-gp-paper] [--recipes examples/improved-*.toml]
        [--heldout N --heldout-seed S] [--out benchmarks/results/mode_coverage.json]

The PacGAN / VEEGAN protocol (see ``gancore.builtin.mode_coverage``): the ring of 8 Gaussians on
the unit circle (std 0.01) and the grid of 25 Gaussians at {-4,-2,0,2,4}^2 (std 0.05); 2,500
samples from the trained (raw, not EMA) generator; a sample is high quality within 3 std of its
nearest mode; KL of the high-quality mode histogram to uniform, in nats. A mode is covered if it
has at least one high-quality sample (``min_samples`` 1, the papers' count, comparable with their
tables) and, in a second column, at least 20 (``min_samples`` 20: a learned mode, not a stray
sample). Both come from one set of samples: two ``mode-coverage`` metrics with the same seed.

A *recipe* is a named technique: how a run trains, whatever the data. Two kinds:

- built-in recipes (``--builtins``), a dict of overrides on one base run: every one trains the same
  MLP generator and critic (``--hidden`` units, 3 hidden layers, ReLU, 2-D latents) on batches of
  ``--batch`` points, with a learning rate decaying linearly to 0 (the WGAN-GP code's schedule);
  each keeps its own paper's loss, constraint and optimizer:

  - ``gan``: non-saturating loss, Adam lr 1e-3, betas (0.5, 0.999) (examples/ring-gan.toml);
  - ``wgan-clip``: Wasserstein loss, weights clipped to [-0.01, 0.01], RMSprop lr 5e-4 (the paper
    uses 5e-5 for images over 100k+ generator steps; 10x that for a budget of 2,000);
  - ``wgan-gp``: Wasserstein loss, the WGAN-GP authors' toy-data recipe (gan_toy.py): gradient
    penalty lambda 0.1, Adam betas (0.5, 0.9), lr 3e-4 (their 1e-4 runs 100k iterations, 50x ours);
  - ``wgan-gp-paper``: the WGAN-GP paper's image recipe: lambda 10, Adam lr 1e-4, betas (0, 0.9).

- recipe files (``--recipes``): run TOML files such as ``examples/ring-gan.toml``, named by their
  file stem. Everything in the file is kept (networks, loss, regularizers, optimizers, task,
  augmenter, training settings, stages) except what the harness owns: ``[data]`` (the mixture and
  its seed), ``run.name``, ``run.seed``, ``run.steps`` (the budget, below; ``--recipe-steps`` keeps
  the file's), ``[[metrics]]`` (the two mode-coverage metrics) and the bookkeeping intervals
  (``training.log_every``, ``sample_every``, ``metrics_every``, ``checkpoint_every``,
  ``best_metric``, ``best_mode``), which do not change what is learned.

Matched budgets: every run makes ``--critic-updates`` critic updates (the same real data seen,
about the same compute), so a recipe with ``training.critic_steps`` k runs critic_updates / k
iterations: the non-saturating GAN makes one critic update per generator update, the WGANs 5.

Held-out mixtures (``--heldout N --heldout-seed S``): N mixtures that are in no file of the
repository, drawn from the seed S given on the command line (:func:`heldout_mixtures`): a ring or
a grid with another number of modes, radius or spacing, std, centre and unequal weights. Each
recipe trains on each of them with its settings unchanged except ``[data]`` (first seed of
``--seeds``, the same budget), and the report says per recipe on how many of them every mode got
at least 20 high-quality samples, next to the same check on 2,500 points of the real data (the
bar a perfect generator meets). KL is then also given against the true weights (``kl_weights``).

Each run trains in its own process (``--jobs`` at a time, one thread each); the tables report mean
± standard error over seeds next to the published numbers. Results, the command line, the machine,
every run's config and CPU time go to ``--out`` as one JSON.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import glob
import json
import math
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from _machine import machine

BUILTINS = ("gan", "wgan-clip", "wgan-gp", "wgan-gp-paper")
MIXTURES = ("ring", "grid")
NUM_SAMPLES = 2500  # the protocol's sample count
MIN_SAMPLES = (1, 20)  # the two coverage bars: the papers' (1) and a learned mode (20)
# Value keys of the two metrics: [[metrics]] repeated names are keyed name, name-2.
METRIC_KEYS = {1: "mode-coverage", 20: "mode-coverage-2"}
# Keys of [training] that only say when to log, sample, score or save: the harness sets them.
BOOKKEEPING = ("log_every", "sample_every", "metrics_every", "checkpoint_every")


def _optimizer(name: str, lr: float, **options: Any) -> dict[str, Any]:
    # Linear decay to 0 over the run, for every built-in recipe.
    return {"name": name, "lr": lr, "schedule": "linear", "decay_start": 0} | options


def builtin_recipe(name: str, hidden: int, batch: int) -> dict[str, Any]:
    """A built-in recipe as a run document without data, metrics or budget."""
    loss, regularizers, optimizer, critic_steps = {
        "gan": ("non-saturating", [], _optimizer("adam", 1e-3, betas=[0.5, 0.999]), 1),
        "wgan-clip": (
            "wgan",
            [{"name": "weight-clip", "clip": 0.01}],
            _optimizer("rmsprop", 5e-4),
            5,
        ),
        "wgan-gp": (
            "wgan",
            [{"name": "wgan-gp", "weight": 0.1}],
            _optimizer("adam", 3e-4, betas=[0.5, 0.9]),
            5,
        ),
        "wgan-gp-paper": (
            "wgan",
            [{"name": "wgan-gp", "weight": 10.0}],
            _optimizer("adam", 1e-4, betas=[0.0, 0.9]),
            5,
        ),
    }[name]
    return {
        "generator": {"name": "mlp", "latent_dim": 2, "hidden": hidden, "depth": 3},
        "critic": {"name": "mlp", "hidden": hidden, "depth": 3},
        "loss": {"name": loss},
        "regularizers": regularizers,
        "optimizers": {"generator": dict(optimizer), "critic": dict(optimizer)},
        "training": {"batch_size": batch, "critic_steps": critic_steps},
    }


def load_recipes(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``{name: {"source": "builtin" or the file, "document": run document}}``, built-ins first.

    ``--recipes`` patterns are expanded here too (for shells that do not); a pattern that matches
    nothing, a file that does not parse, or two recipes with one name stop the run.
    """
    recipes: dict[str, dict[str, Any]] = {}
    for name in args.builtins:
        document = builtin_recipe(name, args.hidden, args.batch)
        recipes[name] = {"source": "builtin", "document": document}
    for pattern in args.recipes:
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            raise SystemExit(f"error: --recipes {pattern!r} matches no file")
        for path in paths:
            name = Path(path).stem
            if name in recipes:
                raise SystemExit(
                    f"error: two recipes are named {name!r} ({recipes[name]['source']} and "
                    f"{path}); rename one file"
                )
            try:
                document = tomllib.loads(Path(path).read_text())
            except (OSError, tomllib.TOMLDecodeError) as error:
                raise SystemExit(f"error: recipe {path}: {error}") from None
            recipes[name] = {"source": path, "document": document}
    if not recipes:
        raise SystemExit("error: no recipes: give --builtins and/or --recipes")
    return recipes


def critic_steps(recipe: dict[str, Any]) -> int:
    """The recipe's critic updates per iteration (``training.critic_steps``; 1 if unset)."""
    return int(recipe.get("training", {}).get("critic_steps", 1))


def run_document(
    recipe: dict[str, Any],
    data: dict[str, Any],
    seed: int,
    name: str,
    critic_updates: int,
    keep_steps: bool = False,
) -> dict[str, Any]:
    """The recipe's run on ``data`` (toy2d options) for ``seed``: the recipe with the harness's
    data, seed, budget, metrics and bookkeeping."""
    document = copy.deepcopy(recipe)
    run = document.setdefault("run", {})
    steps = run.get("steps", 1000) if keep_steps else critic_updates // critic_steps(recipe)
    run.update({"name": name, "seed": seed, "steps": max(1, steps)})
    document["data"] = {"name": "toy2d", **data, "seed": seed}
    document["metrics"] = [
        {
            "name": "mode-coverage",
            "num_samples": NUM_SAMPLES,
            "seed": 1000 + seed,
            "min_samples": m,
        }
        for m in MIN_SAMPLES
    ]
    training = document.setdefault("training", {})
    for key in ("best_metric", "best_mode"):
        training.pop(key, None)
    training.update(
        {
            "log_every": max(1, run["steps"] // 10),
            "sample_every": 0,
            "metrics_every": 0,  # at the end only
            "checkpoint_every": 0,
        }
    )
    return document


def heldout_mixtures(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` toy2d mixtures drawn from ``seed``: options without ``size`` and ``seed``.

    Half rings, half grids on average. A ring has 5 to 12 modes on a radius in [0.5, 3]; a grid
    has a side of 3 to 5 (9 to 25 modes) and a spacing in [0.5, 3]. The std puts the nearest
    centres 15 to 80 std apart (the protocols: ring 77, grid 40), so 3-std balls never overlap;
    the centre is in [-2, 2]^2 and each weight in [0.5, 1.5] before normalization, so that at
    2,500 samples the lightest mode of a perfect generator still expects 34 or more. Only
    ``random.Random.random`` is used, whose stream Python keeps stable across versions.
    """
    rng = random.Random(seed)

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * rng.random()

    def integer(low: int, high: int) -> int:  # low..high inclusive
        return low + min(int(rng.random() * (high - low + 1)), high - low)

    mixtures = []
    for _ in range(count):
        if rng.random() < 0.5:
            num_modes = integer(5, 12)
            radius = round(uniform(0.5, 3.0), 3)
            gap = 2 * radius * math.sin(math.pi / num_modes)
            options: dict[str, Any] = {"mixture": "ring", "ring_modes": num_modes, "radius": radius}
        else:
            side = integer(3, 5)
            num_modes = side * side
            spacing = round(uniform(0.5, 3.0), 3)
            gap = spacing
            options = {"mixture": "grid", "grid_side": side, "spacing": spacing}
        options["std"] = float(f"{gap / uniform(15.0, 80.0):.3g}")
        options["center"] = [round(uniform(-2.0, 2.0), 2), round(uniform(-2.0, 2.0), 2)]
        options["weights"] = [round(uniform(0.5, 1.5), 3) for _ in range(num_modes)]
        mixtures.append(options)
    return mixtures


def describe(options: dict[str, Any]) -> str:
    """A short label of a held-out mixture, e.g. 'ring 7 r1.84' or 'grid 4x4 s2.1'."""
    if options["mixture"] == "ring":
        return f"ring {options['ring_modes']} r{options['radius']:g}"
    side = options["grid_side"]
    return f"grid {side}x{side} s{options['spacing']:g}"


def data_reference(options: dict[str, Any], seed: int) -> dict[str, Any]:
    """The protocol applied to 2,500 points of the real mixture: what a perfect generator gets."""
    from gancore.builtin.datasets import Toy2dOptions, build_toy2d
    from gancore.builtin.mode_coverage import mode_coverage

    dataset = build_toy2d(Toy2dOptions(**options, size=NUM_SAMPLES, seed=seed), None)
    assert dataset.modes is not None
    assert dataset.mode_std is not None
    result = mode_coverage(
        dataset.points,
        dataset.modes,
        dataset.mode_std,
        min_samples=20,
        weights=dataset.mode_weights,
    )
    return {
        "modes_covered_20": result.modes_covered,
        "num_modes": result.num_modes,
        "min_mode_count": min(result.mode_counts),
        "kl_weights": result.kl_weights,
    }


def run_case(document: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Train one run in this (worker) process; its final mode-coverage scores and times."""
    import torch

    torch.set_num_threads(1)
    import gancore

    config = gancore.parse_config(document, gancore.get_registry(), source=meta["source"])
    started, cpu_started = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        result = gancore.train(config, Path(tmp) / "run", progress=False)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    m = result.metrics
    one, twenty = METRIC_KEYS[1], METRIC_KEYS[20]
    return {
        **meta,
        "iterations": result.step,
        "critic_updates": result.step * config.training.critic_steps,
        "modes_covered": m[f"{one}.modes_covered"],
        "modes_covered_20": m[f"{twenty}.modes_covered"],
        "num_modes": m[f"{one}.num_modes"],
        "min_mode_count": m[f"{one}.min_mode_count"],
        "high_quality_percent": m[f"{one}.high_quality_percent"],
        "kl_uniform": m[f"{one}.kl_uniform"],
        "kl_weights": m[f"{one}.kl_weights"],
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


SUMMARY_KEYS = (
    "modes_covered",
    "modes_covered_20",
    "high_quality_percent",
    "kl_uniform",
    "cpu_seconds",
    "train_seconds",
)


def summarize(cases: list[dict[str, Any]], recipes: list[str]) -> dict[str, dict[str, Any]]:
    """``{"recipe/mixture": {key: {"mean", "se"}, "seeds", "kl_undefined_seeds"}}``."""
    summary: dict[str, dict[str, Any]] = {}
    for recipe in recipes:
        for mixture in MIXTURES:
            rows = [c for c in cases if c["recipe"] == recipe and c["mixture"] == mixture]
            if not rows:
                continue
            entry: dict[str, Any] = {"seeds": len(rows)}
            for key in SUMMARY_KEYS:
                mean, se = mean_se([float(r[key]) for r in rows])
                entry[key] = {"mean": mean, "se": se}
            entry["kl_undefined_seeds"] = sum(math.isnan(r["kl_uniform"]) for r in rows)
            summary[f"{recipe}/{mixture}"] = entry
    return summary


def summarize_heldout(cases: list[dict[str, Any]], recipes: list[str]) -> dict[str, dict[str, Any]]:
    """Per recipe: on how many held-out mixtures every mode got >= 20 high-quality samples."""
    summary: dict[str, dict[str, Any]] = {}
    for recipe in recipes:
        rows = sorted((c for c in cases if c["recipe"] == recipe), key=lambda r: r["heldout_index"])
        if not rows:
            continue
        passed = [r["heldout_index"] for r in rows if r["modes_covered_20"] == r["num_modes"]]
        mean_kl, se_kl = mean_se([float(r["kl_weights"]) for r in rows])
        summary[recipe] = {
            "mixtures": len(rows),
            "all_modes_20": len(passed),
            "passed": passed,
            "kl_weights": {"mean": mean_kl, "se": se_kl},
        }
    return summary


def _fmt(stat: dict[str, float], digits: int) -> str:
    mean, se = stat["mean"], stat["se"]
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def table(summary: dict[str, dict[str, Any]], recipes: list[str]) -> str:
    """Markdown: ours (mean ± s.e.) and the published rows, then CPU time per run."""
    head = ["recipe"]
    for mixture, count in (("ring", 8), ("grid", 25)):
        head += [
            f"{mixture}: modes ≥1 (of {count})",
            f"{mixture}: modes ≥20",
            f"{mixture}: % HQ",
            f"{mixture}: KL",
        ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for recipe in recipes:
        cells = [recipe]
        for mixture in MIXTURES:
            entry = summary.get(f"{recipe}/{mixture}")
            if entry is None:
                cells += ["-"] * 4
                continue
            cells += [
                _fmt(entry["modes_covered"], 1),
                _fmt(entry["modes_covered_20"], 1),
                _fmt(entry["high_quality_percent"], 1),
                _fmt(entry["kl_uniform"], 2),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    for name, numbers in PUBLISHED.items():
        ring, grid = numbers["ring"], numbers["grid"]
        lines.append(f"| {name} | {ring[0]} | - | {ring[1]} | - | {grid[0]} | - | {grid[1]} | - |")
    lines += ["", "| recipe | ring: CPU s per run | grid: CPU s per run |", "|---|---|---|"]
    for recipe in recipes:
        cells = [recipe]
        for mixture in MIXTURES:
            entry = summary.get(f"{recipe}/{mixture}")
            cells.append("-" if entry is None else _fmt(entry["cpu_seconds"], 0))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heldout_table(report: dict[str, Any], recipes: list[str]) -> str:
    """Markdown: per held-out mixture, modes with >= 20 HQ samples; per recipe, how many pass."""
    mixtures = report["mixtures"]
    head = ["recipe", *(f"{i}: {describe(m)}" for i, m in enumerate(mixtures)), "all modes ≥20"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(covered: int, total: int) -> str:
        return f"{covered}/{total}" + (" ✓" if covered == total else "")

    by_case = {(r["recipe"], r["heldout_index"]): r for r in report["runs"]}
    for recipe in recipes:
        entry = report["summary"].get(recipe)
        if entry is None:
            continue
        cells = [recipe]
        for i in range(len(mixtures)):
            row = by_case.get((recipe, i))
            cells.append("-" if row is None else cell(row["modes_covered_20"], row["num_modes"]))
        cells.append(f"{entry['all_modes_20']} of {entry['mixtures']}")
        lines.append("| " + " | ".join(cells) + " |")
    data = report["data_reference"]
    passed = sum(d["modes_covered_20"] == d["num_modes"] for d in data)
    cells = ["real data (2,500 points)"]
    cells += [cell(d["modes_covered_20"], d["num_modes"]) for d in data]
    lines.append("| " + " | ".join([*cells, f"{passed} of {len(data)}"]) + " |")
    return "\n".join(lines)


# Published (modes covered, % high quality), from ../shared/REFERENCE.md.
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "GAN (VEEGAN Table 1)": {"ring": (1, 99.3), "grid": (3.3, 0.5)},
    "Unrolled GAN (VEEGAN Table 1)": {"ring": (7.6, 35.6), "grid": (23.6, 16)},
    "VEEGAN (VEEGAN Table 1)": {"ring": (8, 52.9), "grid": (24.6, 40)},
    "GAN (PacGAN Table 1)": {"ring": (6.3, 98.2), "grid": (17.3, 94.8)},
    "PacGAN4 (PacGAN Table 1)": {"ring": (7.8, 95.9), "grid": (24.8, 93.6)},
}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--builtins", nargs="*", default=list(BUILTINS), choices=BUILTINS, help="built-in recipes"
    )
    parser.add_argument(
        "--recipes", nargs="*", default=[], help="run TOML files (globs allowed) as recipes"
    )
    parser.add_argument(
        "--recipe-steps",
        action="store_true",
        help="train recipe files for their own run.steps instead of the critic-update budget",
    )
    parser.add_argument("--mixtures", nargs="*", default=list(MIXTURES), choices=MIXTURES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--critic-updates", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=256, help="built-in recipes' batch")
    parser.add_argument("--hidden", type=int, default=128, help="built-in recipes' MLP width")
    parser.add_argument("--heldout", type=int, default=0, help="held-out mixtures to train on")
    parser.add_argument("--heldout-seed", type=int, help="seed of the held-out mixtures")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once")
    parser.add_argument("--quick", action="store_true", help="500 critic updates, seed 0 only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mode_coverage.json"))
    args = parser.parse_args(argv)
    if args.heldout < 0 or (args.heldout and args.heldout_seed is None):
        parser.error("--heldout N (>= 0) needs --heldout-seed S: the mixtures come from S")
    if args.quick:
        args.critic_updates, args.seeds = 500, [0]
    # Every built-in gets the same number of critic updates: a multiple of every critic_steps.
    args.critic_updates -= args.critic_updates % 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    recipes = load_recipes(args)
    names = list(recipes)
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for mixture in args.mixtures:
        for name in names:
            for seed in args.seeds:
                recipe = recipes[name]
                keep = args.recipe_steps and recipe["source"] != "builtin"
                document = run_document(
                    recipe["document"],
                    {"mixture": mixture},
                    seed,
                    f"{name}-{mixture}-{seed}",
                    args.critic_updates,
                    keep,
                )
                meta = {"recipe": name, "mixture": mixture, "seed": seed}
                cases.append((document, meta | {"source": recipe["source"]}))
    mixtures = heldout_mixtures(args.heldout, args.heldout_seed) if args.heldout else []
    heldout_seed = args.seeds[0]
    for index, options in enumerate(mixtures):
        for name in names:
            recipe = recipes[name]
            keep = args.recipe_steps and recipe["source"] != "builtin"
            document = run_document(
                recipe["document"],
                options,
                heldout_seed,
                f"{name}-heldout{index}-{heldout_seed}",
                args.critic_updates,
                keep,
            )
            meta = {"recipe": name, "mixture": "heldout", "heldout_index": index}
            cases.append((document, meta | {"seed": heldout_seed, "source": recipe["source"]}))

    # Every config is checked here, before any training: a bad recipe stops the run at once.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import gancore

    for document, meta in cases:
        gancore.parse_config(document, gancore.get_registry(), source=meta["source"])

    print(f"{len(cases)} runs, {args.jobs} at a time", file=sys.stderr, flush=True)
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        args.jobs, mp_context=context, initializer=_quiet_worker
    ) as pool:
        futures = [pool.submit(run_case, document, meta) for document, meta in cases]
        for future in concurrent.futures.as_completed(futures):
            row = future.result()
            results.append(row)
            where = row["mixture"] + (
                f" {row['heldout_index']}" if row["mixture"] == "heldout" else ""
            )
            print(
                f"{row['recipe']:>14} {where:>9} seed {row['seed']}: "
                f"{row['modes_covered']}/{row['num_modes']} modes "
                f"({row['modes_covered_20']} with >= 20), "
                f"{row['high_quality_percent']:.1f}% HQ, KL {row['kl_uniform']:.3f}, "
                f"{row['cpu_seconds']:.0f} CPU s ({row['train_seconds']:.0f} s wall)",
                file=sys.stderr,
                flush=True,
            )
    main_runs = [r for r in results if r["mixture"] != "heldout"]
    main_runs.sort(
        key=lambda r: (MIXTURES.index(r["mixture"]), names.index(r["recipe"]), r["seed"])
    )
    heldout_runs = [r for r in results if r["mixture"] == "heldout"]
    heldout_runs.sort(key=lambda r: (r["heldout_index"], names.index(r["recipe"])))
    summary = summarize(main_runs, names)
    report: dict[str, Any] = {
        "command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
        "machine": machine(1, "gan-wgan", "gan-improved"),
        "total_seconds": round(time.perf_counter() - started, 1),
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"
        },
        "protocol": {
            "num_samples": NUM_SAMPLES,
            "threshold_std": 3.0,
            "min_samples": list(MIN_SAMPLES),
            "generator": "raw (no EMA)",
            "ring": "8 Gaussians on the unit circle, std 0.01",
            "grid": "25 Gaussians at {-4,-2,0,2,4}^2, std 0.05",
        },
        "recipes": {name: recipes[name] for name in names},
        "published": {name: dict(v) for name, v in PUBLISHED.items()},
        "summary": summary,
        "runs": main_runs,
    }
    if mixtures:
        report["heldout"] = {
            "count": args.heldout,
            "seed": args.heldout_seed,
            "training_seed": heldout_seed,
            "mixtures": mixtures,
            "data_reference": [data_reference(m, 10_000 + i) for i, m in enumerate(mixtures)],
            "summary": summarize_heldout(heldout_runs, names),
            "runs": heldout_runs,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if main_runs:
        print(table(summary, names))
    if mixtures:
        print(f"\nHeld-out mixtures (seed {args.heldout_seed}): modes with >= 20 HQ samples\n")
        print(heldout_table(report["heldout"], names))
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
