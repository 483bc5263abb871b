"""Which form of StyleGAN2's modulated convolution trains faster, per width and batch size.

    python benchmarks/stylegan_modconv.py [--widths small medium] [--batches 32 8]
        [--resolution 32] [--windows 2] [--threads 1] [--quick]
        [--out benchmarks/results/stylegan-modconv.json]

The two forms compute the same function (gan-stylegan's tests): ``grouped_conv = true`` stacks
the per-sample modulated weights ``[N, O, I, k, k]`` into one grouped convolution with ``N``
groups (the paper's description); ``false`` scales the activations by the styles around one
shared convolution and the outputs by the demodulation coefficients. For each width, batch size
and form, whole training iterations of gancore's loop (``benchmarks/stylegan.py``'s training
run: digits at ``--resolution``, one critic and one generator step, lazy R1 every 16 and path
length every 4 iterations, EMA) are timed over ``--windows`` windows of 16 iterations after one
warm-up window; the figure is the median window, in images/s, with the process's CPU seconds
per iteration beside it (steadier on a shared machine). The ratio activations / grouped is what
the default of ``grouped_conv`` ("auto") is chosen from, on the device measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from _machine import machine
from stylegan import WIDTHS, bench_train_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", nargs="+", default=["small", "medium"], choices=list(WIDTHS))
    parser.add_argument("--batches", nargs="+", type=int, default=[32, 8])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--windows", type=int, default=2, help="timed 16-iteration windows")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="small width, batch 8, one window")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/stylegan-modconv.json")
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GANCORE_LOAD_PLUGINS", "gan-stylegan")
    widths, batches, windows = args.widths, args.batches, args.windows
    if args.quick:
        widths, batches, windows = ["small"], [8], 1
    device = torch.device(args.device)
    results: list[dict[str, Any]] = []
    print("| width | batch | grouped images/s | activations images/s | ratio | CPU s/it (g / a) |")
    print("|---|---|---|---|---|---|")
    for width in widths:
        for batch in batches:
            pair = [
                bench_train_step(args.resolution, grouped, device, 1, windows, width, batch)
                for grouped in (True, False)
            ]
            results.extend(pair)
            grouped, activations = pair
            ratio = activations["images_per_s"] / grouped["images_per_s"]
            print(
                f"| {width} | {batch} | {grouped['images_per_s']:.1f} | "
                f"{activations['images_per_s']:.1f} | {ratio:.2f}x | "
                f"{grouped['cpu_seconds_per_step_incl_warmup']:.2f} / "
                f"{activations['cpu_seconds_per_step_incl_warmup']:.2f} |",
                flush=True,
            )
    payload = {
        "benchmark": "stylegan-modconv",
        "command": "python benchmarks/stylegan_modconv.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(torch.get_num_threads(), "gan-stylegan"),
        "settings": {"resolution": args.resolution, "windows": windows, "widths": WIDTHS},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
