"""Checkpoints that are never half-written.

A checkpoint is a folder ``checkpoints/step-NNNNNNN/`` holding weights as safetensors, the training
state in a file that loads with ``torch.load(weights_only=True)`` (no pickled classes), and a
``manifest.json`` with the sha256 of every file, written last. It is written under a temporary name
and renamed into place, so a crash leaves either the old state or the new one, never a mix.

Temporary folders carry their writer's pid and host (``.tmp-step-NNNNNNN-PID@HOST``), so a later
start can tell the leftovers of a killed writer (:func:`remove_leftovers`) from a live one's work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import socket
import sys
import warnings
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gancore._errors import CheckpointError

__all__ = [
    "find_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "read_best",
    "remove_leftovers",
    "save_checkpoint",
    "verify_checkpoint",
]

MANIFEST = "manifest.json"
STATE = "training_state.pt"
BEST = "best.json"
FORMAT_VERSION = 1
# A checkpoint folder's name; the best record and --checkpoint name one of these, nothing else.
STEP_NAME = re.compile(r"step-\d+")
# A folder being written (.tmp), swapped out by a re-save of its step (.old) or being pruned (.del),
# with its writer's pid and host (folders of earlier versions have the pid only).
WORK_NAME = re.compile(r"\.(?P<kind>tmp|old|del)-(?P<step>step-\d+)-(?P<pid>\d+)(?:@(?P<host>.+))?")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def step_dir_name(step: int) -> str:
    return f"step-{step:07d}"


def save_checkpoint(
    root: Path,
    step: int,
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    state: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``weights`` (group -> state dict) and ``state`` atomically as ``root/step-NNNNNNN``.

    A SIGINT or SIGTERM that arrives meanwhile waits until the checkpoint is complete. Then a
    Python handler (the loop's first-signal handler) runs; where the default handler would have
    ended the process, it ends with ``SystemExit(130)``, the status of an interrupted run.
    """
    with _signals_deferred() as arrived:
        final = _write_checkpoint(root, step, weights, state, meta)
    _redeliver(arrived, final)
    return final


