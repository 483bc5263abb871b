"""Test gan-biggan with its dependency: only gancore's built-ins, gan-conditional and this plugin
load, whatever else is installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import gancore


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gan-conditional,gan-biggan")
    for key in ("GANCORE_DISABLE_PLUGINS", "GANCORE_STRICT_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    gancore.reset_registry()
    yield
    gancore.reset_registry()
