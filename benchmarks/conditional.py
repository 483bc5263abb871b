"""Conditional models on the digits at 16x16, same budget and seeds for each (issue 20).

    python benchmarks/conditional.py [--quick] [--steps N] [--seeds 0 1 2] [--out FILE]

Models: unconditional DCGAN; cGAN (concat critic), projection critic and ACGAN, all three with
the same one-hot concat generator; the projection critic with a conditional-batchnorm generator
(projection-cbn); and InfoGAN (8 noise + Cat(10) + 2 continuous codes; infogan-cat: without
the continuous codes). For each:
FD on the digits extractor (``fid.fd-digits``, EMA-free raw generator as the run's metric
context gives it), class accuracy and intra-FD of generated samples per class (conditional
models), InfoGAN's categorical code accuracy after Hungarian matching. Mean and standard error
over seeds. ``--quick`` trains 60 steps and one seed (a smoke test of the script, not a result).
Needs the gan-conditional plugin installed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 steps, one seed, few samples")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    steps, seeds, n = (60, [0], 20) if args.quick else (args.steps, args.seeds, 100)
    registry = gancore.get_registry()
    results: dict[str, Any] = {"steps": steps, "seeds": seeds, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            per_seed = []
            for seed in seeds:
                start = time.perf_counter()
                run_dir = Path(tmp) / f"{model}-{seed}"
                config = gancore.parse_config(document(model, seed, steps), registry)
                gancore.train(config, run_dir, progress=False)
                values = evaluate(run_dir, model, n)
                values["seconds"] = time.perf_counter() - start
                per_seed.append(values)
                print(model, seed, json.dumps(values), flush=True)
            keys = per_seed[0].keys()
            results["models"][model] = {k: summary([v[k] for v in per_seed]) for k in keys}
    print(json.dumps(results, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
