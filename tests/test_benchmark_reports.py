"""The instruction-count report keeps earlier cases, each with the machine it was counted on."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.append(str(ROOT / "benchmarks"))
    path = ROOT / "benchmarks" / "overhead_instructions.py"
    spec = importlib.util.spec_from_file_location("overhead_instructions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


instructions = _load()


def _row(case: str, ratio: float, **extra: object) -> dict:
    return {"case": case, "ratio": ratio, **extra}


def test_write_keeps_earlier_cases_with_the_machine_they_were_counted_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.json"
    amd = {"cpu": "AMD EPYC"}
    out.write_text(
        json.dumps(
            {
                "machine": amd,
                "switching_instructions": 503632,
                "results": [_row("mlp", 1.007), _row("stylegan2", 9.9)],
            }
        )
    )
    intel = {"cpu": "Intel Xeon"}
    monkeypatch.setattr(instructions, "machine", lambda: intel)
    monkeypatch.setattr(
        subprocess, "run", lambda *a, **k: SimpleNamespace(stdout="valgrind-3.19.0\n")
    )
    new = _row("stylegan2", 1.0004, machine=intel, switching_instructions=507532)
    args = argparse.Namespace(out=out)
    instructions.write(args, [new], [], 507532, ["--cases", "stylegan2"])

    report = json.loads(out.read_text())
    assert report["machine"] == intel
    assert report["valgrind"] == "valgrind-3.19.0"
    assert report["command"] == "python benchmarks/overhead_instructions.py --cases stylegan2"
    by_case = {r["case"]: r for r in report["results"]}
    assert sorted(by_case) == ["mlp", "stylegan2"]  # the old stylegan2 row is replaced
    assert by_case["stylegan2"]["ratio"] == 1.0004
    assert by_case["stylegan2"]["machine"] == intel
    assert by_case["mlp"]["machine"] == amd  # backfilled from the earlier file's own block
    assert by_case["mlp"]["switching_instructions"] == 503632

    # Written again, the kept row's own machine wins over the file's (now Intel) block.
    instructions.write(args, [_row("dcgan32", 1.0002, machine=intel)], [], 507532, [])
    by_case = {r["case"]: r for r in json.loads(out.read_text())["results"]}
    assert by_case["mlp"]["machine"] == amd
    assert sorted(by_case) == ["dcgan32", "mlp", "stylegan2"]


def test_committed_report_names_a_machine_for_every_case() -> None:
    report = json.loads((ROOT / "benchmarks/results/overhead-instructions.json").read_text())
    assert {r["case"] for r in report["results"]} == set(instructions.WINDOWS)
    for row in report["results"]:
        assert row["machine"]["cpu"], row["case"]
        assert row["identical_weights"] is True, row["case"]
        assert row["window"] == list(instructions.WINDOWS[row["case"]]), row["case"]
