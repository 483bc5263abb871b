"""gan-inpaint inside gancore's loop, the example run files, held-out quality and `gan inpaint`."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gan_inpaint.command import run_inpaint
from gan_inpaint.metrics import InpaintQuality
from PIL import Image

import gancore
import gancore.testing
from gancore.builtin.datasets import DigitsDataset, DigitsOptions

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

# Core components only (hinge, r1): the task works with gancore and gan-inpaint alone.
TINY = """
[run]
name = "tiny"
seed = 0
steps = 2

[data]
name = "digits"
resolution = 8
limit = 64

[task]
name = "inpaint"
samples = "triplets"

[task.masks]
kind = "both"

[generator]
name = "deepfill"
channels = 4
downsamples = 1
dilations = [2]
attention_rate = 1

[critic]
name = "deepfill"
channels = 8
depth = 2

[loss]
name = "hinge"

[[regularizers]]
name = "r1"
gamma = 1.0

[optimizers.generator]
lr = 1e-3
betas = [0.5, 0.9]

[optimizers.critic]
lr = 1e-3
betas = [0.5, 0.9]

[training]
batch_size = 8
critic_steps = 2
log_every = 1
sample_every = 2
checkpoint_every = 2
num_samples = 8
"""


def _config(tmp_path: Path, text: str = TINY, *overrides: str) -> gancore.RunConfig:
    (tmp_path / "run.toml").write_text(text)
    return gancore.load_config(tmp_path / "run.toml", list(overrides))


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "train"]


class TestLoop:
    def test_trains_with_core_components(self, tmp_path: Path) -> None:
        """Two iterations with hinge + r1: both critics, both stages logged, finite, a grid."""
        result = gancore.train(_config(tmp_path), tmp_path / "run", progress=False)
        assert result.step == 2
        assert set(result.critics) == {"global", "local"}
        last = _records(tmp_path / "run")[-1]
        for key in (
            "loss/critic/global",
            "loss/critic/local",
            "reg/r1/global",
            "reg/r1/local",
            "loss/generator/global",
            "loss/generator/local",
            "loss/l1_hole",
            "loss/l1_hole_coarse",
            "loss/l1_known",
            "loss/l1_known_coarse",
        ):
            assert math.isfinite(last[key]), key
        assert last["nonfinite_skipped"] == 0
        assert (tmp_path / "run" / "samples" / "step-0000002.png").is_file()

    def test_resume_is_exact(self, tmp_path: Path) -> None:
        """2 iterations straight equal 1 + resume + 1: the masks come from saved RNG state."""
        config = _config(tmp_path)
        straight = gancore.train(config, tmp_path / "a", progress=False)
        gancore.testing.train_interrupted(config, tmp_path / "b", after=1)
        resumed = gancore.train(config, tmp_path / "b", resume=True, progress=False)
        for name in ("generator",):
            a = straight.generators[name].state_dict()
            b = resumed.generators[name].state_dict()
            for key in a:
                assert torch.equal(a[key], b[key]), key

    def test_triplets_refuse_image_metrics(self, tmp_path: Path) -> None:
        """Grids of triplets would be scored by fid: the task says to switch to completions."""
        config = _config(tmp_path, TINY, "metrics=[{name='kid', extractor='digits-classifier'}]")
        with pytest.raises(ValueError, match=r"set task\.samples = 'completions'"):
            gancore.train(config, tmp_path / "run", progress=False)

    def test_metric_in_the_loop(self, tmp_path: Path) -> None:
        """inpaint-quality runs as a configured metric at the end of training."""
        config = _config(
            tmp_path,
            TINY,
            "metrics=[{name='inpaint-quality', num_images=16, baselines=['mean-fill']}]",
            "training.metrics_every=2",
        )
        gancore.train(config, tmp_path / "run", progress=False)
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        metric = [r for r in map(json.loads, lines) if r["event"] == "metric"][-1]
        assert 0 < metric["inpaint-quality.hole_l1"] < 1
        assert "inpaint-quality.mean_fill_hole_psnr" in metric


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("inpaint*.toml")))
def test_example_validates(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each examples/inpaint*.toml loads; they name gan-wgan's loss, so it may load too."""
    if importlib.util.find_spec("gan_wgan") is None:
        pytest.skip("the examples use gan-wgan's WGAN-GP; gan-wgan is not installed")
    monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gan-inpaint,gan-wgan")
    gancore.reset_registry()
    config = gancore.load_config(EXAMPLES / example)
    assert config.task.name == "gan-inpaint:inpaint"
    assert config.generator is not None
    assert config.generator.name == "gan-inpaint:deepfill"


