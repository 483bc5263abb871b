"""Metrics of conditional generators: ``class-accuracy``, ``intra-fid`` and InfoGAN's
``code-accuracy``.

They ask the task for inputs of chosen classes (``sample_inputs(..., labels=...)``), so they run on
the training loop's metric context (in a run's ``[[metrics]]``, ``gan eval``), which gives the task,
its generators and the whole dataset. Every process computes the whole value (the sample counts
are small). Images are rounded to 8 bits before the extractor, as saved PNGs are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from gancore.metrics import (
    FeatureStats,
    build_extractor,
    frechet_distance,
    quantize_8bit,
    value_name,
)

__all__ = [
    "ClassAccuracy",
    "CodeAccuracy",
    "IntraFID",
    "build_class_accuracy",
    "build_code_accuracy",
    "build_intra_fid",
    "matched_accuracy",
]


def _count(default: int, doc: str) -> Any:
    return attrs.field(default=default, validator=attrs.validators.ge(1), metadata={"doc": doc})


def _extractor_field() -> Any:
    return attrs.field(
        default="digits-classifier",
        metadata={"doc": "classifier extractor (with class logits) by registered name"},
    )


def _seed_field() -> Any:
    return attrs.field(default=0, metadata={"doc": "seed of the generated samples' inputs"})


@attrs.frozen(kw_only=True)
class ClassAccuracy:
    """Options of ``class-accuracy``."""

    num_per_class: int = _count(100, "generated samples of each class, >= 1")
    batch_size: int = _count(100, "samples per generator batch, >= 1 (memory, not result)")
    seed: int = _seed_field()
    extractor: str = _extractor_field()


@attrs.frozen(kw_only=True)
class IntraFID:
    """Options of ``intra-fid``."""

    num_per_class: int = _count(200, "generated samples of each class, >= 2")
    num_real_per_class: int = _count(200, "real items of each class (all if fewer), >= 2")
    batch_size: int = _count(100, "samples per generator batch, >= 1 (memory, not result)")
    seed: int = _seed_field()
    extractor: str = _extractor_field()


@attrs.frozen(kw_only=True)
class CodeAccuracy:
    """Options of ``code-accuracy``."""

    num: int = _count(1000, "generated samples, >= 1")
    code: int = attrs.field(
        default=0,
        validator=attrs.validators.ge(0),
        metadata={"doc": "which categorical code (index into the task's 'categorical')"},
    )
    batch_size: int = _count(100, "samples per generator batch, >= 1 (memory, not result)")
    seed: int = _seed_field()
    extractor: str = _extractor_field()


def matched_accuracy(codes: np.ndarray, predicted: np.ndarray) -> tuple[float, list[int]]:
    """Accuracy of ``predicted`` classes against ``codes`` after the best one-to-one matching of
    code values to classes (Hungarian algorithm on the contingency table; Kuhn 1955), and the
    class each code value is matched to (-1 for values left unmatched)."""
    table = np.zeros((int(codes.max()) + 1, int(predicted.max()) + 1), dtype=np.int64)
    np.add.at(table, (codes, predicted), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    matching = [-1] * table.shape[0]
    for r, c in zip(rows, cols, strict=True):
        matching[int(r)] = int(c)
    return float(table[rows, cols].sum() / len(codes)), matching


class _Generated:
    """The loop's metric context, read for what these metrics need."""

    def __init__(self, metric: str, context: Any) -> None:
        self.task = getattr(context, "task", None)
        self.generators = getattr(context, "generators", None)
        if self.task is None or self.generators is None:
            raise ValueError(
                f"metric {metric!r}: needs the training loop's metric context (a task and its "
                "generators): use it in a run's [[metrics]] or with gan eval"
            )
        self.dataset = getattr(context, "full_dataset", context.dataset)
        self.device = context.device
        self.label: int | None = getattr(context, "label", None)

    def classes(self, metric: str) -> tuple[str, ...]:
        classes = getattr(self.dataset, "classes", None)
        if not classes or not getattr(self.task, "conditional", False):
            raise ValueError(f"metric {metric!r}: needs a conditional task and a labelled dataset")
        return tuple(classes)

    def batches(
        self, num: int, batch_size: int, seed: int, labels: torch.Tensor | None = None
    ) -> Iterator[tuple[torch.Tensor, Mapping[str, torch.Tensor]]]:
        """(images, their inputs) by batch; the inputs are drawn once, so batch size changes no
        sample."""
        assert self.task is not None
        assert self.generators is not None
        if labels is None:
            inputs = self.task.sample_inputs(self.generators, self.dataset, num, seed)
        else:
            inputs = self.task.sample_inputs(
                self.generators, self.dataset, num, seed, labels=labels
            )
        for lo in range(0, num, batch_size):
            share = {k: v[lo : lo + batch_size] for k, v in inputs.items()}
            with torch.no_grad():
                grid = self.task.sample(
                    self.generators, {k: v.to(self.device) for k, v in share.items()}
                )
            yield grid.images.float(), share