def _write_checkpoint(
    root: Path,
    step: int,
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    state: Mapping[str, Any],
    meta: Mapping[str, Any] | None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / _work_name("tmp", step)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    files: dict[str, str] = {}
    for group, tensors in weights.items():
        path = tmp / f"{group}.safetensors"
        # safetensors refuses shared or non-contiguous storage; detached contiguous copies are safe.
        save_file({k: t.detach().contiguous().cpu() for k, t in tensors.items()}, str(path))
        files[path.name] = _sha256(path)
    torch.save(dict(state), tmp / STATE)
    files[STATE] = _sha256(tmp / STATE)
    manifest = {"format": FORMAT_VERSION, "step": step, "files": files, **(meta or {})}
    with (tmp / MANIFEST).open("w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    if final.exists():  # re-saving the same step (e.g. best == last): swap, then drop the old one
        # A kill between the two renames leaves both folders: remove_leftovers() finishes the swap.
        old = root / _work_name("old", step)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def _work_name(kind: str, step: int) -> str:
    return f".{kind}-{step_dir_name(step)}-{os.getpid()}@{socket.gethostname()}"


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Within: SIGINT and SIGTERM are recorded, not acted on; yields those that arrived.

    A checkpoint is either whole or absent (the rename is atomic), but a signal in the middle
    of the write would leave its temporary folder behind and, after a first Ctrl-C has restored
    the default handler, end the process with a traceback and without the checkpoint the stop
    was for. Writing one takes a moment, so the signal waits for it.
    """
    arrived: list[int] = []
    previous: dict[int, Any] = {}

    def record(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: signals go there anyway
            previous[sig] = signal.signal(sig, record)
    try:
        yield arrived
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _redeliver(arrived: list[int], final: Path) -> None:
    """Act on the signals that waited for the checkpoint ``final``, as their handlers would have.

    A Python handler (the loop's first-signal handler) is called. A default handler would have
    ended the process: end it now, with the status of an interrupted run (130), and say why.
    """
    for signum in dict.fromkeys(arrived):  # each signal once, in order of arrival
        handler = signal.getsignal(signum)
        if handler is signal.SIG_IGN:
            continue
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signum, None)
            continue
        print(
            f"stopped by {signal.Signals(signum).name} while writing a checkpoint; it was "
            f"finished first: {final}",
            file=sys.stderr,
        )
        raise SystemExit(130)


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders under ``root``, oldest first (temporary ones excluded)."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_NAME.fullmatch(p.name)]
    return sorted(found, key=lambda p: p.name)


def verify_checkpoint(path: Path) -> str | None:
    """``None`` if the checkpoint is complete and intact, else what is wrong with it.

    Intact means: ``manifest.json`` is a JSON object whose ``files`` maps each file name to its
    sha256; it lists the training state and every safetensors file in the folder (a file it does
    not list would load unchecked), and each listed file is there with that sha256.
    """
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return f"{MANIFEST} is missing (the checkpoint was not finished)"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        return f"{MANIFEST} is not valid JSON ({exc})"
    if not isinstance(manifest, dict):
        return f"{MANIFEST} must hold a JSON object (got {type(manifest).__name__})"
    files = manifest.get("files")
    if not isinstance(files, dict):
        got = "nothing" if files is None else type(files).__name__
        return f"{MANIFEST}: 'files' must map file names to sha256 digests (got {got})"
    for name, expected in files.items():
        if Path(name).name != name or name in (".", "..", MANIFEST):
            return f"{MANIFEST} lists {name!r}, which is not a file of the checkpoint folder"
        if not (isinstance(expected, str) and re.fullmatch(r"[0-9a-f]{64}", expected)):
            return f"{MANIFEST}: the sha256 of {name} must be 64 hex digits (got {expected!r})"
    if STATE not in files:
        return f"{MANIFEST} does not list {STATE}"
    loadable = (p.name for p in path.iterdir() if p.name == STATE or p.suffix == ".safetensors")
    for name in sorted(loadable):
        if name not in files:
            return f"{name} is not listed in {MANIFEST}"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if _sha256(file) != expected:
            return f"{name} is corrupt or truncated (sha256 mismatch)"
    return None


def read_best(root: Path) -> dict[str, Any] | None:
    """The best-checkpoint record ``root/best.json`` (``None`` if there is none), checked: its
    ``checkpoint`` must name a step folder of ``root``, never a path out of it."""
    best = root / BEST
    if not best.is_file():
        return None
    try:
        record = json.loads(best.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{best} is damaged: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise CheckpointError(
            f"{best} is damaged: it must hold a JSON object (got {type(record).__name__})"
        )
    name = record.get("checkpoint")
    if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
        raise CheckpointError(
            f"{best} is damaged: 'checkpoint' must name a step folder of {root} such as "
            f"'step-0000050' (got {name!r})"
        )
    return record


FALLBACK_HINT = "pass --fallback to use the previous intact checkpoint {name!r}"


def find_checkpoint(
    root: Path, fallback: bool = False, which: str = "latest", hint: str = FALLBACK_HINT
) -> Path:
    """The checkpoint to resume or sample from.

    ``which`` is ``latest``, ``best`` or a step folder name. A damaged latest checkpoint is an error
    unless ``fallback`` is set, in which case the newest intact one before it is used. ``hint``
    tells the user how to pick the previous intact one (``{name}`` is its folder name).
    """
    candidates = list_checkpoints(root)
    if which == "best":
        best = read_best(root)
        if best is None:
            raise CheckpointError(
                f"no best checkpoint recorded in {root} (training.best_metric "
                "was not set, or no metric has run yet)"
            )
        candidates = [root / best["checkpoint"]]
        if not candidates[0].is_dir():
            raise CheckpointError(
                f"{root / BEST} names {best['checkpoint']!r}, which is not in {root}"
            )
    elif which != "latest":
        if Path(which).name != which or which in (".", ".."):
            raise CheckpointError(f"checkpoint {which!r} is not a folder name of {root}")
        candidates = [root / which]
        if not candidates[0].is_dir():
            raise CheckpointError(f"no checkpoint {which!r} in {root}")
    if not candidates:
        raise CheckpointError(f"no checkpoints in {root}")
    newest = candidates[-1]
    problem = verify_checkpoint(newest)
    if problem is None:
        return newest
    if not fallback:
        earlier = [p for p in candidates[:-1] if verify_checkpoint(p) is None]
        hint = (
            "; " + hint.format(name=earlier[-1].name)
            if earlier
            else "; no earlier intact checkpoint exists"
        )
        raise CheckpointError(f"checkpoint {str(newest)!r} is damaged: {problem}{hint}")
    for path in reversed(candidates[:-1]):
        if verify_checkpoint(path) is None:
            return path
    raise CheckpointError(
        f"checkpoint {str(newest)!r} is damaged ({problem}) and no earlier intact checkpoint exists"
    )


def load_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """(weights by group, training state) of a verified checkpoint."""
    problem = verify_checkpoint(path)
    if problem is not None:
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged: {problem}")
    # The files match their manifest, but a manifest can be written by hand: whatever does not
    # load is damage too, named, never a traceback.
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for file in sorted(path.glob("*.safetensors")):
        try:
            weights[file.stem] = load_file(str(file))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(
                f"checkpoint {str(path)!r} is damaged: {file.name} is not a readable "
                f"safetensors file ({exc})"
            ) from None
    try:
        state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, OSError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: {STATE} does not load ({first})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: {STATE} must hold a dict "
            f"(got {type(state).__name__})"
        )
    return weights, state


def prune_checkpoints(root: Path, keep: int, protected: Collection[str] = ()) -> None:
    """Delete all but the newest ``keep`` checkpoints, never those named in ``protected`` (the
    best). Each is renamed out of the list first, so a kill never leaves half of one behind."""
    checkpoints = [p for p in list_checkpoints(root) if p.name not in protected]
    for path in checkpoints[: max(0, len(checkpoints) - keep)]:
        doomed = root / _work_name("del", int(path.name.removeprefix("step-")))
        os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def remove_leftovers(root: Path) -> list[str]:
    """Clean up after checkpoint writers that were killed; what was done, one line each.

    Call it when a run starts, before choosing a checkpoint. A temporary folder of a writer that
    no longer runs on this host is removed. A re-save killed between its two renames left the
    step's old folder as ``.old-`` and the new one, maybe complete, as ``.tmp-``: the swap is
    finished (the complete new one) or undone (the old one), so the step is there again. Folders
    of a live process, or of another host (whose processes cannot be checked), stay.
    """
    if not root.is_dir():
        return []
    done: list[str] = []
    here = socket.gethostname()
    work = [(m, p) for p in root.iterdir() if p.is_dir() and (m := WORK_NAME.fullmatch(p.name))]
    # .del first (nothing to save), .old before .tmp: a swap is decided by both folders.
    order = {"del": 0, "old": 1, "tmp": 2}
    for match, path in sorted(work, key=lambda mp: (order[mp[0]["kind"]], mp[1].name)):
        if not path.exists():  # already used to finish a swap
            continue
        host, pid = match["host"] or here, int(match["pid"])
        if host != here:
            done.append(f"left {path} alone: its writer ran on host {host}")
            continue
        if pid != os.getpid() and _running(pid):
            done.append(f"left {path} alone: its writer (process {pid}) is still running")
            continue
        final = root / match["step"]
        if match["kind"] == "old" and not final.exists():
            new = root / path.name.replace(".old-", ".tmp-", 1)
            if new.is_dir() and verify_checkpoint(new) is None:
                os.replace(new, final)
                done.append(f"finished the interrupted re-save of {final} from {new.name}")
            else:
                os.replace(path, final)
                done.append(f"restored {final} from {path.name}: its re-save did not finish")
                continue
        shutil.rmtree(path, ignore_errors=True)
        done.append(f"removed {path}, left by process {pid}, which is no longer running")
    for line in done:
        warnings.warn(line, UserWarning, stacklevel=2)
    return done


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
