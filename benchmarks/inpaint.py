"""Inpainting quality after a fixed budget, and the speed of contextual attention.

    python benchmarks/inpaint.py [--quick] [--steps 500] [--threads 1]
        [--out benchmarks/results/inpaint.json]

1. **Quality** (the shape of the Context Encoders table, Pathak et al. 2016, Table 1): a DeepFill
   v1 generator (``deepfill``, width 8, contextual attention) trains for ``--steps`` iterations on
   32x32 RGB patches of scikit-image's photos (``skimage-patches``, train split), with random
   rectangles and strokes as holes (``[task.masks] kind = "both"``). It is then scored with
   ``inpaint-quality`` on the held-out split (the bottom quarter of every photo, never seen in
   training) for two hole protocols: the centred square of half the side (Context Encoders'
   protocol) and DeepFill's rectangles plus strokes. The same images and holes are filled by the
   two training-free baselines: mean fill and nearest-patch fill.
2. **Speed**: forward + backward of ``ContextualAttention`` (rate 2, 3x3 patches, propagation 3,
   64 channels, batch 1, a 25% hole) on feature maps of 32, 64 and 128 pixels: median of
   ``--repeats`` timings after ``--warmup`` runs.

Results, the command line, the machine and the torch thread count go to ``--out`` as JSON; a
picture of held-out completions (holed input, model, mean fill, nearest patch, original) goes
next to it as ``inpaint.png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _machine import machine
from gan_inpaint.attention import ContextualAttention
from gan_inpaint.datasets import SkimagePatches, SkimagePatchesOptions
from gan_inpaint.masks import MaskOptions, draw_masks
from gan_inpaint.metrics import InpaintQuality, mean_fill, nearest_patch_fill
from gan_inpaint.task import complete

import gancore

# Context Encoders, Paris StreetView, centre hole (Pathak et al. 2016, Table 1; REFERENCE.md).
PUBLISHED = {
    "NN-inpainting (HOG)": {"hole_l1": 0.1992, "hole_l2": 0.0692, "hole_psnr": 12.79},
    "Context Encoder": {"hole_l1": 0.1033, "hole_l2": 0.0235, "hole_psnr": 17.59},
}

RUN = {
    "run": {"name": "bench-inpaint", "seed": 0},
    "data": {"name": "skimage-patches", "size": 32, "scale": 0.5, "stride": 8, "split": "train"},
    "task": {
        "name": "inpaint",
        "samples": "completions",
        "masks": {"kind": "both", "stroke_width": [0.08, 0.16]},
    },
    "generator": {
        "name": "deepfill",
        "channels": 8,
        "downsamples": 2,
        "dilations": [2, 4],
        "attention_rate": 2,
    },
    "critic": {"name": "deepfill", "channels": 16, "depth": 3},
    "loss": {"name": "hinge"},
    "optimizers": {
        "generator": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9]},
        "critic": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9]},
    },
    "training": {
        "batch_size": 32,
        "critic_steps": 1,
        "log_every": 50,
        "sample_every": 0,
        "checkpoint_every": 0,
    },
}

PROTOCOLS = {
    "center": {"kind": "center", "rectangle_size": 0.5},
    "rectangles+strokes": {"kind": "both", "stroke_width": [0.08, 0.16]},
}


def train(steps: int, run_dir: Path) -> tuple[Any, float]:
    registry, _ = gancore.load_registry(env={"GANCORE_LOAD_PLUGINS": "gan-inpaint"})
    document = json.loads(json.dumps(RUN))
    document["run"]["steps"] = steps
    config = gancore.parse_config(document, registry)
    start = time.perf_counter()
    result = gancore.train(config, run_dir, progress=sys.stderr.isatty())
    return (config, result), time.perf_counter() - start


class _Context:
    """What inpaint-quality reads: the task, the trained generator, held-out data, the device."""

    def __init__(self, task: Any, generators: Any, dataset: Any) -> None:
        self.task, self.generators, self.dataset = task, generators, dataset
        self.device = torch.device("cpu")


def quality(config: Any, generators: Any, num_images: int) -> dict[str, Any]:
    held_out = SkimagePatches(SkimagePatchesOptions(size=32, scale=0.5, stride=8, split="test"))
    rows: dict[str, Any] = {"held_out_patches": len(held_out)}
    for label, masks in PROTOCOLS.items():
        metric = InpaintQuality(
            num_images=min(num_images, len(held_out)), seed=1, masks=MaskOptions(**masks)
        )
        start = time.perf_counter()
        rows[label] = metric.evaluate(_Context(config.task.options, generators, held_out))
        rows[label]["eval_s"] = time.perf_counter() - start
    return rows


def picture(generators: Any, path: Path) -> None:
    from PIL import Image

    held_out = SkimagePatches(SkimagePatchesOptions(size=32, scale=0.5, stride=8, split="test"))
    gen = torch.Generator().manual_seed(3)
    rows = torch.randperm(len(held_out), generator=gen)[:8].tolist()
    image = held_out.get_batch(rows)["x"]
    mask = draw_masks(MaskOptions(kind="center", rectangle_size=0.5), 8, 32, 32)
    with torch.no_grad():
        model = complete(generators["generator"], image, mask)
    holed = torch.where(mask > 0.5, torch.zeros_like(image), image)
    grid = torch.cat(
        [holed, model, mean_fill(image, mask), nearest_patch_fill(image, mask), image]
    )  # 5 rows of 8
    grid = grid.view(5, 8, 3, 32, 32).permute(0, 3, 1, 4, 2).reshape(5 * 32, 8 * 32, 3)
    pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    Image.fromarray(pixels).resize((8 * 96, 5 * 96), Image.Resampling.NEAREST).save(path)


def attention_speed(sizes: list[int], repeats: int, warmup: int) -> list[dict[str, Any]]:
    module = ContextualAttention(rate=2, softmax_scale=10.0, propagation=3)
    out = []
    for size in sizes:
        gen = torch.Generator().manual_seed(size)
        features = torch.randn(1, 64, size, size, generator=gen)
        mask = torch.zeros(1, 1, size, size)
        mask[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
        times = []
        for i in range(warmup + repeats):
            x = features.clone().requires_grad_(True)
            start = time.perf_counter()
            module(x, x, mask).square().mean().backward()
            if i >= warmup:
                times.append(time.perf_counter() - start)
        patches = (size // 2) ** 2
        out.append(
            {
                "size": size,
                "batch": 1,
                "channels": 64,
                "patches": patches,
                "median_s": statistics.median(times),
                "min_s": min(times),
                "times_s": times,
            }
        )
        print(f"attention {size}x{size}: {statistics.median(times) * 1000:.1f} ms", flush=True)
    return out


def table(result: dict[str, Any]) -> str:
    lines = [
        "| method | holes | hole L1 (%) | hole L2 (%) | hole PSNR (dB) | hole SSIM | image PSNR (dB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in PROTOCOLS:
        row = result["quality"][label]
        for name, prefix in (
            ("mean fill", "mean_fill_"),
            ("nearest-patch fill", "nearest_patch_"),
            (f"DeepFill ({result['steps']} steps)", ""),
        ):
            lines.append(
                f"| {name} | {label} | {100 * row[prefix + 'hole_l1']:.2f} | "
                f"{100 * row[prefix + 'hole_l2']:.2f} | {row[prefix + 'hole_psnr']:.2f} | "
                f"{row[prefix + 'hole_ssim']:.3f} | {row[prefix + 'image_psnr']:.2f} |"
            )
    for name, row in PUBLISHED.items():
        lines.append(
            f"| {name} (Pathak et al. 2016, Paris StreetView) | center | "
            f"{100 * row['hole_l1']:.2f} | {100 * row['hole_l2']:.2f} | {row['hole_psnr']:.2f} "
            "| | |"
        )
    lines += ["", "| feature map | patches | forward + backward (ms, median) |", "|---|---|---|"]
    for row in result["attention"]:
        lines.append(
            f"| {row['size']}x{row['size']}, batch 1, 64 ch | {row['patches']} | "
            f"{1000 * row['median_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="training iterations")
    parser.add_argument("--num-images", type=int, default=256, help="held-out images scored")
    parser.add_argument("--repeats", type=int, default=3, help="timed attention runs per size")
    parser.add_argument("--warmup", type=int, default=1, help="untimed attention runs per size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 20 steps, 32 images")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "inpaint.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.num_images, args.repeats, args.warmup = 20, 32, 1, 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        (config, trained), train_s = train(args.steps, Path(tmp) / "run")
    if trained.interrupted or trained.step != args.steps:  # SIGTERM stops training, not the script
        print(f"training stopped at step {trained.step} of {args.steps}", file=sys.stderr)
        return 1
    print(f"trained {args.steps} steps in {train_s:.0f} s", flush=True)
    result: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/inpaint.py", *(argv or sys.argv[1:])]),
        "machine": machine(args.threads, "gan-inpaint"),
        "steps": args.steps,
        "train_s": train_s,
        "run": RUN,
        "published": PUBLISHED,
    }
    result["quality"] = quality(config, trained.generators, args.num_images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    picture(trained.generators, args.out.with_suffix(".png"))
    sizes = [32, 64] if args.quick else [32, 64, 128]
    result["attention"] = attention_speed(sizes, args.repeats, args.warmup)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
