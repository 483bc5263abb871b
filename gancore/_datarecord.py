"""What a run remembers of its data, so that sampling and evaluation need not read it.

When training starts, the loop writes ``RUN_DIR/data.json``: the dataset's name, its item shapes,
its size and, when it has them, the ``modes``, ``mode_std`` and ``mode_weights`` of a 2-D mixture. ``gan sample`` and
``gan eval`` (:func:`gancore.load_run`) build the run's dataset when they can; when it cannot be
read (moved, deleted, another machine) they fall back to a :class:`RecordedData` made from that
file, which has every fact networks and samplers need and no items: reading one is a one-line
:class:`DataUnavailableError` that says why the data could not be read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from gancore._classes import load_classes
from gancore._errors import ConfigError

__all__ = [
    "DATA_FILE",
    "DataUnavailableError",
    "RecordedData",
    "load_data_record",
    "save_data_record",
]

DATA_FILE = "data.json"


class DataUnavailableError(ConfigError):
    """An item of a run's data was asked for, and the data cannot be read: one line that says
    who needed it (``who``), which dataset and why it cannot be read."""

    def __init__(self, dataset: str, reason: str, who: str = "this") -> None:
        self.dataset, self.reason, self.who = dataset, reason, who
        super().__init__(
            [
                f"{who} needs the run's real data ({dataset!r}), which cannot be read: {reason}; "
                "put the data back where the run's config.toml says"
            ]
        )

    def needed_by(self, who: str) -> DataUnavailableError:
        """The same error, naming ``who`` needed the data."""
        return DataUnavailableError(self.dataset, self.reason, who)


def save_data_record(run_dir: Path, name: str, dataset: Any) -> Path:
    """Write ``RUN_DIR/data.json`` for ``dataset`` (registered as ``name``) atomically."""
    record: dict[str, Any] = {
        "dataset": name,
        "shapes": {key: list(shape) for key, shape in dataset.shapes.items()},
        "size": len(dataset),
    }
    modes, mode_std = getattr(dataset, "modes", None), getattr(dataset, "mode_std", None)
    if isinstance(modes, torch.Tensor) and mode_std is not None:
        record["modes"] = modes.double().tolist()
        record["mode_std"] = float(mode_std)
        mode_weights = getattr(dataset, "mode_weights", None)
        if isinstance(mode_weights, torch.Tensor):
            record["mode_weights"] = mode_weights.double().tolist()
    path = Path(run_dir) / DATA_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path


class RecordedData:
    """A run's dataset as ``data.json`` and ``classes.json`` describe it: ``shapes``, ``len``,
    ``classes``, ``modes``, ``mode_std`` and ``mode_weights``, but no items (``reason`` says
    why). A record written before mode weights existed has ``mode_weights`` ``None`` (equal)."""

    labels = None  # per-class selection reads items, which fails with the reason

    def __init__(
        self,
        name: str,
        shapes: Mapping[str, Sequence[int]],
        size: int,
        reason: str,
        classes: tuple[str, ...] | None = None,
        modes: torch.Tensor | None = None,
        mode_std: float | None = None,
        mode_weights: torch.Tensor | None = None,
    ) -> None:
        self.name = name
        self.shapes = {key: tuple(shape) for key, shape in shapes.items()}
        self.size = size
        self.reason = reason
        self.classes = classes
        self.modes = modes
        self.mode_std = mode_std
        self.mode_weights = mode_weights

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        raise DataUnavailableError(self.name, self.reason)

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        return self[0]


def load_data_record(run_dir: Path, reason: str) -> RecordedData | None:
    """The :class:`RecordedData` of a run (``None`` when it has no ``data.json``); ``reason``
    is why the real data is not used. A damaged file is one line naming it."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        shapes = {str(k): [int(n) for n in v] for k, v in record["shapes"].items()}
        size = int(record["size"])
        modes = record.get("modes")
        mode_std = record.get("mode_std")
        mode_weights = record.get("mode_weights")
        name = str(record["dataset"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            [f"{path}: expected the run's data record (dataset, shapes, size): {exc}"]
        ) from None
    return RecordedData(
        name,
        shapes,
        size,
        reason,
        classes=load_classes(run_dir),
        modes=torch.tensor(modes, dtype=torch.float64) if modes is not None else None,
        mode_std=float(mode_std) if mode_std is not None else None,
        mode_weights=(
            torch.tensor(mode_weights, dtype=torch.float64) if mode_weights is not None else None
        ),
    )
