"""Sample-quality metrics: the mathematics, the feature extractors and the metric components.

- :mod:`gancore.metrics.math`: pure float64 functions of feature sets (Fréchet distance, KID, IS,
  precision/recall, density/coverage) and the streaming :class:`FeatureStats` and
  :class:`InceptionScoreAccumulator`.
- :mod:`gancore.metrics.extractors`: ``inception-v3`` (FID Inception, local weights verified by
  sha256) and ``digits-classifier`` (bundled); :func:`build_extractor` builds any registered one.
- :mod:`gancore.metrics.components`: the metrics a run configures (``fid``, ``kid``, ``is``,
  ``precision-recall``, ``density-coverage``), each satisfying :class:`gancore.protocols.Metric`.
- :mod:`gancore.metrics.cache`: reference statistics cached by content and extractor.
- :mod:`gancore.metrics.protocol`: comparing results only when their protocols agree.

The metrics and extractors are registered by the built-in plugin (``gancore.builtin.plugin``)
through the same hooks as any plugin's.
"""

from __future__ import annotations

from gancore.metrics.cache import Reference, clear_memory_cache, content_sha256, reference_dir
from gancore.metrics.components import (
    PROTOCOL_FIELDS,
    DensityCoverageMetric,
    FIDMetric,
    ISMetric,
    KIDMetric,
    PrecisionRecallMetric,
    build_feature_metric,
    extract_features,
    quantize_8bit,
    value_name,
)
from gancore.metrics.extractors import (
    DigitsClassifier,
    DigitsClassifierOptions,
    InceptionV3,
    InceptionV3Options,
    build_digits_classifier,
    build_extractor,
    build_inception_v3,
    cache_root,
)
from gancore.metrics.math import (
    DensityCoverage,
    FeatureStats,
    InceptionScore,
    InceptionScoreAccumulator,
    KernelDistance,
    PrecisionRecall,
    density_coverage,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    mmd2_unbiased,
    precision_recall,
)
from gancore.metrics.protocol import ProtocolMismatchError, compare_results, result_protocols

__all__ = [
    "PROTOCOL_FIELDS",
    "DensityCoverage",
    "DensityCoverageMetric",
    "DigitsClassifier",
    "DigitsClassifierOptions",
    "FIDMetric",
    "FeatureStats",
    "ISMetric",
    "InceptionScore",
    "InceptionScoreAccumulator",
    "InceptionV3",
    "InceptionV3Options",
    "KIDMetric",
    "KernelDistance",
    "PrecisionRecall",
    "PrecisionRecallMetric",
    "ProtocolMismatchError",
    "Reference",
    "build_digits_classifier",
    "build_extractor",
    "build_feature_metric",
    "build_inception_v3",
    "cache_root",
    "clear_memory_cache",
    "compare_results",
    "content_sha256",
    "density_coverage",
    "extract_features",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "mmd2_unbiased",
    "precision_recall",
    "quantize_8bit",
    "reference_dir",
    "result_protocols",
    "value_name",
]
