"""Image-to-image translation on the synthetic digits pair: CycleGAN vs pix2pix vs trivial baselines.

    python benchmarks/cyclegan.py [--quick] [--seeds 0] [--out benchmarks/results/cyclegan.json]

Domain A is scikit-learn's handwritten digits at 16x16; domain B is the same kind of digits
recoloured by a known per-pixel map (``digits-translation``, ``transform = "recolor"``: yellow-orange
ink on blue). Both models train from the example run files as written:

- ``cyclegan``: ``examples/cyclegan-digits.toml``, unpaired (A and B from disjoint halves of the
  1,500 training digits), 750 iterations of batch 16 (8 + 8 epochs, linear decay);
- ``pix2pix``: ``examples/pix2pix-digits.toml``, paired (a_i, T(a_i)), 500 iterations of batch 16.

Quality: the mean absolute error ``|G(a) - T(a)|`` over every pixel of the 297 held-out digits, in
the ``[-1, 1]`` units of the images, at every checkpoint (each 250 iterations), next to the trivial
baselines: the identity (the gray input repeated over 3 channels), the mean training B image, and
the best per-pixel affine map of the input fitted on the held-out pairs themselves (an oracle, and a
lower bound for any 1x1 translation; the true map is affine, so it is 0 up to rounding).

Speed: training iterations per second of the same two run files at 32x32 and 64x64 (PatchGAN with
2 and 3 stride-2 layers), the whole loop included, one thread: the median ``sec_per_step`` over
log intervals of 3 iterations after a warm-up interval (15 iterations in all). Results, the machine and the command line
go to ``--out`` as JSON; the Markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _machine import machine
from gan_cyclegan.datasets import DigitsTranslation, held_out_error

import gancore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
RUNS = {"cyclegan": "cyclegan-digits.toml", "pix2pix": "pix2pix-digits.toml"}
SPEED_SIZES = {32: 2, 64: 3}  # resolution -> PatchGAN stride-2 layers
TRANSLATIONS: dict[tuple[str, int], torch.Tensor] = {}  # for the picture


def _digits_translation(**options: Any) -> DigitsTranslation:
    """A ``digits-translation`` dataset, built as a run builds it (from the run's registry)."""
    document = {"data": {"name": "digits-translation", **options}}
    data: DigitsTranslation = gancore.parse_config(document, gancore.get_registry()).data.build(
        None
    )
    return data


def baselines(held: DigitsTranslation, train_b: torch.Tensor) -> dict[str, float]:
    """Errors of the trivial translations on the held-out pairs."""
    a, b = held.images_a.double(), held.images_b.double()
    identity = float((a.expand_as(b) - b).abs().mean())
    mean_image = float((train_b.double().mean(0, keepdim=True) - b).abs().mean())
    # Per-channel least squares b_c ~ w_c a + v_c: the best 1x1 (affine) map, fitted on the answers.
    design = torch.stack([a.flatten(), torch.ones_like(a.flatten())], dim=1)
    fitted = []
    for c in range(b.shape[1]):
        solution = torch.linalg.lstsq(design, b[:, c].flatten()[:, None]).solution
        fitted.append((design @ solution).view_as(a[:, 0]))
    oracle = float((torch.stack(fitted, dim=1) - b).abs().mean())
    return {"identity": identity, "mean_image": mean_image, "affine_oracle": oracle}


def quality(model: str, seed: int, steps: int | None, work: Path) -> dict[str, Any]:
    """Train one model from its example file; held-out error at each checkpoint."""
    overrides = [f"run.seed={seed}", "training.sample_every=0"]
    if steps is not None:
        overrides += [f"run.steps={steps}", f"training.checkpoint_every={max(1, steps // 3)}"]
        if model == "cyclegan":  # keep the schedule's shape in a short run
            overrides += [
                f"optimizers.{p}.decay_start={steps // 2}" for p in ("generator", "critic")
            ]
    config = gancore.load_config(EXAMPLES / RUNS[model], overrides)
    run_dir = work / f"{model}-{seed}"
    started = time.perf_counter()
    cpu_started = time.process_time()
    gancore.train(config, run_dir, progress=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    held = _digits_translation(resolution=16, split="held-out")
    curve = []
    for checkpoint in sorted((run_dir / "checkpoints").glob("step-*")):
        loaded = gancore.load_run(run_dir, checkpoint.name)
        error = held_out_error(loaded.generators["a_to_b"], held)
        curve.append({"step": int(checkpoint.name.split("-")[1]), "l1": error})
    with torch.no_grad():  # the last checkpoint's translations of the first 8 held-out digits
        TRANSLATIONS[(model, seed)] = loaded.generators["a_to_b"](held.images_a[:8]).cpu()
    return {
        "model": model,
        "seed": seed,
        "steps": config.run.steps,
        "batch_size": config.training.batch_size,
        "wall_s": wall,
        "cpu_s": cpu,
        "curve": curve,
        "l1": curve[-1]["l1"],
        "run_dir": str(run_dir),
    }


def speed(model: str, resolution: int, layers: int, steps: int, work: Path) -> dict[str, Any]:
    """Iterations per second of the whole loop, medians over log intervals after warm-up."""
    config = gancore.load_config(
        EXAMPLES / RUNS[model],
        [
            f"run.steps={steps}",
            f"data.resolution={resolution}",
            f"critic.layers={layers}",
            "training.log_every=3",
            "training.sample_every=0",
            "training.checkpoint_every=0",
        ],
    )
    run_dir = work / f"speed-{model}-{resolution}"
    gancore.train(config, run_dir, progress=False)
    records = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if '"event": "train"' in line
    ]
    per_step = [r["sec_per_step"] for r in records[1:]]  # the first interval is the warm-up
    median = statistics.median(per_step)
    return {
        "model": model,
        "resolution": resolution,
        "critic_layers": layers,
        "intervals": len(per_step),
        "sec_per_step": per_step,
        "iterations_per_s": 1.0 / median,
        "images_per_s": config.training.batch_size / median,
    }


def tables(report: dict[str, Any]) -> str:
    base = report["baselines"]
    lines = [
        "| translation A -> B (held-out digits) | training | L1 error, [-1, 1] units |",
        "|---|---|---|",
        f"| identity (gray input as RGB) | - | {base['identity']:.3f} |",
        f"| mean training B image | - | {base['mean_image']:.3f} |",
    ]
    for row in report["quality"]:
        curve = ", ".join(f"{c['l1']:.3f}" for c in row["curve"])
        kind = "unpaired" if row["model"] == "cyclegan" else "paired"
        lines.append(
            f"| {row['model']} (seed {row['seed']}) | {kind}, {row['steps']} it x "
            f"{row['batch_size']}, {row['wall_s'] / 60:.1f} min | **{row['l1']:.3f}** "
            f"(every {row['steps'] // len(row['curve'])} it: {curve}) |"
        )
    lines.append(
        f"| best affine map, fitted on the answers | oracle | {base['affine_oracle']:.3f} |"
    )
    lines += [
        "",
        "| model | resolution | iterations/s | images/s |",
        "|---|---|---|---|",
    ]
    for row in report["speed"]:
        lines.append(
            f"| {row['model']} | {row['resolution']}x{row['resolution']} | "
            f"{row['iterations_per_s']:.2f} | {row['images_per_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 iterations, for a smoke test")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--speed-steps", type=int, default=15, help="iterations per speed run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cyclegan.json")
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args(argv)
    threads = 1
    torch.set_num_threads(threads)
    from tqdm import tqdm

    work = args.work or Path(tempfile.mkdtemp(prefix="cyclegan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    steps = 30 if args.quick else None
    speed_steps = 6 if args.quick else args.speed_steps
    started = time.perf_counter()
    held = _digits_translation(resolution=16, split="held-out")
    train = _digits_translation(resolution=16, paired=True)
    report: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/cyclegan.py", *(argv or sys.argv[1:])]),
        "machine": machine(threads, "gan-cyclegan"),
        "data": {
            "dataset": "digits-translation",
            "resolution": 16,
            "transform": "recolor",
            "held_out": len(held),
        },
        "baselines": baselines(held, train.images_b),
        "quality": [],
        "speed": [],
    }
    jobs: list[tuple[str, Any]] = [("quality", (m, s)) for s in args.seeds for m in RUNS]
    jobs += [("speed", (m, r)) for r in SPEED_SIZES for m in RUNS]
    for kind, job in tqdm(jobs, desc="cyclegan benchmark", file=sys.stderr):
        if kind == "quality":
            report["quality"].append(quality(job[0], job[1], steps, work))
        else:
            model, resolution = job
            report["speed"].append(
                speed(model, resolution, SPEED_SIZES[resolution], speed_steps, work)
            )
    # Picture: per row a held-out digit, its ground truth, then each model's translation.
    columns = [held.images_a[:8].expand(-1, 3, -1, -1), held.images_b[:8]]
    columns += [TRANSLATIONS[(m, args.seeds[0])] for m in RUNS]
    picture = work / "heldout.png"
    gancore.save_grid(torch.stack(columns, 1).flatten(0, 1), picture, columns=len(columns))
    report["picture"] = {"path": str(picture), "columns": ["a", "T(a)", *RUNS]}
    report["total_wall_s"] = time.perf_counter() - started
    report["machine"]["load_average_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(tables(report))
    print(f"\nwrote {args.out} ({report['total_wall_s'] / 60:.1f} min; runs in {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
