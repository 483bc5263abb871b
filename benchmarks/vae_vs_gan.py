"""VAE, beta-VAE, VAE-GAN, BEGAN and DCGAN on the digits at 16x16, same budget and seeds (issue 25).

    python benchmarks/vae_vs_gan.py [--quick] [--steps N] [--seeds 0 1 2] [--jobs 2] [--out FILE]

Every model trains ``--steps`` iterations of batch 64 on the same 1,500 digits (``digits`` with
``limit = 1500``, seed 0), one thread per training, ``--jobs`` trainings at once. The other 297
digits are held out. Models (gan-vae plus gancore's DCGAN):

- ``vae``: task ``vae``, Gaussian likelihood with a learned sigma, beta 1, KL warm-up over the
  first fifth of the steps; ``vae-conv`` (latent 16, 32 channels); Adam 1e-3.
- ``beta-vae``: the same with beta = 4.
- ``vae-gan``: task ``vae-gan`` (gamma 0.01), the same ``vae-conv`` and a ``dcgan`` critic (32
  channels); non-saturating loss; Adam 2e-4, betas (0.5, 0.999).
- ``began``: task ``began`` (gamma 0.5, lambda_k 0.001), ``began`` generator and
  ``began-autoencoder`` critic (16 channels, code 32); Adam 2e-4, betas (0.5, 0.999).
- ``dcgan``: task ``unconditional``, ``dcgan`` generator (latent 32, 32 channels) and critic (32
  channels); non-saturating loss; Adam 2e-4, betas (0.5, 0.999).

Scored on the raw (no EMA) generator after the last step: FD on the digits extractor
(``fid.fd-digits``: 2,000 samples against the 1,500 training digits), precision and recall
(k = 3; 1,000 samples against 1,000 training digits), and for the two VAEs the ELBO and the IWAE
bound on log p(x) (k = 100) of the 297 held-out digits, in nats and bits per dimension. Time per
image is the training's wall time over its images (with ``--jobs`` trainings sharing the
machine). Means and standard errors over seeds go to ``--out`` with the command line and the
machine; ``--figure`` (default docs/plugins/vae-samples.png) shows seed 0's prior samples of each
model and the three autoencoders' reconstructions of held-out digits. ``--quick`` trains 20
steps, one seed, few samples: a smoke test of the script, not a result.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _machine import finish, machine

import gancore
import gancore.testing as gt

ROOT = Path(__file__).resolve().parents[1]
TRAIN = {"name": "digits", "resolution": 16, "limit": 1500}
HELD_OUT = {**TRAIN, "rest": True}
VAE_CONV = {"name": "vae-conv", "latent_dim": 16, "channels": 32}
GAN_ADAM = {"lr": 2e-4, "betas": [0.5, 0.999]}

MODELS: dict[str, dict[str, Any]] = {
    "vae": {
        "task": {"name": "vae"},
        "generator": VAE_CONV,
        "optimizers": {"generator": {"lr": 1e-3, "betas": [0.9, 0.999]}},
    },
    "beta-vae": {
        "task": {"name": "vae", "beta": 4.0},
        "generator": VAE_CONV,
        "optimizers": {"generator": {"lr": 1e-3, "betas": [0.9, 0.999]}},
    },
    "vae-gan": {
        "task": {"name": "vae-gan", "gamma": 0.01},
        "generator": VAE_CONV,
        "critic": {"name": "dcgan", "channels": 32},
        "optimizers": {"generator": GAN_ADAM, "critic": GAN_ADAM},
    },
    "began": {
        "task": {"name": "began"},
        "generator": {"name": "began", "latent_dim": 32, "channels": 16},
        "critic": {"name": "began-autoencoder", "hidden": 32, "channels": 16},
        "optimizers": {"generator": GAN_ADAM, "critic": GAN_ADAM},
    },
    "dcgan": {
        "task": {"name": "unconditional"},
        "generator": {"name": "dcgan", "latent_dim": 32, "channels": 32},
        "critic": {"name": "dcgan", "channels": 32},
        "optimizers": {"generator": GAN_ADAM, "critic": GAN_ADAM},
    },
}
AUTOENCODERS = ("vae", "beta-vae", "vae-gan")
VAES = ("vae", "beta-vae")


def document(model: str, seed: int, steps: int) -> dict[str, Any]:
    spec = {key: value for key, value in MODELS[model].items()}
    if spec["task"]["name"] == "vae":
        spec["task"] = {**spec["task"], "kl_warmup_steps": max(steps // 5, 1)}
    return {
        "run": {"name": f"{model}-{seed}", "seed": seed, "steps": steps},
        "data": TRAIN,
        **spec,
        "loss": {"name": "non-saturating"},
        "training": {
            "batch_size": 64,
            "log_every": max(steps // 5, 1),
            "sample_every": 0,
            "checkpoint_every": steps,
        },
    }


def evaluate(run_dir: Path, model: str, n: int) -> dict[str, float]:
    context = gancore.load_run(run_dir).context()
    common = {"extractor": "digits-classifier", "cache_reference": False}
    fid = gt.check_metric(
        "fid", {**common, "num_generated": 2 * n, "num_real": 1500}, context=context
    )
    pr = gt.check_metric(
        "precision-recall", {**common, "num_generated": n, "num_real": n}, context=context
    )
    values = {
        "fd-digits": fid["fd-digits"],
        "precision": pr["precision"],
        "recall": pr["recall"],
    }
    if model in VAES:
        elbo = gt.check_metric("elbo", {"data": HELD_OUT}, context=context)
        iwae = gt.check_metric("iwae", {"data": HELD_OUT, "k": 100}, context=context)
        values |= {
            "held_out_elbo_nats": elbo["elbo"],
            "held_out_elbo_bits_per_dim": elbo["bits_per_dim"],
            "held_out_log_px_iwae100_nats": iwae["log_px"],
            "held_out_log_px_iwae100_bits_per_dim": iwae["bits_per_dim"],
        }
    return values


def pictures(run_dir: Path, model: str) -> dict[str, torch.Tensor]:
    """Seed 0's pictures: 10 prior samples, and reconstructions of 10 held-out digits."""
    run = gancore.load_run(run_dir)
    out = {"samples": run.generate(10, seed=1)}
    if model in AUTOENCODERS:
        held = HELD_OUT_IMAGES()
        with torch.no_grad():
            out["reconstructions"] = run.built.task.reconstruct(run.generators, held).cpu()  # type: ignore[attr-defined]
    return out