class _ExtractorMetric:
    name = ""

    def __init__(self, options: Any, registry: Any) -> None:
        self.options = options
        self._registry = registry
        self._extractor: Any = None

    def load_extractor(self) -> Any:
        """The extractor (built once; the loop calls this before the first step)."""
        if self._extractor is None:
            self._extractor = build_extractor(self.options.extractor, registry=self._registry)
        return self._extractor

    def _run(self, images: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits of images in ``[-1, 1]``, float32, autocast off."""
        extractor = self.load_extractor()
        with_logits = getattr(extractor, "features_and_logits", None)
        if with_logits is None:
            raise ValueError(
                f"metric {self.name!r}: extractor {self.options.extractor!r} gives no class "
                "logits (no features_and_logits)"
            )
        where = next((p.device for p in extractor.parameters()), torch.device("cpu"))
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            features, logits = with_logits(quantize_8bit(images.float()).to(where))
        return features.float().cpu(), logits.float().cpu()

    def _protocol(self, **more: Any) -> dict[str, Any]:
        extractor = self.load_extractor()
        return {
            "metric": self.name,
            "extractor": self.options.extractor,
            "extractor_weights_sha256": extractor.weights_sha256,
            "quantize_8bit": True,
            "seed": self.options.seed,
            **more,
        }


def _extractor_class(name: str, index: int) -> int:
    """The extractor's class of dataset class ``name``: its digit for digit names, else its index."""
    return int(name) if name.isdigit() else index


class ClassAccuracyMetric(_ExtractorMetric):
    """Classification accuracy of generated samples: for each class ``k``, ``num_per_class``
    samples asked for with ``labels = [k] * n``, classified by the extractor's logits; the value is
    the mean over classes (the "classification accuracy" of Odena et al. 2017, Sec. 4.1, with a
    fixed pre-trained classifier). Dataset class names that are digits map to that digit's logit
    (``digits`` with a subset of classes); others to their index."""

    name = "class-accuracy"

    def value_keys(self) -> list[str]:
        return ["accuracy"]

    def evaluate(self, context: Any) -> dict[str, Any]:
        gen = _Generated(self.name, context)
        names = gen.classes(self.name)
        wanted = range(len(names)) if gen.label is None else [gen.label]
        result: dict[str, Any] = {}
        per_class = []
        for k in wanted:
            target = _extractor_class(names[k], k)
            labels = torch.full((self.options.num_per_class,), k, dtype=torch.int64)
            right = 0
            for images, _ in gen.batches(
                self.options.num_per_class, self.options.batch_size, self.options.seed, labels
            ):
                right += int((self._run(images, gen.device)[1].argmax(1) == target).sum())
            per_class.append(right / self.options.num_per_class)
            result[f"accuracy/{names[k]}"] = per_class[-1]
        result = {"accuracy": float(np.mean(per_class)), **result}
        result["protocol"] = self._protocol(num_per_class=self.options.num_per_class)
        return result


class IntraFIDMetric(_ExtractorMetric):
    """Intra-class Fréchet distance (Miyato & Koyama 2018, Sec. 5): the Fréchet distance between
    the extractor features of each class's generated samples and of that class's real items,
    averaged over classes; per-class values as ``<name>/<class>``. With ``digits-classifier`` the
    value is ``intra-fd-digits`` (not comparable with Inception FIDs)."""

    name = "intra-fid"

    def _key(self) -> str:
        return "intra-" + value_name("fid", self.options.extractor)

    def value_keys(self) -> list[str]:
        return [self._key()]

    def evaluate(self, context: Any) -> dict[str, Any]:
        gen = _Generated(self.name, context)
        names = gen.classes(self.name)
        labels_of = getattr(gen.dataset, "labels", None)
        if labels_of is None:
            raise ValueError(f"metric {self.name!r}: the dataset keeps no 'labels' per item")
        wanted = range(len(names)) if gen.label is None else [gen.label]
        key, values = self._key(), []
        result: dict[str, Any] = {}
        for k in wanted:
            fake_stats, real_stats = FeatureStats(), FeatureStats()
            labels = torch.full((self.options.num_per_class,), k, dtype=torch.int64)
            for images, _ in gen.batches(
                self.options.num_per_class, self.options.batch_size, self.options.seed, labels
            ):
                fake_stats.update(self._run(images, gen.device)[0])
            rows = torch.nonzero(torch.as_tensor(labels_of) == k).flatten()
            order = torch.randperm(
                len(rows), generator=torch.Generator().manual_seed(self.options.seed)
            )
            rows = rows[order[: self.options.num_real_per_class]]
            for lo in range(0, len(rows), self.options.batch_size):
                part = rows[lo : lo + self.options.batch_size].tolist()
                real = torch.stack([gen.dataset[i]["x"] for i in part])
                real_stats.update(self._run(real, gen.device)[0])
            distance = frechet_distance(
                fake_stats.mean(),
                fake_stats.covariance(),
                real_stats.mean(),
                real_stats.covariance(),
            )
            values.append(distance)
            result[f"{key}/{names[k]}"] = distance
        result = {key: float(np.mean(values)), **result}
        result["protocol"] = self._protocol(
            num_per_class=self.options.num_per_class,
            num_real_per_class=self.options.num_real_per_class,
        )
        return result


class CodeAccuracyMetric(_ExtractorMetric):
    """InfoGAN: how well a categorical code matches the classes. ``num`` samples (the task's
    ``sample_inputs``, whose ``"categorical"`` input holds the codes) are classified by the
    extractor; code values are matched one-to-one to classes by the Hungarian algorithm on the
    contingency table, and the value is the accuracy under that matching (Chen et al. 2016, Sec.
    7.1: about 5 % error on MNIST)."""

    name = "code-accuracy"

    def value_keys(self) -> list[str]:
        return ["accuracy"]

    def evaluate(self, context: Any) -> dict[str, Any]:
        gen = _Generated(self.name, context)
        codes, predicted = [], []
        for images, inputs in gen.batches(
            self.options.num, self.options.batch_size, self.options.seed
        ):
            if "categorical" not in inputs:
                raise ValueError(
                    f"metric {self.name!r}: the task's inputs have no 'categorical' codes "
                    "(task 'infogan' gives them)"
                )
            categorical = inputs["categorical"]
            if self.options.code >= categorical.shape[1]:
                raise ValueError(
                    f"metric {self.name!r}: code = {self.options.code} but the task has "
                    f"{categorical.shape[1]} categorical code(s)"
                )
            codes.append(categorical[:, self.options.code].cpu())
            predicted.append(self._run(images, gen.device)[1].argmax(1))
        accuracy, matching = matched_accuracy(
            torch.cat(codes).numpy(), torch.cat(predicted).numpy()
        )
        result: dict[str, Any] = {"accuracy": accuracy}
        result.update({f"class-of-code/{i}": c for i, c in enumerate(matching)})
        result["protocol"] = self._protocol(num=self.options.num, code=self.options.code)
        return result


def build_class_accuracy(options: ClassAccuracy, context: Any) -> ClassAccuracyMetric:
    return ClassAccuracyMetric(options, getattr(context, "registry", None))


def build_intra_fid(options: IntraFID, context: Any) -> IntraFIDMetric:
    return IntraFIDMetric(options, getattr(context, "registry", None))


def build_code_accuracy(options: CodeAccuracy, context: Any) -> CodeAccuracyMetric:
    return CodeAccuracyMetric(options, getattr(context, "registry", None))
