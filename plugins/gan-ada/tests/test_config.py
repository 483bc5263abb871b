"""Run files with gan-ada components: every mistake is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import gancore

BASE = """
[data]
name = "digits"
[generator]
name = "dcgan"
[critic]
name = "dcgan"
"""


def problems(tmp_path: Path, table: str) -> str:
    (tmp_path / "run.toml").write_text(BASE + table)
    with pytest.raises(gancore.ConfigError) as exc:
        gancore.load_config(tmp_path / "run.toml")
    return str(exc.value)


class TestConfigErrors:
    def test_every_ada_mistake_is_reported(self, tmp_path: Path) -> None:
        """A misspelled key, an unknown pipeline and op, p out of range and a bad colour group are
        each reported on the key's path, with what was given."""
        text = problems(
            tmp_path,
            '[augmenter]\nname = "ada"\npipeline = "bcg"\nops = ["xflip", "shear"]\np = 1.5\n'
            "taget = 0.6\ncolor_channels = [[0, 1]]\n",
        )
        assert "augmenter.taget: unknown key (did you mean 'target'?)" in text
        assert "augmenter.pipeline: 'pipeline' must be in (" in text
        assert "(got 'bcg')" in text
        assert "augmenter.ops: 'ops' must name ops among xflip" in text
        assert "(got 'shear')" in text
        assert "augmenter.p: 'p' must be in [0, p_max = 1.0] (got 1.5)" in text
        assert "augmenter.color_channels: 'color_channels' must be groups of 1 (gray) or 3" in text

    def test_diffaugment_and_freeze_d_mistakes(self, tmp_path: Path) -> None:
        """An unknown DiffAugment part and a negative block count name their keys."""
        text = problems(
            tmp_path,
            '[augmenter]\nname = "diffaugment"\npolicy = ["color", "zoom"]\n'
            '[[regularizers]]\nname = "freeze-d"\nblocks = -2\n',
        )
        assert "augmenter.policy: 'policy' must name parts among color, translation, cutout" in text
        assert "regularizers[0].blocks: 'blocks' must be >= 0 (got -2)" in text

    def test_p_above_p_max(self, tmp_path: Path) -> None:
        """p <= p_max involves two keys: reported on the augmenter table as a whole."""
        text = problems(tmp_path, '[augmenter]\nname = "ada"\np = 0.8\np_max = 0.5\n')
        assert "augmenter: 'p' must be in [0, p_max = 0.5] (got 0.8)" in text
