"""Metric tests never touch the user's cache: GANCORE_CACHE points into a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gancore.metrics import clear_memory_cache


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh, empty gancore cache folder (and no in-memory reference statistics) per test."""
    root = tmp_path_factory.mktemp("gancore-cache")
    monkeypatch.setenv("GANCORE_CACHE", str(root))
    clear_memory_cache()
    yield root
    clear_memory_cache()
