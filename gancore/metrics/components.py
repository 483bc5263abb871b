"""Metric components: score a generator against the data through a feature extractor.

Each class is its own options (a frozen attrs class) and satisfies
:class:`gancore.protocols.Metric`: ``evaluate(context)`` draws ``num_generated`` samples from
``context.generate`` and ``num_real`` from ``context.real`` in batches, passes them through the
extractor, accumulates features and returns a flat JSON-ready dict with the values and the protocol
that produced them (extractor, weights sha256, input size and resize filter, sample counts, seeds).
The caller adds what only it knows (EMA or raw generator, truncation).

Images reach the extractor in ``[-1, 1]``; with ``quantize = true`` (default) they are first rounded
to 256 levels, as if saved as 8-bit PNGs, so generated and real images are measured alike.
One-channel images are repeated to three channels for ``inception-v3``; each extractor resizes to
its own input size with its own filter (``inception-v3``: bilinear, no antialias, to 299;
``digits-classifier``: bilinear with antialias, to 16).

Values are named after the extractor: with ``inception-v3`` they are ``fid``, ``kid`` and ``is``;
with another extractor ``fd-<name>``, ``kd-<name>``, ``is-<name>`` (``fd-digits`` for
``digits-classifier``), because they are not comparable with published FID/KID/IS numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
import torch
from torch import nn

from gancore.metrics.extractors import build_extractor
from gancore.metrics.math import (
    FeatureStats,
    density_coverage,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)
from gancore.protocols import MetricContext

__all__ = [
    "DensityCoverageMetric",
    "ExtractedFeatures",
    "FIDMetric",
    "ISMetric",
    "KIDMetric",
    "PrecisionRecallMetric",
    "extract_features",
    "quantize_8bit",
    "value_name",
]

_SHORT_NAMES = {"fid": "fd", "kid": "kd", "is": "is"}


def value_name(metric: str, extractor: str) -> str:
    """``fid`` with ``inception-v3``; ``fd-digits`` with ``digits-classifier``; ``fd-<name>``."""
    if extractor == "inception-v3":
        return metric
    return f"{_SHORT_NAMES[metric]}-{extractor.removesuffix('-classifier')}"


def quantize_8bit(images: torch.Tensor) -> torch.Tensor:
    """Round images in ``[-1, 1]`` to the 256 levels of an 8-bit file, staying in ``[-1, 1]``."""
    levels = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round()  # 0..255
    return levels / 127.5 - 1.0


@attrs.frozen(kw_only=True)
class ExtractedFeatures:
    """What one pass over a sample stream produced: feature statistics (raw features kept when
    asked) and, when asked, the class logits ``[N, K]``."""

    stats: FeatureStats
    logits: torch.Tensor | None


def extract_features(
    extractor: nn.Module,
    batches: Iterable[torch.Tensor],
    *,
    device: torch.device,
    quantize: bool = True,
    keep_features: bool = False,
    keep_logits: bool = False,
) -> ExtractedFeatures:
    """Run every batch ``[B, C, H, W]`` through ``extractor`` and accumulate the results.

    Logits need ``extractor.features_and_logits``. Features are accumulated in float64 on the CPU.
    """
    stats = FeatureStats(keep_features=keep_features)
    logits: list[torch.Tensor] = []
    with_logits: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = getattr(
        extractor, "features_and_logits", None
    )
    if keep_logits and with_logits is None:
        name = getattr(extractor, "name", type(extractor).__name__)
        raise ValueError(f"extractor {name!r} gives no logits (no 'features_and_logits' method)")
    with torch.no_grad():
        for batch in batches:
            images = batch.to(device)
            if quantize:
                images = quantize_8bit(images)
            if keep_logits and with_logits is not None:
                features, batch_logits = with_logits(images)
                logits.append(batch_logits.detach().to("cpu", torch.float64))
            else:
                features = extractor(images)
            stats.update(features.detach().to("cpu"))
    return ExtractedFeatures(stats=stats, logits=torch.cat(logits) if keep_logits else None)


def _positive(minimum: int) -> Any:
    return [attrs.validators.instance_of(int), attrs.validators.ge(minimum)]


@attrs.frozen(kw_only=True)
class _FeatureMetric:
    """Options every extractor-based metric has, and the sampling and protocol they share."""

    extractor: str = attrs.field(
        default="inception-v3",
        validator=attrs.validators.instance_of(str),
        metadata={
            "doc": "feature extractor by name: 'inception-v3' (FID Inception, local weights) or "
            "'digits-classifier' (bundled; values are labelled fd-digits etc.); extractors "
            "added with gancore.metrics.extractors.register_extractor work too"
        },
    )
    weights_path: str | None = attrs.field(
        default=None,
        metadata={
            "doc": "local weights file of the extractor; None = its default location "
            "(inception-v3: ~/.cache/gancore/weights/pt_inception-2015-12-05-6726825d.pth; "
            "digits-classifier: the bundled file). Never downloaded"
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
            "doc": "real samples to compare with, >= 2; None = min(dataset size, num_generated)"
        },
    )
    batch_size: int = attrs.field(
        default=64,
        validator=_positive(1),
        metadata={"doc": "samples per generator and extractor batch, >= 1"},
    )
    seed: int = attrs.field(
        default=0,
        validator=_positive(0),
        metadata={"doc": "seed of the generated latents, of the real-sample draw and of subsets"},
    )
    quantize: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "round images to 8 bits (256 levels) before the extractor, as saved PNGs"},
    )

    def build_extractor(self) -> nn.Module:
        """The configured extractor with verified weights (cached per name, path and hash)."""
        return build_extractor(
            self.extractor, weights_path=self.weights_path, weights_sha256=self.weights_sha256
        )

    def _real_count(self, context: MetricContext) -> int:
        if self.num_real is not None:
            return self.num_real
        return min(len(context.dataset), self.num_generated)

    def _extract(
        self,
        context: MetricContext,
        extractor: nn.Module | None,
        *,
        real: bool,
        keep_features: bool,
        keep_logits: bool = False,
    ) -> tuple[nn.Module, ExtractedFeatures, ExtractedFeatures | None]:
        """The extractor used, the generated samples' features and (if ``real``) the real ones'."""
        net = (extractor if extractor is not None else self.build_extractor()).to(context.device)
        net.eval()

        def run(batches: Iterable[torch.Tensor], logits: bool) -> ExtractedFeatures:
            return extract_features(
                net,
                batches,
                device=context.device,
                quantize=self.quantize,
                keep_features=keep_features,
                keep_logits=logits,
            )

        fake = run(context.generate(self.num_generated, self.batch_size, self.seed), keep_logits)
        real_features = None
        if real:
            batches = context.real(self._real_count(context), self.batch_size, self.seed)
            real_features = run(batches, False)
        return net, fake, real_features

    def _protocol(
        self, metric: str, net: nn.Module, num_real: int, num_generated: int
    ) -> dict[str, Any]:
        name = str(getattr(net, "name", self.extractor))
        return {
            "metric": metric,
            "extractor": name,
            "extractor_weights_sha256": str(getattr(net, "weights_sha256", "unknown")),
            "extractor_input_size": int(getattr(net, "input_size", 0)),
            "resize_filter": str(getattr(net, "resize_filter", "unknown")),
            "gray_to_rgb": "repeat" if name == "inception-v3" else "none",
            "quantize_8bit": self.quantize,
            "num_real": num_real,
            "num_generated": num_generated,
            "seed_real": self.seed if num_real else None,
            "seed_generated": self.seed,
        }


@attrs.frozen(kw_only=True)
class FIDMetric(_FeatureMetric):
    """Fréchet Inception Distance (Heusel et al. 2017): the Fréchet distance between Gaussians
    fitted to real and generated features (see :func:`gancore.metrics.math.frechet_distance`). Lower
    is better. Biased upwards for small sample counts: compare only at equal counts and
    extractor."""

    def evaluate(
        self, context: MetricContext, extractor: nn.Module | None = None
    ) -> dict[str, Any]:
        net, fake, real = self._extract(context, extractor, real=True, keep_features=False)
        assert real is not None
        value = frechet_distance(
            real.stats.mean(), real.stats.covariance(), fake.stats.mean(), fake.stats.covariance()
        )
        name = value_name("fid", str(getattr(net, "name", self.extractor)))
        protocol = self._protocol(name, net, real.stats.count, fake.stats.count)
        return {name: value, **protocol}


@attrs.frozen(kw_only=True)
class KIDMetric(_FeatureMetric):
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased polynomial-kernel MMD² averaged
    over random subsets (see :func:`gancore.metrics.math.kernel_inception_distance`). Lower is
    better; unbiased, so it can be slightly negative."""

    num_subsets: int = attrs.field(
        default=100, validator=_positive(1), metadata={"doc": "random subsets averaged, >= 1"}
    )
    subset_size: int = attrs.field(
        default=1000,
        validator=_positive(2),
        metadata={"doc": "samples per subset, >= 2; capped at min(num_real, num_generated)"},
    )

    def evaluate(
        self, context: MetricContext, extractor: nn.Module | None = None
    ) -> dict[str, Any]:
        net, fake, real = self._extract(context, extractor, real=True, keep_features=True)
        assert real is not None
        result = kernel_inception_distance(
            real.stats.features(),
            fake.stats.features(),
            num_subsets=self.num_subsets,
            subset_size=self.subset_size,
            seed=self.seed,
        )
        name = value_name("kid", str(getattr(net, "name", self.extractor)))
        return {
            name: result.mean,
            f"{name}_std": result.std,
            f"{name}_subsets": result.num_subsets,
            f"{name}_subset_size": result.subset_size,
            **self._protocol(name, net, real.stats.count, fake.stats.count),
        }


