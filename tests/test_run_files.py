"""What the loop writes besides checkpoints: metrics.jsonl as strict JSON, and curves.png."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import torch

import gancore
from gancore._cli import main
from gancore._datarecord import load_data_record, save_data_record
from gancore._inference import load_run
from gancore._jsonlog import dumps, read_jsonl, restore_nonfinite, strict_record
from gancore._pictures import Panel, curve_panels, read_series
from gancore._train import train
from tests.conftest import load


@attrs.frozen(kw_only=True)
class Undefined:
    """A test metric with one finite and two non-finite values."""

    def evaluate(self, context: Any) -> dict[str, Any]:
        del context
        return {"value": 2.5, "undefined": float("nan"), "huge": float("inf")}


class _UndefinedPlugin:
    @gancore.hookimpl
    def gancore_register_metrics(self, register: gancore.RegisterCallback) -> None:
        register("undefined", Undefined, description="Test: NaN and inf values.")


def _refuse(constant: str) -> Any:
    raise ValueError(f"not strict JSON: {constant}")


def _strict_lines(path: Path) -> list[dict[str, Any]]:
    """Every line parsed as a strict reader (jq, JSON.parse) would: no NaN, no Infinity."""
    return [json.loads(line, parse_constant=_refuse) for line in path.read_text().splitlines()]


@pytest.fixture
def undefined_run(toy_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 4-step toy run whose only metric, at the end, gives NaN and inf; the curves drawn are
    recorded as the series they plotted."""
    drawn: list[dict[str, tuple[list[float], list[float]]]] = []

    def record(metrics_file: Path, path: Path, keys: Any = None) -> None:
        drawn.append(read_series(read_jsonl(metrics_file)))

    monkeypatch.setattr("gancore._rundir.save_curves", record)
    registry, _ = gancore.load_registry(entry_points=False, plugins=[("u", _UndefinedPlugin())])
    config = load(
        toy_config,
        "run.steps=4",
        "training.log_every=2",
        "training.sample_every=2",
        "metrics=[{name='undefined'}]",
        registry=registry,
    )
    train(config, tmp_path / "run", progress=False)
    (tmp_path / "drawn.json").write_text(json.dumps(drawn))
    return tmp_path / "run"


class TestStrictJson:
    """Non-finite numbers are written as null and named, so strict readers accept every line."""

    def test_record_round_trip(self) -> None:
        """NaN, inf and -inf become null, are named under nonfinite_values, and come back."""
        record = {"step": 3, "a": float("nan"), "b": float("inf"), "c": -math.inf, "d": 1.5}
        assert strict_record(record) == {
            "step": 3,
            "a": None,
            "b": None,
            "c": None,
            "d": 1.5,
            "nonfinite_values": {"a": "nan", "b": "inf", "c": "-inf"},
        }
        back = restore_nonfinite(json.loads(dumps(record)))
        assert math.isnan(back["a"]) and (back["b"], back["c"], back["d"]) == (
            math.inf,
            -math.inf,
            1.5,
        )
        assert "nonfinite_values" not in back

    def test_nested_values_are_nulled(self) -> None:
        """A non-finite number inside a nested table (a protocol, a comparison) is null too."""
        text = dumps({"x.protocol": {"psi": float("nan")}, "list": [1.0, float("-inf")]})
        assert json.loads(text, parse_constant=_refuse) == {
            "x.protocol": {"psi": None},
            "list": [1.0, None],
        }

    def test_metrics_jsonl_is_strict_json(self, undefined_run: Path) -> None:
        """A run whose metric gives NaN and inf writes lines a strict reader accepts."""
        metric = [
            r for r in _strict_lines(undefined_run / "metrics.jsonl") if r["event"] == "metric"
        ]
        assert len(metric) == 1
        assert (metric[0]["undefined.value"], metric[0]["undefined.undefined"]) == (2.5, None)
        assert metric[0]["undefined.huge"] is None
        assert metric[0]["nonfinite_values"] == {
            "undefined.undefined": "nan",
            "undefined.huge": "inf",
        }


