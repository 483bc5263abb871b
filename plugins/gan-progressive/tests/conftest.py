"""Test gan-progressive with its dependency: only gancore's built-ins, gan-wgan (the WGAN-GP
loss and drift penalty of the paper's recipe) and this plugin load, whatever else is installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import gancore


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gan-wgan,gan-progressive")
    for key in ("GANCORE_DISABLE_PLUGINS", "GANCORE_STRICT_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    gancore.reset_registry()
    torch.manual_seed(0)
    yield
    gancore.reset_registry()
