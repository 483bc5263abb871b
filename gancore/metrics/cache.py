"""Cached features of real data ("reference statistics"), keyed by content and extractor.

Scoring a generator against a dataset needs the dataset's features, which cost as much to compute
as the generated ones (an Inception-v3 pass per image) and never change. They are cached twice:

- in memory, per dataset object, for the life of the process (a run evaluating every few thousand
  steps pays once);
- on disk, under ``cache_root() / "reference-stats"`` (``$GANCORE_CACHE/reference-stats``,
  ``~/.cache/gancore/reference-stats`` by default), one safetensors file per entry, so that later
  runs and ``gan eval`` reuse them.

The key is the content, not a name: the sha256 of the real samples actually drawn (their float32
bytes and shapes, in order), together with the extractor (name, weights sha256, input size, resize
filter) and the 8-bit quantization setting. Changing a file of the dataset, its resolution, the
number of real samples or the seed of the draw therefore changes the key; renaming a dataset does
not. A file holds the running statistics (count, mean, scatter) and, for the metrics that need
them (KID, precision/recall, density/coverage), the raw features; an entry with features also
serves FID. Entries are written to a temporary name and renamed, so concurrent processes never
read half a file; deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import torch

from gancore.metrics.extractors import cache_root
from gancore.metrics.math import FeatureStats

__all__ = [
    "CACHE_FORMAT",
    "Reference",
    "cached_reference",
    "clear_memory_cache",
    "content_sha256",
    "reference_dir",
    "reference_key",
]

CACHE_FORMAT = 1  # bump when the meaning of a cached file changes

# dataset object -> {(memory key): Reference}; entries go when the dataset is garbage collected.
_MEMORY: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Reference]] = (
    weakref.WeakKeyDictionary()
)


@attrs.frozen(kw_only=True)
class Reference:
    """Features of a set of real samples: their statistics, their content hash, one sample's shape,
    and where they came from (``"computed"``, ``"memory"`` or ``"disk"``)."""

    stats: FeatureStats
    sha256: str
    sample_shape: tuple[int, ...]
    source: str


def reference_dir() -> Path:
    """``cache_root() / "reference-stats"``: where cached reference statistics are kept."""
    return cache_root() / "reference-stats"


def content_sha256(batches: Iterable[torch.Tensor]) -> tuple[str, tuple[int, ...], int]:
    """sha256 of a stream of sample batches ``[B, ...]``, the shape of one sample, and the number
    of samples. The hash covers the samples' float32 bytes in order, then their shape and count,
    so it does not depend on how the stream is cut into batches."""
    digest = hashlib.sha256()
    shape: tuple[int, ...] = ()
    count = 0
    for batch in batches:
        values = batch.detach().to(device="cpu", dtype=torch.float32).contiguous()
        if count and tuple(values.shape[1:]) != shape:
            raise ValueError(
                f"real samples change shape within the dataset: {list(shape)} then "
                f"{list(values.shape[1:])}"
            )
        shape = tuple(values.shape[1:])
        digest.update(values.numpy().tobytes())
        count += values.shape[0]
    digest.update(json.dumps({"shape": list(shape), "count": count}).encode())
    return digest.hexdigest(), shape, count


def reference_key(
    real_sha256: str, extractor: Any, *, quantize: bool, keep_features: bool
) -> dict[str, Any]:
    """What a cached entry depends on, as a JSON-ready dict (its sha256 names the file)."""
    return {
        "format": CACHE_FORMAT,
        "real_sha256": real_sha256,
        "extractor": str(extractor.name),
        "extractor_weights_sha256": str(extractor.weights_sha256),
        "extractor_input_size": int(extractor.input_size),
        "resize_filter": str(extractor.resize_filter),
        "quantize_8bit": quantize,
        "features": keep_features,
    }


def _path(key: dict[str, Any]) -> Path:
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return reference_dir() / f"{name}.safetensors"


def _load(key: dict[str, Any]) -> FeatureStats | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = _path(key)
    if not path.is_file():
        return None
    try:
        return FeatureStats.from_state_dict(load_file(str(path)))
    except (SafetensorError, OSError, KeyError, ValueError):
        return None  # damaged or foreign file: recompute and overwrite it


def _save(key: dict[str, Any], stats: FeatureStats) -> None:
    from safetensors.torch import save_file

    path = _path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tensors = {k: v.contiguous() for k, v in stats.state_dict().items()}
    save_file(tensors, str(tmp), metadata={"gancore": json.dumps(key, sort_keys=True)})
    os.replace(tmp, path)


def cached_reference(
    dataset: Any,
    memory_key: tuple[Any, ...],
    hash_batches: Callable[[], Iterable[torch.Tensor]],
    compute: Callable[[], FeatureStats],
    extractor: Any,
    *,
    quantize: bool,
    keep_features: bool,
    use_cache: bool,
    everyone: Callable[[bool], bool] | None = None,
) -> Reference:
    """The reference features for ``dataset``, from memory, from disk, or from ``compute()``.

    ``memory_key`` identifies the draw within the process (count, seed, extractor, settings);
    ``hash_batches()`` streams the real samples that ``compute`` would extract, to hash them;
    ``compute()`` returns their :class:`FeatureStats` (with raw features if ``keep_features``).
    ``use_cache=False`` always computes and stores nothing. With several processes ``compute`` is
    collective, so ``everyone(found)`` must say whether every process found the entry; unless all
    did, all compute.
    """
    agree = everyone or (lambda found: found)
    if not use_cache:
        sha, shape, _ = content_sha256(hash_batches())
        return Reference(stats=compute(), sha256=sha, sample_shape=shape, source="computed")
    try:
        memo = _MEMORY.setdefault(dataset, {})
    except TypeError:  # a dataset that cannot be weakly referenced: no memory cache
        memo = {}
    # An entry with raw features also serves a request without them.
    found = next((memo[k] for w in (keep_features, True) if (k := (*memory_key, w)) in memo), None)
    if agree(found is not None) and found is not None:
        return attrs.evolve(found, source="memory")
    sha, shape, _ = content_sha256(hash_batches())
    stats = None
    for want_features in (keep_features, True):
        stats = _load(reference_key(sha, extractor, quantize=quantize, keep_features=want_features))
        if stats is not None:
            break
    if agree(stats is not None) and stats is not None:
        reference = Reference(stats=stats, sha256=sha, sample_shape=shape, source="disk")
        memo[(*memory_key, stats.keep_features)] = reference
        return reference
    stats = compute()
    _save(reference_key(sha, extractor, quantize=quantize, keep_features=keep_features), stats)
    reference = Reference(stats=stats, sha256=sha, sample_shape=shape, source="computed")
    memo[(*memory_key, keep_features)] = reference
    return reference


def clear_memory_cache() -> None:
    """Forget every in-memory reference (the files on disk stay)."""
    _MEMORY.clear()