class TestEvalOutput:
    """gan eval writes strict JSON too, and --compare reads its non-finite values back."""

    def test_eval_and_compare_with_nonfinite_values(
        self, undefined_run: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The result file is strict JSON with nulls; comparing with it finds equal values."""
        gancore.reset_registry(
            gancore.load_registry(entry_points=False, plugins=[("u", _UndefinedPlugin())])
        )
        out = undefined_run.parent / "result.json"
        assert main(["eval", str(undefined_run), "--out", str(out)]) == 0
        result = json.loads(out.read_text(), parse_constant=_refuse)
        assert (result["undefined.value"], result["undefined.huge"]) == (2.5, None)
        assert result["nonfinite_values"] == {"undefined.undefined": "nan", "undefined.huge": "inf"}
        capsys.readouterr()
        assert main(["eval", str(undefined_run), "--compare", str(out)]) == 0
        comparison = json.loads(capsys.readouterr().out, parse_constant=_refuse)["comparison"]
        assert comparison["undefined.value"] == {"this": 2.5, "other": 2.5, "difference": 0.0}
        # inf - inf is NaN: null, like every non-finite number inside a table
        assert comparison["undefined.huge"] == {"this": None, "other": None, "difference": None}


class TestCurves:
    """curves.png shows every logged result, on readable scales, and no timings."""

    def test_drawn_after_the_final_metrics(self, undefined_run: Path) -> None:
        """The last drawing holds the metric value logged after the last sample grid."""
        drawn = json.loads((undefined_run.parent / "drawn.json").read_text())
        assert drawn[-1]["undefined.value"] == [[4], [2.5]]
        assert "undefined.undefined" not in drawn[-1]  # null: nothing to draw

    def test_timings_and_counters_are_left_out(self) -> None:
        """time_s, metrics_time_s, sec_per_step, images_per_s and counters are not series."""
        records = [
            {"event": "train", "step": 2, "images_seen": 64, "time_s": 1.0, "sec_per_step": 0.5,
             "images_per_s": 64.0, "nonfinite_skipped": 0, "loss/critic": 1.25},
            {"event": "metric", "step": 2, "images_seen": 64, "metrics_time_s": 3.0,
             "fid.fid": 7.0, "fid.generator": "raw"},
        ]  # fmt: skip
        assert read_series(records) == {"loss/critic": ([2], [1.25]), "fid.fid": ([2], [7.0])}

    def test_series_of_different_sizes_get_their_own_panels(self) -> None:
        """reg/r1 (~0.01) and reg/path-length (~5) are split; the two losses share a panel."""
        series = {
            "loss/critic": ([1, 2], [1.4, 1.2]),
            "loss/generator": ([1, 2], [0.7, 0.9]),
            "reg/r1": ([1, 2], [0.01, 0.012]),
            "reg/path-length": ([1, 2], [5.0, 4.0]),
        }
        assert curve_panels(series) == [
            Panel("loss", ("loss/critic", "loss/generator"), log_scale=False),
            Panel("reg", ("reg/r1",), log_scale=False),
            Panel("reg", ("reg/path-length",), log_scale=False),
        ]

    def test_a_series_spanning_decades_is_drawn_on_a_log_axis(self) -> None:
        """A positive series from 100 down to 0.5 gets a log axis; one crossing zero does not."""
        series = {"fid.fid": ([1, 2, 3], [100.0, 3.0, 0.5]), "loss/g": ([1, 2], [-50.0, 40.0])}
        assert curve_panels(series) == [
            Panel("fid", ("fid.fid",), log_scale=True),
            Panel("loss", ("loss/g",), log_scale=False),
        ]


NPZ_RUN = """
[run]
steps = 2
[data]
name = "npz"
path = "images.npz"
[generator]
name = "dcgan"
latent_dim = 4
channels = 4
[critic]
name = "dcgan"
channels = 4
[[metrics]]
name = "fid"
extractor = "digits-classifier"
num_generated = 16
batch_size = 8
[training]
batch_size = 4
"""


@pytest.fixture
def moved_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 2-step run trained from ``project/`` on ``images.npz`` (a relative path), then the
    data deleted and the working directory changed."""
    project = tmp_path / "project"
    project.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, size=(16, 1, 8, 8), dtype=np.uint8)
    np.savez(project / "images.npz", x=pixels)
    (project / "run.toml").write_text(NPZ_RUN)
    monkeypatch.chdir(project)
    train(gancore.load_config("run.toml"), tmp_path / "run", progress=False)
    (project / "images.npz").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return tmp_path / "run"