def test_examples_exist() -> None:
    """The digits and the scikit-image examples are there."""
    names = {p.name for p in EXAMPLES.glob("inpaint*.toml")}
    assert {"inpaint-digits.toml", "inpaint-skimage.toml"} <= names


@pytest.mark.slow
def test_short_run_beats_mean_fill_on_held_out_digits(tmp_path: Path) -> None:
    """After 120 iterations the hole L1 on unseen digits is below the mean-fill baseline's."""
    config = _config(
        tmp_path,
        TINY,
        "run.steps=120",
        "data.limit=1500",
        "task.masks={kind='rectangle'}",
        "task.samples='completions'",
        "training.batch_size=32",
        "training.critic_steps=1",
        "training.sample_every=0",
        "training.checkpoint_every=0",
        "training.log_every=60",
        "generator.channels=8",
        "optimizers.generator.lr=2e-3",
    )
    result = gancore.train(config, tmp_path / "run", progress=False)
    held_out = DigitsDataset(DigitsOptions(resolution=8, limit=1500, rest=True))
    assert len(held_out) == 297
    context = SimpleNamespace(
        task=config.task.options,
        generators=result.generators,
        dataset=held_out,
        device=torch.device("cpu"),
    )
    scores = InpaintQuality(num_images=256, baselines=("mean-fill",)).evaluate(context)
    assert scores["hole_l1"] < scores["mean_fill_hole_l1"]


class TestCommand:
    @pytest.fixture
    def run_dir(self, tmp_path: Path) -> Path:
        (tmp_path / "run.toml").write_text(TINY)
        config = gancore.load_config(
            tmp_path / "run.toml",
            ["run.steps=1", "training.checkpoint_every=1", "training.sample_every=0"],
        )
        gancore.train(config, tmp_path / "run", progress=False)
        return tmp_path / "run"

    def _files(self, folder: Path, size: tuple[int, int] = (8, 8)) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(size[1], size[0]), dtype=np.uint8)
        mask = np.zeros((size[1], size[0]), dtype=np.uint8)
        mask[2:5, 3:6] = 255
        Image.fromarray(image).save(folder / "a.png")
        Image.fromarray(mask).save(folder / "mask.png")
        return folder / "a.png", folder / "mask.png"

    def test_fills_an_image_keeping_known_pixels(self, run_dir: Path, tmp_path: Path) -> None:
        """run_inpaint writes the completion; every known pixel equals the input's."""
        image, mask = self._files(tmp_path, (10, 9))  # not a multiple of the network's 2
        out = tmp_path / "out.png"
        args = argparse.Namespace(
            run_dir=run_dir, image=image, mask=mask, out=out, checkpoint="latest", raw=False
        )
        assert run_inpaint(args) == 0
        before = np.asarray(Image.open(image))
        after = np.asarray(Image.open(out))
        hole = np.asarray(Image.open(mask)) >= 128
        assert after.shape == before.shape
        assert np.array_equal(after[~hole], before[~hole])

    def test_cli_with_folders(self, run_dir: Path, tmp_path: Path) -> None:
        """`gan inpaint RUN --image DIR --mask FILE --out DIR` fills every image."""
        from gancore._cli import main

        image, _mask = self._files(tmp_path / "in")
        Image.open(image).save(tmp_path / "in" / "b.png")
        (tmp_path / "in" / "mask.png").rename(tmp_path / "mask.png")
        code = main(
            [
                "inpaint",
                str(run_dir),
                "--image",
                str(tmp_path / "in"),
                "--mask",
                str(tmp_path / "mask.png"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        assert code == 0
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]

    def test_user_mistakes_are_one_line_errors(
        self, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing image and a mask of another size exit 2 with one error line."""
        from gancore._cli import main

        image, _ = self._files(tmp_path)
        code = main(
            ["inpaint", str(run_dir), "--image", "nope.png", "--mask", "m.png", "--out", "o.png"]
        )
        assert code == 2
        assert capsys.readouterr().err.strip() == "error: --image 'nope.png' does not exist"
        Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "small.png")
        code = main(
            ["inpaint", str(run_dir), "--image", str(image), "--mask", str(tmp_path / "small.png"),
             "--out", str(tmp_path / "o.png")]
        )  # fmt: skip
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert len(err) == 1
        assert "is 4x4 but image" in err[0]
