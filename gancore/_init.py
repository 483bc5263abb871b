"""Fine-tuning: a new run starts from the weights of another (the run file's ``[init]``).

The source is a run directory (its newest intact checkpoint), a checkpoint folder, or a
safetensors file. Weights are grouped as a checkpoint groups them: ``generators``, ``critics``,
``ema`` (and any other player group a task declares), each a flat state dict keyed
``<player>.<tensor>``; a tensor's full name is ``<group>.<player>.<tensor>``.

A tensor loads when the source has the same full name with the same shape. Everything else is
reported: *missing* (the new model has it, the source does not), *unexpected* (the source has it,
the new model does not) and *shape-mismatched* (both have it, with different shapes). Loading is
in place, so the optimizers, which hold the same parameters and no state yet, start fresh.

The EMA: a source with ``ema`` weights loads them into the new run's EMA; otherwise (no such
weights, or ``ema`` left out of ``init.groups``) the source's generators load into it too, so the
EMA starts where the generator starts.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from gancore._atomic import atomic_write_text
from gancore._checkpoint import MANIFEST, find_checkpoint, load_checkpoint
from gancore._config import InitSection
from gancore._errors import CheckpointError, ConfigError

__all__ = ["InitReport", "Mismatch", "apply_init", "read_init_source"]

# Lines of each kind printed before "... N more (see init.json)".
_SHOWN = 10


@attrs.frozen
class Mismatch:
    """A tensor both sides have, with different shapes."""

    name: str
    source: tuple[int, ...]
    model: tuple[int, ...]


@attrs.frozen(kw_only=True)
class InitReport:
    """What :func:`apply_init` loaded and what it could not; names are ``<group>.<player>.<tensor>``."""

    requested: str  # init.from as written
    source: str  # what was read: a checkpoint folder or a safetensors file
    strict: bool
    matched: tuple[str, ...]
    missing: tuple[str, ...]  # in the new model, not in the source
    unexpected: tuple[str, ...]  # in the source, not in the new model
    mismatched: tuple[Mismatch, ...]
    excluded: tuple[str, ...]  # matched init.exclude, left as initialized
    notes: tuple[str, ...]  # group-level facts: EMA from the generators, groups not loaded

    @property
    def problems(self) -> list[str]:
        """One line per tensor that did not load for a reason other than init.exclude."""
        return (
            [f"missing {n} (in the new model, not in the source)" for n in self.missing]
            + [f"unexpected {n} (in the source, not in the new model)" for n in self.unexpected]
            + [
                f"shape mismatch {m.name}: source {list(m.source)}, model {list(m.model)}"
                for m in self.mismatched
            ]
        )

    def summary(self) -> str:
        """One line: how many tensors loaded, and from where."""
        total = len(self.matched) + len(self.missing) + len(self.mismatched)
        return (
            f"init: loaded {len(self.matched)} of {total} tensors from {self.source} "
            f"({len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.mismatched)} shape mismatches, {len(self.excluded)} excluded)"
        )

    def text(self) -> str:
        """The summary, the notes, then up to ten lines per kind of problem."""
        lines = [self.summary(), *(f"  note: {n}" for n in self.notes)]
        for kind, plural in (
            ("missing", "missing"),
            ("unexpected", "unexpected"),
            ("shape mismatch", "shape mismatches"),
        ):
            of_kind = [p for p in self.problems if p.startswith(kind + " ")]
            lines += [f"  {p}" for p in of_kind[:_SHOWN]]
            if len(of_kind) > _SHOWN:
                lines.append(f"  ... {len(of_kind) - _SHOWN} more {plural} (see init.json)")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the run directory's ``init.json``)."""
        return {
            "from": self.requested,
            "source": self.source,
            "strict": self.strict,
            "matched": list(self.matched),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "mismatched": [
                {"name": m.name, "source": list(m.source), "model": list(m.model)}
                for m in self.mismatched
            ],
            "excluded": list(self.excluded),
            "notes": list(self.notes),
        }

    def write(self, path: Path) -> None:
        """Write :meth:`as_dict` to ``path`` (atomically, see :mod:`gancore._atomic`)."""
        atomic_write_text(path, json.dumps(self.as_dict(), indent=2) + "\n")


