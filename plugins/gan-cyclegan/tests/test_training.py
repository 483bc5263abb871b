"""gan-cyclegan inside gancore's loop: examples, the schedule, exact resume, learning, translate."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gan_cyclegan.datasets import DigitsTranslation, held_out_error
from gan_cyclegan.schedule import epoch_schedule, lr_factor_at_epoch
from gan_cyclegan.translate import add_translate_arguments, run_translate
from PIL import Image
from safetensors.torch import load_file

import gancore
import gancore.testing


def _digits_translation(**options: Any) -> DigitsTranslation:
    """A ``digits-translation`` dataset, built as a run builds it (from the run's registry)."""
    document = {"data": {"name": "digits-translation", **options}}
    data: DigitsTranslation = gancore.parse_config(document, gancore.get_registry()).data.build(
        None
    )
    return data


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MINE = sorted(p.name for p in [*EXAMPLES.glob("cyclegan*.toml"), *EXAMPLES.glob("pix2pix*.toml")])

TINY = """
[run]
name = "tiny"
seed = 0
steps = 16

[data]
name = "digits-translation"
resolution = 8
limit = 32

[task]
name = "cyclegan"
identity_weight = 0.0
pool_size = 10

[generator]
name = "resnet"
blocks = 1
channels = 4
downsamplings = 1

[critic]
name = "patchgan"
layers = 1
channels = 4

[loss]
name = "least-squares"

[optimizers.generator]
lr = 2e-4
betas = [0.5, 0.999]
schedule = "linear"
decay_start = 8

[optimizers.critic]
lr = 2e-4
betas = [0.5, 0.999]
schedule = "linear"
decay_start = 8

[training]
batch_size = 4
log_every = 4
sample_every = 0
num_samples = 4
checkpoint_every = 4
keep_checkpoints = 10
"""


_TRAINED: dict[str, Path] = {}


def _config(tmp_path: Path, *overrides: str) -> gancore.RunConfig:
    (tmp_path / "run.toml").write_text(TINY)
    return gancore.load_config(tmp_path / "run.toml", list(overrides))


@pytest.mark.parametrize("example", MINE or ["(none found)"])
def test_example_validates(example: str) -> None:
    """Each examples/cyclegan*.toml and pix2pix*.toml is a valid run file."""
    assert example != "(none found)"
    config = gancore.load_config(EXAMPLES / example)
    assert config.task.name == f"gan-cyclegan:{example.split('-')[0]}"


@pytest.mark.slow
@pytest.mark.parametrize("example", ["cyclegan-digits.toml", "pix2pix-digits.toml"])
def test_example_trains(example: str, tmp_path: Path) -> None:
    """The digits examples train two steps as written, at a smaller size, and draw a grid."""
    config = gancore.load_config(
        EXAMPLES / example,
        [
            "run.steps=2",
            "data.resolution=8",
            "critic.layers=1",
            "training.checkpoint_every=0",
            "training.sample_every=0",
            "data.limit=16",
        ],
    )
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.step == 2
    assert (tmp_path / "run" / "samples" / "step-0000002.png").is_file()


class TestScheduleInEpochs:
    def test_mapping(self) -> None:
        """100 + 100 epochs of 1,334 items at batch 1: 266,800 steps, decay from 133,400."""
        schedule = epoch_schedule(1334, 1, 100, 100)
        assert (schedule.steps, schedule.decay_start) == (266800, 133400)
        assert "optimizers.critic.decay_start=133400" in schedule.overrides()

    @pytest.mark.slow
    def test_lr_at_epoch_boundaries(self, tmp_path: Path) -> None:
        """16 items, batch 4: 4 iterations per epoch; 2 constant + 2 decaying epochs. The lr in
        each checkpoint at an epoch's end is lr * (1, 1, 1/2, 0)."""
        schedule = epoch_schedule(16, 4, 2, 2)
        assert (schedule.steps, schedule.decay_start) == (16, 8)
        gancore.train(_config(tmp_path), tmp_path / "run", progress=False)
        for epoch in range(1, 5):
            path = tmp_path / "run" / "checkpoints" / f"step-{4 * epoch:07d}"
            _, state = gancore.load_checkpoint(path)
            expected = 2e-4 * lr_factor_at_epoch(epoch, 2, 2)
            for player in ("generator", "critic"):
                lr = state["optimizers"][player]["param_groups"][0]["lr"]
                assert lr == pytest.approx(expected, abs=1e-12), (epoch, player)
        assert [lr_factor_at_epoch(e, 2, 2) for e in range(1, 5)] == [1.0, 1.0, 0.5, 0.0]


@pytest.mark.slow
class TestCheckpoints:
    def test_pools_are_checkpointed_and_resume_is_exact(self, tmp_path: Path) -> None:
        """The task state holds both pools; 8 steps equal 4 + resume + 4, weights and pools."""
        config = _config(tmp_path, "run.steps=8")
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        gancore.testing.train_interrupted(config, tmp_path / "resumed", after=4)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        assert straight.checkpoint is not None
        assert resumed.checkpoint is not None
        _, state = gancore.load_checkpoint(straight.checkpoint)
        _, state_resumed = gancore.load_checkpoint(resumed.checkpoint)
        for pool in ("pool_a", "pool_b"):
            assert state["task"][pool]["count"] == 10  # 8 steps x 4 images fill a pool of 10
            assert torch.equal(state["task"][pool]["images"], state_resumed["task"][pool]["images"])
        for name in ("generators", "critics"):
            a = load_file(str(straight.checkpoint / f"{name}.safetensors"))
            b = load_file(str(resumed.checkpoint / f"{name}.safetensors"))
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), key