def HELD_OUT_IMAGES() -> torch.Tensor:  # noqa: N802 (a constant, computed on demand)
    """The first 10 held-out digits ``[10, 1, 16, 16]``."""
    registry = gancore.get_registry()
    dataset = gancore.BuildContext(data_shape=(), registry=registry).resolve("dataset", HELD_OUT)
    return torch.stack([dataset[i]["x"] for i in range(10)])


def summary(values: list[float]) -> dict[str, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": mean, "se": se, "n": len(values)}


def job(model: str, seed: int, steps: int, n: int, root: str) -> dict[str, Any]:
    """Train one model and seed in its own process (one thread), score it."""
    torch.set_num_threads(1)
    run_dir = Path(root) / f"{model}-{seed}"
    config = gancore.parse_config(document(model, seed, steps), gancore.get_registry())
    start = time.perf_counter()
    gancore.train(config, run_dir, progress=False)
    train_seconds = time.perf_counter() - start
    values: dict[str, Any] = dict(evaluate(run_dir, model, n))
    values["train_seconds"] = train_seconds
    values["ms_per_image"] = 1000 * train_seconds / (steps * 64)
    print(model, seed, json.dumps(values), flush=True)
    result: dict[str, Any] = {"model": model, "seed": seed, "values": values}
    if seed == 0:
        result["pictures"] = pictures(run_dir, model)
    return result


def figure(done: list[dict[str, Any]], models: list[str], path: Path) -> None:
    """One row per model of prior samples, then the held-out digits and each autoencoder's
    reconstructions of them (seed 0)."""
    rows, names = [], []
    by_model = {r["model"]: r["pictures"] for r in done if "pictures" in r}
    for model in models:
        if model in by_model:
            rows.append(by_model[model]["samples"])
            names.append(f"{model} samples")
    rows.append(HELD_OUT_IMAGES())
    names.append("held-out digits")
    for model in models:
        if model in by_model and "reconstructions" in by_model[model]:
            rows.append(by_model[model]["reconstructions"])
            names.append(f"{model} recon.")
    path.parent.mkdir(parents=True, exist_ok=True)
    gancore.save_grid(torch.cat(rows), path, columns=10, row_names=names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 steps, one seed, few samples")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once, one thread each")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument(
        "--figure", type=Path, default=None, help="samples and reconstructions (PNG)"
    )
    args = parser.parse_args()
    steps, seeds, n = (20, [0], 100) if args.quick else (args.steps, args.seeds, 1000)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "steps": steps,
        "batch_size": 64,
        "seeds": seeds,
        "jobs": args.jobs,
        "machine": machine(1, "gan-vae"),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            # the slowest first, so that the pool's two workers finish together
            order = sorted(args.models, key=lambda m: ("vae-gan", "began").count(m), reverse=True)
            futures = [
                pool.submit(job, model, seed, steps, n, tmp) for model in order for seed in seeds
            ]
            done = [f.result() for f in futures]
    for model in args.models:
        runs = [r for r in done if r["model"] == model]
        keys = runs[0]["values"].keys()
        entry: dict[str, Any] = {k: summary([float(r["values"][k]) for r in runs]) for k in keys}
        entry["per_seed"] = {r["seed"]: r["values"] for r in runs}
        results["models"][model] = entry
    if args.figure is not None:
        figure(done, args.models, args.figure)
    finish(results, start, args.out)


if __name__ == "__main__":
    main()
