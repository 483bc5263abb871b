"""The GPU check: every example trains on CUDA in each precision, then samples and scores there.

    python benchmarks/gpu_check.py [--steps 200] [--examples digits-dcgan ...]
        [--modes fp32 bf16 ...] [--budget SECONDS] [--keep] [--out benchmarks/results/gpu.json]
    python benchmarks/gpu_check.py --dry-run [--out PATH]   # on the CPU: 2 steps, float32 only

One prepared command for a lent GPU machine (device time is short): for each file of
``examples/`` whose data is available offline, and for each mode (``fp32``, ``bf16``, ``fp16``,
``compile``: fp32 with ``training.compile = true``), it trains ``--steps`` iterations from scratch
into a temporary run directory with the example's own networks and batch, records the training
rate (images per second over the second half of the run, after warm-up and compilation) and the
peak GPU memory, then loads the run as ``gan sample`` does and draws 64 samples on the GPU, and
runs every metric the example configures, as ``gan eval`` does, with its time. A mode or example
that fails is recorded with its one-line error and the others still run; examples whose data is
not on the machine (image folders of a user's photos) are recorded as skipped.

Device time is short, so the runs go mode by mode (every example in fp32 first, then bf16, ...),
the JSON is rewritten after every run (a run cut off by the machine's time limit leaves what it
measured), and ``--budget`` stops starting new runs once that many seconds have passed; the runs
not started are recorded as ``"not run": "budget"``. ``--keep`` continues an earlier file: the
rows of ``--out`` that this call does not measure (another example or mode, or one the budget left
out now) stay, each with the command that measured it, so two short device runs fill one file.

``--dry-run`` runs the same code on the CPU with 2 iterations of float32 only: it checks the
script and every offline example end to end where no GPU is (CI runs it,
``tests/test_benchmark_reports.py``); its figures are not GPU figures and it does not write the
published file unless ``--out`` says so. Without CUDA and without ``--dry-run`` it measures
nothing and says so.

Channels-last memory format is not a separate mode: gancore has no option for it yet (the
networks are used as built), so it is not measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tomllib
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DEFAULT_OUT = Path("benchmarks/results/gpu.json")
MODES: dict[str, list[str]] = {
    "fp32": ["training.precision='no'"],
    "bf16": ["training.precision='bf16'"],
    "fp16": ["training.precision='fp16'"],
    "compile": ["training.precision='no'", "training.compile=true"],
}


def _document(example: Path, steps: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The example's run file without its metrics (they run after training, timed on their
    own) and with short intervals; a staged example keeps its first stages, one share of
    ``steps`` each, and its last (so a growing network still reaches full size); and its metric
    tables."""
    document = tomllib.loads(example.read_text())
    metrics = document.pop("metrics", [])
    metrics = [metrics] if isinstance(metrics, dict) else list(metrics)
    training = dict(document.get("training", {}))
    training.pop("best_metric", None)
    training.pop("best_mode", None)
    training.update({"log_every": max(1, steps // 2), "sample_every": 0, "checkpoint_every": 0})
    document["training"] = training
    document.setdefault("run", {})["steps"] = steps
    _shorten_stages(document, steps)
    return document, metrics


def _shorten_stages(document: dict[str, Any], steps: int) -> None:
    """A staged run in ``steps``: the first stages a share each, the last the rest."""
    stages = document.get("stages")
    if stages:
        kept = min(len(stages), steps)
        stages = [*stages[: kept - 1], stages[-1]]
        for stage in stages:
            stage.pop("images", None)
            stage["steps"] = steps // kept
        del stages[-1]["steps"]  # the last stage runs until run.steps
        document["stages"] = stages


def _with_planned_stages(config: Any, document: dict[str, Any], steps: int) -> dict[str, Any]:
    """``document`` with the stages its task plans (SinGAN's scales), shortened like written
    ones: a planned run would otherwise run its whole plan whatever ``run.steps`` says."""
    from gancore._config import config_to_dict
    from gancore._stages import planned_stages

    if config.stages:
        return document
    planned = planned_stages(config, config.task.build(None), config.data.build(None))
    if not planned.stages:
        return document
    document = {**document, "stages": config_to_dict(planned)["stages"]}
    _shorten_stages(document, steps)
    return document


def _one(example: Path, mode: str, steps: int, device: str, tmp: Path) -> dict[str, Any]:
    """Train, sample and score ``example`` in ``mode``; the figures, or the error."""
    import gancore
    from gancore._config import apply_overrides

    document, metric_tables = _document(example, steps)
    document = apply_overrides(document, MODES[mode])
    init = document.get("init")
    if isinstance(init, dict) and not Path(str(init.get("from", ""))).exists():
        # A fine-tuning example starts from the run of the example it names, trained above.
        base = tmp / f"{Path(str(init['from'])).name}-{mode}"
        document["init"] = {**init, "from": str(base)}
    registry = gancore.get_registry()
    config = gancore.parse_config(document, registry, source=str(example))
    planned = _with_planned_stages(config, document, steps)
    if planned is not document:
        document = planned
        config = gancore.parse_config(document, registry, source=str(example))
    run_dir = tmp / f"{example.stem}-{mode}"
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = gancore.train(config, run_dir, progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    records = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if '"event": "train"' in line
    ]
    figures: dict[str, Any] = {
        "steps": result.step,
        "batch_size": config.training.batch_size,
        "train_seconds": round(seconds, 2),
        # The last log interval: the second half of the run, after warm-up and compilation.
        "images_per_s": round(records[-1]["images_per_s"], 1),
    }
    if device == "cuda":
        figures["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    run = gancore.load_run(run_dir)
    figures["data_shape"] = list(run.built.dataset.shapes.get("x", ()))
    started = time.perf_counter()
    samples = run.generate(64, seed=0)
    figures["sample_seconds"] = round(time.perf_counter() - started, 3)
    figures["sample_shape"] = list(samples.shape)
    figures["sample_device"] = str(run.device)
    figures["metrics"] = {}
    for table in metric_tables:
        metric_config = gancore.parse_config(
            {**document, "metrics": [table]}, registry, source=str(example)
        )
        component = metric_config.metrics[0]
        started = time.perf_counter()
        try:
            values = run.evaluate([(component.spec.name, component.build(None))])
            numbers = {k: v for k, v in values.items() if isinstance(v, int | float)}
            figures["metrics"][component.spec.name] = {
                "seconds": round(time.perf_counter() - started, 2),
                **numbers,
            }
        except Exception as exc:  # a metric whose extractor weights are absent, say
            figures["metrics"][component.spec.name] = {"error": _line(exc)}
    return figures


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _available(example: Path) -> str | None:
    """Why ``example`` cannot run here (its data or a plugin is missing), or ``None``."""
    import gancore

    try:
        config = gancore.load_config(example)
        config.data.build(None)
    except Exception as exc:
        return _line(exc)
    return None


def _order(examples: list[Path]) -> list[Path]:
    """Examples that start from another example's run ([init]) after it."""
    starts = {}
    for example in examples:
        init = tomllib.loads(example.read_text()).get("init", {})
        starts[example] = Path(str(init.get("from", ""))).name if isinstance(init, dict) else ""
    return sorted(examples, key=lambda e: (bool(starts[e]), e.name))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["example"] == b["example"] and a.get("mode") == b.get("mode")


def _kept_rows(out: Path, fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured rows (figures or an error) of an earlier ``out``, skipped ones excepted."""
    if not out.exists():
        return []
    earlier = json.loads(out.read_text())
    rows = []
    for row in earlier.get("results", []):
        if "skipped" in row or "not run" in row or any(_same(row, r) for r in fresh):
            continue
        rows.append({**row, "command": row.get("command", earlier.get("command", ""))})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="iterations per run (default 200)")
    parser.add_argument("--examples", nargs="*", help="example names (default: all)")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--dry-run", action="store_true", help="CPU, 2 steps, fp32: a check")
    parser.add_argument(
        "--budget", type=float, help="seconds after which no new run starts (default: none)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the rows of --out that this call does not measure"
    )
    parser.add_argument("--out", type=Path, help=f"JSON to write (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.dry_run:
        print("no CUDA device: nothing measured (--dry-run checks the script on the CPU)")
        return 0
    device = "cpu" if args.dry_run else "cuda"
    steps = 2 if args.dry_run else args.steps
    modes = ["fp32"] if args.dry_run else args.modes
    out = args.out or (None if args.dry_run else DEFAULT_OUT)
    examples = sorted(EXAMPLES.glob("*.toml"))
    if args.examples:
        examples = [e for e in examples if e.stem in set(args.examples)]
    examples = _order(examples)
    report: dict[str, Any] = {
        "command": "python benchmarks/gpu_check.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(None, "gan-stylegan", "gan-ada", "gan-cyclegan", "gan-inpaint"),
        "device": torch.cuda.get_device_name(0) if cuda and not args.dry_run else "cpu",
        "dry_run": args.dry_run,
        "steps": steps,
        "results": [],
    }
    failures = 0
    started = time.perf_counter()

    def write() -> None:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        available = []
        for example in examples:
            missing = _available(example)
            if missing is None:
                available.append(example)
                continue
            report["results"].append({"example": example.stem, "skipped": missing})
            print(f"{example.stem}: skipped ({missing})", flush=True)
        command = report["command"]
        for row in report["results"]:
            row.setdefault("command", command)
        kept = _kept_rows(out, report["results"]) if args.keep and out is not None else []
        report["results"].extend(kept)
        for mode in modes:  # every example in one mode before the next: fp32 first
            for example in available:
                row: dict[str, Any] = {"example": example.stem, "mode": mode, "command": command}
                if args.budget is not None and time.perf_counter() - started > args.budget:
                    if not any(_same(k, row) for k in kept):  # an earlier measurement stays
                        report["results"].append({**row, "not run": "budget"})
                    continue
                report["results"] = [r for r in report["results"] if not _same(r, row)]
                try:
                    row.update(_one(example, mode, steps, device, Path(tmp)))
                    print(
                        f"{example.stem} {mode}: {row['images_per_s']} img/s, "
                        f"peak {row.get('peak_memory_mb', '-')} MB, "
                        f"metrics {sorted(row['metrics'])}",
                        flush=True,
                    )
                except Exception as exc:
                    failures += 1
                    row["error"] = _line(exc)
                    row["traceback"] = traceback.format_exc(limit=3)
                    print(f"{example.stem} {mode}: FAILED {row['error']}", flush=True)
                report["results"].append(row)
                report["seconds"] = round(time.perf_counter() - started, 1)
                write()
    write()
    if out is not None:
        print(f"wrote {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
