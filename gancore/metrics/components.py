"""Metric components: score a generator against real data through a feature extractor.

Each class is its own options (a frozen attrs class) and satisfies
:class:`gancore.protocols.Metric`: ``evaluate(context)`` streams ``num_generated`` samples from the
context's generator and ``num_real`` real samples in batches through the extractor, accumulates
what the metric needs, and returns a flat JSON-ready dict: the values under their names, and
``"protocol"``, a dict of everything that produced them (see :data:`PROTOCOL_FIELDS`).

Images reach the extractor in ``[-1, 1]``; with ``quantize = true`` (default) they are first rounded
to 256 levels, as if saved as 8-bit PNGs, so generated and real images are measured alike. Each
extractor resizes to its own input size with its own filter (``inception-v3``: bilinear, no
antialias, to 299, one channel repeated to three; ``digits-classifier``: bilinear with antialias,
to 16). The option ``resize`` replaces that by the TensorFlow-era FID pipeline ("tf-legacy") or
clean-fid's ("clean"), both on 8-bit pixels
(:func:`gancore.metrics.extractors.resize_for_protocol`). Extraction runs in float32 with autocast off, whatever the training precision. FID (Inception)
below 10,000 samples and KID below 1,000 log one warning line (logger ``gancore.metrics``).

Values are named after the extractor: with ``inception-v3`` they are ``fid``, ``kid`` and ``is``;
with another extractor ``fd-<name>``, ``kd-<name>`` and ``is-<name>`` (``fd-digits`` for
``digits-classifier``), because they are not comparable with published FID/KID/IS numbers.

Memory: the generated and real images are never all in memory; only one batch at a time is. FID
and IS keep ``O(d^2)`` and ``O(splits K)`` statistics whatever the sample count. KID,
precision/recall and density/coverage need every feature vector (``4 N d`` bytes each side).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import attrs
import torch
from torch import nn

from gancore._registry import Registry  # at run time: option types are read with get_type_hints
from gancore.metrics.cache import Reference, cached_reference
from gancore.metrics.extractors import RESIZE_PROTOCOLS, build_extractor, resize_for_protocol
from gancore.metrics.math import (
    FeatureStats,
    InceptionScoreAccumulator,
    density_coverage,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
)
from gancore.protocols import MetricContext

if TYPE_CHECKING:
    from gancore._task import BuildContext

__all__ = [
    "FID_MIN_SAMPLES",
    "KID_MIN_SAMPLES",
    "PROTOCOL_FIELDS",
    "DensityCoverageMetric",
    "FIDMetric",
    "ISMetric",
    "KIDMetric",
    "PrecisionRecallMetric",
    "build_feature_metric",
    "extract_features",
    "quantize_8bit",
    "value_name",
]

# The fields of the "protocol" dict of every result of these metrics, in order, with their meaning.
PROTOCOL_FIELDS: dict[str, str] = {
    "metric": "what the value is: fid, kid, is with inception-v3; fd-<x>, kd-<x>, is-<x> with "
    "extractor <x>; precision-recall; density-coverage",
    "extractor": "registered name of the feature extractor",
    "extractor_weights_sha256": "sha256 of the extractor's weights file",
    "extractor_input_size": "side of the square images the extractor sees, in pixels",
    "resize_filter": "how images are resized to extractor_input_size: the extractor's own filter "
    "(inception-v3: 'bilinear'; digits-classifier: 'bilinear-antialias'), or 'tf-legacy' / "
    "'clean' when the metric's 'resize' option chose that protocol",
    "quantize_8bit": "whether images were rounded to 256 levels before the extractor",
    "image_shape": "[C, H, W] of the generated (and real) images",
    "num_generated": "generated samples scored",
    "seed_generated": "seed of the generator's inputs",
    "num_real": "real samples compared with (0 for IS)",
    "seed_real": "seed of the draw of real samples (null for IS)",
    "real_sha256": "sha256 of the real samples' float32 values, in order (null for IS)",
    "generator": "'ema' (moving average) or 'raw' (trained) generator; null when not known",
    "truncation": "truncation psi of the generator; null = none",
    # metric-specific
    "num_subsets": "KID: random subsets averaged",
    "subset_size": "KID: samples per subset, min(num_real, num_generated, subset_size)",
    "splits": "IS: consecutive parts scored separately",
    "k": "precision/recall, density/coverage: the neighbour whose distance is a ball's radius",
}

_SHORT_NAMES = {"fid": "fd", "kid": "kd", "is": "is"}

# Below these sample counts a value is logged with a warning (once per process, metric and count).
# FID is biased upwards by roughly (a constant) / N, the constant growing with the feature dimension
# (2048 for Inception): papers use 50,000 samples, and values at 10,000 are already higher.
FID_MIN_SAMPLES = 10_000
# KID averages subsets of m = min(n_real, n_generated, subset_size = 1000) samples: below 1,000
# every subset holds (nearly) every sample, so kid_std collapses towards 0 and says nothing.
KID_MIN_SAMPLES = 1_000

logger = logging.getLogger("gancore.metrics")
_WARNED: set[tuple[str, int]] = set()


def value_name(metric: str, extractor: str) -> str:
    """``fid`` with ``inception-v3``; ``fd-digits`` with ``digits-classifier``; ``fd-<name>``.

    ``extractor`` may be qualified (``plugin:name``); the short name is used.
    """
    short = extractor.rpartition(":")[2]
    if short == "inception-v3":
        return metric
    return f"{_SHORT_NAMES[metric]}-{short.removesuffix('-classifier')}"


def quantize_8bit(images: torch.Tensor) -> torch.Tensor:
    """Round images in ``[-1, 1]`` to the 256 levels of an 8-bit file, staying in ``[-1, 1]``."""
    levels = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round()  # 0..255
    return levels / 127.5 - 1.0


Outputs = tuple[torch.Tensor, ...]


def _extraction(
    net: nn.Module, *, quantize: bool, logits: bool, resize: str = "extractor"
) -> Callable[[torch.Tensor], Outputs]:
    """``images [B, C, H, W] -> (features [B, d],)`` or ``(features, logits [B, K])``.

    float32 with autocast off: features must not depend on the training precision. ``resize``
    other than "extractor" resizes the (rounded) images to the extractor's input size by that
    protocol first (:func:`gancore.metrics.extractors.resize_for_protocol`).
    """
    input_size = int(getattr(net, "input_size", 0))
    with_logits = getattr(net, "features_and_logits", None)
    if logits and with_logits is None:
        name = getattr(net, "name", type(net).__name__)
        raise ValueError(f"extractor {name!r} gives no logits (no 'features_and_logits' method)")

    def run(images: torch.Tensor) -> Outputs:
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            x = images.float()
            if quantize:
                x = quantize_8bit(x)
            x = resize_for_protocol(x, resize, input_size)
            if logits:
                assert with_logits is not None
                features, scores = with_logits(x)
                return features.float(), scores.float()
            return (net(x).float(),)

    return run


def _mapped(
    context: MetricContext,
    which: str,
    num: int,
    batch_size: int,
    seed: int,
    fn: Callable[[torch.Tensor], Outputs],
    shapes: list[tuple[int, ...]],
) -> Iterator[Outputs]:
    """``fn`` over the context's generated (``which = "generated"``) or real samples, by batch.

    A context with ``map_generated`` / ``map_real`` (the training loop's) runs ``fn`` on each
    process's share of a batch and gathers the outputs; otherwise batches come whole from
    ``generate`` / ``real``. The shape of one sample is appended to ``shapes`` when known.
    """
    mapper = getattr(context, f"map_{which}", None)
    if callable(mapper):
        yield from mapper(num, batch_size, seed, fn, shapes)
        return
    source = context.generate if which == "generated" else context.real
    for batch in source(num, batch_size, seed):
        if not shapes:
            shapes.append(tuple(batch.shape[1:]))
        yield fn(batch.to(context.device))


def extract_features(
    extractor: nn.Module,
    batches: Iterable[torch.Tensor],
    *,
    quantize: bool = True,
    keep_features: bool = False,
) -> FeatureStats:
    """Statistics of ``extractor``'s features of every batch ``[B, C, H, W]`` (on its device)."""
    run = _extraction(extractor, quantize=quantize, logits=False)
    device = next((p.device for p in extractor.parameters()), torch.device("cpu"))
    stats = FeatureStats(keep_features=keep_features)
    for batch in batches:
        stats.update(run(batch.to(device))[0].cpu())
    return stats


@attrs.frozen
class _ExtractorIdentity:
    """What the reference cache keys an extractor by, with the resize protocol in force (the
    extractor's own filter by default, so default keys are those of earlier versions)."""

    name: str
    weights_sha256: str
    input_size: int
    resize_filter: str

    @classmethod
    def of(cls, net: nn.Module, resize_filter: str) -> _ExtractorIdentity:
        return cls(
            str(getattr(net, "name", "")),
            str(net.weights_sha256),
            int(net.input_size),  # type: ignore[arg-type]
            resize_filter,
        )


def _positive(minimum: int) -> Any:
    return [attrs.validators.instance_of(int), attrs.validators.ge(minimum)]


@attrs.frozen(kw_only=True)
class _FeatureMetric:
    """Options every extractor-based metric has, and the sampling and protocol they share."""

    # What a subclass computes from: raw features, class logits, the real data.
    _label: ClassVar[str] = ""  # "fid", "kid", "is": named after the extractor; else as is
    _keep_features: ClassVar[bool] = False
    _logits: ClassVar[bool] = False
    _real: ClassVar[bool] = True

    extractor: str = attrs.field(
        default="inception-v3",
        validator=attrs.validators.instance_of(str),
        metadata={
            "doc": "feature extractor by registered name (`gan components extractor`): "
            "'inception-v3' (FID Inception, local weights file) or 'digits-classifier' "
            "(bundled; values are then labelled fd-digits, kd-digits, is-digits), or one a "
            "plugin registers"
        },
    )
    weights_path: str | None = attrs.field(
        default=None,
        metadata={
            "doc": "local weights file of the extractor; None = its default (inception-v3: "
            "$GANCORE_CACHE/weights/pt_inception-2015-12-05-6726825d.pth, GANCORE_CACHE "
            "defaulting to ~/.cache/gancore; digits-classifier: the bundled file). Never "
            "downloaded"
        },
    )
    weights_sha256: str | None = attrs.field(
        default=None,
        metadata={"doc": "expected sha256 of the weights file; None = the extractor's known hash"},
    )
    num_generated: int = attrs.field(
        default=10_000,
        validator=_positive(2),
        metadata={
            "doc": "generated samples to score, >= 2 (published FID and IS use 50,000; compare "
            "only values computed with equal counts)"
        },
    )
    num_real: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_positive(2)),
        metadata={
            "doc": "real samples to compare with, >= 2, drawn without replacement while the "
            "dataset lasts; None = min(dataset size, num_generated)"
        },
    )
    batch_size: int = attrs.field(
        default=100,
        validator=_positive(1),
        metadata={"doc": "samples per generator and extractor batch, >= 1 (memory, not result)"},
    )
    seed: int = attrs.field(
        default=0,
        validator=_positive(0),
        metadata={"doc": "seed of the generator's inputs, of the real-sample draw and of subsets"},
    )
    quantize: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "round images to 8 bits (256 levels) before the extractor, as saved PNGs"},
    )
    resize: str = attrs.field(
        default="extractor",
        validator=attrs.validators.in_(RESIZE_PROTOCOLS),
        metadata={
            "doc": "how images reach the extractor's input size: 'extractor' = its own filter "
            "on [-1, 1] images (inception-v3: PyTorch bilinear, half-pixel centres, no "
            "antialias, as pytorch-fid; what gancore always did); 'tf-legacy' = the "
            "TensorFlow-era FID code (TTUR, StyleGAN, BigGAN, torch-fidelity): 8-bit pixels "
            "resized by TF1's resize_bilinear (no half-pixel offset, no antialias), then "
            "(p - 128) / 128; 'clean' = clean-fid: 8-bit pixels resized per channel by Pillow's "
            "antialiased bicubic in float, clipped to [0, 255], then (p - 128) / 128. "
            "'tf-legacy' and 'clean' need quantize = true"
        },
    )
    cache_reference: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "reuse the real data's features: kept in memory for the process and saved "
            "under $GANCORE_CACHE/reference-stats, keyed by the real samples' sha256 and the "
            "extractor; false = extract them at every evaluation"
        },
    )

    # Not an option: the registry the run was parsed with, in which ``extractor`` is resolved.
    # A run's build sets it (:func:`build_feature_metric`); None, for a metric made in code, is
    # the process-wide registry.
    _registry: Registry | None = attrs.field(
        default=None,
        init=False,
        eq=False,
        repr=False,
        metadata={"doc": "the run's registry, from the build context (not a TOML key)"},
    )

    def __attrs_post_init__(self) -> None:
        if self.resize != "extractor" and not self.quantize:
            raise ValueError(
                f"'resize' = {self.resize!r} works on 8-bit pixels and needs 'quantize' = true "
                "(got quantize = false)"
            )

    def bound(self, registry: Registry | None) -> Self:
        """This metric, resolving its extractor in ``registry`` (a copy; options unchanged)."""
        copy = attrs.evolve(self)
        object.__setattr__(copy, "_registry", registry)  # frozen: set once, on a fresh copy
        return copy

    def load_extractor(self) -> nn.Module:
        """The configured extractor with verified weights (built once per process)."""
        return build_extractor(
            self.extractor,
            weights_path=self.weights_path,
            weights_sha256=self.weights_sha256,
            registry=self._registry,
        )

    def value_keys(self) -> list[str]:
        """Names of the values :meth:`evaluate` returns (beside ``"protocol"``)."""
        raise NotImplementedError

    def _name(self) -> str:
        """``fd-digits`` etc. for FID, KID and IS; the metric's own name otherwise."""
        return value_name(self._label, self.extractor) if self._label else self._metric_name()

    def _real_count(self, context: MetricContext) -> int:
        if self.num_real is not None:
            return self.num_real
        return min(len(context.dataset), self.num_generated)

    def _reference(self, context: MetricContext, net: nn.Module) -> Reference:
        num = self._real_count(context)
        run = _extraction(net, quantize=self.quantize, logits=False, resize=self.resize)

        def compute() -> FeatureStats:
            stats = FeatureStats(keep_features=self._keep_features)
            for (features,) in _mapped(context, "real", num, self.batch_size, self.seed, run, []):
                stats.update(features.cpu())
            return stats

        identity = (getattr(net, "name", ""), getattr(net, "weights_sha256", ""))
        return cached_reference(
            context.dataset,
            (type(context).__qualname__, num, self.seed, *identity, self.quantize, self.resize),
            lambda: context.real(num, self.batch_size, self.seed),
            compute,
            _ExtractorIdentity.of(net, self._resize_filter(net)),
            quantize=self.quantize,
            keep_features=self._keep_features,
            use_cache=self.cache_reference,
            everyone=getattr(context, "everyone", None),
        )

    def evaluate(self, context: MetricContext) -> dict[str, Any]:
        """Score ``context``'s generator; see the class docstring for the values."""
        net = self.load_extractor().to(context.device)
        reference = self._reference(context, net) if self._real else None
        stats = FeatureStats(keep_features=self._keep_features)
        scores = (
            InceptionScoreAccumulator(self.num_generated, self._splits()) if self._logits else None
        )
        run = _extraction(net, quantize=self.quantize, logits=self._logits, resize=self.resize)
        shapes: list[tuple[int, ...]] = []
        for outputs in _mapped(
            context, "generated", self.num_generated, self.batch_size, self.seed, run, shapes
        ):
            stats.update(outputs[0].cpu())
            if scores is not None:
                scores.update(outputs[1].cpu())
        shape = shapes[0] if shapes else ()
        if reference is not None and reference.sample_shape != shape:
            raise ValueError(
                f"{self._name()}: generated samples have shape "
                f"{list(shape)} but the real ones {list(reference.sample_shape)}; score against "
                "data at the generator's resolution"
            )
        values, settings = self._compute(reference.stats if reference else None, stats, scores)
        protocol: dict[str, Any] = {
            "metric": self._name(),
            "extractor": str(getattr(net, "name", self.extractor)),
            "extractor_weights_sha256": str(net.weights_sha256),
            "extractor_input_size": int(net.input_size),  # type: ignore[arg-type]
            "resize_filter": self._resize_filter(net),
            "quantize_8bit": self.quantize,
            "image_shape": list(shape),
            "num_generated": stats.count,
            "seed_generated": self.seed,
            "num_real": reference.stats.count if reference else 0,
            "seed_real": self.seed if reference else None,
            "real_sha256": reference.sha256 if reference else None,
            "generator": getattr(context, "generator_kind", None),
            "truncation": getattr(context, "truncation", None),
            **settings,
        }
        self._warn_if_few(stats.count, reference.stats.count if reference else None, net)
        return {**values, "protocol": protocol}

    def _resize_filter(self, net: nn.Module) -> str:
        """The protocol's ``resize_filter``: the extractor's own, or the chosen protocol."""
        return str(net.resize_filter) if self.resize == "extractor" else self.resize

    def _warn_if_few(self, generated: int, real: int | None, net: nn.Module) -> None:
        """Log one warning line when the sample counts are too small for the value to mean what
        users expect (see :data:`FID_MIN_SAMPLES`, :data:`KID_MIN_SAMPLES`)."""
        used = min(generated, real) if real is not None else generated
        line = self._few_samples_line(used, str(getattr(net, "name", self.extractor)))
        if line is not None and (self._name(), used) not in _WARNED:
            _WARNED.add((self._name(), used))
            logger.warning(line)

    def _few_samples_line(self, used: int, extractor: str) -> str | None:
        """The warning for ``used`` samples, or None when there are enough."""
        return None

    # -- what subclasses fill in ----------------------------------------------------------------

    def _metric_name(self) -> str:
        return self._label

    def _splits(self) -> int:
        return 1

    def _compute(
        self,
        real: FeatureStats | None,
        fake: FeatureStats,
        scores: InceptionScoreAccumulator | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The values, and the metric-specific protocol fields."""
        raise NotImplementedError


FeatureMetric = TypeVar("FeatureMetric", bound=_FeatureMetric)


def build_feature_metric(options: FeatureMetric, context: BuildContext) -> FeatureMetric:
    """The factory of the extractor-based metrics: the options (the metric itself), resolving
    their ``extractor`` in the registry of ``context`` (the run's), not a process-wide one."""
    return options.bound(context.registry)


@attrs.frozen(kw_only=True)
class FIDMetric(_FeatureMetric):
    """Fréchet Inception Distance (Heusel et al. 2017): the Fréchet distance between Gaussians
    fitted to real and generated features (see :func:`gancore.metrics.math.frechet_distance`). Lower
    is better. Biased upwards for small sample counts: compare only at equal counts and
    extractor. Value: ``fid`` (``fd-<extractor>`` with another extractor than inception-v3)."""

    _label: ClassVar[str] = "fid"

    def value_keys(self) -> list[str]:
        return [self._name()]

    def _few_samples_line(self, used: int, extractor: str) -> str | None:
        # Only the Inception FID is compared with papers; fd-<x> values compare among themselves.
        if extractor != "inception-v3" or used >= FID_MIN_SAMPLES:
            return None
        return (
            f"{self._name()}: computed on {used:,} samples (min of num_generated and num_real), "
            f"fewer than {FID_MIN_SAMPLES:,}: FID is biased upwards at small N, so this value is "
            "higher than a 50,000-sample one and comparable only with values at the same N; "
            "papers use 50,000 (num_generated = 50000)"
        )

    def _compute(
        self,
        real: FeatureStats | None,
        fake: FeatureStats,
        scores: InceptionScoreAccumulator | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        assert real is not None
        distance = frechet_distance(real.mean(), real.covariance(), fake.mean(), fake.covariance())
        return {self._name(): distance}, {}


@attrs.frozen(kw_only=True)
class KIDMetric(_FeatureMetric):
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased polynomial-kernel MMD² averaged
    over random subsets (see :func:`gancore.metrics.math.kernel_inception_distance`). Lower is
    better; unbiased, so it can be slightly negative. Values: ``kid`` and ``kid_std`` (``kd-<x>``
    with another extractor)."""

    _label: ClassVar[str] = "kid"
    _keep_features: ClassVar[bool] = True

    num_subsets: int = attrs.field(
        default=100, validator=_positive(1), metadata={"doc": "random subsets averaged, >= 1"}
    )
    subset_size: int = attrs.field(
        default=1000,
        validator=_positive(2),
        metadata={"doc": "samples per subset, >= 2; capped at min(num_real, num_generated)"},
    )

    def value_keys(self) -> list[str]:
        return [self._name(), f"{self._name()}_std"]

    def _few_samples_line(self, used: int, extractor: str) -> str | None:
        if used >= KID_MIN_SAMPLES:
            return None
        return (
            f"{self._name()}: computed on {used:,} samples (min of num_generated and num_real), "
            f"fewer than {KID_MIN_SAMPLES:,}: its subsets of min(n, subset_size) samples then "
            f"hold (nearly) every sample, so {self._name()}_std is about 0 and says nothing about "
            f"the spread; use at least {KID_MIN_SAMPLES:,} samples on each side"
        )

    def _compute(
        self,
        real: FeatureStats | None,
        fake: FeatureStats,
        scores: InceptionScoreAccumulator | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        assert real is not None
        result = kernel_inception_distance(
            real.features(),
            fake.features(),
            num_subsets=self.num_subsets,
            subset_size=self.subset_size,
            seed=self.seed,
        )
        values = {self._name(): result.mean, f"{self._name()}_std": result.std}
        return values, {"num_subsets": self.num_subsets, "subset_size": result.subset_size}


@attrs.frozen(kw_only=True)
class ISMetric(_FeatureMetric):
    """Inception Score (Salimans et al. 2016) of generated samples from the extractor's class
    logits (see :class:`gancore.metrics.math.InceptionScoreAccumulator`), streamed: memory does not
    grow with ``num_generated``. Higher is better; uses no real data (``num_real`` is ignored and
    reported as 0). Values: ``is`` and ``is_std`` (``is-<x>`` with another extractor)."""

    _label: ClassVar[str] = "is"
    _logits: ClassVar[bool] = True
    _real: ClassVar[bool] = False

    splits: int = attrs.field(
        default=10,
        validator=_positive(1),
        metadata={"doc": "consecutive parts the score is computed on separately, >= 1"},
    )

    def value_keys(self) -> list[str]:
        return [self._name(), f"{self._name()}_std"]

    def _splits(self) -> int:
        return self.splits

    def _compute(
        self,
        real: FeatureStats | None,
        fake: FeatureStats,
        scores: InceptionScoreAccumulator | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        assert scores is not None
        result = scores.result()
        values = {self._name(): result.mean, f"{self._name()}_std": result.std}
        return values, {"splits": self.splits}


@attrs.frozen(kw_only=True)
class PrecisionRecallMetric(_FeatureMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls in feature space
    (see :func:`gancore.metrics.math.precision_recall`). Both in [0, 1], higher is better.
    Values: ``precision`` and ``recall``."""

    _keep_features: ClassVar[bool] = True

    k: int = attrs.field(
        default=3,
        validator=_positive(1),
        metadata={"doc": "neighbour whose distance is a ball's radius (the paper uses 3)"},
    )

    def value_keys(self) -> list[str]:
        return ["precision", "recall"]

    def _metric_name(self) -> str:
        return "precision-recall"

    def _compute(
        self,
        real: FeatureStats | None,
        fake: FeatureStats,
        scores: InceptionScoreAccumulator | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        assert real is not None
        result = precision_recall(real.features(), fake.features(), k=self.k)
        return {"precision": result.precision, "recall": result.recall}, {"k": self.k}


@attrs.frozen(kw_only=True)
class DensityCoverageMetric(_FeatureMetric):
    """Density and coverage (Naeem et al. 2020) with real k-NN balls in feature space (see
    :func:`gancore.metrics.math.density_coverage`). Coverage in [0, 1]; density ~1 when the
    distributions match, above 1 when samples crowd dense real regions. Values: ``density`` and
    ``coverage``."""

    _keep_features: ClassVar[bool] = True

    k: int = attrs.field(
        default=5,
        validator=_positive(1),
        metadata={"doc": "neighbour whose distance is a ball's radius (the paper uses 5)"},
    )

    def value_keys(self) -> list[str]:
        return ["density", "coverage"]

    def _metric_name(self) -> str:
        return "density-coverage"

    def _compute(
        self,
        real: FeatureStats | None,
        fake: FeatureStats,
        scores: InceptionScoreAccumulator | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        assert real is not None
        result = density_coverage(real.features(), fake.features(), k=self.k)
        return {"density": result.density, "coverage": result.coverage}, {"k": self.k}
