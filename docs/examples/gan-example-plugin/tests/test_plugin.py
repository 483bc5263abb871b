"""The plugin registers one component of every kind, and its command."""

from __future__ import annotations

import importlib.metadata

import pytest

import gancore
import gancore.testing as gt

NAMES = {
    "generator": "residual-mlp",
    "critic": "residual-mlp",
    "loss": "smoothed-non-saturating",
    "regularizer": "r2",
    "augmenter": "adaptive-noise",
    "dataset": "two-moons",
    "task": "pacgan",
    "metric": "sliced-wasserstein",
    "extractor": "pixels",
}


def test_installed_plugin_loads_through_its_entry_point() -> None:
    """Installed, the entry point loads in strict mode and registers every name and the command."""
    if "gan-example" not in {ep.name for ep in importlib.metadata.entry_points(group="gancore")}:
        pytest.skip("gan-example is not installed; the other tests register it in-process")
    _, info = gt.check_plugin_loads("gan-example", module="gan_example.plugin")
    assert sorted(info.components) == sorted([*NAMES.items(), ("command", "describe-run")])


def test_every_kind_is_registered(registry: gancore.Registry) -> None:
    """One component of each of the nine kinds, by gan-example, each option documented."""
    for kind, name in NAMES.items():
        spec = registry.get(kind, name)
        assert spec.provider == "gan-example"
        gt.check_options_roundtrip(spec, kind=kind)
    assert registry.commands["describe-run"].provider == "gan-example"
