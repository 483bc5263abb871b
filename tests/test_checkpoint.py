"""Checkpoint folders and the run directory's records: damage is named, leftovers are cleaned."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import torch

import gancore
from gancore import _checkpoint
from gancore._checkpoint import (
    find_checkpoint,
    load_checkpoint,
    remove_leftovers,
    save_checkpoint,
    verify_checkpoint,
)
from gancore._cli import main
from gancore._rundir import truncate_log
from gancore._train import train
from tests.conftest import exit_status, load

HOST = socket.gethostname()
WEIGHTS = {"generators": {"w": torch.arange(4.0)}, "critics": {"v": torch.ones(3)}}


def save(root: Path, step: int) -> Path:
    """A small checkpoint of ``step`` under ``root``."""
    return save_checkpoint(root, step, WEIGHTS, {"loop": {"iteration": step}})


def write_manifest(path: Path, files: object) -> None:
    (path / "manifest.json").write_text(json.dumps({"format": 1, "step": 5, "files": files}))


def dead_pid() -> int:
    """A pid no process has: Linux's PID_MAX_LIMIT is never handed out."""
    return 1 << 22


class TestVerifyCheckpoint:
    """A manifest that does not vouch for every file is damage, named in one line."""

    def test_files_as_a_list_is_named(self, tmp_path: Path) -> None:
        """A manifest whose 'files' is a list is damage, not an AttributeError."""
        path = save(tmp_path, 5)
        write_manifest(path, ["generators.safetensors"])
        with pytest.raises(gancore.CheckpointError) as exc:
            load_checkpoint(path)
        assert str(exc.value) == (
            f"checkpoint '{path}' is damaged: manifest.json: 'files' must map file names to "
            "sha256 digests (got list)"
        )

    def test_empty_files_do_not_vouch_for_the_folder(self, tmp_path: Path) -> None:
        """'files': {} is damage: the training state is not listed."""
        path = save(tmp_path, 5)
        write_manifest(path, {})
        assert verify_checkpoint(path) == "manifest.json does not list training_state.pt"

    def test_an_unlisted_weights_file_is_damage(self, tmp_path: Path) -> None:
        """A safetensors file the manifest does not list would load unchecked: damage."""
        path = save(tmp_path, 5)
        manifest = json.loads((path / "manifest.json").read_text())
        del manifest["files"]["critics.safetensors"]
        (path / "manifest.json").write_text(json.dumps(manifest))
        assert verify_checkpoint(path) == "critics.safetensors is not listed in manifest.json"

    def test_a_listed_path_out_of_the_folder_is_damage(self, tmp_path: Path) -> None:
        """A manifest may name files of its own folder only."""
        path = save(tmp_path, 5)
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["files"]["../other.safetensors"] = "0" * 64
        (path / "manifest.json").write_text(json.dumps(manifest))
        assert verify_checkpoint(path) == (
            "manifest.json lists '../other.safetensors', which is not a file of the checkpoint "
            "folder"
        )

    def test_garbage_manifest_is_named(self, tmp_path: Path) -> None:
        """A manifest that is not JSON says so, with the parser's reason."""
        path = save(tmp_path, 5)
        (path / "manifest.json").write_text("garbage")
        assert verify_checkpoint(path) == (
            "manifest.json is not valid JSON (Expecting value: line 1 column 1 (char 0))"
        )

    def test_a_consistent_manifest_over_garbage_weights_is_damage(self, tmp_path: Path) -> None:
        """Files that match a hand-written manifest but do not load are named, not a traceback."""
        path = save(tmp_path, 5)
        (path / "critics.safetensors").write_bytes(b"not safetensors")
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["files"]["critics.safetensors"] = _checkpoint._sha256(path / "critics.safetensors")
        (path / "manifest.json").write_text(json.dumps(manifest))
        assert verify_checkpoint(path) is None
        with pytest.raises(gancore.CheckpointError) as exc:
            load_checkpoint(path)
        assert str(exc.value).startswith(
            f"checkpoint '{path}' is damaged: critics.safetensors is not a readable safetensors "
            "file ("
        )

    def test_an_intact_checkpoint_loads(self, tmp_path: Path) -> None:
        """What save_checkpoint writes verifies and loads back equal."""
        weights, state = load_checkpoint(save(tmp_path, 5))
        assert torch.equal(weights["generators"]["w"], torch.arange(4.0))
        assert state == {"loop": {"iteration": 5}}


