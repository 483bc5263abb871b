"""The run directory survives crashes, full disks, signals during start-up and a second writer."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import gancore
from gancore._atomic import atomic_write_text
from gancore._cli import main
from gancore._train import train
from tests.conftest import load


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

