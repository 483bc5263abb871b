"""Conditional models on the digits at 16x16, same budget and seeds for each (issue 20).

    python benchmarks/conditional.py [--quick] [--steps N] [--seeds 0 1 2] [--jobs 2] [--out FILE]
        [--models NAME ...] [--set task.KEY=VALUE ...] [--merge]

Models: unconditional DCGAN; cGAN (concat critic), projection critic and ACGAN, all three with
the same one-hot concat generator; the projection critic with a conditional-batchnorm generator
(projection-cbn); and InfoGAN (8 noise + Cat(10) + 2 continuous codes; infogan-cat: without
the continuous codes; infogan-real and infogan-cat-real: the same with the Q head's real-data
terms, ``real_marginal_weight = real_entropy_weight = 0.3``; infogan-sat and infogan-cat-sat:
with IMSAT's weighting and its consistency under moves, marginal 1, entropy 0.3, consistency
1). For each:
FD on the digits extractor (``fid.fd-digits``, EMA-free raw generator as the run's metric
context gives it), class accuracy and intra-FD of generated samples per class (conditional
models), InfoGAN's categorical code accuracy after Hungarian matching. Mean and standard error
over seeds. ``--jobs`` runs that many trainings at once, one thread each (the runs are
deterministic for a given thread count). ``--set`` changes one key of every model's run
document (``task.real_consistency_weight=0.3``; the value read as TOML), for trials of one
change. ``--quick`` trains 60 steps and one seed (a smoke test of the script, not a result).
Needs the gan-conditional plugin installed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import torch
from _machine import finish, machine

import gancore
import gancore.testing as gt

DCGAN_G = {"name": "dcgan", "latent_dim": 32, "channels": 32}
DCGAN_D = {"name": "dcgan", "channels": 32, "norm": "none"}
# The conditional generators take the label as a one-hot concatenated to z (32 noise + 10), so
# cgan-concat, projection and acgan differ only in the critic; projection-cbn conditions the
# same DCGAN through conditional batch norm instead.
CONCAT_G = {"name": "concat", "latent_dim": 32, "inner": {"name": "dcgan", "channels": 32}}
CBN_G = {"name": "conditional-batchnorm", "inner": DCGAN_G}
# InfoGAN: 8 noise + Cat(10) + 2 continuous codes (little noise: the code must carry the digit).
INFOGAN_G = {"name": "dcgan", "latent_dim": 20, "channels": 32}
REAL_TERMS = {"real_marginal_weight": 0.3, "real_entropy_weight": 0.3}
SAT_TERMS = {
    "real_marginal_weight": 1.0,
    "real_entropy_weight": 0.3,
    "real_consistency_weight": 1.0,
}

MODELS: dict[str, dict[str, Any]] = {
    "dcgan": {"task": {"name": "unconditional"}, "generator": DCGAN_G, "critic": DCGAN_D},
    "cgan-concat": {
        "task": {"name": "conditional"},
        "generator": CONCAT_G,
        "critic": {"name": "concat", "inner": DCGAN_D},
    },
    "projection": {
        "task": {"name": "conditional"},
        "generator": CONCAT_G,
        "critic": {"name": "projection", "inner": DCGAN_D},
    },
    "projection-cbn": {
        "task": {"name": "conditional"},
        "generator": CBN_G,
        "critic": {"name": "projection", "inner": DCGAN_D},
    },
    "acgan": {"task": {"name": "acgan"}, "generator": CONCAT_G, "critic": DCGAN_D},
    "infogan": {
        "task": {"name": "infogan", "categorical": [10], "continuous": 2},
        "generator": INFOGAN_G,
        "critic": DCGAN_D,
    },
    # The same without the continuous codes (8 noise + Cat(10)): on the digits the continuous
    # codes take part of the digit's identity (docs/plugins/conditional.md).
    "infogan-cat": {
        "task": {"name": "infogan", "categorical": [10], "continuous": 0},
        "generator": {**INFOGAN_G, "latent_dim": 18},
        "critic": DCGAN_D,
    },
    # Both with Q's real-data terms (CatGAN's, Springenberg 2016): Q must sort the real images
    # into the code's values confidently and evenly.
    "infogan-real": {
        "task": {"name": "infogan", "categorical": [10], "continuous": 2, **REAL_TERMS},
        "generator": INFOGAN_G,
        "critic": DCGAN_D,
    },
    "infogan-cat-real": {
        "task": {"name": "infogan", "categorical": [10], "continuous": 0, **REAL_TERMS},
        "generator": {**INFOGAN_G, "latent_dim": 18},
        "critic": DCGAN_D,
    },
    # IMSAT's terms (Hu et al. 2017): the marginal weighted above the entropy, and Q's code
    # unchanged when a real image moves by up to 2 pixels.
    "infogan-sat": {
        "task": {"name": "infogan", "categorical": [10], "continuous": 2, **SAT_TERMS},
        "generator": INFOGAN_G,
        "critic": DCGAN_D,
    },
    "infogan-cat-sat": {
        "task": {"name": "infogan", "categorical": [10], "continuous": 0, **SAT_TERMS},
        "generator": {**INFOGAN_G, "latent_dim": 18},
        "critic": DCGAN_D,
    },
}


def document(model: str, seed: int, steps: int) -> dict[str, Any]:
    return {
        "run": {"name": f"{model}-{seed}", "seed": seed, "steps": steps},
        "data": {"name": "digits", "resolution": 16},
        **MODELS[model],
        "loss": {"name": "non-saturating"},
        "optimizers": {
            "generator": {"lr": 2e-4, "betas": [0.5, 0.999]},
            "critic": {"lr": 2e-4, "betas": [0.5, 0.999]},
        },
        "training": {
            "batch_size": 64,
            "log_every": max(steps // 5, 1),
            "sample_every": 0,
            "checkpoint_every": steps,
        },
    }


def evaluate(run_dir: Path, model: str, n: int) -> dict[str, float]:
    context = gancore.load_run(run_dir).context()
    fid = gt.check_metric(
        "fid",
        {
            "extractor": "digits-classifier",
            "num_generated": 10 * n,
            "num_real": 1000,
            "cache_reference": False,
        },
        context=context,
    )
    values = {"fd-digits": fid["fd-digits"]}
    if model in ("cgan-concat", "projection", "projection-cbn", "acgan"):
        accuracy = gt.check_metric("class-accuracy", {"num_per_class": n}, context=context)
        intra = gt.check_metric(
            "intra-fid", {"num_per_class": n, "num_real_per_class": 150}, context=context
        )
        values |= {
            "class-accuracy": accuracy["accuracy"],
            "intra-fd-digits": intra["intra-fd-digits"],
        }
    if model.startswith("infogan"):
        code = gt.check_metric("code-accuracy", {"num": 10 * n}, context=context)
        values["code-accuracy"] = code["accuracy"]
    return values


def summary(values: list[float]) -> dict[str, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": mean, "se": se, "n": len(values)}


def parse_set(text: str) -> tuple[list[str], Any]:
    """``"task.key=value"`` -> ``(["task", "key"], value)``, the value read as TOML (a bare
    word that is not TOML is a string)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (got {text!r})")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.split("."), parsed