@attrs.frozen(kw_only=True)
class ISMetric(_FeatureMetric):
    """Inception Score (Salimans et al. 2016) of generated samples from the extractor's class
    logits (see :func:`gancore.metrics.math.inception_score`). Higher is better; uses no real
    data (``num_real`` is ignored and reported as 0)."""

    splits: int = attrs.field(
        default=10,
        validator=_positive(1),
        metadata={"doc": "consecutive parts the score is computed on separately, >= 1"},
    )

    def evaluate(
        self, context: MetricContext, extractor: nn.Module | None = None
    ) -> dict[str, Any]:
        net, fake, _ = self._extract(
            context, extractor, real=False, keep_features=False, keep_logits=True
        )
        assert fake.logits is not None
        result = inception_score(fake.logits, splits=self.splits)
        name = value_name("is", str(getattr(net, "name", self.extractor)))
        return {
            name: result.mean,
            f"{name}_std": result.std,
            f"{name}_splits": result.splits,
            **self._protocol(name, net, 0, fake.stats.count),
        }


@attrs.frozen(kw_only=True)
class PrecisionRecallMetric(_FeatureMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls in feature space
    (see :func:`gancore.metrics.math.precision_recall`). Both in [0, 1], higher is better."""

    k: int = attrs.field(
        default=3,
        validator=_positive(1),
        metadata={"doc": "neighbour whose distance is the radius"},
    )

    def evaluate(
        self, context: MetricContext, extractor: nn.Module | None = None
    ) -> dict[str, Any]:
        net, fake, real = self._extract(context, extractor, real=True, keep_features=True)
        assert real is not None
        result = precision_recall(real.stats.features(), fake.stats.features(), k=self.k)
        return {
            "precision": result.precision,
            "recall": result.recall,
            "k": self.k,
            **self._protocol("precision-recall", net, real.stats.count, fake.stats.count),
        }


@attrs.frozen(kw_only=True)
class DensityCoverageMetric(_FeatureMetric):
    """Density and coverage (Naeem et al. 2020) with real k-NN balls in feature space (see
    :func:`gancore.metrics.math.density_coverage`). Coverage in [0, 1]; density ~1 when the
    distributions match, above 1 when samples crowd dense real regions."""

    k: int = attrs.field(
        default=5,
        validator=_positive(1),
        metadata={"doc": "neighbour whose distance is the radius"},
    )

    def evaluate(
        self, context: MetricContext, extractor: nn.Module | None = None
    ) -> dict[str, Any]:
        net, fake, real = self._extract(context, extractor, real=True, keep_features=True)
        assert real is not None
        result = density_coverage(real.stats.features(), fake.stats.features(), k=self.k)
        return {
            "density": result.density,
            "coverage": result.coverage,
            "k": self.k,
            **self._protocol("density-coverage", net, real.stats.count, fake.stats.count),
        }
