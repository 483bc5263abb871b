"""``gan describe-run RUN_DIR``: a command of gan-example, built on the public API."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gancore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run directory written by gan train")
    parser.add_argument("--checkpoint", default="latest", help="latest, best or step-NNNNNNN")


def describe_run(args: argparse.Namespace) -> int:
    log = args.run_dir / "metrics.jsonl"
    if not log.is_file():
        raise FileNotFoundError(f"{args.run_dir} is not a run directory (no metrics.jsonl)")
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    train = [e for e in events if e.get("event") == "train"]
    if train:
        last = train[-1]
        print(f"step {last['step']}, {last['images_seen']} images seen")
        for key in sorted(k for k in last if k.startswith("loss/")):
            print(f"{key}: {last[key]:.4g}")
    run = gancore.load_run(args.run_dir, args.checkpoint)
    for name, module in {**run.built.generators, **run.built.critics}.items():
        print(f"{name}: {sum(p.numel() for p in module.parameters())} parameters")
    return 0
