"""Test gan-superres on its own: only gancore's built-ins and this plugin load, whatever else is installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import gancore


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gan-superres")
    for key in ("GANCORE_DISABLE_PLUGINS", "GANCORE_STRICT_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    gancore.reset_registry()
    yield
    gancore.reset_registry()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: the tests use tiny tensors, for which a second thread on a shared
    machine costs far more (spinning, contention) than it saves."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
