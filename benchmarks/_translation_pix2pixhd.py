"""pix2pixHD vs pix2pix on synthetic scenes (label map -> rendered photo) at 64 and 128 px.

    python benchmarks/translation.py pix2pixhd [--quick] [--out PATH] [--picture PATH]
    python benchmarks/_translation_pix2pixhd.py [--quick] ...   # the same, standalone

Data: ``synthetic-scenes`` (gan-cyclegan), colour-coded label maps of discs, boxes and striped
bands, and their renderings (shaded spheres, wood grain, stripes); 2,000 training scenes, 64
held-out scenes from a disjoint random stream.

Models, both narrowed alike for the CPU and trained on the same number of images per resolution
(``steps`` iterations of batch 4), Adam 2e-4 (0.5, 0.999):

- ``pix2pix``: the ``pix2pix`` task, ``unet`` generator (16 channels, capped at 128, batch norm,
  dropout), one ``patchgan`` critic (2 stride-2 layers at 64 px, 3 at 128 px: a patch of about
  half the image), the paper's non-saturating loss and L1 weight 100;
- ``pix2pixhd``: the ``pix2pixhd`` task, ``pix2pixhd`` generator (G1: 16 channels, 3
  downsamplings, 3 blocks; G2: 2 blocks), three ``pix2pixhd`` critics at scales 1, 1/2, 1/4 (1
  stride-2 layer at 64 px, 2 at 128 px, as small images need), least-squares loss (adversarial
  weight 2: the paper's balance), feature matching 10, no L1, and the planned stages: half the
  iterations 'global' (G1 at half resolution), a tenth 'local' (G1 frozen), the rest 'joint'.

Measured: the held-out L1 error ``|G(a) - x|`` and PSNR (images mapped to [0, 1]) of the final
generator; training speed: images per second over the whole run, the median per stage from
metrics.jsonl, and images per second of this process's CPU time (less sensitive to other
processes on a shared machine); parameters of the generator and of all critics. No FID: FID's
Inception weights are not on this machine (nothing is downloaded) and the only bundled extractor,
``digits-classifier``, is trained on 8x8 digits, whose features say nothing about these scenes.
Writes the JSON to ``--out`` and a picture (input, target, pix2pix, pix2pixHD; 128 px held-out
scenes) to ``--picture``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _machine import machine

import gancore

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks/results/translation-pix2pixhd.json"
PICTURE = ROOT / "docs/images/pix2pixhd-scenes.png"
MODELS = ("pix2pix", "pix2pixhd")
STEPS = {64: 800, 128: 300}  # iterations of batch 4 per resolution, the same for both models
QUICK_STEPS = {64: 20, 128: 10}
BATCH = 4
HELD_OUT = 64


def _document(model: str, resolution: int, steps: int, seed: int) -> dict[str, Any]:
    """The run file of ``model`` at ``resolution`` (a parsed TOML document)."""
    adam = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
    document: dict[str, Any] = {
        "run": {"name": f"{model}-{resolution}", "seed": seed, "steps": steps},
        "data": {"name": "synthetic-scenes", "resolution": resolution, "size": 2000},
        "optimizers": {"generator": dict(adam), "critic": dict(adam)},
        "training": {
            "batch_size": BATCH,
            "log_every": max(1, steps // 20),
            "sample_every": 0,
            "checkpoint_every": steps,
            "num_samples": 8,
        },
    }
    if model == "pix2pix":
        document |= {
            "task": {"name": "pix2pix", "l1_weight": 100.0, "critic_weight": 0.5},
            "generator": {"name": "unet", "channels": 16, "max_channels": 128},
            "critic": {
                "name": "patchgan",
                "layers": 2 if resolution <= 64 else 3,
                "channels": 32,
            },
            "loss": {"name": "non-saturating"},
        }
    else:
        document |= {
            "task": {
                "name": "pix2pixhd",
                "scales": 3,
                "feature_matching_weight": 10.0,
                "adversarial_weight": 2.0,
                "global_fraction": 0.5,
                "local_fraction": 0.1,
            },
            "generator": {
                "name": "pix2pixhd",
                "channels": 16,
                "max_channels": 128,
                "downsamplings": 3,
                "blocks": 3,
                "local_blocks": 2,
            },
            "critic": {
                "name": "pix2pixhd",
                "layers": 1 if resolution <= 64 else 2,
                "channels": 32,
            },
            "loss": {"name": "least-squares"},
        }
    return document


def _held_out(resolution: int) -> dict[str, torch.Tensor]:
    table = {"name": "synthetic-scenes", "resolution": resolution, "size": HELD_OUT}
    data = gancore.parse_config(
        {"data": {**table, "split": "held-out"}}, gancore.get_registry()
    ).data.build(None)
    batch: dict[str, torch.Tensor] = data.get_batch(range(HELD_OUT))
    return batch


def _parameters(modules: dict[str, torch.nn.Module]) -> int:
    return sum(p.numel() for m in modules.values() for p in m.parameters())


def one_run(model: str, resolution: int, steps: int, seed: int, work: Path) -> dict[str, Any]:
    """Train ``model`` at ``resolution``; its held-out errors, speed and sizes."""
    config = gancore.parse_config(_document(model, resolution, steps, seed), gancore.get_registry())
    run_dir = work / f"{model}-{resolution}"
    started, cpu_started = time.perf_counter(), time.process_time()
    gancore.train(config, run_dir, progress=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    loaded = gancore.load_run(run_dir, raw=True)
    trained = loaded.config.stages  # the planned ones, as config.toml records them
    held = _held_out(resolution)
    with torch.no_grad():
        fake = torch.cat([loaded.generators["a_to_b"](a) for a in held["a"].split(16)]).clamp(-1, 1)
    l1 = float((fake - held["x"]).abs().mean())
    mse = ((fake - held["x"]) / 2).square().mean(dim=(1, 2, 3))  # on [0, 1] images
    psnr = float((10 * torch.log10(1 / mse.clamp(min=1e-12))).mean())
    records = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if '"event": "train"' in line
    ]
    per_stage: dict[str, float] = {}
    for stage in sorted({r.get("stage", 0) for r in records}):
        rates = [r["images_per_s"] for r in records[1:] if r.get("stage", 0) == stage]
        if rates:
            per_stage[str(stage)] = statistics.median(rates)
    critics = {n: m for n, m in loaded.built.players.get("critic", {}).items()}
    return {
        "model": model,
        "resolution": resolution,
        "steps": steps,
        "batch_size": BATCH,
        "images": steps * BATCH,
        "stages": [{"name": s.name, "steps": s.steps} for s in trained] or None,
        "wall_s": wall,
        "images_per_s": steps * BATCH / wall,
        "cpu_s": cpu,
        "images_per_cpu_s": steps * BATCH / cpu,  # less sensitive to other processes' load
        "median_images_per_s_by_stage": per_stage,
        "generator_parameters": _parameters(loaded.generators),
        "critic_parameters": _parameters(critics),
        "critics": len(critics),
        "held_out_l1": l1,
        "held_out_psnr_db": psnr,
        "fake": fake[:6].cpu(),
        "held": {k: v[:6] for k, v in held.items()},
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | px | images | held-out L1 | PSNR (dB) | images/s | images/CPU-s | G params "
        "| D params |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['resolution']} | {r['images']} | {r['held_out_l1']:.3f} | "
            f"{r['held_out_psnr_db']:.2f} | {r['images_per_s']:.1f} | "
            f"{r['images_per_cpu_s']:.1f} | "
            f"{r['generator_parameters']:,} | {r['critic_parameters']:,} ({r['critics']}) |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of this benchmark."""
    parser.add_argument("--quick", action="store_true", help="a few iterations, a smoke test")
    parser.add_argument("--seed", type=int, default=0, help="run seed of every model (0)")
    parser.add_argument(
        "--resolutions", type=int, nargs="+", default=[64, 128], help="sides to compare (64 128)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="iterations of batch 4 at every resolution (default: 800 at 64 px, 300 at 128 px)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"the JSON results (default {OUT.relative_to(ROOT)}; with --quick, in the work folder)",
    )
    parser.add_argument(
        "--picture",
        type=Path,
        default=None,
        help=f"the comparison picture (default {PICTURE.relative_to(ROOT)}; with --quick, in "
        "the work folder)",
    )
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and measure every model at every resolution; write the JSON and the picture."""
    threads = 1
    torch.set_num_threads(threads)
    started = time.perf_counter()
    where = machine(threads, "gan-cyclegan")
    work = args.work or Path(tempfile.mkdtemp(prefix="pix2pixhd-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    budget = QUICK_STEPS if args.quick else STEPS
    # A smoke test leaves the published results and picture alone unless told otherwise.
    out = args.out or (work / "translation-pix2pixhd.json" if args.quick else OUT)
    picture = args.picture or (work / "pix2pixhd-scenes.png" if args.quick else PICTURE)
    rows = []
    for resolution in args.resolutions:
        steps = args.steps or budget.get(resolution, 100)
        for model in MODELS:
            print(f"pix2pixhd benchmark: {model} at {resolution} px, {steps} it", file=sys.stderr)
            rows.append(one_run(model, resolution, steps, args.seed, work))
    # The picture: held-out scenes at the largest resolution; input, target, each model.
    largest = max(args.resolutions)
    mine = {r["model"]: r for r in rows if r["resolution"] == largest}
    held = mine[MODELS[0]]["held"]
    columns = [held["a"], held["x"], *(mine[m]["fake"] for m in MODELS)]
    picture.parent.mkdir(parents=True, exist_ok=True)
    gancore.save_grid(torch.stack(columns, 1).flatten(0, 1), picture, columns=len(columns))
    report: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/translation.py", "pix2pixhd", *sys.argv[2:]])
        if Path(sys.argv[0]).name == "translation.py"
        else " ".join(["python", "benchmarks/_translation_pix2pixhd.py", *sys.argv[1:]]),
        "machine": where,
        "data": {"dataset": "synthetic-scenes", "train": 2000, "held_out": HELD_OUT},
        "fid": "not measured: no extractor fits (Inception weights absent, nothing downloaded; "
        "the bundled digits-classifier knows only 8x8 digits)",
        "runs": [{k: v for k, v in r.items() if k not in ("fake", "held")} for r in rows],
        "picture": {
            "path": str(picture),
            "resolution": largest,
            "columns": ["input", "target", *MODELS],
        },
    }
    report["total_wall_s"] = time.perf_counter() - started
    report["machine"]["load_average_end"] = list(os.getloadavg())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report["runs"]))
    minutes = report["total_wall_s"] / 60
    print(f"\nwrote {out} and {picture} ({minutes:.1f} min; runs in {work})")
    assert all(math.isfinite(r["held_out_l1"]) for r in report["runs"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
