"""Inpainting quality after a fixed budget, and the speed of contextual attention.

    python benchmarks/inpaint.py [--suites skimage digits] [--steps 3000] [--eval-every 500]
        [--threads 1] [--quick] [--out benchmarks/results/inpaint.json]

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
2. **Speed**: forward + backward of ``ContextualAttention`` (rate 2, 3x3 patches, propagation 3,
   64 channels, batch 1, a 25% hole) on feature maps of 32, 64 and 128 pixels: median of
   ``--repeats`` timings after ``--warmup`` runs.

Results, the command line, the machine and the torch thread count go to ``--out`` as JSON (a suite
not in ``--suites`` keeps the results an earlier run wrote there, with its own command line); a
picture of held-out completions per suite (rows: holed input, DeepFill, mean fill, nearest patch,
original) goes next to it as ``inpaint-SUITE.png``.
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
from gancore.builtin.datasets import DigitsDataset, DigitsOptions

# Context Encoders, Paris StreetView, centre hole (Pathak et al. 2016, Table 1; REFERENCE.md).
PUBLISHED = {
    "NN-inpainting (HOG)": {"hole_l1": 0.1992, "hole_l2": 0.0692, "hole_psnr": 12.79},
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


DIGITS_SEEN = 1500


SUITES: dict[str, dict[str, Any]] = {
    "skimage": {
        "run": _run(
            {"name": "skimage-patches", "size": 32, "scale": 0.5, "stride": 8, "split": "train"},
            {"dilations": [2, 4], "attention_rate": 2},
            [0.08, 0.16],
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


def train(suite: str, steps: int, eval_every: int, run_dir: Path) -> tuple[Any, Any, float]:
    registry, _ = gancore.load_registry(env={"GANCORE_LOAD_PLUGINS": "gan-inpaint"})
    document = json.loads(json.dumps(SUITES[suite]["run"]))
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
    suite: str, config: Any, generators: Any, num_images: int, held_out: Any
) -> dict[str, Any]:
    rows: dict[str, Any] = {"held_out_images": len(held_out)}
    for label, masks in protocols(suite).items():
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


def picture(generators: Any, held_out: Any, patch_size: int, path: Path) -> None:
    from PIL import Image

    gen = torch.Generator().manual_seed(3)
    rows = torch.randperm(len(held_out), generator=gen)[:8].tolist()
    image = held_out.get_batch(rows)["x"]
    n, _, h, w = image.shape
    mask = draw_masks(MaskOptions(kind="center", rectangle_size=0.5), n, h, w)
    with torch.no_grad():
        model = complete(generators["generator"], image, mask)
    holed = torch.where(mask > 0.5, torch.zeros_like(image), image)
    grid = torch.cat(
        [holed, model, mean_fill(image, mask), nearest_patch_fill(image, mask, patch_size), image]
    )  # 5 rows of 8
    grid = grid.expand(-1, 3, -1, -1)
    grid = grid.view(5, n, 3, h, w).permute(0, 3, 1, 4, 2).reshape(5 * h, n * w, 3)
    pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    scale = 96 // h
    Image.fromarray(pixels).resize((n * w * scale, 5 * h * scale), Image.Resampling.NEAREST).save(
        path
    )


def curve_picture(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(result["suites"])
    fig, axes = plt.subplots(1, len(suites), figsize=(5 * len(suites), 3.6), squeeze=False)
    for ax, suite in zip(axes[0], suites, strict=True):
        row = result["suites"][suite]
        points = row["curve"]
        ax.plot(
            [p["step"] for p in points],
            [100 * p["hole_l1"] for p in points],
            "o-",
            label="DeepFill",
        )
        center = row["quality"]["center"]
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
        "| suite | method | holes | hole L1 (%) | hole L2 (%) | hole PSNR (dB) | hole SSIM "
        "| image PSNR (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for suite, row in result["suites"].items():
        for label in protocols(suite):
            scores = row["quality"][label]
            for name, prefix in (
                ("mean fill", "mean_fill_"),
                ("nearest-patch fill", "nearest_patch_"),
                (f"DeepFill ({row['steps']} steps)", ""),
            ):
                lines.append(
                    f"| {suite} | {name} | {label} | {100 * scores[prefix + 'hole_l1']:.2f} | "
                    f"{100 * scores[prefix + 'hole_l2']:.2f} | {scores[prefix + 'hole_psnr']:.2f} | "
                    f"{scores[prefix + 'hole_ssim']:.3f} | {scores[prefix + 'image_psnr']:.2f} |"
                )
    for name, published in PUBLISHED.items():
        lines.append(
            f"| Paris StreetView (Pathak et al. 2016) | {name} | center | "
            f"{100 * published['hole_l1']:.2f} | {100 * published['hole_l2']:.2f} | "
            f"{published['hole_psnr']:.2f} | | |"
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
    parser.add_argument("--suites", nargs="+", choices=list(SUITES), default=list(SUITES))
    parser.add_argument("--steps", type=int, default=3000, help="training iterations per suite")
    parser.add_argument(
        "--eval-every", type=int, default=500, help="iterations between scored checkpoints"
    )
    parser.add_argument("--num-images", type=int, default=256, help="held-out images scored")
    parser.add_argument("--repeats", type=int, default=3, help="timed attention runs per size")
    parser.add_argument("--warmup", type=int, default=1, help="untimed attention runs per size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: 20 steps, 32 images, 64x64 at most"
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "inpaint.json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.eval_every, args.num_images, args.repeats = 20, 10, 32, 1
    torch.set_num_threads(args.threads)
    command = " ".join(["python", "benchmarks/inpaint.py", *(argv or sys.argv[1:])])
    result: dict[str, Any] = {
        "command": command,
        "machine": machine(args.threads, "gan-inpaint"),
        "published": PUBLISHED,
        "suites": {},
    }
    if args.out.is_file():  # suites not run this time keep their earlier results
        earlier = json.loads(args.out.read_text()).get("suites", {})
        result["suites"] = {k: v for k, v in earlier.items() if k not in args.suites}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for suite in args.suites:
        torch.manual_seed(0)
        held_out = SUITES[suite]["held_out"]()
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp) / "run"
            config, trained, train_s = train(suite, args.steps, args.eval_every, run_dir)
            if trained.interrupted or trained.step != args.steps:  # SIGTERM stops training only
                print(f"training stopped at step {trained.step} of {args.steps}", file=sys.stderr)
                return 1
            print(f"{suite}: trained {args.steps} steps in {train_s:.0f} s", flush=True)
            points = curve(suite, config, run_dir, args.num_images, held_out)
        result["suites"][suite] = {
            "command": command,
            "machine": result["machine"],
            "steps": args.steps,
            "train_s": train_s,
            "held_out_images": len(held_out),
            "run": SUITES[suite]["run"],
            "quality": quality(suite, config, trained.generators, args.num_images, held_out),
            "curve": points,
        }
        picture(
            trained.generators,
            held_out,
            SUITES[suite]["patch_size"],
            args.out.with_name(f"inpaint-{suite}.png"),
        )
        args.out.write_text(json.dumps(result, indent=2) + "\n")  # partial results survive
    curve_picture(result, args.out.with_name("inpaint-curve.png"))
    sizes = [32, 64] if args.quick else [32, 64, 128]
    result["attention"] = attention_speed(sizes, args.repeats, args.warmup)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
