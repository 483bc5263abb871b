"""What every benchmark's JSON records about where it ran: CPU model and count, platform, Python,
torch and package versions, torch threads, load average, and the GPU if there is one.

Imported by the scripts in this folder (``python benchmarks/x.py`` puts the folder on sys.path).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int | None = None, *distributions: str) -> dict[str, Any]:
    """The machine and software of this run; ``distributions`` are versioned beside gancore's."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    for name in ("gancore", *distributions):
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    info["torch_threads"] = torch.get_num_threads() if threads is None else threads
    info["load_average_1_5_15_min"] = list(os.getloadavg())
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def finish(results: dict[str, Any], started: float, out: Path | None) -> None:
    """Close a benchmark's ``results`` (with a ``machine`` entry): its wall time since
    ``started`` (``time.perf_counter()``) and the load average at the end; print it as JSON and
    write it to ``out`` if given."""
    results["wall_seconds"] = time.perf_counter() - started
    results["machine"]["load_average_1_5_15_min_end"] = list(os.getloadavg())
    text = json.dumps(results, indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
