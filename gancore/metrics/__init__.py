"""Sample-quality metrics: the mathematics, the feature extractors and the metric components.

- :mod:`gancore.metrics.math`: pure float64 functions of feature sets (Fréchet distance, KID, IS,
  precision/recall, density/coverage) and the streaming :class:`FeatureStats`.
- :mod:`gancore.metrics.extractors`: ``inception-v3`` (FID Inception, local weights verified by
  sha256) and ``digits-classifier`` (bundled), plus the table user extractors join.
- :mod:`gancore.metrics.components`: the metrics a run configures (``fid``, ``kid``, ``is``,
  ``precision-recall``, ``density-coverage``), each satisfying :class:`gancore.protocols.Metric`.
"""

from __future__ import annotations

from gancore.metrics.components import (
    DensityCoverageMetric,
    ExtractedFeatures,
    FIDMetric,
    ISMetric,
    KIDMetric,
    PrecisionRecallMetric,
    extract_features,
    quantize_8bit,
    value_name,
)
from gancore.metrics.extractors import (
    EXTRACTORS,
    DigitsClassifier,
    DigitsClassifierOptions,
    ExtractorSpec,
    InceptionV3,
    InceptionV3Options,
    build_digits_classifier,
    build_extractor,
    build_inception_v3,
    register_extractor,
)
from gancore.metrics.math import (
    DensityCoverage,
    FeatureStats,
    InceptionScore,
    KernelDistance,
    PrecisionRecall,
    density_coverage,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    mmd2_unbiased,
    precision_recall,
)

# Registered metric names -> components (each is its own options class).
METRICS: dict[str, type] = {
    "fid": FIDMetric,
    "kid": KIDMetric,
    "is": ISMetric,
    "precision-recall": PrecisionRecallMetric,
    "density-coverage": DensityCoverageMetric,
}

__all__ = [
    "EXTRACTORS",
    "METRICS",
    "DensityCoverage",
    "DensityCoverageMetric",
    "DigitsClassifier",
    "DigitsClassifierOptions",
    "ExtractedFeatures",
    "ExtractorSpec",
    "FIDMetric",
    "FeatureStats",
    "ISMetric",
    "InceptionScore",
    "InceptionV3",
    "InceptionV3Options",
    "KIDMetric",
    "KernelDistance",
    "PrecisionRecall",
    "PrecisionRecallMetric",
    "build_digits_classifier",
    "build_extractor",
    "build_inception_v3",
    "density_coverage",
    "extract_features",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "mmd2_unbiased",
    "precision_recall",
    "quantize_8bit",
    "register_extractor",
    "value_name",
]
