"""``gan reconstruct``: writes reconstructions and a grid; user mistakes are one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gan_vae.command import _load
from PIL import Image

import gancore
from gancore._cli import main

Capture = pytest.CaptureFixture[str]


def _png(path: Path, size: int, seed: int = 0, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size, size) if mode == "L" else (size, size, 3)
    Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode=mode).save(path)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


class TestReconstruct:
    @pytest.fixture(autouse=True)
    def _in_tmp_path(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)

    @pytest.mark.parametrize("task", ["vae", "vae-gan"])
    def test_writes_reconstructions_and_a_grid(
        self, trained: dict[str, Path], capsys: Capture, task: str
    ) -> None:
        """Each input (any size, grey or RGB) becomes NAME.png at the run's 8x8 grey; the file is
        Dec(mu(x)) as 8 bits; grid.png pairs inputs and outputs."""
        _png(Path("in/a.png"), 20)
        _png(Path("in/b.png"), 8, seed=1, mode="RGB")
        Path("in/notes.txt").write_text("not an image")
        assert main(["reconstruct", str(trained[task]), "--input", "in", "--out", "out"]) == 0
        assert capsys.readouterr().out.startswith("wrote 2 reconstruction(s) and grid.png to out")
        assert sorted(p.name for p in Path("out").iterdir()) == ["a.png", "b.png", "grid.png"]
        run = gancore.load_run(trained[task])
        x = _load(Path("in/a.png"), (1, 8, 8))[None]
        with torch.no_grad():
            expected = run.built.task.reconstruct(run.generators, x)  # type: ignore[attr-defined]
        levels = ((expected[0, 0].clamp(-1, 1) + 1) * 127.5).round().numpy()
        written = _pixels(Path("out/a.png"))
        assert written.shape == (8, 8)
        assert np.abs(written.astype(float) - levels).max() <= 1

    def test_missing_input(self, trained: dict[str, Path], capsys: Capture) -> None:
        """A missing --input: exit 2, one line naming it, nothing written."""
        assert main(["reconstruct", str(trained["vae"]), "--input", "nope.png", "--out", "o"]) == 2
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [captured.err.strip()]
        assert captured.err.startswith("error: --input: no such file or folder 'nope.png'")
        assert not Path("o").exists()

    def test_run_without_encoder(self, trained: dict[str, Path], capsys: Capture) -> None:
        """A BEGAN run has no encoder: exit 2 and one line saying so."""
        _png(Path("a.png"), 8)
        assert main(["reconstruct", str(trained["began"]), "--input", "a.png", "--out", "o"]) == 2
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [captured.err.strip()]
        assert (
            "the run has no encoder (task 'began'); gan reconstruct needs a 'vae'" in captured.err
        )
