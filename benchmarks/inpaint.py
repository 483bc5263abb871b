"""Inpainting quality after a fixed budget, and the speed of contextual attention.

    python benchmarks/inpaint.py [--suites skimage digits] [--methods deepfill context-encoder]
        [--steps 3000] [--eval-every 500] [--threads 1] [--quick]
        [--out benchmarks/results/inpaint.json]

1. **Quality** (the shape of the Context Encoders table, Pathak et al. 2016, Table 1). For each
   suite, a DeepFill v1 generator (``deepfill``: coarse network, then the refinement network with
   its contextual-attention stream) trains for ``--steps`` iterations with random rectangles plus
   brush strokes as holes (``[task.masks] kind = "both"``), then is scored with
   ``inpaint-quality`` on held-out images the run never saw, for two hole protocols: the centred
   square of half the side (Context Encoders' protocol) and DeepFill's rectangles plus strokes.
   The same images and holes are filled by the two training-free baselines: mean fill (the mean
   colour of each image's known pixels) and nearest-patch fill (exemplar fill from each image's own
   known 5x5 patches, outside in). The suites:

   - ``skimage``: 32x32 RGB patches of scikit-image's bundled photos at half size
     (``skimage-patches``, train split); held out: the bottom quarter of every photo (split
     ``test``).
   - ``digits``: scikit-learn's digits at 16x16 (``digits``, ``limit = 1500``); held out: the other
     297 digits.

   Every ``--eval-every`` iterations a checkpoint is written; afterwards each is scored on the
   centre protocol (hole L1 against the step: ``inpaint-curve.png``).

   Beside DeepFill, a **Context Encoder** (Pathak et al. 2016: ``context-encoder`` task and
   generator, a ``deepfill`` critic on the predicted region) trains the same number of iterations
   on the centred hole of half the side and is scored on the centre protocol only (the hole it is
   built for). ``--methods context-encoder`` trains only it and merges its rows into ``--out``,
   keeping DeepFill's results, its row of the pictures and the attention timings.
2. **Speed** (``--attention-only`` runs only this, no training, and replaces only the
   ``attention`` key of ``--out``): forward + backward of ``ContextualAttention`` (rate 2, 3x3
   patches, propagation 3, 128 channels, a hole of half the side placed differently in each
   image) in each formulation (``loop``: convolutions image by image, the reference port's;
   ``grouped``; ``matmul``) on feature maps of ``--sizes`` pixels (batch 8 at 16 and 32, 4 at 64,
   1 at 128), on ``--device``. The formulations run interleaved, the order rotating each round;
   median wall and CPU time (``time.process_time``) of ``--repeats`` rounds after ``--warmup``.

       python benchmarks/inpaint.py --attention-only [--sizes 16 32 64 128] [--device cpu|cuda]

Results, the command line, the machine and the torch thread count go to ``--out`` as JSON (a suite
not in ``--suites`` keeps the results an earlier run wrote there, with its own command line); a
picture of held-out completions per suite (rows: holed input, DeepFill, Context Encoder, mean fill,
nearest patch, original) goes next to it as ``inpaint-SUITE.png``.
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
from gan_inpaint.attention import ContextualAttention
from gan_inpaint.datasets import SkimagePatches, SkimagePatchesOptions
from gan_inpaint.masks import MaskOptions, draw_masks
from gan_inpaint.metrics import InpaintQuality, mean_fill, nearest_patch_fill
from gan_inpaint.task import complete

import gancore
from gancore.builtin.datasets import DigitsDataset, DigitsOptions

# Context Encoders, Paris StreetView, centre hole (Pathak et al. 2016, Table 1; REFERENCE.md).
PUBLISHED = {
    "NN-inpainting (HOG)": {"hole_l1": 0.1992, "hole_l2": 0.0692, "hole_psnr": 12.79},
    "NN-inpainting (context encoder features)": {
        "hole_l1": 0.1510,
        "hole_l2": 0.0430,
        "hole_psnr": 14.70,
    },
    "Context Encoder": {"hole_l1": 0.1033, "hole_l2": 0.0235, "hole_psnr": 17.59},
}


def _run(data: dict[str, Any], generator: dict[str, Any], strokes: list[float]) -> dict[str, Any]:
    """A DeepFill run file (as a dict): hinge critics, one critic step, Adam 1e-3 with a cosine
    decay to a tenth (a fixed CPU budget; the paper's WGAN-GP, 5 critic steps and 1e-4 are the
    example TOMLs' settings)."""
    adam = {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9], "schedule": "cosine"}
    adam["final_lr_scale"] = 0.1
    return {
        "run": {"name": "bench-inpaint", "seed": 0},
        "data": data,
        "task": {
            "name": "inpaint",
            "samples": "completions",
            "masks": {"kind": "both", "stroke_width": strokes},
        },
        "generator": {"name": "deepfill", "channels": 16, "downsamples": 2, **generator},
        "critic": {"name": "deepfill", "channels": 16, "depth": 3},
        "loss": {"name": "hinge"},
        "optimizers": {"generator": dict(adam), "critic": dict(adam)},
        "training": {
            "batch_size": 32,
            "critic_steps": 1,
            "log_every": 50,
            "sample_every": 0,
            "checkpoint_every": 0,
        },
    }


