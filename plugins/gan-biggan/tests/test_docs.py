"""The TOML snippets of docs/plugins/biggan.md configure valid runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import gancore.testing as gt

PAGE = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "biggan.md"
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```$", re.S | re.M)
SNIPPETS = TOML_BLOCK.findall(PAGE.read_text())


def test_page_has_the_snippets() -> None:
    """One for the conditional SAGAN, one for BigGAN."""
    assert len(SNIPPETS) == 2


@pytest.mark.slow
@pytest.mark.parametrize("snippet", SNIPPETS)
def test_snippet_configures_a_run(snippet: str, tmp_path: Path) -> None:
    """Each snippet, put into a one-step run on the digits at 16x16, trains."""
    sections = tomllib.loads(snippet)
    sections["data"] = {"name": "digits", "resolution": 16, "limit": 100}
    sections["training"] = {"batch_size": 8, "sample_every": 0, "checkpoint_every": 1}
    gt.check_training(gt.tiny_run(1, **sections), tmp_path / "run")
