"""The run directory survives crashes, full disks, signals during start-up and a second writer."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
from safetensors.torch import load_file

import gancore
import gancore.testing as gt
from gancore._atomic import atomic_write_text
from gancore._checkpoint import list_checkpoints
from gancore._cli import main
from gancore._runlock import LOCK_FILE, RunLock
from gancore._train import train
from tests.conftest import TOY_CONFIG, load, write_toml


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    out = {}
    for file in sorted(checkpoint.glob("*.safetensors")):
        for key, tensor in load_file(str(file)).items():
            out[f"{file.stem}/{key}"] = tensor
    return out


def _steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if r["event"] == "train"]


def _gan(*args: str) -> tuple[int, list[str]]:
    """``gan ARGS`` in this process: the exit status and the stderr lines."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(list(args))
    return status, err.getvalue().splitlines()


@contextlib.contextmanager
def _file_size_limit(limit: int) -> Any:
    """Writes past ``limit`` bytes fail with EFBIG (Python ignores SIGXFSZ), as under ulimit -f."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return int(done.stdout)


class TestAtomicWrite:
    def test_a_failed_write_leaves_the_old_file_and_no_temporary(self, tmp_path: Path) -> None:
        """A write cut off by the file-size limit is one error; the old file stays whole."""
        path = tmp_path / "config.toml"
        path.write_text("old = 1\n")
        with _file_size_limit(1024), pytest.raises(gancore.TrainingError) as exc:
            atomic_write_text(path, "x = 1\n" * 1000)
        assert str(exc.value) == (
            f"could not write {str(path)!r} (File too large); it is unchanged. Free disk space or "
            "raise the file-size limit, then run the command again"
        )
        assert path.read_text() == "old = 1\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]

    def test_the_same_text_is_not_written_again(self, tmp_path: Path) -> None:
        """Writing what a file already holds leaves it untouched; other text replaces it."""
        path = tmp_path / "a.txt"
        assert atomic_write_text(path, "one\n") is True
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        assert atomic_write_text(path, "one\n") is False
        assert path.stat().st_mtime_ns == 1_000_000_000
        assert atomic_write_text(path, "two\n") is True
        assert path.read_text() == "two\n"

    def test_resume_does_not_rewrite_an_unchanged_config(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """Resuming without --set leaves config.toml alone, so no failed write can cut it."""
        config = load(toy_config, "run.steps=2")
        run_dir = tmp_path / "run"
        train(config, run_dir, progress=False)
        os.utime(run_dir / "config.toml", ns=(1_000_000_000, 1_000_000_000))
        resumed = gancore.load_config(run_dir / "config.toml", ["run.steps=3"])
        # run.steps differs: the file is rewritten; the same config again: it is not.
        train(resumed, run_dir, resume=True, progress=False)
        assert "steps = 3" in (run_dir / "config.toml").read_text()
        os.utime(run_dir / "config.toml", ns=(1_000_000_000, 1_000_000_000))
        again = gancore.load_config(run_dir / "config.toml")
        train(again, run_dir, resume=True, progress=False)
        assert (run_dir / "config.toml").stat().st_mtime_ns == 1_000_000_000

    @pytest.mark.slow
    def test_resume_under_a_file_size_limit_keeps_config_whole(
        self, toy_config: Path, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """`(ulimit -f 1; gan train --resume RUN --set ...)` is one error line, exit 1, and
        config.toml is byte for byte what it was."""
        run_dir = tmp_path / "run"
        train(load(toy_config, "run.steps=2"), run_dir, progress=False)
        before = (run_dir / "config.toml").read_bytes()
        assert len(before) > 1024
        done = subprocess.run(
            [
                "bash",
                "-c",
                'ulimit -f 1; exec "$@"',
                "gan",
                sys.executable,
                "-m",
                "gancore",
                "train",
                "--resume",
                str(run_dir),
                "--set",
                "training.log_every=3",
            ],
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        errors = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
        assert errors == [
            f"error: could not write {str(run_dir / 'config.toml')!r} (File too large); it is "
            "unchanged. Free disk space or raise the file-size limit, then run the command again"
        ]
        assert (run_dir / "config.toml").read_bytes() == before


class TestRunLock:
    def test_a_second_start_is_refused_naming_the_holder(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """While a run holds its directory, another start is one line naming pid and host."""
        run_dir = tmp_path / "run"
        holder = RunLock(run_dir)
        assert holder.acquire() is None
        started = json.loads((run_dir / LOCK_FILE).read_text())["started"]
        config = load(toy_config, "run.steps=1")
        try:
            with pytest.raises(gancore.ConfigError) as exc:
                train(config, run_dir, progress=False)
        finally:
            holder.release()
        assert str(exc.value) == (
            f"run directory {str(run_dir)!r} is in use by pid {os.getpid()} on host "
            f"{socket.gethostname()}, started {started} (lock file "
            f"{str(run_dir / LOCK_FILE)!r}); wait for that run to end or stop it, or train into "
            "another directory"
        )
        assert not run_dir.exists()  # the holder created it and left nothing in it
        train(config, run_dir, progress=False)  # free again
        assert not (run_dir / LOCK_FILE).exists()

    def test_a_second_resume_is_refused_by_the_command(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """`gan train --resume` of a run another process holds: exit 2, nothing changed."""
        run_dir = tmp_path / "run"
        train(load(toy_config, "run.steps=2"), run_dir, progress=False)
        log = (run_dir / "metrics.jsonl").read_bytes()
        holder = RunLock(run_dir)
        assert holder.acquire() is None
        try:
            status, lines = _gan("train", "--resume", str(run_dir), "--set", "run.steps=4")
        finally:
            holder.release()
        assert status == 2
        assert [line for line in lines if line.startswith("error:")] == lines[-1:]
        assert lines[-1].startswith(f"error: run directory {str(run_dir)!r} is in use by pid ")
        assert (run_dir / "metrics.jsonl").read_bytes() == log
        assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == ["step-0000002"]

    def test_the_lock_of_a_dead_process_is_taken_over_with_a_warning(
        self, toy_config: Path, tmp_path: Path
    ) -> None:
        """A lock file left by a killed start (nothing else in the folder) does not block a new
        `gan train` into it: a warning names the dead holder, and the run trains."""
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        pid = _dead_pid()
        host = socket.gethostname()
        stale = {"pid": pid, "host": host, "started": "2026-01-01T00:00:00Z"}
        (run_dir / LOCK_FILE).write_text(json.dumps(stale))
        status, lines = _gan(
            "train",
            str(toy_config),
            "--run-dir",
            str(run_dir),
            "--set",
            "run.steps=2",
            "--progress",
            "lines",
        )
        assert status == 0, lines
        assert (
            f"warning: taking over the lock of {str(run_dir)!r} from pid {pid} on host {host}, "
            "started 2026-01-01T00:00:00Z, which is no longer running (a run that was killed)"
        ) in lines
        assert _steps(run_dir) == [2]
        assert not (run_dir / LOCK_FILE).exists()

    @pytest.mark.slow
    def test_every_process_of_a_refused_multi_process_run_stops(
        self, toy_config: Path, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """2 gloo processes into a held run directory: both stop with the error, none hangs."""
        run_dir = tmp_path / "run"
        holder = RunLock(run_dir)
        assert holder.acquire() is None
        try:
            done = gt.run_processes(
                ["-m", "gancore", "train", str(toy_config), "--run-dir", str(run_dir)],
                env=subprocess_env,
                timeout=240,
            )
        finally:
            holder.release()
        assert done.returncode != 0
        refused = f"error: run directory {str(run_dir)!r} is in use by pid {os.getpid()}"
        assert done.stderr.count(refused) == 2, done.stderr[-3000:]


@attrs.frozen
class _NanLoss:
    """A test loss that is NaN for both players."""

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return (real.mean() - fake.mean()) * float("nan")

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() * float("nan")


class _NanPlugin:
    @gancore.hookimpl
    def gancore_register_losses(self, register: gancore.RegisterCallback) -> None:
        register("nan-loss", _NanLoss, description="Test: NaN.")


class TestStartUp:
    def test_a_signal_during_start_up_stops_with_a_message_and_the_run_restarts(
        self,
        toy_config: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """SIGTERM while the data loader is set up: an interrupted result, one line saying how
        to go on; --resume then trains from step 0 to the weights of a straight run."""
        import gancore._train as train_module

        config = load(toy_config, "run.steps=4", "training.log_every=1")
        straight = train(config, tmp_path / "straight", progress=False)
        original = train_module.batches

        def signalled(*args: Any, **kwargs: Any) -> Any:
            os.kill(os.getpid(), signal.SIGTERM)
            return original(*args, **kwargs)

        run_dir = tmp_path / "run"
        monkeypatch.setattr(train_module, "batches", signalled)
        capsys.readouterr()
        result = train(config, run_dir, progress=False)
        assert result.interrupted and result.step == 0 and result.checkpoint is None
        assert capsys.readouterr().err.splitlines() == [
            "stopped by SIGTERM during start-up, before the first step; resume with: gan train "
            f"--resume {run_dir}"
        ]
        assert sorted(p.name for p in run_dir.iterdir()) == ["config.toml"]  # no lock left
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

        monkeypatch.setattr(train_module, "batches", original)
        resumed = train(
            gancore.load_config(run_dir / "config.toml"), run_dir, resume=True, progress=False
        )
        assert capsys.readouterr().err.splitlines()[0] == (
            f"note: {str(run_dir)!r} holds no checkpoint (the run stopped before its first one): "
            "starting it from step 0"
        )
        assert resumed.step == 4 and _steps(run_dir) == [1, 2, 3, 4]
        assert straight.checkpoint is not None and resumed.checkpoint is not None
        a, b = _weights(straight.checkpoint), _weights(resumed.checkpoint)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def test_a_signal_before_anything_is_written_leaves_nothing(
        self,
        toy_config: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """SIGINT while the run is built: no run directory, and the same command works again."""
        import gancore._train as train_module

        original = train_module.build_run

        def signalled(*args: Any, **kwargs: Any) -> Any:
            os.kill(os.getpid(), signal.SIGINT)
            return original(*args, **kwargs)

        monkeypatch.setattr(train_module, "build_run", signalled)
        run_dir = tmp_path / "run"
        result = train(load(toy_config, "run.steps=1"), run_dir, progress=False)
        assert result.interrupted and result.step == 0
        assert capsys.readouterr().err.splitlines() == [
            "stopped by SIGINT during start-up, before the first step; nothing was written; run "
            "the same command again"
        ]
        assert not run_dir.exists()

    def test_a_run_stopped_by_the_non_finite_guard_before_its_first_checkpoint_resumes(
        self, toy_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The documented recovery works without a checkpoint: --resume with a changed loss
        starts from step 0 and drops the failed attempt's log lines."""
        registry, _ = gancore.load_registry(entry_points=False, plugins=[("nan", _NanPlugin())])
        config = load(
            toy_config,
            "loss.name=nan-loss",
            "training.max_nonfinite_steps=3",
            "training.log_every=1",
            registry=registry,
        )
        run_dir = tmp_path / "run"
        with pytest.raises(gancore.TrainingError, match="no checkpoint had been written yet"):
            train(config, run_dir, progress=False)
        assert not list_checkpoints(run_dir / "checkpoints") and _steps(run_dir) == [1]
        status, lines = _gan(
            "train",
            "--resume",
            str(run_dir),
            "--set",
            "loss.name=hinge",
            "--set",
            "run.steps=3",
            "--progress",
            "lines",
        )
        assert status == 0, lines
        assert (
            f"note: {str(run_dir)!r} holds no checkpoint (the run stopped before its first "
            "one): starting it from step 0" in lines
        )
        assert _steps(run_dir) == [1, 2, 3]


