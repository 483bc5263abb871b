"""Progressive growing (PGGAN) against the same networks trained at full resolution from the
start, same real-image budget (the issue's gan-progressive benchmark).

    python benchmarks/progressive.py [--scale 0.2] [--seeds 0] [--quick] [--out FILE]

``progressive`` is examples/pggan-digits.toml (4x4 -> 8x8 -> 16x16 -> 32x32, each new resolution
faded in over half its stage, batch 64/32/16/16) with every stage's images multiplied by
``--scale``; ``full-resolution`` is the same run file with no stages: the pggan networks are
grown to 32x32 before the first step and train there, batch 16, on the same number of real
images. Scores of the EMA generator: FD on the digits extractor (1000 generated against 1000 real
32x32 digits), training time per image (wall time over images seen) and total training time.
Training runs one after the other, one thread each. ``--quick``: a 2% budget and fewer samples
(a smoke test of the script, not a result). Needs gan-wgan and gan-progressive.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import finish, machine

import gancore
import gancore.testing as gt

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pggan-digits.toml"


def documents(scale: float) -> dict[str, dict[str, Any]]:
    """The two run documents, with the same image budget."""
    base = tomllib.loads(EXAMPLE.read_text())
    base["training"].update(sample_every=0, log_every=50, metrics_every=0)
    stages = base["stages"]
    last_iterations = base["run"]["steps"] - sum(
        math.ceil(s["images"] / s.get("batch_size", base["training"]["batch_size"]))
        for s in stages[:-1]
    )
    stages[-1]["images"] = last_iterations * base["training"]["batch_size"]
    progressive = copy.deepcopy(base)
    steps, budget = 0, 0
    for stage in progressive["stages"]:
        batch = stage.get("batch_size", base["training"]["batch_size"])
        iterations = max(1, math.ceil(stage["images"] * scale / batch))
        stage["images"] = iterations * batch
        steps, budget = steps + iterations, budget + iterations * batch
    del progressive["stages"][-1]["images"]  # the last stage runs to run.steps
    progressive["run"].update(name="progressive", steps=steps)
    full = copy.deepcopy(base)
    del full["stages"]
    batch = base["training"]["batch_size"]
    full["run"].update(name="full-resolution", steps=math.ceil(budget / batch))
    for document in (progressive, full):
        document["training"]["checkpoint_every"] = document["run"]["steps"]
    return {"progressive": progressive, "full-resolution": full}


def job(name: str, document: dict[str, Any], root: Path, num: int, seed: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    document = copy.deepcopy(document)
    document["run"]["seed"] = seed
    run_dir = root / f"{name}-{seed}"
    config = gancore.parse_config(document, gancore.get_registry())
    start = time.perf_counter()
    gancore.train(config, run_dir, progress=False)
    seconds = time.perf_counter() - start
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [e for e in events if e["event"] == "train"]
    images = train[-1]["images_seen"]
    run = gancore.load_run(run_dir)
    fid = gt.check_metric(
        "fid",
        {
            "extractor": "digits-classifier",
            "num_generated": num,
            "num_real": num,
            "cache_reference": False,
        },
        context=run.context(),
    )
    values = {
        "fd-digits": float(fid["fd-digits"]),
        "images_seen": images,
        "train_seconds": seconds,
        "ms_per_image": 1000 * seconds / images,
        "steps": config.run.steps,
    }
    print(name, seed, json.dumps(values), flush=True)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.2, help="fraction of the example's images")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true", help="2%% of the budget, 200 samples")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    scale, num = (0.02, 200) if args.quick else (args.scale, 1000)
    docs = documents(scale)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "scale": scale,
        "samples": num,
        "machine": machine(1, "gan-wgan", "gan-progressive"),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, document in docs.items():
            results["models"][name] = {
                str(seed): job(name, document, Path(tmp), num, seed) for seed in args.seeds
            }
    finish(results, start, args.out)


if __name__ == "__main__":
    main()
