"""Strict JSON for what gancore writes: ``metrics.jsonl`` lines and ``gan eval`` results.

JSON has no NaN or infinity, and strict readers (jq, ``JSON.parse``) refuse Python's bare ``NaN``.
A non-finite number is therefore written as ``null``, and the record names it under
``"nonfinite_values"``, ``{"<key>": "nan" | "inf" | "-inf"}``, so that a reader can tell a
diverged loss or an undefined metric from a value that was never there. :func:`restore_nonfinite`
turns such a record back into Python floats.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["NONFINITE_KEY", "dumps", "read_jsonl", "restore_nonfinite", "strict_record"]

NONFINITE_KEY = "nonfinite_values"


def _spelled(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _nulled(value: Any) -> Any:
    """``value`` with every non-finite float inside it (nested dicts and lists) as ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulled(v) for v in value]
    return value


def strict_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` ready for strict JSON: non-finite floats become ``None``; the top-level ones are
    named with their spelling under :data:`NONFINITE_KEY`."""
    named = {
        key: _spelled(value)
        for key, value in record.items()
        if isinstance(value, float) and not math.isfinite(value)
    }
    out = {key: _nulled(value) for key, value in record.items()}
    if named:
        out[NONFINITE_KEY] = named
    return out


def dumps(record: Mapping[str, Any], indent: int | None = None) -> str:
    """``record`` as strict JSON text (see :func:`strict_record`)."""
    return json.dumps(strict_record(record), indent=indent, allow_nan=False)


def restore_nonfinite(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (as read) with the values named under :data:`NONFINITE_KEY` back as floats and
    that key removed; a record without it is returned as it is."""
    named = record.pop(NONFINITE_KEY, None)
    if isinstance(named, dict):
        for key, spelled in named.items():
            if record.get(key) is None and spelled in ("nan", "inf", "-inf"):
                record[key] = float(spelled)
    return record


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl``, non-finite values restored (blank lines skipped)."""
    return [
        restore_nonfinite(json.loads(line))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