def _context_encoder_run(data: dict[str, Any], overlap: int) -> dict[str, Any]:
    """A Context Encoder run file (as a dict): the centred hole of half the side, the region
    predicted with ``overlap`` px of context weighted 10x, joint loss 0.999 L2 + 0.001
    adversarial with the non-saturating loss and a ``deepfill`` critic on the region (Pathak et
    al. 2016); Adam betas (0.5, 0.999), the generator at 10x the critic's rate (2e-3 and 2e-4),
    cosine decay to a tenth as for DeepFill; batch 32."""
    schedule = {"schedule": "cosine", "final_lr_scale": 0.1}
    return {
        "run": {"name": "bench-inpaint-ce", "seed": 0},
        "data": data,
        "task": {
            "name": "context-encoder",
            "samples": "completions",
            "hole_size": 0.5,
            "overlap": overlap,
        },
        "generator": {"name": "context-encoder", "channels": 32},
        "critic": {"name": "deepfill", "channels": 16, "depth": 3},
        "loss": {"name": "non-saturating"},
        "optimizers": {
            "generator": {"name": "adam", "lr": 2e-3, "betas": [0.5, 0.999], **schedule},
            "critic": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], **schedule},
        },
        "training": {
            "batch_size": 32,
            "log_every": 50,
            "sample_every": 0,
            "checkpoint_every": 0,
        },
    }


METHODS = ("deepfill", "context-encoder")
DIGITS_SEEN = 1500


SUITES: dict[str, dict[str, Any]] = {
    "skimage": {
        "run": _run(
            {"name": "skimage-patches", "size": 32, "scale": 0.5, "stride": 8, "split": "train"},
            {"dilations": [2, 4], "attention_rate": 2},
            [0.08, 0.16],
        ),
        # the paper's 7 px overlap at 128 px, scaled to 32 px
        "context_encoder": _context_encoder_run(
            {"name": "skimage-patches", "size": 32, "scale": 0.5, "stride": 8, "split": "train"}, 2
        ),
        "held_out": lambda: SkimagePatches(
            SkimagePatchesOptions(size=32, scale=0.5, stride=8, split="test")
        ),
        "strokes": [0.08, 0.16],
        "patch_size": 5,
    },
    "digits": {
        "run": _run(
            {"name": "digits", "resolution": 16, "limit": DIGITS_SEEN},
            {"dilations": [2], "attention_rate": 1},
            [0.1, 0.2],
        ),
        "context_encoder": _context_encoder_run(  # 7 px at 128 px, scaled to 16 px
            {"name": "digits", "resolution": 16, "limit": DIGITS_SEEN}, 1
        ),
        "held_out": lambda: DigitsDataset(
            DigitsOptions(resolution=16, limit=DIGITS_SEEN, rest=True)
        ),
        "strokes": [0.1, 0.2],
        "patch_size": 3,  # a 16x16 digit with a centre hole of 8x8 has no fully known 5x5 patch
    },
}