class TestDamageFromTheCommandLine:
    """gan train --resume, sample and eval print one line for a damaged file and exit 2."""

    @pytest.mark.parametrize("command", ["resume", "sample", "eval"])
    def test_a_manifest_listing_files_as_a_list(
        self,
        command: str,
        toy_config: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The AttributeError traceback is now one line naming the checkpoint and the manifest."""
        run = tmp_path / "run"
        train(load(toy_config, "run.steps=2", "training.checkpoint_every=1"), run, progress=False)
        newest = run / "checkpoints" / "step-0000002"
        write_manifest(newest, ["generators.safetensors", "training_state.pt"])
        capsys.readouterr()
        argv = {
            "resume": ["train", "--resume", str(run), "--set", "run.steps=3"],
            "sample": ["sample", str(run), "--out", str(tmp_path / "s.png")],
            "eval": ["eval", str(run)],
        }[command]
        assert main(argv) == 2
        hint = (
            "pass --fallback to use the previous intact checkpoint 'step-0000001'"
            if command == "resume"
            else "pass --checkpoint step-0000001 to use the previous intact checkpoint"
        )
        assert capsys.readouterr().err.splitlines() == [
            f"error: checkpoint '{newest}' is damaged: manifest.json: 'files' must map file "
            f"names to sha256 digests (got list); {hint}"
        ]


class TestBestRecord:
    """best.json names a step folder of its own run, or it is damage named in one line."""

    def test_garbage_best_json_names_the_file(self, tmp_path: Path) -> None:
        """A best.json that is not JSON is an error naming best.json."""
        save(tmp_path, 5)
        (tmp_path / "best.json").write_text("")
        with pytest.raises(gancore.CheckpointError) as exc:
            find_checkpoint(tmp_path, which="best")
        assert str(exc.value) == (
            f"{tmp_path / 'best.json'} is damaged: not valid JSON "
            "(Expecting value: line 1 column 1 (char 0))"
        )

    def test_a_path_out_of_the_run_is_refused(self, tmp_path: Path) -> None:
        """best.json pointing at another run's checkpoint is refused, naming best.json."""
        other = save(tmp_path / "other" / "checkpoints", 5)
        root = tmp_path / "run" / "checkpoints"
        save(root, 5)
        (root / "best.json").write_text(
            json.dumps({"checkpoint": f"../../other/checkpoints/{other.name}", "step": 5})
        )
        with pytest.raises(gancore.CheckpointError) as exc:
            find_checkpoint(root, which="best")
        assert str(exc.value) == (
            f"{root / 'best.json'} is damaged: 'checkpoint' must name a step folder of {root} "
            "such as 'step-0000050' (got '../../other/checkpoints/step-0000005')"
        )

    def test_a_checkpoint_name_out_of_the_run_is_refused(self, tmp_path: Path) -> None:
        """--checkpoint takes a folder name of the run, not a path out of it."""
        save(tmp_path / "other", 5)
        root = tmp_path / "run"
        save(root, 5)
        with pytest.raises(gancore.CheckpointError) as exc:
            find_checkpoint(root, which="../other/step-0000005")
        assert str(exc.value) == (
            f"checkpoint '../other/step-0000005' is not a folder name of {root}"
        )

    def test_a_good_record_finds_its_checkpoint(self, tmp_path: Path) -> None:
        """A well-formed best.json picks its step, not the newest."""
        save(tmp_path, 5)
        save(tmp_path, 10)
        (tmp_path / "best.json").write_text(json.dumps({"checkpoint": "step-0000005"}))
        assert find_checkpoint(tmp_path, which="best") == tmp_path / "step-0000005"


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """SIGINT as a second Ctrl-C finds it: the default handler, restored afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class TestSignalsDuringSave:
    """A signal during a checkpoint write waits for the checkpoint to be complete."""

    def test_second_ctrl_c_finishes_the_write_and_exits_130(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        default_sigint: None,
    ) -> None:
        """With the default handler, SIGINT mid-write gives a whole checkpoint and exit 130."""
        real = _checkpoint.save_file

        def interrupted(tensors: dict[str, torch.Tensor], filename: str) -> None:
            signal.raise_signal(signal.SIGINT)  # arrives between two files of the checkpoint
            real(tensors, filename)

        monkeypatch.setattr(_checkpoint, "save_file", interrupted)
        assert exit_status(lambda: save(tmp_path, 52)) == 130
        assert verify_checkpoint(tmp_path / "step-0000052") is None
        assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000052"]
        assert capsys.readouterr().err == (
            "stopped by SIGINT while writing a checkpoint; it was finished first: "
            f"{tmp_path / 'step-0000052'}\n"
        )

    def test_a_python_handler_runs_once_after_the_write(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The loop's own handler is called after the checkpoint is complete, once."""
        seen: list[tuple[int, bool]] = []
        final = tmp_path / "step-0000010"

        def handler(signum: int, frame: object) -> None:
            seen.append((signum, verify_checkpoint(final) is None))

        previous = signal.signal(signal.SIGTERM, handler)
        real = _checkpoint.save_file

        def interrupted(tensors: dict[str, torch.Tensor], filename: str) -> None:
            signal.raise_signal(signal.SIGTERM)
            real(tensors, filename)

        monkeypatch.setattr(_checkpoint, "save_file", interrupted)
        try:
            save(tmp_path, 10)
        finally:
            signal.signal(signal.SIGTERM, previous)
        assert seen == [(signal.SIGTERM, True)]
        assert signal.getsignal(signal.SIGTERM) is previous


class TestRemoveLeftovers:
    """Folders of killed checkpoint writers are removed or put back; live ones stay."""

    def test_a_dead_writers_temporary_folder_is_removed(self, tmp_path: Path) -> None:
        """A .tmp folder whose pid no longer runs here is removed, with a warning."""
        save(tmp_path, 5)
        pid = dead_pid()
        leftover = tmp_path / f".tmp-step-0000010-{pid}@{HOST}"
        leftover.mkdir()
        old_style = tmp_path / f".tmp-step-0000015-{pid}"  # written before names had a host
        old_style.mkdir()
        with pytest.warns(UserWarning, match="no longer running") as record:
            remove_leftovers(tmp_path)
        assert [str(w.message) for w in record] == [
            f"removed {leftover}, left by process {pid}, which is no longer running",
            f"removed {old_style}, left by process {pid}, which is no longer running",
        ]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000005"]

    def test_a_live_or_foreign_writers_folder_stays(self, tmp_path: Path) -> None:
        """A folder of a running process, or of another host, is left alone with a warning."""
        live = tmp_path / f".tmp-step-0000010-{os.getppid()}@{HOST}"
        foreign = tmp_path / f".tmp-step-0000010-{dead_pid()}@elsewhere.example"
        live.mkdir()
        foreign.mkdir()
        with pytest.warns(UserWarning, match="alone") as record:
            remove_leftovers(tmp_path)
        assert sorted(str(w.message) for w in record) == sorted(
            [
                f"left {live} alone: its writer (process {os.getppid()}) is still running",
                f"left {foreign} alone: its writer ran on host elsewhere.example",
            ]
        )
        assert live.is_dir() and foreign.is_dir()

    def test_a_swap_killed_between_its_renames_is_finished(self, tmp_path: Path) -> None:
        """Old folder out, complete new one not yet in: the new one takes the step's name."""
        new = save(tmp_path / "new", 10)
        old = save(tmp_path, 10)
        pid = dead_pid()
        os.replace(old, tmp_path / f".old-step-0000010-{pid}@{HOST}")
        os.replace(new, tmp_path / f".tmp-step-0000010-{pid}@{HOST}")
        (tmp_path / "new").rmdir()
        manifest = (tmp_path / f".tmp-step-0000010-{pid}@{HOST}" / "manifest.json").read_bytes()
        with pytest.warns(UserWarning, match="finished the interrupted re-save|no longer") as rec:
            remove_leftovers(tmp_path)
        assert str(rec[0].message) == (
            f"finished the interrupted re-save of {tmp_path / 'step-0000010'} from "
            f".tmp-step-0000010-{pid}@{HOST}"
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000010"]
        assert (tmp_path / "step-0000010" / "manifest.json").read_bytes() == manifest

    def test_a_swap_killed_before_the_new_one_was_complete_is_undone(self, tmp_path: Path) -> None:
        """Old folder out, new one unfinished: the old one gets its name back."""
        old = save(tmp_path, 10)
        manifest = (old / "manifest.json").read_bytes()
        pid = dead_pid()
        os.replace(old, tmp_path / f".old-step-0000010-{pid}@{HOST}")
        (tmp_path / f".tmp-step-0000010-{pid}@{HOST}").mkdir()  # no manifest: unfinished
        with pytest.warns(UserWarning, match="did not finish|no longer running") as record:
            remove_leftovers(tmp_path)
        assert str(record[0].message) == (
            f"restored {tmp_path / 'step-0000010'} from .old-step-0000010-{pid}@{HOST}: its "
            "re-save did not finish"
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000010"]
        assert (tmp_path / "step-0000010" / "manifest.json").read_bytes() == manifest


class TestTruncateLog:
    """Resume keeps the log up to its checkpoint; a torn last line is dropped, other damage named."""

    LINES: ClassVar[list[str]] = ['{"event": "train", "step": 1}', '{"event": "train", "step": 2}']

    def test_a_torn_last_line_is_dropped_with_a_warning(self, tmp_path: Path) -> None:
        """A last line cut short by a crash (no newline) is dropped; the others are kept."""
        log = tmp_path / "metrics.jsonl"
        log.write_text("\n".join([*self.LINES, '{"event": "train", "step": 3, "loss/c']))
        with pytest.warns(UserWarning, match="cut short") as record:
            truncate_log(log, 2)
        assert str(record[0].message) == (
            f"{log}: dropped line 3, cut short by a crash (37 characters without a newline)"
        )
        assert log.read_text() == "\n".join(self.LINES) + "\n"

    def test_a_damaged_line_is_named_with_its_number(self, tmp_path: Path) -> None:
        """A bad line that is not a torn last line is an error naming file and line."""
        log = tmp_path / "metrics.jsonl"
        text = "\n".join([self.LINES[0], '{"event": "train" "step": 2}', self.LINES[1]]) + "\n"
        log.write_text(text)
        with pytest.raises(gancore.CheckpointError) as exc:
            truncate_log(log, 2)
        assert str(exc.value) == (
            f"{log}: line 2 is not valid JSON (Expecting ',' delimiter: line 1 column 19 (char 18))"
        )
        assert log.read_text() == text  # untouched

    def test_lines_after_the_checkpoint_are_dropped(self, tmp_path: Path) -> None:
        """Lines of steps after the checkpoint go; the rest stay as they were."""
        log = tmp_path / "metrics.jsonl"
        log.write_text("\n".join(self.LINES) + "\n")
        truncate_log(log, 1)
        assert log.read_text() == self.LINES[0] + "\n"
