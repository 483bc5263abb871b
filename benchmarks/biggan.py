"""SAGAN and BigGAN against a DCGAN with a projection critic, class-conditional digits, same
budget and seeds for each (issue 21).

    python benchmarks/biggan.py [--steps N] [--seeds 0 1 2] [--jobs 2] [--resolution 32]
                                [--quick] [--out FILE]

Models, each the shipped example run file with only its length, seed and intervals changed:
``dcgan-projection`` (examples/conditional-digits.toml: one-hot concat DCGAN generator, DCGAN
projection critic, hinge), ``sagan`` (examples/sagan-digits.toml) and ``biggan``
(examples/biggan-digits.toml). The digits are the 8x8 scans upscaled (bilinear) to the examples'
16x16; ``--resolution 32`` upscales them to 32x32 instead (self-attention moves to the 16x16
maps and BigGAN's latent to 64 = 4 chunks, one per block). Each run trains ``--steps``
iterations at batch 64 (BigGAN's iteration holds 2 critic steps, as in the paper), then its EMA
generator is scored as benchmarks/conditional.py scores a conditional model: FD on the digits
extractor (10 x 100 samples against 1000 real), class accuracy (100 per class), intra-FD (100
per class against 150 real per class); plus IS on the digits classifier (1000 samples).
Throughput: training images per second (images seen over the training wall time) and
generation images per second (the EMA generator, eval mode, batches of 250). For BigGAN, FD and
IS against the truncation threshold. Mean and standard error over seeds. ``--jobs`` runs that
many trainings at once, one thread each. ``--quick``: 20 steps, one seed, fewer samples (a smoke
test of the script, not a result). Needs gan-conditional and gan-biggan.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import finish, machine
from conditional import evaluate, summary

import gancore
import gancore.testing as gt

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODELS = {
    "dcgan-projection": ("conditional-digits.toml", []),
    "sagan": ("sagan-digits.toml", []),
    "biggan": ("biggan-digits.toml", []),
}
# None = no truncation; BigGAN's Fig. 2 sweeps thresholds from 2.0 down to 0.04.
THRESHOLDS: list[float | None] = [None, 2.0, 1.5, 1.0, 0.5, 0.25, 0.04]


# --resolution 32: the options that follow the image size (attention on the 16x16 maps; BigGAN's
# latent split into one chunk for the first layer and one per each of its 3 blocks)
AT_32 = {
    "dcgan-projection": ["data.resolution=32"],
    "sagan": [
        "data.resolution=32",
        "generator.inner.attention_resolution=16",
        "critic.inner.attention_resolution=16",
    ],
    "biggan": [
        "data.resolution=32",
        "generator.attention_resolution=16",
        "generator.latent_dim=64",
        "critic.inner.attention_resolution=16",
    ],
}


def _overrides(model: str, seed: int, steps: int, resolution: int | None) -> list[str]:
    return [
        *MODELS[model][1],
        *(AT_32[model] if resolution == 32 else []),
        f"run.name='{model}-{seed}'",
        f"run.seed={seed}",
        f"run.steps={steps}",
        f"training.log_every={max(steps // 5, 1)}",
        "training.sample_every=0",
        f"training.checkpoint_every={steps}",
        "metrics=[]",
    ]


def _inception_score(context: Any, num: int) -> float:
    options = {"extractor": "digits-classifier", "num_generated": num}
    return float(gt.check_metric("is", options, context=context)["is-digits"])


def _truncation_curve(run: Any, n: int) -> list[dict[str, Any]]:
    from gan_biggan.truncation import set_truncation_threshold

    curve = []
    for threshold in THRESHOLDS:
        set_truncation_threshold(run.generators, threshold)
        context = run.context()
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
        accuracy = gt.check_metric("class-accuracy", {"num_per_class": n}, context=context)
        curve.append(
            {
                "threshold": threshold,
                "fd-digits": float(fid["fd-digits"]),
                "is-digits": _inception_score(context, 10 * n),
                "class-accuracy": float(accuracy["accuracy"]),
            }
        )
    set_truncation_threshold(run.generators, None)
    return curve


def job(
    model: str, seed: int, steps: int, n: int, root: str, resolution: int | None
) -> dict[str, Any]:
    """Train one model and seed, score it; the values (and BigGAN's truncation curve)."""
    torch.set_num_threads(1)
    run_dir = Path(root) / f"{model}-{seed}"
    config = gancore.load_config(
        EXAMPLES / MODELS[model][0], _overrides(model, seed, steps, resolution)
    )
    start = time.perf_counter()
    gancore.train(config, run_dir, progress=False)
    train_seconds = time.perf_counter() - start
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    images_seen = [e for e in events if e["event"] == "train"][-1]["images_seen"]
    values: dict[str, Any] = dict(evaluate(run_dir, "projection", n))
    run = gancore.load_run(run_dir)
    values["is-digits"] = _inception_score(run.context(), 10 * n)
    run.generate(250, seed)  # warm-up
    start = time.perf_counter()
    run.generate(1000, seed, batch_size=250)
    values["generate_images_per_s"] = 1000 / (time.perf_counter() - start)
    values["train_images_per_s"] = images_seen / train_seconds
    values["train_seconds"] = train_seconds
    values["parameters_generator"] = sum(
        p.numel() for p in run.generators["generator"].parameters()
    )
    result: dict[str, Any] = {"model": model, "seed": seed, "values": values}
    if model == "biggan":
        result["truncation"] = _truncation_curve(run, n)
    print(model, seed, json.dumps(values), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 steps, one seed, few samples")
    parser.add_argument("--steps", type=int, default=1000, help="iterations per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once, one thread each")
    parser.add_argument(
        "--resolution",
        type=int,
        choices=[32],
        default=None,
        help="32: the digits at 32x32 (default: the examples' 16x16)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    steps, seeds, n = (20, [0], 20) if args.quick else (args.steps, args.seeds, 100)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "steps": steps,
        "batch_size": 64,
        "resolution": args.resolution or 16,
        "seeds": seeds,
        "jobs": args.jobs,
        "machine": machine(1, "gan-conditional", "gan-biggan"),
        "models": {},
    }
    done: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            slowest_first = sorted(args.models, key=list(MODELS)[::-1].index)
            futures = [
                pool.submit(job, model, seed, steps, n, tmp, args.resolution)
                for seed in seeds
                for model in slowest_first
            ]
            done = [f.result() for f in futures]
    for model in args.models:
        runs = [r for r in done if r["model"] == model]
        keys = runs[0]["values"].keys()
        entry: dict[str, Any] = {k: summary([float(r["values"][k]) for r in runs]) for k in keys}
        entry["per_seed"] = {r["seed"]: r["values"] for r in runs}
        if model == "biggan":
            entry["truncation"] = [
                {
                    "threshold": point["threshold"],
                    **{
                        k: summary([r["truncation"][i][k] for r in runs])
                        for k in ("fd-digits", "is-digits", "class-accuracy")
                    },
                }
                for i, point in enumerate(runs[0]["truncation"])
            ]
        results["models"][model] = entry
    finish(results, start, args.out)


if __name__ == "__main__":
    main()
