"""The training loop: run directory, exact resume, damage, signals, non-finite losses, processes."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import gancore
import gancore.testing as gt
from gancore._checkpoint import find_checkpoint, verify_checkpoint
from gancore._config import config_to_toml
from gancore._data import BatchPlan
from gancore._inference import load_run
from gancore._task import StepContext
from gancore._train import ema_beta, lazy_correction, lr_factor, train, update_ema
from tests.conftest import TOY_CONFIG, exit_status, load, write_toml

DIGITS_CONFIG = """
[run]
name = "digits"
seed = 3
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

[[regularizers]]
name = "r1"
gamma = 1.0
interval = 2

[augmenter]
name = "hflip"

[optimizers.generator]
lr = 2e-3
betas = [0.0, 0.99]
schedule = "linear"
decay_start = 2

[optimizers.critic]
lr = 2e-3
betas = [0.0, 0.99]
schedule = "cosine"

[training]
batch_size = 8
critic_steps = 2
ema_half_life_images = 50
ema_rampup = 0.5
log_every = 2
sample_every = 4
checkpoint_every = 2
"""


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    out = {}
    for file in sorted(checkpoint.glob("*.safetensors")):
        for key, tensor in load_file(str(file)).items():
            out[f"{file.stem}/{key}"] = tensor
    return out


def _records(run_dir: Path, event: str = "train") -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


class TestRunDirectory:
    def test_toy_run_leaves_config_metrics_samples_checkpoints(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """A 20-step run writes the resolved config, log lines, pictures and kept checkpoints."""
        config = load(toy_config, "training.keep_checkpoints=1")
        run_dir = tmp_path / "run"
        result = train(config, run_dir, progress=False)
        assert result.step == 20 and result.images_seen == 20 * 32 and not result.interrupted
        assert (run_dir / "config.toml").read_text() == config_to_toml(config)
        assert [r["step"] for r in _records(run_dir)] == [5, 10, 15, 20]
        first = _records(run_dir)[0]
        assert {"loss/critic", "loss/generator", "scores/real", "sec_per_step"} <= set(first)
        assert first["images_seen"] == 5 * 32
        assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
            "reals.png",
            "step-0000000.png",
            "step-0000010.png",
            "step-0000020.png",
        ]
        assert (run_dir / "curves.png").stat().st_size > 1000
        # keep_checkpoints = 1: only the newest survives, and nothing temporary is left behind.
        assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-0000020"]
        assert verify_checkpoint(run_dir / "checkpoints" / "step-0000020") is None

    def test_a_run_that_fails_to_build_leaves_nothing(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """A build error (an MLP generator asked for images) writes no run directory, so the
        corrected run can train into the same folder."""
        config = load(toy_config, "data={name='digits', resolution=8}")
        run_dir = tmp_path / "run"
        with pytest.raises(ValueError, match=r"^mlp generator: expected vector data"):
            train(config, run_dir, progress=False)
        assert not run_dir.exists()

    def test_metrics_run_at_the_end_and_pick_the_best_checkpoint(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """Metric lines carry flat '<metric>.<key>' values; best.json names a kept checkpoint."""
        config = load(
            toy_config,
            "metrics=[{name='mode-coverage', num_samples=200}]",
            "training.metrics_every=10",
            "training.best_metric='mode-coverage.high_quality_percent'",
            "training.best_mode='max'",
            "training.keep_checkpoints=1",
        )
        run_dir = tmp_path / "run"
        train(config, run_dir, progress=False)
        metrics = _records(run_dir, "metric")
        assert [m["step"] for m in metrics] == [10, 20]
        assert metrics[0]["mode-coverage.num_modes"] == 8
        assert metrics[0]["mode-coverage.generator"] == "raw"
        best = json.loads((run_dir / "checkpoints" / "best.json").read_text())
        values = {m["step"]: m["mode-coverage.high_quality_percent"] for m in metrics}
        assert best["value"] == max(values.values())
        assert (run_dir / "checkpoints" / best["checkpoint"]).is_dir()
        assert find_checkpoint(run_dir / "checkpoints", which="best").name == best["checkpoint"]

    def test_bf16_precision_trains(self, toy_config: Path, tmp_path: Path) -> None:
        """Training under bf16 autocast on the CPU gives finite losses."""
        config = load(toy_config, "training.precision='bf16'", "run.steps=10")
        train(config, tmp_path / "run", progress=False)
        record = _records(tmp_path / "run")[-1]
        assert math.isfinite(record["loss/critic"]) and record["nonfinite_skipped"] == 0


class TestExactResume:
    def test_interrupted_and_resumed_equals_straight(self, tmp_path: Path) -> None:
        """4 steps, stop, resume to 8 gives bit-identical weights to 8 steps straight.

        The run uses every stateful piece: batch norm, EMA with ramp-up, lazy R1, a random
        augmenter, two critic steps, linear and cosine learning-rate decay.
        """
        config = load(write_toml(tmp_path / "d.toml", DIGITS_CONFIG))
        straight = train(config, tmp_path / "straight", progress=False)
        first = gancore.testing.train_interrupted(config, tmp_path / "resumed", after=4)
        assert first.interrupted and first.step == 4
        second = train(config, tmp_path / "resumed", resume=True, progress=False)
        assert second.step == 8
        assert straight.checkpoint is not None and second.checkpoint is not None
        a, b = _weights(straight.checkpoint), _weights(second.checkpoint)
        assert a.keys() == b.keys() and any(k.startswith("ema/") for k in a)
        for key in a:
            assert torch.equal(a[key], b[key]), key
        state_a = torch.load(straight.checkpoint / "training_state.pt", weights_only=True)
        state_b = torch.load(second.checkpoint / "training_state.pt", weights_only=True)
        assert (
            state_a["loop"]["updates"]
            == state_b["loop"]["updates"]
            == {"critic": 16, "generator": 8}
        )
        opt_a, opt_b = state_a["optimizers"]["generator"], state_b["optimizers"]["generator"]
        for slot in opt_a["state"]:
            for name, value in opt_a["state"][slot].items():
                assert torch.equal(value, opt_b["state"][slot][name])
        # The log is continuous: no line from after the interruption survives twice.
        steps = [r["step"] for r in _records(tmp_path / "resumed")]
        assert steps == [r["step"] for r in _records(tmp_path / "straight")]

    def test_damaged_checkpoint_is_refused_unless_fallback(self, tmp_path: Path) -> None:
        """A truncated newest checkpoint is an error naming it; --fallback takes the previous."""
        config = load(write_toml(tmp_path / "d.toml", DIGITS_CONFIG), "run.steps=4")
        train(config, tmp_path / "run", progress=False)
        newest = tmp_path / "run" / "checkpoints" / "step-0000004"
        weights = newest / "generators.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
        with pytest.raises(gancore.CheckpointError) as exc:
            train(config, tmp_path / "run", resume=True, progress=False)
        message = str(exc.value)
        assert "step-0000004" in message and "generators.safetensors is corrupt" in message
        assert "pass --fallback to use the previous intact checkpoint 'step-0000002'" in message
        with pytest.raises(gancore.CheckpointError) as exc_sample:  # gan sample / gan eval
            load_run(tmp_path / "run")
        assert str(exc_sample.value).endswith(
            "; pass --checkpoint step-0000002 to use the previous intact checkpoint"
        )
        result = train(config, tmp_path / "run", resume=True, fallback=True, progress=False)
        assert result.step == 4 and verify_checkpoint(newest) is None  # rewritten, intact

    def test_resume_puts_back_a_step_whose_resave_was_killed(self, tmp_path: Path) -> None:
        """A re-save killed between its renames left '.old-'/'.tmp-': resume starts from that
        step again, not from the one before, and the leftovers are gone."""
        config = load(write_toml(tmp_path / "d.toml", DIGITS_CONFIG), "run.steps=4")
        train(config, tmp_path / "run", progress=False)
        root = tmp_path / "run" / "checkpoints"
        pid = 1 << 22  # Linux's PID_MAX_LIMIT: no process ever has this pid
        host = socket.gethostname()
        os.replace(root / "step-0000004", root / f".old-step-0000004-{pid}@{host}")
        (root / f".tmp-step-0000004-{pid}@{host}").mkdir()  # unfinished
        with pytest.warns(UserWarning, match="re-save did not finish|no longer running") as record:
            resumed = gt.train_interrupted(
                load(write_toml(tmp_path / "d.toml", DIGITS_CONFIG), "run.steps=8"),
                tmp_path / "run",
                after=1,
                resume=True,
            )
        assert resumed.step == 5  # from step 4, not from step 2
        assert [str(w.message).split(":")[0].split(",")[0] for w in record] == [
            f"restored {root / 'step-0000004'} from .old-step-0000004-{pid}@{host}",
            f"removed {root / f'.tmp-step-0000004-{pid}@{host}'}",
        ]
        assert sorted(p.name for p in root.iterdir()) == [
            "step-0000002",
            "step-0000004",
            "step-0000005",
        ]

    def test_a_finished_run_is_not_overwritten(self, tmp_path: Path) -> None:
        """Training again into a run directory without resume is refused; nothing is touched."""
        config = load(write_toml(tmp_path / "d.toml", DIGITS_CONFIG), "run.steps=2")
        train(config, tmp_path / "run", progress=False)
        before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
        with pytest.raises(gancore.ConfigError) as exc:
            train(config, tmp_path / "run", progress=False)
        assert exc.value.problems == [
            f"run directory '{tmp_path / 'run'}' already holds a run; resume it (resume=True, "
            f"`gan train --resume {tmp_path / 'run'}`) or train into a new directory"
        ]
        assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before


class TestSignals:
    """Ctrl-C and SIGTERM stop a run with a whole checkpoint and the documented status."""

    def test_second_ctrl_c_during_the_stop_checkpoint_finishes_it(
        self,
        toy_config: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Ctrl-C while step 3 is saved stops after step 4; a second one while step 4 is saved
        lets it finish and exits 130, without a traceback or a leftover folder."""
        from gancore import _checkpoint

        real, sent = _checkpoint.save_file, []

        def save_file(tensors: dict[str, torch.Tensor], filename: str) -> None:
            step = Path(filename).parent.name.split("-")[2]  # .tmp-step-NNNNNNN-PID@HOST
            if step not in sent:
                sent.append(step)
                signal.raise_signal(signal.SIGINT)
            real(tensors, filename)

        monkeypatch.setattr(_checkpoint, "save_file", save_file)
        config = load(toy_config, "training.checkpoint_every=3")
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            assert exit_status(lambda: train(config, tmp_path / "run", progress=False)) == 130
        finally:
            signal.signal(signal.SIGINT, previous)
        root = tmp_path / "run" / "checkpoints"
        assert sent == ["0000003", "0000004"]
        assert sorted(p.name for p in root.iterdir()) == ["step-0000003", "step-0000004"]
        assert verify_checkpoint(root / "step-0000004") is None
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"stopped by SIGINT while writing a checkpoint; it was finished first: "
            f"{root / 'step-0000004'}"
        )

    @pytest.mark.slow
    def test_sigterm_checkpoints_and_resume_finishes(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """SIGTERM finishes the step, checkpoints, exits 130 with the resume command."""
        config = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        run_dir = tmp_path / "run"
        args = [sys.executable, "-m", "gancore", "train", str(config), "--run-dir", str(run_dir)]
        proc = subprocess.Popen(
            [
                *args,
                "--set",
                "run.steps=100000",
                "--set",
                "training.log_every=1",
                "--set",
                "training.checkpoint_every=0",
            ],
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env,
        )
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (proc.stderr.readline() or "").startswith("step "):
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert f"resume with: gan train --resume {run_dir}" in err
        (checkpoint,) = (run_dir / "checkpoints").iterdir()
        stopped = int(checkpoint.name.removeprefix("step-"))
        assert stopped >= 1
        resumed = subprocess.run(
            [
                sys.executable,
                "-m",
                "gancore",
                "train",
                "--resume",
                str(run_dir),
                "--set",
                f"run.steps={stopped + 3}",
            ],
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert f"done: {stopped + 3} steps" in resumed.stderr


@attrs.frozen(kw_only=True)
class NanAfterOptions:
    calls: int = attrs.field(default=0, metadata={"doc": "Finite calls before NaN forever."})


class NanAfter:
    """A test loss: non-saturating until ``calls`` calls, then NaN."""

    def __init__(self, options: NanAfterOptions, context: Any) -> None:
        self.left = options.calls

    def _value(self, x: torch.Tensor) -> torch.Tensor:
        self.left -= 1
        return x if self.left >= 0 else x * float("nan")

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self._value(torch.nn.functional.softplus(-real).mean() + fake.mean())

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return self._value(-fake.mean())


class _NanPlugin:
    @gancore.hookimpl
    def gancore_register_losses(self, register: gancore.RegisterCallback) -> None:
        register("nan-after", NanAfter, options=NanAfterOptions, description="Test: NaN later.")


@attrs.frozen(kw_only=True)
class PoisonAfter:
    """A test critic regularizer: no penalty; after ``updates`` critic updates, the critic's
    first parameter is NaN (a divergence that the losses see only at the next step)."""

    player: ClassVar[str] = "critic"
    updates: int = 10
    interval: int = 1
    done: list[int] = attrs.field(factory=list, eq=False)

    def penalty(self, critic: Any, real: torch.Tensor, fake: torch.Tensor, extra: Any) -> None:
        return None

    def after_step(self, critic: nn.Module) -> None:
        self.done.append(1)
        if len(self.done) == self.updates:
            with torch.no_grad():
                next(critic.parameters()).fill_(float("nan"))


class _PoisonPlugin:
    @gancore.hookimpl
    def gancore_register_regularizers(self, register: gancore.RegisterCallback) -> None:
        register("poison-after", PoisonAfter, description="Test: NaN critic weights later.")


class TestNonFinite:
    """Non-finite losses are skipped, and stop the run when they keep coming."""

    def test_stops_after_consecutive_nonfinite_with_last_checkpoint_intact(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """Non-finite losses skip their step; N in a row stop the run naming the last checkpoint."""
        registry, _ = gancore.load_registry(entry_points=False, plugins=[("nan", _NanPlugin())])
        config = load(
            toy_config,
            "loss={name='nan-after', calls=24}",
            "training.max_nonfinite_steps=3",
            "training.checkpoint_every=5",
            registry=registry,
        )
        with pytest.raises(gancore.TrainingError) as exc:
            train(config, tmp_path / "run", progress=False)
        assert "3 non-finite losses in a row (last: critic loss)" in str(exc.value)
        assert "the last good checkpoint is" in str(exc.value)
        assert (
            str(exc.value)
            .split("checkpoint is ")[1]
            .startswith(str(tmp_path / "run" / "checkpoints" / "step-0000010"))
        )
        assert verify_checkpoint(tmp_path / "run" / "checkpoints" / "step-0000010") is None

    def test_no_checkpoint_holds_nonfinite_weights(self, toy_config: Path, tmp_path: Path) -> None:
        """Weights gone NaN at step 10 are not checkpointed (a warning says so); the stop names
        step 5, the newest checkpoint whose values are all finite."""
        registry, _ = gancore.load_registry(entry_points=False, plugins=[("p", _PoisonPlugin())])
        config = load(
            toy_config,
            "regularizers=[{name='poison-after', updates=10}]",
            "training.max_nonfinite_steps=3",
            "training.checkpoint_every=5",
            registry=registry,
        )
        with (
            pytest.raises(gancore.TrainingError) as exc,
            pytest.warns(UserWarning, match="no checkpoint written") as record,
        ):
            train(config, tmp_path / "run", progress=False)
        root = tmp_path / "run" / "checkpoints"
        assert [str(w.message) for w in record] == [
            "step 10: no checkpoint written, critics weight 'critic.net.0.weight' has 64 "
            "non-finite of 64 values; the newest checkpoint is still the last one with finite "
            "values"
        ]
        assert f"the last good checkpoint is {root / 'step-0000005'}." in str(exc.value)
        assert sorted(p.name for p in root.iterdir()) == ["step-0000005"]
        weights, _ = gancore.load_checkpoint(root / "step-0000005")
        assert all(torch.isfinite(t).all() for group in weights.values() for t in group.values())

    def test_a_skipped_checkpoint_is_never_the_best(self, toy_config: Path, tmp_path: Path) -> None:
        """A metric that improves while the critic is NaN records no best: best.json would name
        a checkpoint that was not written."""
        registry, _ = gancore.load_registry(entry_points=False, plugins=[("p", _PoisonPlugin())])
        config = load(
            toy_config,
            "regularizers=[{name='poison-after', updates=10}]",
            "metrics=[{name='mode-coverage', num_samples=200}]",
            "training.metrics_every=10",
            "training.best_metric='mode-coverage.num_modes'",
            "training.max_nonfinite_steps=3",
            "training.checkpoint_every=5",
            registry=registry,
        )
        with (
            pytest.raises(gancore.TrainingError),
            pytest.warns(UserWarning, match="step 10: no checkpoint written"),
        ):
            train(config, tmp_path / "run", progress=False)
        assert _records(tmp_path / "run", "metric")[0]["step"] == 10  # it ran, and improved
        root = tmp_path / "run" / "checkpoints"
        assert sorted(p.name for p in root.iterdir()) == ["step-0000005"]  # no best.json

    def test_a_nan_metric_never_becomes_the_best(self, toy_config: Path) -> None:
        """A NaN value of training.best_metric is no improvement (it would beat every later
        value); a finite one after it is."""
        from types import SimpleNamespace

        from gancore._rundir import RunFiles
        from gancore._state import LoopState

        files: Any = SimpleNamespace(config=load(toy_config, "training.best_metric='m.v'"))
        state = LoopState(iteration=5)
        assert RunFiles.improves(files, state, {"m.v": float("nan")}) is None
        assert RunFiles.improves(files, state, {"m.v": 2.0}) == {
            "checkpoint": "step-0000005",
            "step": 5,
            "metric": "m.v",
            "value": 2.0,
        }

    def test_an_isolated_nonfinite_step_is_skipped_and_counted(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """A single NaN loss is skipped: training goes on and the log counts it."""

        class OnceNan(NanAfter):
            def _value(self, x: torch.Tensor) -> torch.Tensor:
                self.left -= 1
                return x * float("nan") if self.left == -1 else x

        class Plugin:
            @gancore.hookimpl
            def gancore_register_losses(self, register: gancore.RegisterCallback) -> None:
                register("once-nan", OnceNan, options=NanAfterOptions, description="Test.")

        registry, _ = gancore.load_registry(entry_points=False, plugins=[("once", Plugin())])
        config = load(toy_config, "loss={name='once-nan', calls=7}", registry=registry)
        result = train(config, tmp_path / "run", progress=False)
        assert result.step == 20
        assert _records(tmp_path / "run")[-1]["nonfinite_skipped"] == 1


class _RecordingAugmenter(nn.Module):
    feedback_interval = 2
    calls: ClassVar[list[tuple[float, int]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def feedback(self, real_sign_mean: float, images: int) -> None:
        self.calls.append((real_sign_mean, images))


@attrs.frozen
class _NoOptions:
    pass


def _recording_registry() -> gancore.Registry:
    """The built-ins plus augmenter 'recording' (a :class:`_RecordingAugmenter`, calls cleared)."""

    class Plugin:
        @gancore.hookimpl
        def gancore_register_augmenters(self, register: gancore.RegisterCallback) -> None:
            register(
                "recording",
                lambda options, context: _RecordingAugmenter(),
                options=_NoOptions,
                description="Test: records feedback.",
            )

    _RecordingAugmenter.calls.clear()
    registry, _ = gancore.load_registry(entry_points=False, plugins=[("rec", Plugin())])
    return registry


class TestAugmenterFeedback:
    def test_feedback_is_the_mean_sign_over_the_interval(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """The augmenter hears E[sign(D(real))] every feedback_interval critic steps."""

        registry = _recording_registry()
        config = load(
            toy_config,
            "augmenter={name='recording'}",
            "run.steps=6",
            "training.critic_steps=1",
            registry=registry,
        )
        train(config, tmp_path / "run", progress=False)
        calls = _RecordingAugmenter.calls
        assert len(calls) == 3
        assert all(images == 2 * 32 for _, images in calls)
        assert all(-1.0 <= mean <= 1.0 for mean, _ in calls)


class TestSchedules:
    def test_constant(self) -> None:
        """The constant schedule is 1 everywhere."""
        assert lr_factor("constant", 0, 0.0, 77, 100) == 1.0

    def test_linear_decay(self) -> None:
        """Linear decay is 1 until decay_start, then falls linearly to final_lr_scale."""
        assert lr_factor("linear", 50, 0.0, 50, 100) == 1.0
        assert lr_factor("linear", 50, 0.0, 75, 100) == pytest.approx(0.5)
        assert lr_factor("linear", 50, 0.1, 100, 100) == pytest.approx(0.1)

    def test_cosine_decay(self) -> None:
        """Cosine decay is halfway at the midpoint of the decay span."""
        assert lr_factor("cosine", 0, 0.0, 50, 100) == pytest.approx(0.5)
        assert lr_factor("cosine", 0, 0.2, 100, 100) == pytest.approx(0.2)

    def test_lazy_correction(self) -> None:
        """c = k/(k+1) for one lazy interval (StyleGAN2), 1 without lazy regularizers."""
        assert lazy_correction([16]) == pytest.approx(16 / 17)
        assert lazy_correction([1, 1]) == 1.0
        assert lazy_correction([4, 4]) == pytest.approx(1 / 1.5)

    def test_lazy_correction_reaches_the_optimizer(self, tmp_path: Path) -> None:
        """With R1 every 2 critic steps the critic's lr and betas are scaled by c = 2/3."""
        config = load(
            write_toml(tmp_path / "d.toml", DIGITS_CONFIG),
            "optimizers.critic.schedule='constant'",
            "run.steps=1",
        )
        result = train(config, tmp_path / "run", progress=False)
        assert result.checkpoint is not None
        state = torch.load(result.checkpoint / "training_state.pt", weights_only=True)
        (group,) = state["optimizers"]["critic"]["param_groups"]
        assert group["lr"] == pytest.approx(2e-3 * 2 / 3)
        assert group["betas"][1] == pytest.approx(0.99 ** (2 / 3))

    def test_scheduled_learning_rates_are_logged(self, tmp_path: Path) -> None:
        """A scheduled optimizer's lr for the next step is in every train record (lr/<player>),
        the lazy-R1 correction included; a constant one is not logged."""
        config = load(write_toml(tmp_path / "d.toml", DIGITS_CONFIG))
        train(config, tmp_path / "run", progress=False)
        records = [
            json.loads(line)
            for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        ]
        train_records = [r for r in records if r["event"] == "train"]
        assert [r["step"] for r in train_records] == [2, 4, 6, 8]
        for r in train_records:
            step = r["step"]
            assert r["lr/generator"] == pytest.approx(2e-3 * lr_factor("linear", 2, 0.0, step, 8))
            assert r["lr/critic"] == pytest.approx(
                2e-3 * 2 / 3 * lr_factor("cosine", 0, 0.0, step, 8)
            )
        assert train_records[0]["lr/generator"] == pytest.approx(2e-3)  # decay starts at 2
        assert train_records[-1]["lr/critic"] == pytest.approx(0.0)

        constant = load(
            write_toml(tmp_path / "c.toml", DIGITS_CONFIG),
            "optimizers.generator.schedule='constant'",
            "optimizers.critic.schedule='constant'",
            "run.steps=2",
        )
        train(constant, tmp_path / "run-constant", progress=False)
        last = json.loads(
            (tmp_path / "run-constant" / "metrics.jsonl").read_text().splitlines()[-1]
        )
        assert not any(key.startswith("lr/") for key in last)


class TestEma:
    def test_beta_halves_after_half_life(self) -> None:
        """After half_life images of steps, the old average's weight is exactly one half."""
        beta = ema_beta(64, 6400, images_seen=10**6)
        assert beta**100 == pytest.approx(0.5)

    def test_rampup_shortens_early_half_life(self) -> None:
        """With ramp-up the half-life is images_seen * rampup while that is smaller."""
        assert ema_beta(10, 10_000, images_seen=1000, rampup=0.05) == pytest.approx(
            0.5 ** (10 / 50)
        )

    def test_update_is_a_lerp_and_copies_buffers(self) -> None:
        """ema <- beta*ema + (1-beta)*model for weights; buffers are copied."""
        model, ema = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
        with torch.no_grad():
            model.weight.fill_(1.0)
            ema.weight.fill_(0.0)
            model.running_mean.fill_(5.0)
        update_ema(ema, model, beta=0.75)
        assert torch.allclose(ema.weight, torch.full((3,), 0.25))
        assert torch.equal(ema.running_mean, model.running_mean)


class TestBatchPlan:
    def test_process_shares_concatenate_to_the_global_batch(self) -> None:
        """Two processes' local batches together are the one-process batch, in order."""
        single = BatchPlan(50, 8, seed=1)
        shares = [BatchPlan(50, 8, seed=1, rank=r, world_size=2) for r in range(2)]
        for index in range(20):
            assert shares[0].local_batch(index) + shares[1].local_batch(index) == (
                single.local_batch(index)
            )

    def test_each_epoch_is_a_permutation(self) -> None:
        """Every run of `size` consecutive positions from an epoch start covers the data once."""
        plan = BatchPlan(12, 4, seed=0)
        epoch = [i for b in range(3) for i in plan.global_batch(b)]
        assert sorted(epoch) == list(range(12))

    def test_resume_start_continues_the_stream(self) -> None:
        """A plan started at batch k yields what the full stream yields from k."""
        full, resumed = iter(BatchPlan(30, 7, seed=2)), iter(BatchPlan(30, 7, seed=2, start=5))
        expected = [next(full) for _ in range(9)][5:]
        assert [next(resumed) for _ in range(4)] == expected

    def test_indivisible_batch_is_an_error(self) -> None:
        """The global batch must split evenly over processes."""
        with pytest.raises(ValueError, match=r"batch_size \(9\) must be divisible .* \(2\)"):
            BatchPlan(10, 9, seed=0, rank=0, world_size=2)


class TestLatents:
    def test_latents_are_world_size_invariant(self) -> None:
        """Each process's latents are its slice of the one-process draw for the same step."""

        def context(rank: int, world: int) -> StepContext:
            ctx = StepContext(
                players={},
                modules={},
                loss=None,  # type: ignore
                augmenter=None,  # type: ignore
                feedback=None,
                device=torch.device("cpu"),
                seed=5,
                rank=rank,
                world_size=world,
            )
            ctx.begin(0, 3, 1)
            return ctx

        whole = context(0, 1).latents(8, 4)
        parts = torch.cat([context(r, 2).latents(4, 4) for r in range(2)])
        assert torch.equal(whole, parts)


class TestSampleAndEval:
    def test_sample_and_eval_commands(
        self, toy_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`gan sample` writes a picture and `gan eval` prints the metric's JSON result."""
        from gancore._cli import main

        run_dir = tmp_path / "run"
        train(load(toy_config, "run.steps=10"), run_dir, progress=False)
        out = tmp_path / "s.png"
        assert main(["sample", str(run_dir), "--num", "300", "--out", str(out)]) == 0
        assert out.stat().st_size > 1000
        capsys.readouterr()
        assert (
            main(["eval", str(run_dir), "--metric", "mode-coverage", "--set", "num_samples=300"])
            == 0
        )
        result = json.loads(capsys.readouterr().out)
        assert result["mode-coverage.num_samples"] == 300
        assert result["checkpoint"] == "step-0000010"
        assert 0 <= result["mode-coverage.modes_covered"] <= 8


@pytest.mark.slow
@pytest.mark.distributed
class TestTwoProcesses:
    def test_two_gloo_processes_match_one(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """2 CPU processes end with identical weights on both ranks, equal to 1 process."""
        config = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        # Both penalty paths: R1 inside the critic step (through DDP) and lazy R1 (manual
        # gradient all-reduce); two critic steps per iteration.
        overrides = [
            "regularizers=[{name='r1', gamma=0.5}, {name='r1', gamma=0.5, interval=2}]",
            "training.critic_steps=2",
            "run.steps=10",
        ]
        rank0, rank1 = gt.train_processes(
            config, tmp_path / "two", overrides=overrides, env=subprocess_env, timeout=300
        )
        (single,) = gt.train_processes(
            config, tmp_path / "one", processes=1, overrides=overrides, env=subprocess_env
        )
        (checkpoint,) = (tmp_path / "two" / "run" / "checkpoints").iterdir()
        state = torch.load(checkpoint / "training_state.pt", weights_only=True)
        assert state["world_size"] == 2 and len(state["rng"]) == 2  # really two processes
        assert rank0.keys() == rank1.keys() == single.keys()
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), key
            torch.testing.assert_close(rank0[key], single[key], rtol=1e-4, atol=1e-5)

    def test_a_script_trains_twice_then_ends_the_group(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """train() leaves the process group open (a second run in the same two processes works);
        end_processes() ends it on every rank. Accelerate's end_training destroyed it on each rank
        with no barrier, and a rank could then hang as train() returned."""
        config = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        script = tmp_path / "twice.py"
        script.write_text(
            "import os, sys\n"
            "from pathlib import Path\n"
            "import torch.distributed as dist\n"
            "import gancore\n"
            "config = gancore.load_config(sys.argv[1], ['run.steps=2'])\n"
            "steps = [gancore.train(config, Path(sys.argv[2]) / name, progress=False).step\n"
            "         for name in ('first', 'second')]\n"
            "still_open = dist.is_initialized() and dist.get_world_size()\n"
            "gancore.end_processes()\n"
            "print(f\"rank {os.environ['RANK']}: steps {steps}, group of {still_open} open after \"\n"
            '      f"training, open after end_processes: {dist.is_initialized()}")\n'
        )
        env = subprocess_env | {"OMP_NUM_THREADS": "1"}
        done = gt.run_processes([str(script), str(config), str(tmp_path)], env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        for rank in (0, 1):
            assert (
                f"rank {rank}: steps [2, 2], group of 2 open after training, open after "
                "end_processes: False"
            ) in done.stdout
        for name in ("first", "second"):
            assert [c.name for c in (tmp_path / name / "checkpoints").iterdir()] == ["step-0000002"]
        gancore.end_processes()  # in one process: nothing to end


@pytest.mark.slow
@pytest.mark.distributed
class TestTwoProcessesAccumulating:
    def test_micro_batches_on_two_processes_match_one_whole_batch(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """2 processes x 2 micro-batches (all-reduce only after the last) end with the weights of
        one process taking the whole batch at once, to float round-off; both ranks identical."""
        config = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        common = [
            "regularizers=[{name='r1', gamma=0.5}, {name='r1', gamma=0.5, interval=2}]",
            "run.steps=6",
        ]
        rank0, rank1 = gt.train_processes(
            config,
            tmp_path / "two",
            overrides=[*common, "training.accumulate=2"],
            env=subprocess_env,
            timeout=300,
        )
        (single,) = gt.train_processes(
            config, tmp_path / "one", processes=1, overrides=common, env=subprocess_env
        )
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), key
            torch.testing.assert_close(rank0[key], single[key], rtol=1e-4, atol=1e-5)


BATCHNORM_DCGAN = """
[run]
name = "bn"
steps = 6

[data]
name = "digits"
resolution = 8

[generator]
name = "dcgan"
latent_dim = 16
channels = 8

[critic]
name = "dcgan"
channels = 8
norm = "batch"

[optimizers.generator]
lr = 2e-3
betas = [0.5, 0.999]

[optimizers.critic]
lr = 2e-3
betas = [0.5, 0.999]

[training]
batch_size = 16
ema_half_life_images = 100
sample_every = 0
log_every = 2
"""


@pytest.mark.slow
@pytest.mark.distributed
class TestSyncBatchNorm:
    def test_two_processes_with_batch_norm_match_one(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """DCGAN with batch norm in both networks: 2 gloo processes end with the weights and
        running statistics of 1 process on the same global batch, to 1e-5.

        Batch statistics are all-reduced (gancore/_syncbn.py), so the two runs compute the same
        function; what differs is the order of float32 sums (a process sums its half, then the
        halves are added), about 1e-7 relative per operation, which six Adam steps at lr 2e-3 with
        (0.5, 0.999) betas carried to 4.5e-7 when measured; 1e-5 leaves room for other machines
        and kernels. Without synchronization the same comparison was off by 1.9e-2 (asserted
        > 1e-4 below).
        """
        config = write_toml(tmp_path / "bn.toml", BATCHNORM_DCGAN)
        rank0, rank1 = gt.train_processes(config, tmp_path / "two", env=subprocess_env)
        (single,) = gt.train_processes(config, tmp_path / "one", processes=1, env=subprocess_env)
        assert "generators.generator.net.1.running_mean" in rank0
        worst = 0.0
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), key  # running statistics too
            if rank0[key].is_floating_point():
                worst = max(worst, (rank0[key] - single[key]).abs().max().item())
        assert worst < 1e-5
        # The comparison can fail: per-process statistics (the old behaviour) drift far more.
        plain0, plain1 = gt.train_processes(
            config,
            tmp_path / "plain",
            overrides=["training.sync_batchnorm=false"],
            env=subprocess_env,
        )
        drift = max(
            (plain0[k] - single[k]).abs().max().item()
            for k in plain0
            if plain0[k].is_floating_point()
        )
        assert drift > 1e-4
        assert not torch.equal(
            plain0["generators.generator.net.1.running_mean"],
            plain1["generators.generator.net.1.running_mean"],
        )


class TestGradientAccumulation:
    def _run(self, toy_config: Path, tmp_path: Path, name: str, *overrides: str) -> Any:
        registry = _recording_registry()
        config = load(
            toy_config,
            "augmenter={name='recording'}",
            # every-step R1 inside the critic loss, and a lazy one as its own update
            "regularizers=[{name='r1', gamma=0.5}, {name='r1', gamma=0.5, interval=2}]",
            "training.critic_steps=2",
            "run.steps=6",
            "training.log_every=3",
            *overrides,
            registry=registry,
        )
        result = train(config, tmp_path / name, progress=False)
        return result, list(_RecordingAugmenter.calls), _records(tmp_path / name)

    def test_four_micro_batches_update_as_the_whole_batch(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """accumulate = 4 at batch 32 gives the weights, lazy penalties, augmenter statistics and
        logged means of batch 32 at once, to float round-off (micro-batches of 8)."""
        whole, whole_calls, whole_log = self._run(toy_config, tmp_path, "whole")
        parts, parts_calls, parts_log = self._run(
            toy_config, tmp_path, "parts", "training.accumulate=4"
        )
        for name in ("generator", "critic"):
            ours = (parts.generators | parts.critics)[name].state_dict()
            theirs = (whole.generators | whole.critics)[name].state_dict()
            for key in theirs:
                torch.testing.assert_close(ours[key], theirs[key], rtol=1e-5, atol=1e-6)
        assert len(parts_calls) == len(whole_calls) == 6  # every 2 of 12 critic updates
        for (mean_a, images_a), (mean_b, images_b) in zip(parts_calls, whole_calls, strict=True):
            assert images_a == images_b == 2 * 32 and mean_a == pytest.approx(mean_b, abs=1e-6)
        for a, b in zip(parts_log, whole_log, strict=True):
            assert a["images_seen"] == b["images_seen"]
            for key in ("loss/critic", "loss/generator", "reg/r1"):
                assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6)

    def test_the_comparison_can_fail(self, toy_config: Path, tmp_path: Path) -> None:
        """One micro-batch of 8 alone is a different update: weights differ by far more."""
        whole, _, _ = self._run(toy_config, tmp_path, "whole")
        small, _, _ = self._run(toy_config, tmp_path, "small", "training.batch_size=8")
        theirs = whole.critics["critic"].state_dict()
        ours = small.critics["critic"].state_dict()
        assert max((ours[k] - theirs[k]).abs().max().item() for k in theirs) > 1e-3

    def test_batch_that_does_not_split_is_one_line(self, toy_config: Path, tmp_path: Path) -> None:
        with pytest.raises(gancore.ConfigError) as info:
            train(load(toy_config, "training.accumulate=5"), tmp_path / "run", progress=False)
        assert info.value.problems == [
            "training.batch_size (32) must split evenly into training.accumulate (5) "
            "micro-batches on each of 1 process(es)"
        ]
        assert not (tmp_path / "run").exists()