def protocols(suite: str) -> dict[str, dict[str, Any]]:
    return {
        "center": {"kind": "center", "rectangle_size": 0.5},
        "rectangles+strokes": {"kind": "both", "stroke_width": SUITES[suite]["strokes"]},
    }


def train(
    suite: str, steps: int, eval_every: int, run_dir: Path, method: str = "deepfill"
) -> tuple[Any, Any, float]:
    registry, _ = gancore.load_registry(env={"GANCORE_LOAD_PLUGINS": "gan-inpaint"})
    key = "run" if method == "deepfill" else "context_encoder"
    document = json.loads(json.dumps(SUITES[suite][key]))
    document["run"]["name"] = f"bench-inpaint-{suite}"
    document["run"]["steps"] = steps
    document["training"]["checkpoint_every"] = eval_every
    document["training"]["keep_checkpoints"] = steps // eval_every + 1
    config = gancore.parse_config(document, registry)
    start = time.perf_counter()
    result = gancore.train(config, run_dir, progress=sys.stderr.isatty())
    return config, result, time.perf_counter() - start


class _Context:
    """What inpaint-quality reads: the task, the trained generator, held-out data, the device."""

    def __init__(self, task: Any, generators: Any, dataset: Any) -> None:
        self.task, self.generators, self.dataset = task, generators, dataset
        self.device = torch.device("cpu")


