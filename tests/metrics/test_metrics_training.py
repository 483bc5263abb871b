"""Metrics in the training loop (intervals, EMA, best checkpoint, metrics.jsonl, processes) and
from `gan eval` (the run's metrics, --num, --ref, --set, --compare)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import gancore
import gancore.testing as gt
from gancore._cli import main
from gancore.metrics import reference_dir
from tests.conftest import MISBEHAVING_TEST_PLUGINS

RUN = """
[run]
name = "digits-metrics"
seed = 1
steps = 8

[data]
name = "digits"
resolution = 8
limit = 200

[generator]
name = "dcgan"
latent_dim = 8
channels = 8
max_channels = 16

[critic]
name = "dcgan"
channels = 8
max_channels = 16

[[metrics]]
name = "fid"
extractor = "digits-classifier"
num_generated = 67
batch_size = 32

[training]
batch_size = 16
ema_half_life_images = 100
log_every = 4
sample_every = 0
metrics_every = 4
checkpoint_every = 0
best_metric = "fid.fd-digits"
"""


def _records(run_dir: Path, event: str) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-step digits run scoring fd-digits at steps 4 and 8 (cache in a private folder)."""
    root = tmp_path_factory.mktemp("trained")
    # Module scope runs before the function-scoped fixtures that set these; set them here too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCORE_CACHE", str(root / "cache"))
        patch.setenv("GANCORE_DISABLE_PLUGINS", MISBEHAVING_TEST_PLUGINS)
        patch.delenv("GANCORE_LOAD_PLUGINS", raising=False)
        gancore.reset_registry()
        config_file = root / "run.toml"
        config_file.write_text(RUN)
        gancore.train(gancore.load_config(config_file), root / "run", progress=False)
        gancore.reset_registry()
    return root / "run"


