"""The core's install hints agree with what the first-party plugins really register.

An unknown name that a first-party plugin provides gets "is gan-X installed?" (FIRST_PARTY_HINTS).
Where that plugin is installed (the tox env 'all', the dev venv), every hint must name one of its
components and every one of its components must have a hint. Elsewhere the checks are skipped.
"""

from __future__ import annotations

import importlib.metadata

import pytest

import gancore
from gancore._registry import FIRST_PARTY_HINTS

FIRST_PARTY = (
    "gan-wgan",
    "gan-stylegan",
    "gan-ada",
    "gan-cyclegan",
    "gan-inpaint",
    "gan-conditional",
    "gan-improved",
    "gan-biggan",
    "gan-progressive",
    "gan-superres",
    "gan-vae",
)


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("plugin", FIRST_PARTY)
def test_hints_match_the_plugins_components(plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not installed(plugin):
        pytest.skip(f"{plugin} is not installed here")
    monkeypatch.setenv("GANCORE_LOAD_PLUGINS", plugin)
    gancore.reset_registry()
    registry = gancore.get_registry()
    registered = {(s.kind, s.name) for s in registry.specs() if s.provider == plugin}
    hinted = {
        (kind, name)
        for kind, names in FIRST_PARTY_HINTS.items()
        for name, hint in names.items()
        if hint == plugin
    }
    assert registered, f"{plugin} registered nothing"
    assert sorted(hinted - registered) == [], "hinted but not registered"
    assert sorted(registered - hinted) == [], "registered but without an install hint"
