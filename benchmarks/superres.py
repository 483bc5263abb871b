"""SRGAN against SRResNet and bicubic upscaling on held-out photos, at x2 and x4.

    python benchmarks/superres.py [--scales 2 4] [--seeds 0 1 2] [--steps 1000] [--size 64]
        [--threads 2] [--quick] [--out benchmarks/results/superres.json]

For each scale and seed, one run of ``examples/srgan-skimage.toml`` (the task's planned stages:
SRResNet with the pixel MSE for the first half, then SRGAN's perceptual loss from those weights,
lr 1e-4 then 1e-5; content features from the bundled ``sr-features``; the example's narrowed
networks) trains on crops of the default training photos. Two of its checkpoints are scored:

- **SRResNet (MSE)**: the last step of the MSE stage;
- **SRGAN**: the last step of the run;

and, on the same images, **bicubic** upscaling (the baseline every SR table reports). The
held-out set is every ``size x size`` crop (no overlap) of four photos no run sees: chelsea,
rocket, camera and coins. ``sr-quality`` scores each: PSNR and SSIM on the Y channel (BT.601),
``scale`` border pixels cropped, the SR output rounded to 8 bits (the SR convention), and the
feature distance (the content loss's own measure: MSE of the ``sr-features`` maps; lower is
closer to the real image's texture). Means and standard deviations over the seeds go to ``--out``
with the command line and the machine; a picture of held-out crops side by side (LR, bicubic,
SRResNet, SRGAN, HR) goes next to it as ``superres-xS.png`` (seed 0).

The published shape (Ledig et al. 2017, Set5 x4, Y, border 4): bicubic 28.43 dB / 0.8211,
SRResNet 32.05 / 0.9019, SRGAN 29.40 / 0.8472: SRResNet above bicubic on PSNR and SSIM, SRGAN
lower on both but sharper (the paper's mean opinion scores rank it first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from _machine import machine
from gan_superres.datasets import SRImages, SRImagesOptions
from gan_superres.degrade import bicubic_upscale, downscale
from gan_superres.metrics import SRQuality
from gan_superres.task import upscale

import gancore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "srgan-skimage.toml"
HELD_OUT = ("skimage:chelsea", "skimage:rocket", "skimage:camera", "skimage:coins")
PUBLISHED = {  # Ledig et al. 2017, Table 2, Set5 x4 (PSNR dB / SSIM on Y, border 4)
    "bicubic": {"psnr": 28.43, "ssim": 0.8211},
    "SRResNet": {"psnr": 32.05, "ssim": 0.9019},
    "SRGAN": {"psnr": 29.40, "ssim": 0.8472},
}
METHODS = ("bicubic", "srresnet", "srgan")


def run_document(scale: int, seed: int, steps: int, size: int) -> dict[str, Any]:
    """The example's run file for this scale and seed; checkpoints at the end of each stage."""
    document = tomllib.loads(EXAMPLE.read_text())
    document["run"].update({"name": f"bench-sr-x{scale}-{seed}", "seed": seed, "steps": steps})
    document["data"]["size"] = size
    document["task"]["scale"] = scale
    pretrain = round(document["task"]["pretrain"] * steps)
    document["training"].update(
        {"checkpoint_every": pretrain, "sample_every": 0, "log_every": max(1, steps // 10)}
    )
    document.pop("metrics", None)
    return document


def score(task: Any, generator: Any, held_out: SRImages, extractor: str) -> dict[str, float]:
    context = SimpleNamespace(
        task=task,
        generators={"generator": generator},
        dataset=held_out,
        device=torch.device("cpu"),
    )
    metric = SRQuality(num_images=len(held_out), extractor=extractor)
    return {k: float(v) for k, v in metric.evaluate(context).items() if isinstance(v, int | float)}


def picture(generators: dict[str, Any], held_out: SRImages, scale: int, path: Path) -> None:
    """Rows of four held-out crops: LR (nearest), bicubic, SRResNet, SRGAN, HR."""
    picks = torch.linspace(0, len(held_out) - 1, 4).round().long().tolist()
    hr = held_out.get_batch(picks)["x"]
    lr = downscale(hr, scale)
    nearest = torch.nn.functional.interpolate(lr, scale_factor=scale, mode="nearest")
    rows = [
        nearest,
        bicubic_upscale(lr, scale),
        upscale(generators["srresnet"], lr),
        upscale(generators["srgan"], lr),
        hr,
    ]
    images = torch.stack(rows, dim=1).flatten(0, 1)
    gancore.save_grid(
        images,
        path,
        columns=5,
        header=f"x{scale}: LR, bicubic, SRResNet (MSE), SRGAN, HR (held-out crops)",
    )


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "| scale | method | PSNR (dB) | SSIM | feature distance |",
        "|---|---|---|---|---|",
    ]
    for scale, entry in result["scales"].items():
        for method in METHODS:
            row = entry["methods"][method]
            lines.append(
                f"| x{scale} | {method} | {row['psnr']['mean']:.2f} +- {row['psnr']['std']:.2f} "
                f"| {row['ssim']['mean']:.4f} +- {row['ssim']['std']:.4f} "
                f"| {row['feature_distance']['mean']:.4f} +- "
                f"{row['feature_distance']['std']:.4f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 2], choices=[2, 4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000, help="iterations per run")
    parser.add_argument("--size", type=int, default=64, help="HR crop side (train and held out)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 20 steps, 1 seed")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "superres.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.seeds = 20, args.seeds[:1]
    torch.set_num_threads(args.threads)
    command = " ".join(["python", "benchmarks/superres.py", *(argv or sys.argv[1:])])
    held_out = SRImages(SRImagesOptions(images=HELD_OUT, size=args.size))
    result: dict[str, Any] = {
        "command": command,
        "machine": machine(args.threads, "gan-superres"),
        "published_set5_x4": PUBLISHED,
        "held_out": {"photos": list(HELD_OUT), "crops": len(held_out), "size": args.size},
        "scales": {},
    }
    if args.out.is_file():  # scales not run this time keep their earlier results
        earlier = json.loads(args.out.read_text()).get("scales", {})
        result["scales"] = {k: v for k, v in earlier.items() if int(k) not in args.scales}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for scale in args.scales:
        scores: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}
        train_s: list[float] = []
        for seed in args.seeds:
            document = run_document(scale, seed, args.steps, args.size)
            with tempfile.TemporaryDirectory() as tmp:
                run_dir = Path(tmp) / "run"
                config = gancore.parse_config(document, gancore.get_registry())
                start = time.perf_counter()
                trained = gancore.train(config, run_dir, progress=False)
                train_s.append(time.perf_counter() - start)
                if trained.interrupted or trained.step != args.steps:
                    print(f"training stopped at step {trained.step}", file=sys.stderr)
                    return 1
                pretrain = document["training"]["checkpoint_every"]
                runs = {
                    "srresnet": gancore.load_run(run_dir, f"step-{pretrain:07d}"),
                    "srgan": gancore.load_run(run_dir, "latest"),
                }
                task = runs["srgan"].built.task
                extractor = config.task.options.extractor
                per_method = {
                    "srresnet": score(
                        task, runs["srresnet"].generators["generator"], held_out, extractor
                    ),
                    "srgan": score(
                        task, runs["srgan"].generators["generator"], held_out, extractor
                    ),
                }
                per_method["bicubic"] = {
                    k.removeprefix("bicubic_"): v
                    for k, v in per_method["srgan"].items()
                    if k.startswith("bicubic_")
                }
                for method, values in per_method.items():
                    for key in ("psnr", "ssim", "feature_distance"):
                        scores[method].setdefault(key, []).append(values[key])
                print(
                    f"x{scale} seed {seed}: {train_s[-1]:.0f} s; "
                    + "; ".join(
                        f"{m} {per_method[m]['psnr']:.2f} dB / {per_method[m]['ssim']:.4f} / "
                        f"{per_method[m]['feature_distance']:.4f}"
                        for m in METHODS
                    ),
                    flush=True,
                )
                if seed == args.seeds[0]:
                    picture(
                        {m: runs[m].generators["generator"] for m in ("srresnet", "srgan")},
                        held_out,
                        scale,
                        args.out.with_name(f"superres-x{scale}.png"),
                    )
        result["scales"][str(scale)] = {
            "command": command,
            "held_out": result["held_out"],
            "steps": args.steps,
            "seeds": args.seeds,
            "train_s": summary(train_s),
            "run": run_document(scale, args.seeds[0], args.steps, args.size),
            "methods": {m: {k: summary(v) for k, v in scores[m].items()} for m in METHODS},
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")  # partial results survive
    print(table(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
