"""Comparing metric results only when they were measured the same way.

A result of ``gan eval`` (and a ``"metric"`` line of ``metrics.jsonl``) is flat: ``"<metric>.<value>"``
keys hold numbers and ``"<metric>.protocol"`` holds the protocol that produced them (extractor and
weights hash, image shape, resize filter, sample counts, seeds, EMA or raw generator, truncation,
...). Two values of the same metric are comparable only when their protocols are equal in every
field: an FID from 10,000 samples is not an FID from 50,000, nor one from other Inception weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ProtocolMismatchError", "compare_results", "result_protocols", "result_values"]


class ProtocolMismatchError(ValueError):
    """Two results cannot be compared: a metric is missing or was measured differently."""


def result_protocols(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{metric: protocol}`` for every ``"<metric>.protocol"`` entry of a flat result."""
    return {
        key.removesuffix(".protocol"): dict(value)
        for key, value in result.items()
        if key.endswith(".protocol") and isinstance(value, Mapping)
    }


def result_values(result: Mapping[str, Any], metric: str) -> dict[str, float]:
    """The numeric values of ``metric`` in a flat result, by value name."""
    prefix = f"{metric}."
    return {
        key[len(prefix) :]: float(value)
        for key, value in result.items()
        if key.startswith(prefix)
        and key != f"{metric}.protocol"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    }


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def compare_results(this: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Value by value, ``this`` against ``other``: ``{"<metric>.<value>": {"this", "other",
    "difference"}}`` (difference = this - other).

    Raises :class:`ProtocolMismatchError` (one line) when a metric of ``this`` is missing from
    ``other`` or their protocols differ in any field, naming the fields and both values.
    """
    mine, theirs = result_protocols(this), result_protocols(other)
    if not mine:
        raise ProtocolMismatchError("this result carries no metric protocol to compare")
    problems = []
    for metric, protocol in mine.items():
        if metric not in theirs:
            found = ", ".join(sorted(theirs)) or "none"
            problems.append(f"{metric}: missing from the other result (it has: {found})")
            continue
        there = theirs[metric]
        fields = [k for k in (*protocol, *(k for k in there if k not in protocol))]
        differ = [
            f"{k} {_show(protocol.get(k))} here, {_show(there.get(k))} there"
            for k in fields
            if protocol.get(k) != there.get(k)
        ]
        if differ:
            problems.append(f"{metric}: protocols differ in " + ", ".join(differ))
    if problems:
        raise ProtocolMismatchError("cannot compare: " + "; ".join(problems))
    comparison: dict[str, Any] = {}
    for metric in mine:
        theirs_values = result_values(other, metric)
        for name, value in result_values(this, metric).items():
            if name in theirs_values:
                comparison[f"{metric}.{name}"] = {
                    "this": value,
                    "other": theirs_values[name],
                    "difference": value - theirs_values[name],
                }
    return comparison