def _photos(folder: Path, count: int, seed: int, size: int = 12) -> str:
    """``count`` random RGB ``size`` x ``size`` PNGs in ``folder``, named 00.png, 01.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels, mode="RGB").save(folder / f"{i:02d}.png")
    return str(folder)


def _folder_overrides(task: str, tmp_path: Path) -> list[str]:
    """The tiny run on image folders (resized 12 -> 10 px, cropped to 8) instead of digits."""
    a = _photos(tmp_path / "a", 6, 0)
    b = _photos(tmp_path / "b", 6 if task == "pix2pix" else 5, 1)
    kind = "unpaired" if task == "cyclegan" else "paired"
    data = f"data={{name='{kind}', a='{a}', b='{b}', resolution=8, load_size=10}}"
    if task == "cyclegan":
        return [data]
    return [data, "task={name='pix2pix'}", "generator={name='unet', channels=4, max_channels=8}"]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["cyclegan", "pix2pix"])
def test_resume_is_exact_on_image_folders(task: str, tmp_path: Path) -> None:
    """On folders of images (resized and cropped, so pixels fall between 8-bit levels), 8 steps
    equal 4 + resume + 4: the resumed process, whose image cache starts empty, sees the same
    items as the straight run (issue 24's fault)."""
    config = _config(tmp_path, "run.steps=8", *_folder_overrides(task, tmp_path))
    straight = gancore.train(config, tmp_path / "straight", progress=False)
    gancore.testing.train_interrupted(config, tmp_path / "resumed", after=4)
    resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
    assert straight.checkpoint is not None
    assert resumed.checkpoint is not None
    assert straight.step == resumed.step == 8
    for name in ("generators", "critics"):
        a = load_file(str(straight.checkpoint / f"{name}.safetensors"))
        b = load_file(str(resumed.checkpoint / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
class TestLearns:
    def test_cyclegan_reduces_held_out_error(self, tmp_path: Path) -> None:
        """200 unpaired iterations at 16x16 cut the error of G to the ground truth on held-out
        digits to under half the untrained generator's and under the mean-image baseline's."""
        torch.set_num_threads(1)
        config = _config(
            tmp_path,
            "run.steps=200",
            "data.resolution=16",
            "data.limit=1500",
            "generator.channels=8",
            "generator.blocks=2",
            "generator.downsamplings=2",
            "critic.layers=2",
            "critic.channels=16",
            "task.pool_size=50",
            "training.batch_size=16",
            "training.checkpoint_every=0",
            "optimizers.generator.schedule='constant'",
            "optimizers.critic.schedule='constant'",
        )
        held = _digits_translation(resolution=16, split="held-out")
        torch.manual_seed(0)
        untrained = config.task.build(None).build(
            gancore.TaskBuildContext(config=config, dataset=config.data.build(None))
        )[0]["a_to_b"]
        before = held_out_error(untrained, held)
        result = gancore.train(config, tmp_path / "run", progress=False)
        after = held_out_error(result.generators["a_to_b"].eval(), held)
        train = _digits_translation(resolution=16)
        mean_image = float((train.images_b.mean(0) - held.images_b).abs().mean())
        assert after < 0.5 * before
        assert after < 0.8 * mean_image


class TestTranslate:
    @pytest.fixture
    def run_dir(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A 2-step run, trained once for the three tests."""
        if "translate" not in _TRAINED:
            tmp = tmp_path_factory.mktemp("translate")
            gancore.train(_config(tmp, "run.steps=2"), tmp / "run", progress=False)
            _TRAINED["translate"] = tmp / "run"
        return _TRAINED["translate"]

    def _inputs(self, folder: Path, mode: str, count: int = 3) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(count):
            size = (12, 12, 3) if mode == "RGB" else (12, 12)
            Image.fromarray(rng.integers(0, 255, size=size, dtype=np.uint8), mode=mode).save(
                folder / f"img{i}.png"
            )
        return folder

    def test_translates_a_folder_both_ways(self, run_dir: Path, tmp_path: Path) -> None:
        """a-to-b writes one 3-channel 8x8 PNG per input; b-to-a one grayscale PNG."""
        parser = argparse.ArgumentParser()
        add_translate_arguments(parser)
        inputs = self._inputs(tmp_path / "in", "L")
        args = parser.parse_args(
            [str(run_dir), "--input", str(inputs), "--output", str(tmp_path / "out")]
        )
        assert run_translate(args) == 0
        written = sorted((tmp_path / "out").iterdir())
        assert [p.name for p in written] == ["img0.png", "img1.png", "img2.png"]
        with Image.open(written[0]) as picture:
            assert picture.size == (8, 8)
            assert picture.mode == "RGB"
        rgb = self._inputs(tmp_path / "rgb", "RGB", 1) / "img0.png"
        args = parser.parse_args(
            [
                str(run_dir),
                "--direction",
                "b-to-a",
                "--input",
                str(rgb),
                "--output",
                str(tmp_path / "back"),
            ]
        )
        assert run_translate(args) == 0
        with Image.open(tmp_path / "back" / "img0.png") as picture:
            assert picture.mode == "L"

    def test_translation_is_the_generator(self, run_dir: Path, tmp_path: Path) -> None:
        """The written image is the run's a_to_b generator applied to the input, to 1/255."""
        inputs = self._inputs(tmp_path / "in", "L", 1)
        parser = argparse.ArgumentParser()
        add_translate_arguments(parser)
        run_translate(
            parser.parse_args(
                [str(run_dir), "--input", str(inputs), "--output", str(tmp_path / "o")]
            )
        )
        loaded = gancore.load_run(run_dir)
        with Image.open(inputs / "img0.png") as picture:
            x = torch.from_numpy(np.array(picture)).float().view(1, 1, 12, 12) / 127.5 - 1
        x = torch.nn.functional.interpolate(x, size=(8, 8), mode="bicubic", antialias=True).clamp(
            -1, 1
        )
        with torch.no_grad():
            expected = ((loaded.generators["a_to_b"](x)[0] + 1) * 127.5).round()
        with Image.open(tmp_path / "o" / "img0.png") as picture:
            got = torch.from_numpy(np.array(picture)).permute(2, 0, 1).float()
        assert (got - expected).abs().max() <= 1.0

    def test_cli(self, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`gan translate` runs through the CLI; a missing input is one error line, exit 2."""
        from gancore._cli import main

        inputs = self._inputs(tmp_path / "in", "L", 2)
        code = main(
            ["translate", str(run_dir), "--input", str(inputs), "--output", str(tmp_path / "out")]
        )
        assert code == 0
        assert "wrote 2 image(s)" in capsys.readouterr().out
        code = main(
            [
                "translate",
                str(run_dir),
                "--input",
                str(tmp_path / "nope"),
                "--output",
                str(tmp_path / "x"),
            ]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert err == [f"error: --input: no such file or folder '{tmp_path / 'nope'}'"]