def read_init_source(
    init: InitSection, groups: Sequence[str]
) -> tuple[Path, dict[str, dict[str, torch.Tensor]]]:
    """(what was read, weights by group) for ``init.from``; ``groups`` are the new run's groups
    (a safetensors file named after one holds that group alone). Raises :class:`ConfigError`."""
    path = Path(init.from_)
    where = f"init.from: {init.from_!r}"
    if not path.exists():
        raise ConfigError([f"init.from: no such file or directory {init.from_!r}"])
    if path.is_file():
        if path.suffix != ".safetensors":
            raise ConfigError(
                [
                    f"{where} is a file but not .safetensors; expected a run directory, a "
                    "checkpoint folder or a .safetensors file"
                ]
            )
        try:
            flat = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ConfigError([f"{where} is not a readable safetensors file ({exc})"]) from None
        if path.stem in groups:  # e.g. a checkpoint's generators.safetensors
            return path, {path.stem: flat}
        grouped: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in flat.items():
            group, _, rest = key.partition(".")
            grouped.setdefault(group, {})[rest] = tensor
        return path, grouped
    if (path / MANIFEST).is_file():
        checkpoint = path
    elif (path / "checkpoints").is_dir() or (path / "config.toml").is_file():
        root = path / "checkpoints"
        try:
            checkpoint = find_checkpoint(
                root, hint=f"point init.from at the intact checkpoint '{root}/{{name}}'"
            )
        except CheckpointError as exc:
            raise ConfigError([f"{where} has no intact checkpoint to start from: {exc}"]) from None
    else:
        raise ConfigError(
            [
                f"{where} is neither a run directory (no checkpoints/) nor a checkpoint folder "
                f"(no {MANIFEST})"
            ]
        )
    try:
        weights, _state = load_checkpoint(checkpoint)  # the training state stays behind
    except CheckpointError as exc:
        raise ConfigError([f"{where}: {exc}"]) from None
    return checkpoint, weights


def apply_init(init: InitSection, groups: Mapping[str, Mapping[str, nn.Module]]) -> InitReport:
    """Load ``init.from``'s matching tensors into ``groups`` (group -> player -> module) in place.

    Call it once the networks and the EMA exist and before the first step; groups that are empty
    (no EMA) count as absent. With ``init.strict`` any missing, unexpected or shape-mismatched
    tensor raises :class:`ConfigError` (one line each) and nothing is loaded.
    """
    present = {g: modules for g, modules in groups.items() if modules}
    if init.groups is not None:
        unknown = [g for g in init.groups if g not in groups]
        if unknown:
            raise ConfigError(
                [
                    f"init.groups: the new run has no group {g!r}; its groups: "
                    f"{', '.join(sorted(groups))}"
                    for g in unknown
                ]
            )
    chosen = [g for g in present if init.groups is None or g in init.groups]
    read, source = read_init_source(init, list(groups))
    sources = {g: source[g] for g in chosen if g in source}
    notes: list[str] = []
    # The EMA starts where the generators start: from the source's EMA weights when they load,
    # else from the source's generators (a source without EMA, or "ema" not in init.groups).
    borrowed = "ema" in present and "ema" not in sources and "generators" in sources
    if borrowed:
        why = "not in init.groups" if "ema" in source else "the source has no EMA weights"
        notes.append(f"ema: {why}; the EMA starts from the source's generators")
        sources["ema"] = source["generators"]
        if "ema" not in chosen:
            chosen.append("ema")
    notes += [f"{g}: not loaded (not in init.groups)" for g in present if g not in chosen]
    for group in source:
        if group not in present and group in groups:  # e.g. "ema" in a run without EMA
            notes.append(f"{group}: in the source, but the new run has none; not loaded")

    def excluded(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in init.exclude)

    matched: list[str] = []
    missing: list[str] = []
    unexpected: list[str] = []
    mismatched: list[Mismatch] = []
    skipped: list[str] = []
    loads: list[tuple[nn.Module, dict[str, torch.Tensor]]] = []
    for group in chosen:
        available = sources.get(group, {})
        seen: set[str] = set()
        for player, module in present[group].items():
            load: dict[str, torch.Tensor] = {}
            for key, tensor in module.state_dict().items():
                flat = f"{player}.{key}"
                name = f"{group}.{flat}"
                seen.add(flat)
                if excluded(name):
                    skipped.append(name)
                elif flat not in available:
                    missing.append(name)
                elif tuple(available[flat].shape) != tuple(tensor.shape):
                    mismatched.append(
                        Mismatch(name, tuple(available[flat].shape), tuple(tensor.shape))
                    )
                else:
                    matched.append(name)
                    load[key] = available[flat]
            loads.append((module, load))
        if not (borrowed and group == "ema"):  # borrowed tensors are reported as generators
            for flat in available:
                if flat not in seen:
                    name = f"{group}.{flat}"
                    (skipped if excluded(name) else unexpected).append(name)
    for group, tensors in source.items():
        if group not in groups:  # a group no player of the new run belongs to
            for flat in tensors:
                name = f"{group}.{flat}" if flat else group
                (skipped if excluded(name) else unexpected).append(name)
    if not matched and source:
        notes.append(
            "no tensor matched: names are <group>.<player>.<tensor>, e.g. "
            "generators.generator.net.0.weight"
        )

    report = InitReport(
        requested=init.from_,
        source=str(read),
        strict=init.strict,
        matched=tuple(matched),
        missing=tuple(missing),
        unexpected=tuple(unexpected),
        mismatched=tuple(mismatched),
        excluded=tuple(skipped),
        notes=tuple(notes),
    )
    if init.strict and report.problems:
        raise ConfigError([f"init.from {init.from_!r} (strict): {p}" for p in report.problems])
    with torch.no_grad():
        for module, load in loads:
            # strict=False: only the matched keys are given; each is copied into the existing
            # tensor (same storage, so optimizers and the EMA see the loaded values).
            module.load_state_dict(load, strict=False)
    return report
