"""Test gan-stylegan on its own: only gancore's built-ins and this plugin load, whatever else is installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import gancore


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gan-stylegan")
    for key in ("GANCORE_DISABLE_PLUGINS", "GANCORE_STRICT_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    gancore.reset_registry()
    yield
    gancore.reset_registry()


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    # The networks under test are tiny: with several threads each small op waits on the others,
    # which on a shared 2-core machine makes them many times slower, not faster.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
