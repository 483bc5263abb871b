"""Throughput of gan-stylegan's StyleGAN2: generator forward and full training steps.

    python benchmarks/stylegan.py [--quick] [--threads 1] [--out benchmarks/results/stylegan.json]

Two measurements at 32 and 64 px, on the CPU and, when one is available, on a CUDA GPU:

- **Generator forward** (images/s): ``G(z)`` in eval mode under ``torch.no_grad()`` (mapping,
  fixed noise, synthesis), for two widths: ``small`` (the CPU example's scale: 64 feature maps at
  every resolution, 128-d z and w, 2 mapping layers) and ``paper`` (StyleGAN2 config F's widths:
  512 maps up to 64 px, 512-d z and w, 8 mapping layers), each with the modulated convolution
  computed as one grouped convolution (``grouped_conv = true``, the paper's form) and by scaling
  activations around a shared convolution (``false``). Batch 16 (small) and 4 (paper).
- **Training step** (images/s): whole iterations of gancore's loop on the ``digits`` data
  resized to the resolution (1 channel), ``small`` width, batch 32: one critic step
  (non-saturating loss), lazy R1 every 16 critic steps, one generator step, lazy path length
  every 4 generator steps, generator EMA. The loop logs seconds per iteration every 16
  iterations (so each window holds one R1 and four path-length steps); the figure is the median
  over windows after a warm-up window. ``images/s`` is batch / seconds per iteration.

Times are medians over ``--repeats`` timings after ``--warmup`` untimed runs. The CPU seconds
per iteration (process time) are reported next to the wall-clock figures: on a shared machine
they move less with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _machine import machine

RESOLUTIONS = (32, 64)
WIDTHS: dict[str, dict[str, Any]] = {
    "small": {
        "latent_dim": 128,
        "style_dim": 128,
        "mapping_depth": 2,
        "channel_base": 4096,
        "channel_max": 64,
    },
    "medium": {
        "latent_dim": 256,
        "style_dim": 256,
        "mapping_depth": 4,
        "channel_base": 8192,
        "channel_max": 256,
    },
    "paper": {
        "latent_dim": 512,
        "style_dim": 512,
        "mapping_depth": 8,
        "channel_base": 32768,
        "channel_max": 512,
    },
}
FORWARD_BATCH = {"small": 16, "medium": 8, "paper": 4}
FORWARD_WIDTHS = ("small", "paper")  # the forward table's widths; "medium" is for training
TRAIN_BATCH = 32
WINDOW = 16  # iterations per logged window: one lazy R1 (16) and four path-length steps (4)

TRAIN_CONFIG = """
[run]
name = "bench-{resolution}"
seed = 0
steps = {steps}

[data]
name = "digits"
resolution = {resolution}

[generator]
name = "stylegan2"
latent_dim = {latent_dim}
style_dim = {style_dim}
mapping_depth = {mapping_depth}
channel_base = {channel_base}
channel_max = {channel_max}
grouped_conv = {grouped}

[critic]
name = "stylegan2"
channel_base = {channel_base}
channel_max = {channel_max}

[loss]
name = "non-saturating"

[[regularizers]]
name = "r1"
gamma = 0.05
interval = 16

[[regularizers]]
name = "path-length"
interval = 4

[optimizers.generator]
lr = 0.0025
betas = [0.0, 0.99]

[optimizers.critic]
lr = 0.0025
betas = [0.0, 0.99]

