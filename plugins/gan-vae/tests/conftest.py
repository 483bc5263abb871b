"""Test gan-vae on its own: only gancore's built-ins and this plugin load, whatever else is
installed. Also the tiny run documents of the three tasks on 8x8 digits (fixture ``runs``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import gancore
import gancore.testing as gt


@pytest.fixture(autouse=True)
def _only_this_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gan-vae")
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


DATA = {"name": "digits", "resolution": 8, "limit": 64}
HELD_OUT = {"name": "digits", "resolution": 8, "limit": 64, "rest": True}


def _tiny(steps: int, **sections: Any) -> dict[str, Any]:
    document = gt.tiny_run(steps, data=DATA, **sections)
    document["training"]["batch_size"] = 4
    return document


def vae_run(steps: int = 2, **task: Any) -> dict[str, Any]:
    """A ``vae`` run: no critic."""
    document = _tiny(
        steps,
        task={"name": "vae", **task},
        generator={"name": "vae-conv", "latent_dim": 4, "channels": 4},
    )
    del document["critic"]
    return document


def vae_gan_run(steps: int = 2) -> dict[str, Any]:
    return _tiny(
        steps,
        task={"name": "vae-gan"},
        generator={"name": "vae-mlp", "latent_dim": 4, "hidden": 16, "depth": 1},
        critic={"name": "dcgan", "channels": 4},
    )


def began_run(steps: int = 2) -> dict[str, Any]:
    return _tiny(
        steps,
        task={"name": "began", "lambda_k": 0.1},
        generator={"name": "began", "latent_dim": 4, "channels": 4},
        critic={"name": "began-autoencoder", "hidden": 4, "channels": 4},
    )


class Runs:
    """The tiny run documents, for tests (``runs.vae()``, ``runs.vae_gan()``, ``runs.began()``)."""

    data = DATA
    held_out = HELD_OUT
    vae = staticmethod(vae_run)
    vae_gan = staticmethod(vae_gan_run)
    began = staticmethod(began_run)


@pytest.fixture(scope="session")
def runs() -> type[Runs]:
    return Runs


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny runs of the three tasks, trained once per session with this plugin alone:
    ``{"vae": run_dir, "vae-gan": ..., "began": ...}``."""
    root = tmp_path_factory.mktemp("trained")
    documents = {"vae": vae_run(4), "vae-gan": vae_gan_run(2), "began": began_run(2)}
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCORE_LOAD_PLUGINS", "gan-vae")
        patch.delenv("GANCORE_DISABLE_PLUGINS", raising=False)
        torch.set_num_threads(1)
        gancore.reset_registry()
        try:
            for name, document in documents.items():
                gt.check_training(document, root / name)
        finally:
            gancore.reset_registry()
            torch.set_num_threads(threads)
    return {name: root / name for name in documents}
