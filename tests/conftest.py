"""Shared fixtures: an isolated plugin registry per test, tiny configs, CPU determinism."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import gancore

# Test plugins that misbehave on purpose stay disabled unless a test enables them.
MISBEHAVING_TEST_PLUGINS = "gancore-test-broken,gancore-test-collide"
# Also for what runs before a test's own fixtures (a module-scoped fixture that trains a run):
# the per-test fixture below sets the same, and a test that wants them changes it.
os.environ.setdefault("GANCORE_DISABLE_PLUGINS", MISBEHAVING_TEST_PLUGINS)


def require_test_plugins(*names: str) -> None:
    """Skip unless the named test distributions under ``tests/plugins/`` are installed.

    ``make dev`` does not install them (its venv also runs the demo, which should not meet a
    plugin broken on purpose); tox installs them in every test environment and sets
    ``GANCORE_REQUIRE_TEST_PLUGINS=1``, which turns a missing one into a failure there.
    """
    found = {ep.name for ep in importlib.metadata.entry_points(group="gancore")}
    missing = sorted(set(names) - found)
    if not missing:
        return
    message = (
        f"test plugin distributions not installed: {', '.join(missing)} "
        "(pip install -e tests/plugins/NAME; tox installs them)"
    )
    if os.environ.get("GANCORE_REQUIRE_TEST_PLUGINS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with a fresh process-wide registry and the default plugin selection."""
    for key in ("GANCORE_LOAD_PLUGINS", "GANCORE_STRICT_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", MISBEHAVING_TEST_PLUGINS)
    gancore.reset_registry()
    torch.manual_seed(0)
    yield
    gancore.reset_registry()


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for `gan` subprocesses: the same plugin selection, one thread, no TTY."""
    env = dict(os.environ)
    env["GANCORE_DISABLE_PLUGINS"] = MISBEHAVING_TEST_PLUGINS
    env.pop("GANCORE_LOAD_PLUGINS", None)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TOY_CONFIG = """
[run]
name = "toy"
seed = 0
steps = 20

[data]
name = "toy2d"
mixture = "ring"
size = 2000

[generator]
name = "mlp"
latent_dim = 2
hidden = 32
depth = 2

[critic]
name = "mlp"
hidden = 32
depth = 2

[optimizers.generator]
lr = 1e-3
betas = [0.5, 0.999]

[optimizers.critic]
lr = 1e-3
betas = [0.5, 0.999]

[training]
batch_size = 32
log_every = 5
sample_every = 10
checkpoint_every = 10
"""


@pytest.fixture
def toy_config(tmp_path: Path) -> Path:
    """A tiny 2-D GAN run file (20 steps of an MLP GAN on the ring)."""
    return write_toml(tmp_path / "toy.toml", TOY_CONFIG)


def load(path: Path, *overrides: str, **kwargs: Any) -> gancore.RunConfig:
    return gancore.load_config(path, list(overrides), **kwargs)


def exit_status(call: Callable[[], object]) -> object:
    """The status ``call()`` ends the process with (its ``SystemExit``). A ``KeyboardInterrupt``
    escaping it fails the test instead of ending the pytest session."""
    try:
        call()
    except SystemExit as exc:
        return exc.code
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped instead of an exit")
    pytest.fail("no exit")
