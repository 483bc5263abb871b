"""Unit tests of class names, classes.json, conditional sampling inputs and per-class metric
contexts (gancore/_classes.py, gancore/metrics/loop.py), on a hand-written labelled dataset."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import gancore
from gancore._classes import (
    ClassSubset,
    class_index,
    dataset_classes,
    dataset_labels,
    fixed_inputs,
    is_conditional,
    load_classes,
    save_classes,
)
from gancore._pictures import save_grid
from gancore._task import Unconditional
from gancore.metrics.loop import LoopMetricContext, evaluate_metrics
from gancore.testing import FakeDataset


class Labelled:
    """Six 1x2x2 images of three classes; item i is filled with the value i and has label i % 3."""

    classes = ("ant", "bee", "cat")

    def __init__(self) -> None:
        self.labels = torch.arange(6) % 3
        self.shapes = {"x": (1, 2, 2), "label": ()}

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        label = torch.tensor(index % 3)
        return {"x": torch.full((1, 2, 2), float(index)), "label": label}


class LabelTask:
    """A conditional task whose sample of class k is an image filled with 100 * k + z."""

    conditional = True

    def sample_inputs(
        self,
        generators: Mapping[str, nn.Module],
        dataset: Any,
        num: int,
        seed: int,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        z = torch.rand(num, generator=torch.Generator().manual_seed(seed))
        chosen = labels if labels is not None else torch.full((num,), 2, dtype=torch.int64)
        return {"z": z, "label": chosen}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        values = 100.0 * inputs["label"].float() + inputs["z"]
        return gancore.SampleGrid(images=values.view(-1, 1, 1, 1).expand(-1, 1, 2, 2))


class NoLabelsKeyword:
    """Says it is conditional, but its sample_inputs takes no labels."""

    conditional = True

    def sample_inputs(self, generators: Any, dataset: Any, num: int, seed: int) -> dict[str, Any]:
        return {}


class MeanMetric:
    """Means of the generated and the real samples the context yields, and their counts."""

    def evaluate(self, context: Any) -> dict[str, Any]:
        generated = torch.cat(list(context.generate(5, 2, seed=3)))
        real = torch.cat(list(context.real(len(context.dataset), 4, seed=0)))
        return {
            "generated": generated.mean().item(),
            "real": real.mean().item(),
            "num_real": len(real),
        }


class TestDatasetClasses:
    def test_names_or_none(self) -> None:
        """A dataset's classes come back as a tuple; a dataset without them gives None."""
        assert dataset_classes(Labelled()) == ("ant", "bee", "cat")
        assert dataset_classes(FakeDataset({"x": (1, 2, 2)}, size=3)) is None

    def test_invalid_names(self) -> None:
        """Repeated names are an error naming the dataset's type."""
        dataset = Labelled()
        dataset.classes = ("ant", "ant")  # type: ignore[misc]
        with pytest.raises(ValueError, match="distinct") as exc:
            dataset_classes(dataset)
        assert str(exc.value) == (
            "dataset Labelled: 'classes' must be a non-empty sequence of distinct, non-empty "
            "strings (got ('ant', 'ant'))"
        )

    def test_labels_attribute_or_items(self) -> None:
        """Labels come from the 'labels' attribute, or item by item without it."""
        dataset = Labelled()
        assert dataset_labels(dataset).tolist() == [0, 1, 2, 0, 1, 2]
        del dataset.labels
        assert dataset_labels(dataset).tolist() == [0, 1, 2, 0, 1, 2]
        with pytest.raises(ValueError, match="has no 'label' key"):
            dataset_labels(FakeDataset({"x": (1, 2, 2)}, size=3))


class TestClassesFile:
    def test_round_trip(self, tmp_path: Path) -> None:
        """save_classes writes classes.json, leaves no temporary file, and load_classes reads it."""
        path = save_classes(tmp_path, ("cat", "dog"))
        assert path == tmp_path / "classes.json"
        assert json.loads(path.read_text()) == {"classes": ["cat", "dog"]}
        assert [p.name for p in tmp_path.iterdir()] == ["classes.json"]
        assert load_classes(tmp_path) == ("cat", "dog")

    def test_missing_and_damaged(self, tmp_path: Path) -> None:
        """No file gives None; a file of the wrong shape is a one-line error naming it."""
        assert load_classes(tmp_path) is None
        (tmp_path / "classes.json").write_text('{"classes": []}')
        with pytest.raises(gancore.ConfigError) as exc:
            load_classes(tmp_path)
        assert str(exc.value) == (
            f'{tmp_path / "classes.json"}: expected {{"classes": [distinct non-empty names]}} '
            "(got {'classes': []})"
        )
        (tmp_path / "classes.json").write_text("{")
        with pytest.raises(gancore.ConfigError, match="cannot read class names"):
            load_classes(tmp_path)


