"""The TOML snippets of docs/plugins/improved.md configure valid runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import gancore.testing as gt

PAGE = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "improved.md"
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```$", re.S | re.M)
SNIPPETS = TOML_BLOCK.findall(PAGE.read_text())


def test_page_has_a_snippet_per_component() -> None:
    """Eight components, eight snippets."""
    assert len(SNIPPETS) == 8


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_snippet_configures_a_run(snippet: str, tmp_path: Path) -> None:
    """Each snippet, put into a tiny run, trains a step (the data fitted to its networks)."""
    sections = tomllib.loads(snippet)
    if sections.get("generator", {}).get("name") == "virtual-batchnorm":
        sections["data"] = {"name": "digits", "resolution": 16}
        sections["critic"] = {"name": "dcgan", "channels": 8}
    gt.check_training(gt.tiny_run(1, **sections), tmp_path / "run")
