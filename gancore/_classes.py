"""Classes of a run: their names, the run directory's ``classes.json``, and conditional sampling.

Labels are ordinary dataset keys: a dataset with classes gives every item a ``"label"`` (an int64
scalar, the class index) and exposes ``classes``, the class names, indexed by label. The loop
stores those names in ``RUN_DIR/classes.json`` so that ``gan sample --class NAME`` and the grids
can name classes without rebuilding the data.

A task is *conditional* when it has a truthy attribute ``conditional`` and its ``sample_inputs``
accepts a ``labels`` keyword (int64 ``[num]``, one class index per sample; ``None`` = the task's
own choice). :func:`fixed_inputs` asks such a task for one class, or for a class-per-row grid.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gancore._atomic import atomic_write_text
from gancore._errors import ConfigError, PluginError
from gancore._names import did_you_mean
from gancore.protocols import Dataset, Task

__all__ = [
    "CLASSES_FILE",
    "ClassSubset",
    "class_index",
    "dataset_classes",
    "dataset_labels",
    "fixed_inputs",
    "is_conditional",
    "load_classes",
    "require_conditional",
    "save_classes",
]

CLASSES_FILE = "classes.json"

# Error messages list at most this many class names, then say how many there are.
_LISTED = 20


def dataset_classes(dataset: object) -> tuple[str, ...] | None:
    """The dataset's class names (its ``classes`` attribute), or ``None`` when it has none.

    A ``classes`` that is not a non-empty sequence of distinct, non-empty strings is a
    ``ValueError`` naming the dataset's type.
    """
    classes = getattr(dataset, "classes", None)
    if classes is None:
        return None
    valid = (
        isinstance(classes, Sequence)
        and not isinstance(classes, str)
        and len(classes) > 0
        and all(isinstance(c, str) and c for c in classes)
        and len(set(classes)) == len(classes)
    )
    if not valid:
        raise ValueError(
            f"dataset {type(dataset).__name__}: 'classes' must be a non-empty sequence of "
            f"distinct, non-empty strings (got {classes!r})"
        )
    return tuple(classes)


def dataset_labels(dataset: Dataset) -> torch.Tensor:
    """Every item's label, int64 ``[len(dataset)]``: the dataset's ``labels`` attribute when it
    has one of that length, else read item by item (which may decode every image)."""
    if "label" not in dataset.shapes:
        raise ValueError(
            f"dataset {type(dataset).__name__} has no 'label' key (keys: "
            f"{', '.join(sorted(dataset.shapes))}); per-class selection needs labelled data"
        )
    labels = getattr(dataset, "labels", None)
    if isinstance(labels, torch.Tensor) and labels.shape == (len(dataset),):
        return labels.long()
    return torch.stack([dataset[i]["label"].reshape(()) for i in range(len(dataset))]).long()


def save_classes(run_dir: Path, classes: Sequence[str]) -> Path:
    """Write ``RUN_DIR/classes.json`` (``{"classes": [names]}``) atomically; its path."""
    path = Path(run_dir) / CLASSES_FILE
    atomic_write_text(path, json.dumps({"classes": list(classes)}, indent=2) + "\n")
    return path


def load_classes(run_dir: Path) -> tuple[str, ...] | None:
    """The class names saved in ``RUN_DIR/classes.json``; ``None`` when the file is absent.

    A file that is not ``{"classes": [distinct non-empty strings]}`` is a :class:`ConfigError`.
    """
    path = Path(run_dir) / CLASSES_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{path}: cannot read class names: {exc}"]) from None
    classes = document.get("classes") if isinstance(document, dict) else None
    valid = (
        isinstance(classes, list)
        and len(classes) > 0
        and all(isinstance(c, str) and c for c in classes)
        and len(set(classes)) == len(classes)
    )
    if not valid:
        raise ConfigError(
            [f'{path}: expected {{"classes": [distinct non-empty names]}} (got {document!r})']
        )
    return tuple(classes)  # type: ignore[arg-type]  # checked above


def _listing(classes: Sequence[str]) -> str:
    shown = ", ".join(f"{i} {name!r}" for i, name in enumerate(classes[:_LISTED]))
    more = f", ... ({len(classes)} in all)" if len(classes) > _LISTED else ""
    return shown + more


def class_index(classes: Sequence[str] | None, text: str, *, option: str = "--class") -> int:
    """The class index ``text`` names: a class name first, else an index ``0..len(classes)-1``.

    Without class names (``classes`` is ``None``) only a non-negative index is accepted. Errors are
    one-line :class:`ConfigError` s that start with ``option`` and list the classes, with a
    did-you-mean for a misspelled name.
    """
    text = str(text).strip()
    if classes is not None and text in classes:
        return list(classes).index(text)
    is_index = text.isdecimal()
    if classes is None:
        if not is_index:
            raise ConfigError(
                [
                    f"{option}: {text!r} is not a class index, and this run names no classes "
                    f"(no {CLASSES_FILE}); give an index 0, 1, ..."
                ]
            )
        return int(text)
    if is_index:
        index = int(text)
        if index < len(classes):
            return index
        raise ConfigError(
            [
                f"{option}: class index {index} is out of range (expected 0..{len(classes) - 1}); "
                f"classes: {_listing(classes)}"
            ]
        )
    raise ConfigError(
        [
            f"{option}: unknown class {text!r}{did_you_mean(text, classes)}; "
            f"classes: {_listing(classes)}"
        ]
    )


def is_conditional(task: object) -> bool:
    """True when ``task`` declares classes: a truthy ``conditional`` attribute and a
    ``sample_inputs`` that accepts ``labels``. A task that sets ``conditional`` without the
    keyword is a :class:`PluginError` (a plugin bug, shown as one line by the CLI)."""
    if not getattr(task, "conditional", False):
        return False
    parameters = inspect.signature(task.sample_inputs).parameters  # type: ignore[attr-defined]
    takes_labels = "labels" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
    if not takes_labels:
        raise PluginError(
            f"task {type(task).__name__}: 'conditional' is set but sample_inputs takes no "
            "'labels' keyword (expected sample_inputs(generators, dataset, num, seed, labels=None))"
        )
    return True


def require_conditional(task: object, task_name: str, option: str = "--class") -> None:
    """A one-line :class:`ConfigError` unless ``task`` is conditional."""
    if not is_conditional(task):
        raise ConfigError(
            [f"task {task_name!r} is not conditional; {option} needs a conditional task"]
        )


def fixed_inputs(
    task: Task,
    generators: Mapping[str, nn.Module],
    dataset: Dataset,
    num: int,
    seed: int,
    label: int | None = None,
    *,
    classes: Sequence[str] | None = None,
    task_name: str = "task",
) -> tuple[Mapping[str, torch.Tensor], int | None, tuple[str, ...] | None]:
    """Inputs for a sample grid: ``(inputs, columns, row_names)``.

    - ``label`` given: ``num`` samples of that class (the task must be conditional, else a
      :class:`ConfigError` naming ``task_name``); columns ``None`` (the grid's default).
    - A conditional task, no ``label``, known classes (``classes``, default the dataset's): a
      class-per-row grid, ``ceil(num / K)`` samples of each of the ``K`` classes, row ``k``
      holding class ``k`` and named after it.
    - Otherwise the task's own ``sample_inputs``; columns and row names ``None``.

    Inputs are a deterministic function of ``seed`` (``sample_inputs`` draws them).
    """
    if label is not None:
        require_conditional(task, task_name)
        labels = torch.full((num,), int(label), dtype=torch.int64)
        return _conditional_inputs(task, generators, dataset, num, seed, labels), None, None
    names = tuple(classes) if classes is not None else dataset_classes(dataset)
    if names is None or not is_conditional(task):
        return task.sample_inputs(generators, dataset, num, seed), None, None
    columns = max(1, math.ceil(num / len(names)))
    labels = torch.arange(len(names), dtype=torch.int64).repeat_interleave(columns)
    inputs = _conditional_inputs(task, generators, dataset, len(labels), seed, labels)
    return inputs, columns, names


def _conditional_inputs(
    task: Task,
    generators: Mapping[str, nn.Module],
    dataset: Dataset,
    num: int,
    seed: int,
    labels: torch.Tensor,
) -> Mapping[str, torch.Tensor]:
    sample_inputs: Any = task.sample_inputs  # the optional seam: the protocol has no 'labels'
    return sample_inputs(generators, dataset, num, seed, labels=labels)


class ClassSubset:
    """The items of one class of a labelled dataset, as a dataset (per-class metrics).

    ``indices`` (int64) are the parent's indices of the items whose label is ``label``, in order;
    item ``i`` is the parent's item ``indices[i]``. ``shapes`` and ``classes`` are the parent's;
    ``modes``, ``mode_std`` and ``mode_weights`` are ``None`` (a class has no mixture of its own).
    """

    modes: torch.Tensor | None = None
    mode_std: float | None = None
    mode_weights: torch.Tensor | None = None

    def __init__(self, dataset: Dataset, label: int) -> None:
        self.parent = dataset
        self.label = int(label)
        self.classes = dataset_classes(dataset)
        labels = dataset_labels(dataset)
        self.indices = torch.nonzero(labels == self.label).flatten()
        if len(self.indices) == 0:
            name = (
                f"class {self.classes[self.label]!r} ({self.label})"
                if self.classes is not None and 0 <= self.label < len(self.classes)
                else f"class {self.label}"
            )
            raise ValueError(f"dataset {type(dataset).__name__}: {name} has no items")
        self.shapes: Mapping[str, tuple[int, ...]] = dataset.shapes

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.parent[int(self.indices[index])]

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The parent's items at these positions of the class, stacked by key."""
        rows = self.indices[torch.as_tensor(indices, dtype=torch.long)].tolist()
        get_batch = getattr(self.parent, "get_batch", None)
        if callable(get_batch):
            batch: dict[str, torch.Tensor] = get_batch(rows)
            return batch
        items = [self.parent[i] for i in rows]
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}
