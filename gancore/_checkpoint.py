"""Checkpoints that are never half-written.

A checkpoint is a folder ``checkpoints/step-NNNNNNN/`` holding weights as safetensors, the training
state in a file that loads with ``torch.load(weights_only=True)`` (no pickled classes), and a
``manifest.json`` with the sha256 of every file, written last. It is written under a temporary name
and renamed into place, so a crash leaves either the old state or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from gancore._errors import CheckpointError

__all__ = [
    "find_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "save_checkpoint",
    "verify_checkpoint",
]

MANIFEST = "manifest.json"
STATE = "training_state.pt"
FORMAT_VERSION = 1


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
    """Write ``weights`` (group -> state dict) and ``state`` atomically as ``root/step-NNNNNNN``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{step_dir_name(step)}-{os.getpid()}"
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
        old = root / f".old-{step_dir_name(step)}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint folders under ``root``, oldest first (temporary ones excluded)."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")]
    return sorted(found, key=lambda p: p.name)


def verify_checkpoint(path: Path) -> str | None:
    """``None`` if the checkpoint is complete and intact, else what is wrong with it."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return "manifest.json is missing (the checkpoint was not finished)"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"manifest.json is unreadable ({exc})"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if _sha256(file) != expected:
            return f"{name} is corrupt or truncated (sha256 mismatch)"
    return None


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
        best = root / "best.json"
        if not best.is_file():
            raise CheckpointError(
                f"no best checkpoint recorded in {root} (training.best_metric "
                "was not set, or no metric has run yet)"
            )
        candidates = [root / json.loads(best.read_text())["checkpoint"]]
    elif which != "latest":
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
    weights = {p.stem: load_file(str(p)) for p in sorted(path.glob("*.safetensors"))}
    state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    return weights, state


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints, never the best one."""
    protected = set()
    best = root / "best.json"
    if best.is_file():
        protected.add(json.loads(best.read_text())["checkpoint"])
    checkpoints = [p for p in list_checkpoints(root) if p.name not in protected]
    for path in checkpoints[: max(0, len(checkpoints) - keep)]:
        shutil.rmtree(path, ignore_errors=True)
