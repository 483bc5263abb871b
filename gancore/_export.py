"""Exported generators: one safetensors file that samples without the run directory or the data.

``gan export RUN --out generator.safetensors`` (:func:`export_generator`) writes the generator
weights of one checkpoint (the EMA generator when the run keeps one, unless ``raw``) as a
safetensors file whose metadata (string -> string) holds what building the generator again needs:

- ``gancore.format`` = ``generator`` and ``gancore.format_version`` = ``1``;
- ``gancore.config``: the run's resolved config as TOML, less what only training uses and what may
  name files of the machine it was trained on (``[[metrics]]``, ``[init]``,
  ``training.best_metric``);
- ``gancore.data``: the run's data record as JSON (the ``data.json`` of
  :mod:`gancore._datarecord`: dataset name, item shapes, size, a 2-D mixture's modes), and
  ``gancore.classes``: the class names as a JSON list (absent when the data has none);
- ``gancore.version`` and ``gancore.plugins``: the gancore version, and the plugin
  distributions whose components the config names, with their versions, as a JSON object;
- ``gancore.run``, ``gancore.checkpoint``, ``gancore.generator_kind`` (``ema`` or ``raw``),
  ``gancore.stage`` and ``gancore.iteration``: where the weights come from (a staged run's
  networks are grown to the checkpoint's stage before the weights load).

:func:`load_generator` builds the networks from that metadata on a record of the data (never the
data itself) and returns a :class:`~gancore.LoadedRun`, so everything that samples a run (``gan
sample``, ``gan interpolate``, the plugins' sample options) samples an exported file the same way.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from gancore._classes import dataset_classes, load_classes
from gancore._config import RunConfig, config_to_toml, parse_config
from gancore._datarecord import DATA_FILE, RecordedData, save_data_record
from gancore._errors import ConfigError
from gancore._inference import LoadedRun, build_loaded, read_run_checkpoint

__all__ = ["FORMAT", "FORMAT_VERSION", "export_generator", "load_generator"]

FORMAT = "generator"  # gancore.format of an exported generator
FORMAT_VERSION = 1  # bumped when a reader of an older version could not load the file
SUFFIX = ".safetensors"
_KEY = "gancore."


def _config_sections(config: RunConfig) -> list[Any]:
    """The components of ``config`` whose plugins building the generator needs."""
    singles = [config.data, config.task, config.generator, config.critic]
    singles += [config.loss, config.augmenter]
    return [c for c in [*singles, *config.regularizers] if c is not None]


def _plugins(config: RunConfig) -> dict[str, str]:
    """Plugin distribution -> version, for each plugin (not gancore) a component comes from."""
    from gancore._plugins import plugin_infos

    versions = {info.name: info.version or "unknown" for info in plugin_infos()}
    providers = sorted({c.spec.provider for c in _config_sections(config)} - {"gancore"})
    return {name: versions.get(name, "unknown") for name in providers}


def _data_record(run_dir: Path, config: RunConfig) -> tuple[str, tuple[str, ...] | None]:
    """(the run's data record as JSON, its class names): ``data.json`` and ``classes.json``; a
    run from before ``data.json`` existed has its data read instead."""
    record_file = run_dir / DATA_FILE
    classes = load_classes(run_dir)
    if record_file.is_file():
        return record_file.read_text(), classes
    try:
        dataset = config.data.build(None)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            [
                f"{str(run_dir)!r} has no {DATA_FILE} (a run from an older gancore), and its data "
                f"cannot be read to describe it: {_first_line(exc)}"
            ]
        ) from None
    # The record as the loop writes it, through its own writer.
    with tempfile.TemporaryDirectory() as tmp:
        text = save_data_record(Path(tmp), config.data.name, dataset).read_text()
    return text, classes or dataset_classes(dataset)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def export_generator(
    run_dir: Path, out: Path, which: str = "latest", raw: bool = False
) -> dict[str, str]:
    """Write the generator of ``run_dir``'s checkpoint ``which`` to ``out`` (a ``.safetensors``
    file, written atomically); its metadata (without the ``gancore.`` prefix). The file is loaded
    back before it replaces ``out``: an export that cannot be rebuilt is refused."""
    from gancore import __version__

    out = Path(out)
    if out.suffix != SUFFIX:
        raise ConfigError([f"--out: expected a {SUFFIX} file (got {str(out)!r})"])
    config, path, weights, saved = read_run_checkpoint(run_dir, which)
    kind = "ema" if "ema" in weights and not raw else "raw"
    flat = weights["ema" if kind == "ema" else "generators"]
    # What only training uses, and what may name files of this machine, stays behind.
    kept = attrs.evolve(
        config,
        metrics=(),
        init=None,
        training=attrs.evolve(config.training, best_metric=None),
    )
    record, classes = _data_record(run_dir, config)
    loop = saved.get("loop", {})
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": config_to_toml(kept),
        "data": record,
        "version": __version__,
        "plugins": json.dumps(_plugins(kept)),
        "run": str(config.run.name),
        "checkpoint": path.name,
        "generator_kind": kind,
        "stage": str(int(loop.get("stage", 0))),
        "iteration": str(int(loop.get("iteration", 1))),
    }
    if classes is not None:
        metadata["classes"] = json.dumps(list(classes))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp{SUFFIX}")
    # safetensors refuses shared or non-contiguous storage: contiguous copies of each tensor.
    tensors = {k: t.detach().contiguous().clone() for k, t in flat.items()}
    try:
        save_file(tensors, str(tmp), metadata={_KEY + k: v for k, v in metadata.items()})
        load_generator(tmp, device="cpu")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return metadata


def _metadata(path: Path) -> dict[str, str]:
    """The ``gancore.*`` metadata of an exported generator (prefix removed), or a one-line
    :class:`ConfigError` saying why ``path`` is not one."""
    if not path.exists():
        raise ConfigError([f"no such file {str(path)!r}"])
    if path.is_dir():
        raise ConfigError(
            [
                f"{str(path)!r} is a directory, not an exported generator (a {SUFFIX} file "
                "written by `gan export`); load a run directory with gancore.load_run"
            ]
        )
    if path.suffix != SUFFIX:
        raise ConfigError(
            [
                f"{str(path)!r} is not an exported generator (expected a {SUFFIX} file written "
                "by `gan export`, or a run directory)"
            ]
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata: Mapping[str, str] = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(
            [f"{str(path)!r} is not a safetensors file ({_first_line(exc)})"]
        ) from None
    found = {k[len(_KEY) :]: v for k, v in metadata.items() if k.startswith(_KEY)}
    if found.get("format") != FORMAT:
        raise ConfigError(
            [
                f"{str(path)!r} is a safetensors file but not an exported gancore generator (no "
                f"'{_KEY}format = {FORMAT}' in its metadata); write one with `gan export RUN`"
            ]
        )
    version = found.get("format_version", "?")
    if not version.isdecimal() or int(version) > FORMAT_VERSION:
        raise ConfigError(
            [
                f"{str(path)!r}: export format version {version} is newer than this gancore "
                f"reads ({FORMAT_VERSION}); upgrade gancore"
            ]
        )
    missing = [k for k in ("config", "data", "plugins", "generator_kind") if k not in found]
    if missing:
        raise ConfigError(
            [
                f"{str(path)!r}: damaged export, metadata lacks {', '.join(_KEY + k for k in missing)}"
            ]
        )
    return found


def _check_plugins(path: Path, needed: Mapping[str, str]) -> None:
    """A one-line :class:`ConfigError` for the first plugin the export needs that is not
    loaded: missing, failed to import, or disabled."""
    from gancore._plugins import plugin_infos

    infos = {info.name: info for info in plugin_infos()}
    problems = []
    for name, version in needed.items():
        info = infos.get(name)
        wanted = f"plugin {name!r} ({version} when exported)"
        if info is None:
            problems.append(
                f"{str(path)!r} needs {wanted}, which is not installed; pip install {name}"
            )
        elif info.status == "failed":
            problems.append(f"{str(path)!r} needs {wanted}, which failed to load: {info.error}")
        elif info.status == "disabled":
            problems.append(
                f"{str(path)!r} needs {wanted}, which is disabled (GANCORE_DISABLE_PLUGINS or "
                "GANCORE_LOAD_PLUGINS)"
            )
    if problems:
        raise ConfigError(problems)


def _recorded_data(path: Path, record_text: str, classes_text: str | None) -> RecordedData:
    """The data record of the export's metadata as a :class:`RecordedData` (no items)."""
    try:
        record = json.loads(record_text)
        classes = tuple(str(c) for c in json.loads(classes_text)) if classes_text else None
        modes, weights = record.get("modes"), record.get("mode_weights")
        mode_std = record.get("mode_std")
        return RecordedData(
            str(record["dataset"]),
            {str(k): [int(n) for n in v] for k, v in record["shapes"].items()},
            int(record["size"]),
            reason=f"{path.name} is an exported generator, which carries no data",
            classes=classes,
            modes=torch.tensor(modes, dtype=torch.float64) if modes is not None else None,
            mode_std=float(mode_std) if mode_std is not None else None,
            mode_weights=(
                torch.tensor(weights, dtype=torch.float64) if weights is not None else None
            ),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            [f"{str(path)!r}: damaged export, its data record does not read ({exc})"]
        ) from None