[training]
batch_size = {batch}
ema_half_life_images = 10000
log_every = {window}
sample_every = 0
checkpoint_every = 0
num_samples = 4
"""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_forward(
    width: str, resolution: int, grouped: bool, device: torch.device, warmup: int, repeats: int
) -> dict[str, Any]:
    """Images/s of ``G(z)`` (eval, no grad) for one configuration."""
    from gan_stylegan.generators import StyleGAN2GeneratorOptions, build_stylegan2_generator

    import gancore

    torch.manual_seed(0)
    options = StyleGAN2GeneratorOptions(**WIDTHS[width], grouped_conv=grouped)
    context = gancore.BuildContext(data_shape=(3, resolution, resolution))
    generator = build_stylegan2_generator(options, context).to(device).eval()
    batch = FORWARD_BATCH[width]
    z = torch.randn(batch, options.latent_dim, device=device)
    times, cpu_times = [], []
    with torch.no_grad():
        for i in range(warmup + repeats):
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            generator(z)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
    seconds = statistics.median(times)
    return {
        "measure": "generator_forward",
        "width": width,
        "resolution": resolution,
        "grouped_conv": grouped,
        "batch": batch,
        "device": device.type,
        "seconds_per_batch": seconds,
        "cpu_seconds_per_batch": statistics.median(cpu_times),
        "images_per_s": batch / seconds,
        "timings": times,
        "parameters": sum(p.numel() for p in generator.parameters()),
    }


def bench_train_step(
    resolution: int,
    grouped: bool | str,
    device: torch.device,
    warmup: int,
    repeats: int,
    width: str = "small",
    batch: int = TRAIN_BATCH,
) -> dict[str, Any]:
    """Images/s of whole training iterations of gancore's loop (generator and critic of
    ``width``; ``grouped``: the generator's ``grouped_conv``, true, false or "auto")."""
    import gancore

    steps = WINDOW * (warmup + repeats)
    sizes = dict(WIDTHS[width])
    text = TRAIN_CONFIG.format(
        resolution=resolution,
        steps=steps,
        batch=batch,
        window=WINDOW,
        grouped=f'"{grouped}"' if isinstance(grouped, str) else str(grouped).lower(),
        **sizes,
    )
    workdir = Path(tempfile.mkdtemp(prefix="stylegan-bench-"))
    # gancore trains on the GPU when there is one; Accelerate's flag keeps the CPU case on the CPU.
    previous = os.environ.get("ACCELERATE_USE_CPU")
    os.environ["ACCELERATE_USE_CPU"] = "true" if device.type == "cpu" else "false"
    try:
        (workdir / "run.toml").write_text(text)
        config = gancore.load_config(workdir / "run.toml")
        cpu_start = time.process_time()
        gancore.train(config, workdir / "run", progress=False)
        cpu_seconds = time.process_time() - cpu_start
        lines = (workdir / "run" / "metrics.jsonl").read_text().splitlines()
        records = [r for r in map(json.loads, lines) if r["event"] == "train"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if previous is None:
            os.environ.pop("ACCELERATE_USE_CPU", None)
        else:
            os.environ["ACCELERATE_USE_CPU"] = previous
    seconds = [r["sec_per_step"] for r in records[warmup:]]
    median = statistics.median(seconds)
    return {
        "measure": "training_step",
        "width": width,
        "resolution": resolution,
        "grouped_conv": grouped,
        "batch": batch,
        "device": device.type,
        "seconds_per_step": median,
        "cpu_seconds_per_step_incl_warmup": cpu_seconds / steps,
        "images_per_s": batch / median,
        "window_seconds_per_step": seconds,
        "iterations": steps,
    }


def table(results: list[dict[str, Any]], gpu_note: str | None) -> str:
    lines = [
        "| measure | width | px | modulated conv | batch | device | images/s | s per batch/step | CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        conv = "grouped" if r["grouped_conv"] else "activations"
        seconds = r.get("seconds_per_batch", r.get("seconds_per_step"))
        cpu = r.get("cpu_seconds_per_batch", r.get("cpu_seconds_per_step_incl_warmup"))
        lines.append(
            f"| {r['measure'].replace('_', ' ')} | {r['width']} | {r['resolution']} | {conv} | "
            f"{r['batch']} | {r['device']} | {r['images_per_s']:.1f} | {seconds:.3f} | "
            f"{cpu:.3f} |"
        )
    if gpu_note:
        lines.append(f"| (GPU) | | | | | | {gpu_note} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one size, few repeats (smoke test)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-windows", type=int, default=3, help="timed 16-step windows")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stylegan.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("GANCORE_LOAD_PLUGINS", "gan-stylegan")
    from tqdm import tqdm

    resolutions = RESOLUTIONS[:1] if args.quick else RESOLUTIONS
    repeats = 2 if args.quick else args.repeats
    windows = 1 if args.quick else args.train_windows
    devices = [torch.device("cpu")]
    gpu_note = None
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    else:
        gpu_note = "not measured: no GPU"

    cases: list[tuple[str, Any]] = []
    for device in devices:
        for resolution in resolutions:
            for width in FORWARD_WIDTHS:
                for grouped in (True, False):
                    cases.append(("forward", (width, resolution, grouped, device)))
            cases.append(("train", (resolution, device)))
    results = []
    for kind, case in tqdm(cases, desc="stylegan benchmark", file=sys.stderr):
        if kind == "forward":
            width, resolution, grouped, device = case
            results.append(bench_forward(width, resolution, grouped, device, args.warmup, repeats))
        else:
            resolution, device = case
            results.append(bench_train_step(resolution, True, device, 1, windows))
    text = table(results, gpu_note)
    print(text)
    payload = {
        "benchmark": "stylegan",
        "command": "python benchmarks/stylegan.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(torch.get_num_threads(), "gan-stylegan"),
        "settings": {
            "warmup": args.warmup,
            "repeats": repeats,
            "train_windows": windows,
            "window_iterations": WINDOW,
            "widths": WIDTHS,
            "forward_batch": FORWARD_BATCH,
            "train_batch": TRAIN_BATCH,
        },
        "gpu": gpu_note or "measured",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