class TestMetricsDuringTraining:
    def test_logged_at_intervals_on_the_ema_generator(self, trained: Path) -> None:
        """metrics.jsonl has a metric line at steps 4 and 8 with the value, its protocol (EMA
        generator, 67 generated, 67 real of the 200) and the time the evaluation took."""
        metrics = _records(trained, "metric")
        assert [m["step"] for m in metrics] == [4, 8]
        for record in metrics:
            assert record["fid.fd-digits"] > 0
            assert record["metrics_time_s"] > 0
            protocol = record["fid.protocol"]
            assert protocol["generator"] == "ema"
            assert (protocol["num_generated"], protocol["num_real"]) == (67, 67)
            assert protocol["image_shape"] == [1, 8, 8]
            assert protocol["metric"] == "fd-digits"
        assert metrics[0]["fid.protocol"] == metrics[1]["fid.protocol"]

    def test_best_checkpoint_follows_the_metric(self, trained: Path) -> None:
        """best.json names the step with the lowest fd-digits, and that checkpoint exists."""
        values = {m["step"]: m["fid.fd-digits"] for m in _records(trained, "metric")}
        best = json.loads((trained / "checkpoints" / "best.json").read_text())
        assert best["metric"] == "fid.fd-digits"
        assert best["value"] == min(values.values())
        assert best["step"] == min(values, key=values.__getitem__)
        assert (trained / "checkpoints" / best["checkpoint"]).is_dir()

    def test_best_metric_must_name_a_value(self, tmp_path: Path) -> None:
        """A best_metric the metrics do not give stops the run before its first step, in one
        line with a suggestion."""
        config_file = tmp_path / "run.toml"
        config_file.write_text(RUN)
        for key, message in (
            (
                "fid.fid",
                "training.best_metric: metric 'fid' gives no value 'fid' (did you mean "
                "'fid.fd-digits'?); it gives fid.fd-digits",
            ),
            (
                "fd.fd-digits",
                "training.best_metric: 'fd.fd-digits' names no configured metric (did you mean "
                "'fid'?); configured [[metrics]]: fid (keys look like 'fid.fd-digits')",
            ),
        ):
            config = gancore.load_config(config_file, [f"training.best_metric='{key}'"])
            with pytest.raises(gancore.ConfigError) as exc:
                gancore.train(config, tmp_path / "run", progress=False)
            assert exc.value.problems == [message]
            assert not (tmp_path / "run" / "checkpoints").exists()

    def test_missing_weights_stop_before_training(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An Inception metric without its weights file fails at once: exit 2, one line."""
        config_file = tmp_path / "run.toml"
        config_file.write_text(RUN)
        code = main(
            [
                "train",
                str(config_file),
                "--run-dir",
                str(tmp_path / "run"),
                "--set",
                "metrics=[{name='fid', weights_path='/nowhere/inception.pth'}]",
                "--set",
                "training.best_metric='fid.fid'",
            ]
        )
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: inception-v3 weights not found at '/nowhere/inception.pth'")
        assert "\n" not in err
        assert not (tmp_path / "run" / "checkpoints").exists()


def _eval(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["eval", *args])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else {}), captured.err


class TestEvalCommand:
    def test_runs_the_configured_metrics(
        self, trained: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With no --metric, `gan eval` scores the run's own metrics with their options and the
        EMA generator of the latest checkpoint: the same value the loop logged at that step."""
        code, result, _ = _eval(capsys, str(trained))
        assert code == 0
        assert (result["run"], result["checkpoint"]) == ("digits-metrics", "step-0000008")
        logged = _records(trained, "metric")[-1]
        assert result["fid.fd-digits"] == pytest.approx(logged["fid.fd-digits"], rel=1e-9)
        assert result["fid.protocol"] == logged["fid.protocol"]

    def test_num_ref_and_set(self, trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--num sets the sample count; --ref scores against other data (its hash is in the
        protocol); --set reaches metrics that have the option, and a metric the run does not
        configure starts from its defaults."""
        _, base, _ = _eval(capsys, str(trained))
        code, result, _ = _eval(capsys, str(trained), "--num", "40")
        assert code == 0
        protocol = result["fid.protocol"]
        assert (protocol["num_generated"], protocol["num_real"]) == (40, 40)
        ref = "{name = 'digits', resolution = 8, classes = [0, 1]}"
        code, result, _ = _eval(capsys, str(trained), "--ref", ref)
        assert code == 0
        assert result["reference"] == ref
        assert result["fid.protocol"]["real_sha256"] != base["fid.protocol"]["real_sha256"]
        code, result, _ = _eval(
            capsys,
            str(trained),
            "--metric",
            "kid",
            "--set",
            "extractor='digits-classifier'",
            "--set",
            "num_subsets=3",
            "--num",
            "50",
        )
        assert code == 0
        assert result["kid.protocol"]["num_subsets"] == 3
        assert set(result) >= {"kid.kd-digits", "kid.kd-digits_std"}

    def test_ref_from_a_file(
        self, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--ref FILE reads its [data] table (a run file will do); a bad table is a config
        error with the key path."""
        (tmp_path / "run.toml").write_text(RUN)
        code, result, _ = _eval(capsys, str(trained), "--ref", str(tmp_path / "run.toml"))
        assert code == 0
        _, base, _ = _eval(capsys, str(trained))
        assert result["fid.fd-digits"] == base["fid.fd-digits"]
        code, _, err = _eval(capsys, str(trained), "--ref", "{name = 'digits', resolutoin = 8}")
        assert code == 2
        assert err.startswith("error: --ref.resolutoin: unknown key (did you mean 'resolution'?)")

    def test_unknown_option(self, trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An option no evaluated metric has is an error, not silently ignored."""
        code, _, err = _eval(capsys, str(trained), "--set", "num_subset=3")
        assert code == 2
        assert err.startswith("error: --set num_subset: no metric here has this option")

    def test_compare(
        self, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--compare adds the differences when the protocols agree, and refuses in one line with
        exit 2 when they differ."""
        saved = tmp_path / "before.json"
        code, first, _ = _eval(capsys, str(trained), "--out", str(saved))
        assert code == 0 and json.loads(saved.read_text()) == first
        code, result, _ = _eval(capsys, str(trained), "--compare", str(saved))
        assert code == 0
        assert result["comparison"] == {
            "other": str(saved),
            "fid.fd-digits": {
                "this": first["fid.fd-digits"],
                "other": first["fid.fd-digits"],
                "difference": 0.0,
            },
        }
        _, fewer, _ = _eval(capsys, str(trained), "--num", "40")
        code, _, err = _eval(capsys, str(trained), "--num", "40", "--compare", str(saved))
        assert code == 2
        here, there = fewer["fid.protocol"]["real_sha256"], first["fid.protocol"]["real_sha256"]
        assert err == (
            f"error: --compare {saved}: cannot compare: fid: protocols differ in num_generated "
            f"40 here, 67 there, num_real 40 here, 67 there, real_sha256 '{here[:20]}... here, "
            f"'{there[:20]}... there\n"
        )
        code, _, err = _eval(capsys, str(trained), "--raw", "--compare", str(saved))
        assert code == 2
        assert "generator 'raw' here, 'ema' there" in err


@pytest.mark.slow
@pytest.mark.distributed
class TestTwoProcesses:
    def test_generation_and_extraction_split_and_gathered(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """With 2 gloo processes the metric lines are written once, count exactly 67 samples
        (uneven shares gathered and trimmed), and agree with 1 process."""
        config_file = tmp_path / "run.toml"
        config_file.write_text(RUN)
        env = subprocess_env | {"GANCORE_CACHE": str(tmp_path / "cache")}
        common = ["-m", "gancore", "train", str(config_file), "--progress", "lines"]
        two = gt.run_processes([*common, "--run-dir", str(tmp_path / "two")], env=env, timeout=300)
        assert two.returncode == 0, two.stderr[-3000:]
        one = subprocess.run(
            [sys.executable, *common, "--run-dir", str(tmp_path / "one")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert one.returncode == 0, one.stderr[-3000:]
        metrics_two, metrics_one = (
            _records(tmp_path / "two", "metric"),
            _records(tmp_path / "one", "metric"),
        )
        assert [m["step"] for m in metrics_two] == [4, 8]
        for a, b in zip(metrics_two, metrics_one, strict=True):
            assert a["fid.protocol"]["num_generated"] == 67
            assert a["fid.protocol"] == b["fid.protocol"]
            assert a["fid.fd-digits"] == pytest.approx(b["fid.fd-digits"], rel=1e-3)
        assert len(list((tmp_path / "cache" / "reference-stats").iterdir())) == 1
        last = tmp_path / "two" / "checkpoints" / "step-0000008" / "training_state.pt"
        assert torch.load(last, weights_only=True)["world_size"] == 2  # really two processes


def test_cache_fixture_is_private() -> None:
    """The metric tests' cache is a temporary folder, never the user's."""
    assert "gancore-cache" in str(reference_dir())