def load_generator(path: str | Path, device: torch.device | str | None = None) -> LoadedRun:
    """An exported generator (``gan export``), ready to sample: ``load_generator(path).generate(
    16, seed=0)`` gives the samples ``load_run(run_dir).generate(16, seed=0)`` gave. Needs
    neither the run directory nor the training data, only gancore and the plugins the file names.

    ``device``: where the generator runs (default: CUDA when available, else the CPU). A file that
    is missing, not an export, damaged, or that needs a plugin that is not installed is a one-line
    :class:`~gancore.ConfigError` naming the file (and the plugin).
    """
    from gancore._plugins import get_registry

    path = Path(path)
    metadata = _metadata(path)
    try:
        plugins = {str(k): str(v) for k, v in json.loads(metadata["plugins"]).items()}
        document = tomllib.loads(metadata["config"])
        stage, iteration = int(metadata.get("stage", 0)), int(metadata.get("iteration", 1))
    except (ValueError, AttributeError) as exc:
        raise ConfigError([f"{str(path)!r}: damaged export ({_first_line(exc)})"]) from None
    _check_plugins(path, plugins)
    config = parse_config(document, get_registry(), source=f"{path} (its config metadata)")
    dataset = _recorded_data(path, metadata["data"], metadata.get("classes"))
    try:
        flat = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ConfigError([f"{str(path)!r}: damaged export ({_first_line(exc)})"]) from None
    return build_loaded(
        config,
        dataset,
        flat,
        generator_kind=metadata["generator_kind"],
        source=path,
        stage=stage,
        iteration=iteration,
        misfit=f"{path.name}: the weights do not fit the generator its metadata describes",
        device=device,
    )