class TestKilledRepeatedly:
    @pytest.mark.slow
    def test_sigkill_at_random_moments_then_resume_equals_a_straight_run(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """Nothing saved is ever lost: a run killed (SIGKILL) at seeded random moments, in
        start-up, steps and checkpoint writes, and started again each time, ends bit-identical to
        a run that was never interrupted."""
        config = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        settings = [
            "--set", "run.steps=40",
            "--set", "training.log_every=1",
            "--set", "training.checkpoint_every=2",
            "--set", "training.sample_every=0",
            "--progress", "lines",
        ]  # fmt: skip
        gan = [sys.executable, "-m", "gancore", "train"]

        def start(run_dir: Path) -> subprocess.Popen[bytes]:
            # What a user does after a crash: resume a run directory, or start it again.
            again = [str(config), "--run-dir", str(run_dir), *settings]
            resume = ["--resume", str(run_dir)]
            command = gan + (resume if (run_dir / "config.toml").exists() else again)
            return subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env
            )

        def first_step(proc: subprocess.Popen[bytes]) -> None:
            """Wait until ``proc`` reports its first step (or ends)."""
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.startswith(b"step "):
                    return

        began = time.monotonic()
        straight = start(tmp_path / "straight")
        first_step(straight)
        start_up = time.monotonic() - began
        _, err = straight.communicate(timeout=120)
        assert straight.returncode == 0, err.decode()[-2000:]
        training = time.monotonic() - began - start_up

        # Six kills at seeded moments: two in start-up (building, writing config.toml, the lock),
        # four while steps and checkpoints are written; then the run is left to finish.
        run_dir = tmp_path / "killed"
        rng = random.Random(29)
        moments = ["start-up"] * 2 + ["training"] * 4
        rng.shuffle(moments)
        killed: list[str] = []
        for moment in [*moments, "never"]:
            proc = start(run_dir)
            if moment == "start-up":
                time.sleep(rng.uniform(0.0, 1.0) * start_up)
            elif moment == "training":  # a moment before the end of what is left to train
                saved = list_checkpoints(run_dir / "checkpoints")
                left = 1 - (int(saved[-1].name.removeprefix("step-")) if saved else 0) / 40
                first_step(proc)
                time.sleep(rng.uniform(0.0, 0.8) * left * training)
            if moment != "never" and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed.append(moment)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
            if proc.returncode == 0:
                break
        assert killed.count("training") >= 3 and proc.returncode == 0
        final = run_dir / "checkpoints" / "step-0000040"
        a, b = _weights(tmp_path / "straight" / "checkpoints" / "step-0000040"), _weights(final)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert _steps(run_dir) == list(range(1, 41))  # one history, no step twice