def quality(
    suite: str,
    config: Any,
    generators: Any,
    num_images: int,
    held_out: Any,
    labels: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Scores of the run on ``labels`` of :func:`protocols` (default: all)."""
    rows: dict[str, Any] = {"held_out_images": len(held_out)}
    for label, masks in protocols(suite).items():
        if labels is not None and label not in labels:
            continue
        metric = InpaintQuality(
            num_images=min(num_images, len(held_out)),
            seed=1,
            masks=MaskOptions(**masks),
            patch_size=SUITES[suite]["patch_size"],
        )
        start = time.perf_counter()
        rows[label] = metric.evaluate(_Context(config.task.options, generators, held_out))
        rows[label]["eval_s"] = time.perf_counter() - start
    return rows


def curve(
    suite: str, config: Any, run_dir: Path, num_images: int, held_out: Any
) -> list[dict[str, Any]]:
    """Centre-hole quality of every checkpoint of the run (the model only)."""
    from gancore._checkpoint import list_checkpoints

    metric = InpaintQuality(
        num_images=min(num_images, len(held_out)),
        seed=1,
        masks=MaskOptions(**protocols(suite)["center"]),
        baselines=(),
    )
    points = []
    for path in list_checkpoints(run_dir / "checkpoints"):
        loaded = gancore.load_run(run_dir, which=path.name)
        scores = metric.evaluate(_Context(config.task.options, loaded.generators, held_out))
        step = int(path.name.split("-")[-1])
        points.append({"step": step, **{k: scores[k] for k in ("hole_l1", "hole_psnr")}})
        print(f"{suite} step {step}: centre hole L1 {100 * scores['hole_l1']:.2f}%", flush=True)
    return points


PICTURE_MODELS = ("deepfill", "context-encoder")  # rows after the holed input, in this order


def _earlier_rows(path: Path, n: int, h: int, w: int) -> list[torch.Tensor]:
    """The rows ``[n, 3, h, w]`` of a picture written earlier by :func:`picture` (none if there
    is no file or it has another size): a run of one method keeps the other's row."""
    import numpy as np
    from PIL import Image

    if not path.is_file():
        return []
    with Image.open(path) as file:
        pixels = torch.from_numpy(np.asarray(file.convert("RGB")).copy())
    scale = 96 // h
    if pixels.shape[1] != n * w * scale or pixels.shape[0] % (h * scale):
        return []
    small = pixels[::scale, ::scale].permute(2, 0, 1).float() / 127.5 - 1.0  # [3, R*h, n*w]
    count = small.shape[1] // h
    return [small.reshape(3, count, h, n, w).permute(1, 3, 0, 2, 4)[i] for i in range(count)]


def picture(models: dict[str, Any], held_out: Any, patch_size: int, path: Path) -> None:
    """Held-out images with the centre hole, one row each: holed input, DeepFill, Context
    Encoder, mean fill, nearest patch, original. A method not in ``models`` (method -> the run's
    generators) keeps its row of the picture already at ``path`` (same images and holes)."""
    from PIL import Image

    gen = torch.Generator().manual_seed(3)
    rows = torch.randperm(len(held_out), generator=gen)[:8].tolist()
    image = held_out.get_batch(rows)["x"]
    n, _, h, w = image.shape
    mask = draw_masks(MaskOptions(kind="center", rectangle_size=0.5), n, h, w)
    earlier = _earlier_rows(path, n, h, w)
    # Earlier layouts: 5 rows (input, DeepFill, mean, nearest, original) or the 6 rows written here.
    earlier_index = {"deepfill": 1, "context-encoder": 2 if len(earlier) == 6 else None}
    model_rows = []
    for method in PICTURE_MODELS:
        if method in models:
            with torch.no_grad():
                model_rows.append(complete(models[method]["generator"], image, mask))
        elif (index := earlier_index[method]) is not None and index < len(earlier):
            model_rows.append(earlier[index])
    holed = torch.where(mask > 0.5, torch.zeros_like(image), image)
    baselines = [mean_fill(image, mask), nearest_patch_fill(image, mask, patch_size), image]
    grid = torch.cat(
        [r.expand(-1, 3, -1, -1) for r in [holed, *model_rows, *baselines]]
    )  # rows of 8
    count = len(grid) // n
    grid = grid.view(count, n, 3, h, w).permute(0, 3, 1, 4, 2).reshape(count * h, n * w, 3)
    pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    scale = 96 // h
    Image.fromarray(pixels).resize(
        (n * w * scale, count * h * scale), Image.Resampling.NEAREST
    ).save(path)


def curve_picture(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(result["suites"])
    fig, axes = plt.subplots(1, len(suites), figsize=(5 * len(suites), 3.6), squeeze=False)
    for ax, suite in zip(axes[0], suites, strict=True):
        row = result["suites"][suite]
        points = row.get("curve", [])
        ax.plot(
            [p["step"] for p in points],
            [100 * p["hole_l1"] for p in points],
            "o-",
            label="DeepFill",
        )
        if "context_encoder" in row:
            points = row["context_encoder"]["curve"]
            ax.plot(
                [p["step"] for p in points],
                [100 * p["hole_l1"] for p in points],
                "s-",
                label="Context Encoder",
            )
        center = row.get("quality", row.get("context_encoder", {}).get("quality", {}))["center"]
        for key, label, style in (
            ("mean_fill_hole_l1", "mean fill", "--"),
            ("nearest_patch_hole_l1", "nearest-patch fill", ":"),
        ):
            ax.axhline(100 * center[key], linestyle=style, color="gray", label=label)
        ax.set_title(f"{suite}: held-out images, centre hole")
        ax.set_xlabel("training iterations")
        ax.set_ylabel("hole L1 (%)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


ATTENTION_BATCH = {16: 8, 32: 8, 64: 4, 128: 1}  # feature map side -> images per call
ATTENTION_CHANNELS = 128
ATTENTION_FORMULATIONS = ("loop", "grouped", "matmul")  # the loop first: the reference


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _attention_case(
    size: int, batch: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``[batch, 128, size, size]`` and masks with a hole of half the side per image,
    at a different place in each (its corner steps along the diagonal), from a fixed seed."""
    gen = torch.Generator().manual_seed(size)
    features = torch.randn(batch, ATTENTION_CHANNELS, size, size, generator=gen)
    mask = torch.zeros(batch, 1, size, size)
    side = size // 2
    for i in range(batch):
        corner = (size // 8) * (i % 4) // 2 * 2  # even: whole cells at rate 2
        mask[i, :, corner : corner + side, corner : corner + side] = 1.0
    return features.to(device), mask.to(device)


def _time_attention(
    module: ContextualAttention, features: torch.Tensor, mask: torch.Tensor
) -> tuple[float, float]:
    """Seconds of one forward + backward (wall, and CPU time of this process)."""
    x = features.clone().requires_grad_(True)
    _synchronize(x.device)
    wall, cpu = time.perf_counter(), time.process_time()
    module(x, x, mask).square().mean().backward()
    _synchronize(x.device)
    return time.perf_counter() - wall, time.process_time() - cpu


def attention_speed(
    sizes: list[int], repeats: int, warmup: int, device: str = "cpu"
) -> dict[str, Any]:
    """Forward + backward of every formulation of ``ContextualAttention`` (rate 2, propagation
    3, 128 channels) per feature map size, interleaved (each repeat runs every formulation once,
    the order rotating), median wall and CPU time after ``warmup`` untimed rounds."""
    where = torch.device(device)
    load_at_start = list(os.getloadavg())
    cases = []
    print(attention_table({"cases": []}), flush=True)
    for size in sizes:
        batch = ATTENTION_BATCH.get(size, 1)
        features, mask = _attention_case(size, batch, where)
        modules = {
            name: ContextualAttention(
                rate=2, softmax_scale=10.0, propagation=3, implementation=name
            )
            for name in ATTENTION_FORMULATIONS
        }
        wall: dict[str, list[float]] = {name: [] for name in modules}
        cpu: dict[str, list[float]] = {name: [] for name in modules}
        for round_ in range(warmup + repeats):
            shift = round_ % len(modules)  # rotate the order: no formulation always runs first
            for name in [*ATTENTION_FORMULATIONS[shift:], *ATTENTION_FORMULATIONS[:shift]]:
                seconds, cpu_seconds = _time_attention(modules[name], features, mask)
                if round_ >= warmup:
                    wall[name].append(seconds)
                    cpu[name].append(cpu_seconds)
        median = {name: statistics.median(times) for name, times in wall.items()}
        cpu_median = {name: statistics.median(times) for name, times in cpu.items()}
        case = {
            "size": size,
            "batch": batch,
            "channels": ATTENTION_CHANNELS,
            "locations": (size // 2) ** 2,  # matching locations = background patches per image
            "median_ms": {name: 1000 * t for name, t in median.items()},
            "cpu_median_ms": {name: 1000 * t for name, t in cpu_median.items()},
            "ratio_vs_loop": {name: median["loop"] / t for name, t in median.items()},
            "cpu_ratio_vs_loop": {name: cpu_median["loop"] / t for name, t in cpu_median.items()},
            "fastest": min(median, key=median.__getitem__),
            "auto": ContextualAttention().chosen(features),
            "wall_ms": {name: [1000 * t for t in times] for name, times in wall.items()},
            "cpu_ms": {name: [1000 * t for t in times] for name, times in cpu.items()},
        }
        cases.append(case)
        print(attention_table({"cases": [case]}).splitlines()[-1], flush=True)
    return {
        "device": str(where) if where.type == "cpu" else torch.cuda.get_device_name(where),
        "rate": 2,
        "propagation": 3,
        "load_average_1_5_15_min_start": load_at_start,
        "repeats": repeats,
        "warmup": warmup,
        "cases": cases,
    }


def attention_table(attention: dict[str, Any]) -> str:
    """Markdown: per size, ms per forward + backward of each formulation (median wall time, CPU
    time in brackets) and the ratio to the loop's (> 1: faster than the loop)."""
    names = ATTENTION_FORMULATIONS
    lines = [
        "| feature map | batch | "
        + " | ".join(f"{name} (ms)" for name in names)
        + " | "
        + " | ".join(f"{name} vs loop" for name in names[1:])
        + " | auto |",
        "|---" * (2 + 2 * len(names)) + "|",
    ]
    for case in attention.get("cases", []):
        times = " | ".join(
            f"{case['median_ms'][n]:,.1f} ({case['cpu_median_ms'][n]:,.1f})" for n in names
        )
        ratios = " | ".join(
            f"{case['ratio_vs_loop'][n]:.2f}x ({case['cpu_ratio_vs_loop'][n]:.2f}x)"
            for n in names[1:]
        )
        lines.append(
            f"| {case['size']}x{case['size']} | {case['batch']} | {times} | {ratios} | "
            f"{case['auto']} |"
        )
    return "\n".join(lines)


def table(result: dict[str, Any]) -> str:
    lines = [
        "| suite | method | holes | hole L1 (%) | hole L2 (%) | hole PSNR (dB) | hole SSIM "
        "| image PSNR (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for suite, row in result["suites"].items():
        for label in protocols(suite):
            methods = [("mean fill", "mean_fill_"), ("nearest-patch fill", "nearest_patch_")]
            if "quality" in row:
                scores = row["quality"][label]
                methods.append((f"DeepFill ({row['steps']} steps)", ""))
            elif label in row.get("context_encoder", {}).get("quality", {}):
                scores = row["context_encoder"]["quality"][label]  # baselines: the same images
            else:
                continue
            for name, prefix in methods:
                lines.append(
                    f"| {suite} | {name} | {label} | {100 * scores[prefix + 'hole_l1']:.2f} | "
                    f"{100 * scores[prefix + 'hole_l2']:.2f} | {scores[prefix + 'hole_psnr']:.2f} | "
                    f"{scores[prefix + 'hole_ssim']:.3f} | {scores[prefix + 'image_psnr']:.2f} |"
                )
            if label in row.get("context_encoder", {}).get("quality", {}):
                ce = row["context_encoder"]
                scores = ce["quality"][label]
                lines.append(
                    f"| {suite} | Context Encoder ({ce['steps']} steps) | {label} | "
                    f"{100 * scores['hole_l1']:.2f} | {100 * scores['hole_l2']:.2f} | "
                    f"{scores['hole_psnr']:.2f} | {scores['hole_ssim']:.3f} | "
                    f"{scores['image_psnr']:.2f} |"
                )
    for name, published in PUBLISHED.items():
        lines.append(
            f"| Paris StreetView (Pathak et al. 2016) | {name} | center | "
            f"{100 * published['hole_l1']:.2f} | {100 * published['hole_l2']:.2f} | "
            f"{published['hole_psnr']:.2f} | | |"
        )
    if "cases" in result.get("attention", {}):
        lines += ["", attention_table(result["attention"])]
    return "\n".join(lines)


def attention_only(args: argparse.Namespace, command: str) -> int:
    """``--attention-only``: time the formulations and replace only the ``attention`` key of
    ``--out`` (the file's other keys, and the training results in it, stay as they were)."""
    attention = attention_speed(args.sizes, args.repeats, args.warmup, args.device)
    attention["command"] = command
    attention["machine"] = machine(args.threads, "gan-inpaint")  # the load average at the end
    merged = json.loads(args.out.read_text()) if args.out.is_file() else {}  # read, merge, write
    merged["attention"] = attention
    args.out.write_text(json.dumps(merged, indent=2) + "\n")
    print(attention_table(attention))
    print(f"wrote the 'attention' key of {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", nargs="+", choices=list(SUITES), default=list(SUITES))
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="methods to train and score; the others keep their results in --out",
    )
    parser.add_argument("--steps", type=int, default=3000, help="training iterations per suite")
    parser.add_argument(
        "--eval-every", type=int, default=500, help="iterations between scored checkpoints"
    )
    parser.add_argument("--num-images", type=int, default=256, help="held-out images scored")
    parser.add_argument(
        "--attention-only",
        action="store_true",
        help="only time contextual attention (no training); writes the 'attention' key of --out",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=int,
        default=[16, 32, 64, 128],
        help="attention feature map sides (batch 8 at 16 and 32, 4 at 64, 1 at 128)",
    )
    parser.add_argument("--device", default="cpu", help="attention timings on cpu or cuda")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed attention rounds per size (each formulation)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed attention rounds per size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: 20 steps, 32 images, attention at 16 and 32 px once",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "inpaint.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.eval_every, args.num_images, args.repeats = 20, 10, 32, 1
    torch.set_num_threads(args.threads)
    command = " ".join(["python", "benchmarks/inpaint.py", *(argv or sys.argv[1:])])
    this_machine = machine(args.threads, "gan-inpaint")
    result: dict[str, Any] = {
        "command": command,
        "machine": this_machine,
        "published": PUBLISHED,
        "suites": {},
    }
    earlier: dict[str, Any] = {}
    if args.out.is_file():  # suites and methods not run this time keep their earlier results
        earlier = json.loads(args.out.read_text())
        result["suites"] = earlier.get("suites", {})
        if "deepfill" not in args.methods:  # the top level stays DeepFill's; rows carry their own
            result["command"] = earlier.get("command", command)
            result["machine"] = earlier.get("machine", this_machine)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.attention_only:
        return attention_only(args, command)
    for suite in args.suites:
        torch.manual_seed(0)
        held_out = SUITES[suite]["held_out"]()
        row = result["suites"].setdefault(suite, {})
        models = {}
        for method in [m for m in METHODS if m in args.methods]:
            with tempfile.TemporaryDirectory() as tmp:
                run_dir = Path(tmp) / "run"
                config, trained, train_s = train(
                    suite, args.steps, args.eval_every, run_dir, method
                )
                if trained.interrupted or trained.step != args.steps:  # SIGTERM stops training
                    print(f"stopped at step {trained.step} of {args.steps}", file=sys.stderr)
                    return 1
                print(
                    f"{suite} {method}: trained {args.steps} steps in {train_s:.0f} s", flush=True
                )
                points = curve(suite, config, run_dir, args.num_images, held_out)
            for module in trained.generators.values():  # batch norm (Context Encoder): its
                module.eval()  # running statistics, as the loop's metrics and load_run use
            models[method] = trained.generators
            scored = {
                "command": command,
                "machine": this_machine,
                "steps": args.steps,
                "train_s": train_s,
                "held_out_images": len(held_out),
            }
            if method == "deepfill":  # its rows stay where the earlier results put them
                row.update(scored, run=SUITES[suite]["run"], curve=points)
                row["quality"] = quality(
                    suite, config, trained.generators, args.num_images, held_out
                )
            else:  # trained for the centre hole only: scored on the centre protocol
                row["context_encoder"] = scored | {
                    "run": SUITES[suite]["context_encoder"],
                    "quality": quality(
                        suite, config, trained.generators, args.num_images, held_out, ("center",)
                    ),
                    "curve": points,
                }
            args.out.write_text(json.dumps(result, indent=2) + "\n")  # partial results survive
        picture(
            models,
            held_out,
            SUITES[suite]["patch_size"],
            args.out.with_name(f"inpaint-{suite}.png"),
        )
    curve_picture(result, args.out.with_name("inpaint-curve.png"))
    if "deepfill" not in args.methods and "attention" in earlier:  # DeepFill's attention
        result["attention"] = earlier["attention"]
    else:
        sizes = [16, 32] if args.quick else args.sizes
        result["attention"] = attention_speed(sizes, args.repeats, args.warmup, args.device)
        result["attention"].update(command=command, machine=machine(args.threads, "gan-inpaint"))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