class TestClassIndex:
    CLASSES = ("1", "10", "2", "cat", "dog")

    def test_name_then_index(self) -> None:
        """A class name wins over an index; other digits are indices."""
        assert class_index(self.CLASSES, "dog") == 4
        assert class_index(self.CLASSES, "10") == 1  # the name '10', not index 10
        assert class_index(self.CLASSES, "2") == 2  # the name '2' (also its index)
        assert class_index(self.CLASSES, "3") == 3  # no class is named '3': index 3 ('cat')
        assert class_index(None, "7") == 7

    def test_unknown_name(self) -> None:
        """A misspelled name gets a did-you-mean and the list of classes."""
        with pytest.raises(gancore.ConfigError) as exc:
            class_index(self.CLASSES, "dgo")
        assert str(exc.value) == (
            "--class: unknown class 'dgo' (did you mean 'dog'?); classes: 0 '1', 1 '10', 2 '2', "
            "3 'cat', 4 'dog'"
        )

    def test_index_out_of_range(self) -> None:
        """An index past the last class is an error that gives the valid range."""
        with pytest.raises(gancore.ConfigError) as exc:
            class_index(("cat", "dog"), "5")
        assert str(exc.value) == (
            "--class: class index 5 is out of range (expected 0..1); classes: 0 'cat', 1 'dog'"
        )

    def test_long_listing_is_cut(self) -> None:
        """Only the first 20 classes are listed, then the count."""
        many = tuple(f"c{i}" for i in range(30))
        with pytest.raises(gancore.ConfigError) as exc:
            class_index(many, "zebra")
        assert str(exc.value).endswith("19 'c19', ... (30 in all)")

    def test_name_without_classes(self) -> None:
        """A run without class names accepts only indices."""
        with pytest.raises(gancore.ConfigError) as exc:
            class_index(None, "cat")
        assert str(exc.value) == (
            "--class: 'cat' is not a class index, and this run names no classes (no "
            "classes.json); give an index 0, 1, ..."
        )


class TestIsConditional:
    def test_declared_or_not(self) -> None:
        """The core task is not conditional; a task with the attribute and keyword is."""
        assert not is_conditional(Unconditional())
        assert is_conditional(LabelTask())

    def test_attribute_without_keyword(self) -> None:
        """conditional = True without a labels keyword is a plugin bug, named."""
        with pytest.raises(gancore.PluginError) as exc:
            is_conditional(NoLabelsKeyword())
        assert str(exc.value) == (
            "task NoLabelsKeyword: 'conditional' is set but sample_inputs takes no 'labels' "
            "keyword (expected sample_inputs(generators, dataset, num, seed, labels=None))"
        )