def with_sets(doc: dict[str, Any], sets: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """``doc`` with each ``--set`` applied (tables created as needed)."""
    doc = copy.deepcopy(doc)
    for keys, value in sets:
        table = doc
        for key in keys[:-1]:
            table = table.setdefault(key, {})
        table[keys[-1]] = value
    return doc


def job(
    model: str, seed: int, steps: int, n: int, root: str, sets: list[tuple[list[str], Any]]
) -> dict[str, Any]:
    """Train one model and seed in its own process (one thread), score it."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    run_dir = Path(root) / f"{model}-{seed}"
    run = with_sets(document(model, seed, steps), sets)
    config = gancore.parse_config(run, gancore.get_registry())
    gancore.train(config, run_dir, progress=False)
    values: dict[str, Any] = dict(evaluate(run_dir, model, n))
    values["seconds"] = time.perf_counter() - start
    print(model, seed, json.dumps(values), flush=True)
    return {"model": model, "seed": seed, "values": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 steps, one seed, few samples")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once, one thread each")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument(
        "--set",
        dest="sets",
        type=parse_set,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one key of every model's run document, e.g. task.real_entropy_weight=0.1",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other models of an existing --out file (same steps and seeds)",
    )
    args = parser.parse_args()
    if args.merge and args.out is None:
        parser.error("--merge needs --out FILE: the file whose other models are kept")
    if args.merge and args.sets:
        parser.error("--merge with --set: a changed model would replace the shipped one's figures")
    steps, seeds, n = (60, [0], 20) if args.quick else (args.steps, args.seeds, 100)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "steps": steps,
        "batch_size": 64,
        "seeds": seeds,
        "jobs": args.jobs,
        "machine": machine(1, "gan-conditional"),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = [
                pool.submit(job, model, seed, steps, n, tmp, args.sets)
                for model in args.models
                for seed in seeds
            ]
            done = [f.result() for f in futures]
    for model in args.models:
        runs = [r for r in done if r["model"] == model]
        keys = runs[0]["values"].keys()
        entry: dict[str, Any] = {k: summary([float(r["values"][k]) for r in runs]) for k in keys}
        entry["per_seed"] = {r["seed"]: r["values"] for r in runs}
        results["models"][model] = entry
    if args.merge and args.out.exists():
        previous = json.loads(args.out.read_text())
        if (previous["steps"], previous["seeds"]) != (steps, seeds):
            sys.exit(
                f"conditional.py: --merge: {args.out} holds steps {previous['steps']} and seeds "
                f"{previous['seeds']}, this run steps {steps} and seeds {seeds}"
            )
        commands = previous.get("commands", [previous["command"]])
        results["commands"] = [*commands, results["command"]]
        results["models"] = {**previous["models"], **results["models"]}
    finish(results, start, args.out)


if __name__ == "__main__":
    main()
