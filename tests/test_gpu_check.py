"""benchmarks/gpu_check.py's CPU dry mode: the GPU check's code, run end to end where no GPU is.

Every example whose data and plugins are here trains 2 iterations, is loaded as `gan sample`
loads it and sampled, and runs its metrics; examples without their data are recorded as skipped.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.append(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestDryRun:
    def test_every_available_example_trains_samples_and_scores(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Exit 0; each example is either skipped for its data or has a rate, samples of its
        data's shape and a result per configured metric, none failed."""
        monkeypatch.chdir(ROOT)  # examples name their data relative to the repository
        out = tmp_path / "gpu.json"
        assert _load().main(["--dry-run", "--out", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["dry_run"] is True and report["steps"] == 2 and report["device"] == "cpu"
        names = {p.stem for p in (ROOT / "examples").glob("*.toml")}
        assert {r["example"] for r in report["results"]} == names
        ran = [r for r in report["results"] if "skipped" not in r]
        assert any(r["example"] == "digits-dcgan" for r in ran)  # the core's own always runs
        for row in ran:
            assert "error" not in row, row
            assert row["mode"] == "fp32" and row["steps"] == 2 and row["images_per_s"] > 0
            # 64 samples, or more for tasks whose grid shows inputs beside outputs (CycleGAN)
            assert row["sample_shape"][0] >= 64 and row["sample_shape"][1:] == row["data_shape"]
            for metric, values in row["metrics"].items():
                assert "error" not in values, (row["example"], metric, values)
        skipped = [r for r in report["results"] if "skipped" in r]
        assert all(r["skipped"] for r in skipped)

    def test_without_a_gpu_it_measures_nothing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No CUDA and no --dry-run: a line saying so, no file, exit 0."""
        out = tmp_path / "gpu.json"
        assert _load().main(["--out", str(out)]) == 0
        assert "no CUDA device" in capsys.readouterr().out and not out.exists()

    def test_a_spent_budget_records_the_runs_not_started(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--budget 0: no run starts; each available example is recorded as not run, in a JSON
        written even though nothing was measured (a cut-off device run keeps what it has)."""
        monkeypatch.chdir(ROOT)
        out = tmp_path / "gpu.json"
        module = _load()
        assert module.main(["--dry-run", "--budget", "0", "--out", str(out)]) == 0
        report = json.loads(out.read_text())
        rows = [r for r in report["results"] if "skipped" not in r]
        assert rows and all(r == {**r, "not run": "budget", "mode": "fp32"} for r in rows)
        assert all("images_per_s" not in r for r in rows)

    def test_keep_fills_one_file_from_two_runs(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A second call with --keep keeps the first call's rows (with the first command) and
        adds its own; without --keep the file holds only the second call's rows (two examples
        of the core alone: this runs in every tox environment that has the tests)."""
        monkeypatch.chdir(ROOT)
        out = tmp_path / "gpu.json"
        module = _load()
        assert module.main(["--dry-run", "--examples", "ring-gan", "--out", str(out)]) == 0
        second = ["--dry-run", "--examples", "digits-dcgan", "--out", str(out)]
        assert module.main([*second, "--keep"]) == 0
        rows = json.loads(out.read_text())["results"]
        assert sorted(r["example"] for r in rows) == ["digits-dcgan", "ring-gan"]
        by_name = {r["example"]: r for r in rows}
        assert "--examples ring-gan" in by_name["ring-gan"]["command"]
        assert "--examples digits-dcgan" in by_name["digits-dcgan"]["command"]
        assert all(r["images_per_s"] > 0 for r in rows)
        assert module.main(second) == 0
        assert [r["example"] for r in json.loads(out.read_text())["results"]] == ["digits-dcgan"]