class TestRunWithoutData:
    """Sampling needs no data; evaluation against real data says in one line that it is missing."""

    def test_relative_data_path_is_written_absolute(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The resolved config holds a relative dataset path made absolute against the cwd."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "run.toml").write_text(NPZ_RUN)
        config = gancore.load_config("run.toml")
        assert config.data.options.path == "images.npz"  # errors quote what the user wrote
        resolved = tomllib.loads(gancore.config_to_toml(config))
        assert resolved["data"]["path"] == str(tmp_path / "images.npz")

    def test_run_directory_records_its_data(self, moved_run: Path) -> None:
        """data.json holds the dataset's name, item shapes and size."""
        assert json.loads((moved_run / "data.json").read_text()) == {
            "dataset": "gancore:npz",
            "shapes": {"x": [1, 8, 8]},
            "size": 16,
        }

    def test_sample_without_the_data(
        self, moved_run: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """gan sample draws from another directory with the data gone."""
        assert main(["sample", str(moved_run), "--num", "4", "--out", "grid.png"]) == 0
        assert Path("grid.png").stat().st_size > 100
        assert load_run(moved_run).generate(3, seed=1).shape == (3, 1, 8, 8)

    def test_eval_without_the_data_names_the_metric(
        self, moved_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """gan eval of a metric that reads real data is one line naming the metric and file."""
        capsys.readouterr()
        assert main(["eval", str(moved_run)]) == 2
        missing = tmp_path / "project" / "images.npz"
        assert capsys.readouterr().err == (
            "error: metric 'fid' needs the run's real data ('gancore:npz'), which cannot be "
            f"read: npz: file '{missing}' does not exist; put the data back where the run's "
            "config.toml says\n"
        )


class TestDataRecord:
    """data.json keeps a mixture's modes, std and weights for evaluation without the data."""

    def test_mode_weights_round_trip(self, tmp_path: Path) -> None:
        """A weighted toy2d mixture's modes, std and weights come back exactly."""
        from gancore.builtin.datasets import Toy2dOptions, build_toy2d

        dataset = build_toy2d(
            Toy2dOptions(mixture="ring", ring_modes=3, size=10, weights=[1, 2, 3]), None
        )
        save_data_record(tmp_path, "gancore:toy2d", dataset)
        recorded = load_data_record(tmp_path, "gone")
        assert recorded is not None
        assert dataset.modes is not None and dataset.mode_weights is not None
        assert torch.equal(recorded.modes, dataset.modes)
        assert recorded.mode_std == dataset.mode_std
        assert torch.equal(recorded.mode_weights, dataset.mode_weights)

    def test_record_without_weights(self, tmp_path: Path) -> None:
        """A record written before mode weights existed loads with mode_weights None (equal)."""
        record = {"dataset": "gancore:toy2d", "shapes": {"x": [2]}, "size": 4}
        record |= {"modes": [[0.0, 0.0], [1.0, 0.0]], "mode_std": 0.1}
        (tmp_path / "data.json").write_text(json.dumps(record))
        recorded = load_data_record(tmp_path, "gone")
        assert recorded is not None
        assert recorded.mode_weights is None
        assert recorded.mode_std == 0.1