class TestFixedInputs:
    def test_one_class(self) -> None:
        """With a label every input is of that class, laid out by the grid's default."""
        inputs, columns, rows = fixed_inputs(LabelTask(), {}, Labelled(), 4, seed=1, label=1)
        assert inputs["label"].tolist() == [1, 1, 1, 1]
        assert (columns, rows) == (None, None)
        plain = LabelTask().sample_inputs({}, Labelled(), 4, 1)
        assert torch.equal(inputs["z"], plain["z"])  # the same draw as without labels

    def test_class_per_row(self) -> None:
        """Without a label: ceil(num / classes) columns, row k of class k, rows named."""
        inputs, columns, rows = fixed_inputs(LabelTask(), {}, Labelled(), 7, seed=1)
        assert (columns, rows) == (3, ("ant", "bee", "cat"))
        assert inputs["label"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        _, columns, rows = fixed_inputs(
            LabelTask(), {}, Labelled(), 2, seed=1, classes=("x", "y", "z")
        )
        assert (columns, rows) == (1, ("x", "y", "z"))

    def test_without_classes(self) -> None:
        """A conditional task on data without class names gets its own choice of labels."""
        dataset = FakeDataset({"x": (1, 2, 2)}, size=3)
        inputs, columns, rows = fixed_inputs(LabelTask(), {}, dataset, 3, seed=0)
        assert (inputs["label"].tolist(), columns, rows) == ([2, 2, 2], None, None)

    def test_unconditional(self) -> None:
        """An unconditional task gets its plain inputs; asking it for a class is an error."""
        generators = {"generator": nn.Linear(2, 4)}
        generators["generator"].latent_dim = 2  # type: ignore[assignment]
        task = Unconditional()
        inputs, columns, rows = fixed_inputs(task, generators, Labelled(), 3, seed=5)
        expected = task.sample_inputs(generators, Labelled(), 3, 5)
        assert torch.equal(inputs["z"], expected["z"])
        assert (columns, rows) == (None, None)
        with pytest.raises(gancore.ConfigError) as exc:
            fixed_inputs(task, generators, Labelled(), 3, 5, label=0, task_name="unconditional")
        assert str(exc.value) == (
            "task 'unconditional' is not conditional; --class needs a conditional task"
        )


class TestClassSubset:
    def test_items_of_one_class(self) -> None:
        """The subset holds the items of its label, in order, singly and in batches."""
        subset = ClassSubset(Labelled(), 1)
        assert (len(subset), subset.indices.tolist()) == (2, [1, 4])
        assert float(subset[1]["x"][0, 0, 0]) == 4.0
        batch = subset.get_batch([1, 0])
        assert batch["x"][:, 0, 0, 0].tolist() == [4.0, 1.0]
        assert batch["label"].tolist() == [1, 1]
        assert subset.shapes == Labelled().shapes and subset.classes == Labelled.classes

    def test_empty_class(self) -> None:
        """A class without items is an error naming it."""
        dataset = Labelled()
        dataset.labels = torch.tensor([0, 0, 2, 0, 0, 2])
        with pytest.raises(ValueError, match="no items") as exc:
            ClassSubset(dataset, 1)
        assert str(exc.value) == "dataset Labelled: class 'bee' (1) has no items"


class TestPerClassContext:
    def test_generation_and_real_data_of_one_class(self) -> None:
        """With a label the context generates that class and draws real items of it only."""
        context = LoopMetricContext(LabelTask(), {}, Labelled(), torch.device("cpu"), label=1)
        result = MeanMetric().evaluate(context)
        # real: items 1 and 4 of class 'bee'; generated: 100 * 1 + z, z in [0, 1)
        assert (result["real"], result["num_real"]) == (2.5, 2)
        assert 100.0 <= result["generated"] < 101.0
        overall = MeanMetric().evaluate(
            LoopMetricContext(LabelTask(), {}, Labelled(), torch.device("cpu"))
        )
        assert (overall["real"], overall["num_real"]) == (2.5, 6)
        assert 200.0 <= overall["generated"] < 201.0  # the task's own choice: class 2

    def test_protocol_states_the_class(self) -> None:
        """A per-class result's protocol names the class; an overall one has no such field."""
        cpu = torch.device("cpu")
        metrics = [("mean", MeanMetric())]
        per_class = evaluate_metrics(
            metrics, LoopMetricContext(LabelTask(), {}, Labelled(), cpu, label=2)
        )
        overall = evaluate_metrics(metrics, LoopMetricContext(LabelTask(), {}, Labelled(), cpu))
        assert per_class["mean.protocol"]["class"] == 2
        assert "class" not in overall["mean.protocol"]
        assert per_class["mean.real"] == 3.5  # items 2 and 5

    def test_unconditional_task(self) -> None:
        """An unconditional task cannot be restricted to a class."""
        with pytest.raises(ValueError, match="not conditional") as exc:
            LoopMetricContext(Unconditional(), {}, Labelled(), torch.device("cpu"), label=0)
        assert str(exc.value) == (
            "task Unconditional is not conditional; it cannot generate samples of class 0"
        )


class TestRowNames:
    def test_names_beside_unchanged_images(self, tmp_path: Path) -> None:
        """Row names and a header go in margins; the grid's own pixels are unchanged."""
        images = torch.linspace(-1, 1, 6 * 16).view(6, 1, 4, 4)
        save_grid(images, tmp_path / "plain.png", columns=2)
        save_grid(images, tmp_path / "named.png", columns=2, row_names=("a", "b", "c"), header="h")
        plain = np.asarray(Image.open(tmp_path / "plain.png"))
        named = np.asarray(Image.open(tmp_path / "named.png"))
        top, left = named.shape[0] - plain.shape[0], named.shape[1] - plain.shape[1]
        assert top > 0 and left > 0
        assert np.array_equal(named[top:, left:], plain)
        bands = np.array_split(named[top:, :left], 3)  # one band of the margin per row
        # each band holds a white name (antialiased, so not every stroke reaches 255)
        assert all(band.max() > 200 for band in bands)
        assert named[:top].max() > 200  # the header
