"""Context Encoders (Pathak et al. 2016): the channel-wise fully connected layer, the generator's
shapes, the overlap-weighted L2, the task in gancore's loop, its example and its errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from gan_inpaint.command import run_inpaint
from gan_inpaint.context_encoder import (
    ChannelWiseLinear,
    ContextEncoderGenerator,
    ContextEncoderGeneratorOptions,
    build_context_encoder_generator,
    decoder_sides,
)
from gan_inpaint.context_task import ContextEncoder, overlap_weights, weighted_l2
from gan_inpaint.task import complete
from PIL import Image

import gancore
import gancore.testing
from gancore._cli import main

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "context-encoder-skimage.toml"

# Core components only (non-saturating loss) and the plugin's deepfill critic.
TINY = """
[run]
name = "tiny-ce"
seed = 0
steps = 2

[data]
name = "digits"
resolution = 16
limit = 64

[task]
name = "context-encoder"
overlap = 1

[generator]
name = "context-encoder"
channels = 4

[critic]
name = "deepfill"
channels = 8
depth = 2

[loss]
name = "non-saturating"

[optimizers.generator]
lr = 2e-3
betas = [0.5, 0.999]

[optimizers.critic]
lr = 2e-4
betas = [0.5, 0.999]

[training]
batch_size = 8
log_every = 1
sample_every = 2
checkpoint_every = 2
num_samples = 8
"""


def _config(tmp_path: Path, *overrides: str) -> gancore.RunConfig:
    (tmp_path / "run.toml").write_text(TINY)
    return gancore.load_config(tmp_path / "run.toml", list(overrides))


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "train"]


def _generator(
    input_shape: tuple[int, ...], data_shape: tuple[int, ...], **options: Any
) -> ContextEncoderGenerator:
    context = SimpleNamespace(input_shape=input_shape, data_shape=data_shape)
    module = build_context_encoder_generator(ContextEncoderGeneratorOptions(**options), context)
    assert isinstance(module, ContextEncoderGenerator)
    return module


def test_registered() -> None:
    """gan-inpaint registers the context-encoder generator and task."""
    registry, _ = gancore.load_registry()
    assert registry.get("generator", "context-encoder").provider == "gan-inpaint"
    assert registry.get("task", "context-encoder").provider == "gan-inpaint"


class TestChannelWiseLinear:
    def test_parameter_count(self) -> None:
        """m n^4 weights and m n^2 biases, against m^2 n^4 for a full fully connected layer."""
        layer = ChannelWiseLinear(maps=6, side=3)
        assert layer.weight.numel() == 6 * 3**4
        assert layer.bias.numel() == 6 * 3**2
        assert sum(p.numel() for p in layer.parameters()) == 6 * 81 + 6 * 9

    def test_each_map_is_its_own_fully_connected_layer(self) -> None:
        """Map k's output is W_k vec(x_k) + b_k."""
        torch.manual_seed(0)
        layer = ChannelWiseLinear(maps=3, side=2)
        x = torch.randn(5, 3, 2, 2)
        out = layer(x)
        for k in range(3):
            expected = x[:, k].reshape(5, 4) @ layer.weight[k].T + layer.bias[k]
            torch.testing.assert_close(out[:, k].reshape(5, 4), expected)

    def test_maps_do_not_mix(self) -> None:
        """Perturbing input map 1 changes output map 1 only; the gradient of output map 0
        reaches input map 0 only (and every cell of it)."""
        torch.manual_seed(0)
        layer = ChannelWiseLinear(maps=3, side=4)
        x = torch.randn(2, 3, 4, 4)
        bumped = x.clone()
        bumped[:, 1] += torch.randn(2, 4, 4)
        delta = (layer(bumped) - layer(x)).abs().amax(dim=(0, 2, 3))
        assert delta[0] == 0
        assert delta[2] == 0
        assert delta[1] > 0
        x.requires_grad_(True)
        layer(x)[:, 0].sum().backward()
        assert x.grad is not None
        assert torch.all(x.grad[:, 1:] == 0)
        assert torch.all(x.grad[:, 0] != 0)

    def test_shape_check(self) -> None:
        """Inputs of another shape are refused with got/expected."""
        with pytest.raises(ValueError, match=r"expected \[N, 3, 4, 4\] \(got \[1, 3, 5, 5\]\)"):
            ChannelWiseLinear(3, 4)(torch.zeros(1, 3, 5, 5))


class TestGenerator:
    @pytest.mark.parametrize(
        ("target", "bottleneck", "expected"),
        [(32, 4, (4, [8, 16, 32])), (20, 4, (5, [10, 20])), (11, 4, (6, [11])), (3, 4, (3, []))],
    )
    def test_decoder_sides(self, target: int, bottleneck: int, expected: tuple) -> None:
        """Up-convolutions map ceil(t / 2) to t; a stride-1 bridge reaches the start side."""
        assert decoder_sides(target, bottleneck) == expected

    @pytest.mark.parametrize(("size", "region"), [(32, 20), (16, 10), (16, 11), (16, 16), (8, 3)])
    def test_region_shapes(self, size: int, region: int) -> None:
        """The raw prediction has the region's shape; forward gives the image with the region
        pasted at the centre and the filled input everywhere else."""
        torch.manual_seed(0)
        generator = _generator((4, size, size), (3, region, region), channels=4).eval()
        image = torch.rand(2, 3, size, size) * 2 - 1
        mask = torch.zeros(2, 1, size, size)
        inputs = torch.cat([image, mask], dim=1)
        raw = generator(inputs, return_region=True)
        assert raw.shape == (2, 3, region, region)
        assert raw.abs().max() <= 1.0  # tanh
        full = generator(inputs)
        assert full.shape == (2, 3, size, size)
        top = (size - region) // 2
        torch.testing.assert_close(full[..., top : top + region, top : top + region], raw)
        outside = torch.ones(size, size, dtype=torch.bool)
        outside[top : top + region, top : top + region] = False
        assert torch.equal(full[..., outside], image[..., outside])

    def test_whole_image_prediction(self) -> None:
        """With data_shape the image's, forward returns the decoder's image as it is."""
        generator = _generator((2, 16, 16), (1, 16, 16), channels=4).eval()
        inputs = torch.cat([torch.zeros(3, 1, 16, 16), torch.ones(3, 1, 16, 16)], dim=1)
        out = generator(inputs)
        assert out.shape == (3, 1, 16, 16)
        torch.testing.assert_close(out, generator(inputs, return_region=True))

    def test_hole_pixels_are_not_seen(self) -> None:
        """Whatever the hole holds, the prediction is the same (the hole is filled with 0)."""
        torch.manual_seed(0)
        generator = _generator((4, 16, 16), (3, 10, 10), channels=4).eval()
        image = torch.rand(1, 3, 16, 16)
        mask = torch.zeros(1, 1, 16, 16)
        mask[..., 4:12, 4:12] = 1
        other = torch.where(mask > 0, torch.rand_like(image), image)
        a = generator(torch.cat([image, mask], 1), return_region=True)
        b = generator(torch.cat([other, mask], 1), return_region=True)
        assert torch.equal(a, b)

    def test_bottleneck_is_channel_wise(self) -> None:
        """32 px, channels 4, depth 3: m = 16 maps of 4x4, a 16 * 4^4 weight bottleneck."""
        generator = _generator((4, 32, 32), (3, 20, 20), channels=4)
        assert generator.bottleneck == (16, 4)
        assert generator.channel_wise.weight.numel() == 16 * 4**4

    def test_size_errors(self) -> None:
        """An image side that 2**depth does not divide, and another size at inference, are
        one-line errors naming the sizes."""
        with pytest.raises(
            ValueError, match=r"image side 24 must be a multiple of 2\*\*depth = 16"
        ):
            _generator((4, 24, 24), (3, 12, 12), depth=4)
        generator = _generator((4, 16, 16), (3, 10, 10))
        with pytest.raises(ValueError, match="built for 16x16 images"):
            generator.check_size(32, 32)
        with pytest.raises(ValueError, match=r"expected inputs \[N, 4, 16, 16\]"):
            generator(torch.zeros(1, 3, 16, 16))
        with pytest.raises(ValueError, match="'depth' must be an integer >= 1"):
            ContextEncoderGeneratorOptions(depth=0)


class TestOverlapLoss:
    def test_weights_closed_form(self) -> None:
        """A 4x4 hole in a 10x10 image with overlap 2: 1 in the hole, 10 on the 2 px frame
        around it, 0 outside the 8x8 predicted region."""
        mask = torch.zeros(1, 1, 10, 10)
        mask[..., 3:7, 3:7] = 1
        expected = torch.zeros(1, 1, 10, 10)
        expected[..., 1:9, 1:9] = 10.0
        expected[..., 3:7, 3:7] = 1.0
        assert torch.equal(overlap_weights(mask, 2, 10.0), expected)
        assert torch.equal(overlap_weights(mask, 0, 10.0), mask)

    def test_weighted_l2_closed_form(self) -> None:
        """An error of 1 everywhere: (16 * 1 + 48 * 10) / 64 pixels of the region = 7.75, for any
        number of channels; an error only outside the region costs nothing."""
        mask = torch.zeros(1, 1, 10, 10)
        mask[..., 3:7, 3:7] = 1
        weights = overlap_weights(mask, 2, 10.0)
        for channels in (1, 3):
            target = torch.zeros(1, channels, 10, 10)
            assert weighted_l2(target + 1, target, weights).item() == pytest.approx(7.75)
        outside = torch.zeros(1, 1, 10, 10)
        outside[..., 0, :] = 5.0
        assert weighted_l2(outside, torch.zeros_like(outside), weights).item() == 0.0

    def test_task_geometry(self) -> None:
        """The example's numbers: a 16 px hole and a 20 px region in a 32 px image; the masks the
        metric reads are the centred square."""
        task = ContextEncoder(overlap=2)
        assert (task.hole_side(32), task.region_side(32)) == (16, 20)
        assert task.masks.kind == "center"
        assert task.masks.rectangle_size == 0.5


class TestLoop:
    def test_trains_and_logs(self, tmp_path: Path) -> None:
        """Two iterations: the critic, the generator, both L2 terms logged and finite, a grid."""
        result = gancore.train(_config(tmp_path), tmp_path / "run", progress=False)
        assert result.step == 2
        assert tuple(result.critics["critic"].shape) == (
            1,
            10,
            10,
        )  # the predicted region
        last = _records(tmp_path / "run")[-1]
        for key in ("loss/critic", "loss/generator", "loss/l2_weighted", "loss/l2_hole"):
            assert np.isfinite(last[key]), key
        assert (tmp_path / "run" / "samples" / "step-0000002.png").is_file()

    @pytest.mark.parametrize(
        ("predict", "critic_input"), [("image", "region"), ("region", "image")]
    )
    def test_options(self, tmp_path: Path, predict: str, critic_input: str) -> None:
        """Whole-image prediction and a whole-image critic train too; the critic is built for
        what it scores."""
        config = _config(
            tmp_path, f"task.predict='{predict}'", f"task.critic_input='{critic_input}'"
        )
        result = gancore.train(config, tmp_path / "run", progress=False)
        side = 10 if critic_input == "region" else 16
        assert tuple(result.critics["critic"].shape) == (1, side, side)
        assert np.isfinite(_records(tmp_path / "run")[-1]["loss/l2_weighted"])

    def test_lowers_the_masked_l2_on_a_fixed_batch(self, tmp_path: Path) -> None:
        """Eight digits seen forty times: the overlap-weighted L2 falls to under half (to 0.34
        of its start here)."""
        config = _config(
            tmp_path,
            "run.steps=40",
            "data.limit=8",
            "optimizers.generator.lr=5e-3",
            "training.sample_every=0",
            "training.checkpoint_every=0",
        )
        gancore.train(config, tmp_path / "run", progress=False)
        losses = [r["loss/l2_weighted"] for r in _records(tmp_path / "run")]
        assert len(losses) == 40
        assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])

    def test_resume_is_exact(self, tmp_path: Path) -> None:
        """2 iterations straight equal 1 + resume + 1."""
        config = _config(tmp_path)
        straight = gancore.train(config, tmp_path / "a", progress=False)
        gancore.testing.train_interrupted(config, tmp_path / "b", after=1)
        resumed = gancore.train(config, tmp_path / "b", resume=True, progress=False)
        for players in ("generators", "critics"):
            a = getattr(straight, players)
            b = getattr(resumed, players)
            for name in a:
                sa, sb = a[name].state_dict(), b[name].state_dict()
                for key in sa:
                    assert torch.equal(sa[key], sb[key]), (name, key)

    def test_inpaint_quality_and_complete(self, tmp_path: Path) -> None:
        """inpaint-quality scores the run on the centred hole; complete() keeps known pixels."""
        config = _config(
            tmp_path,
            "metrics=[{name='inpaint-quality', num_images=16, baselines=['mean-fill']}]",
            "training.metrics_every=2",
        )
        result = gancore.train(config, tmp_path / "run", progress=False)
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        metric = [r for r in map(json.loads, lines) if r["event"] == "metric"][-1]
        assert metric["inpaint-quality.hole_fraction"] == 0.25
        assert 0 < metric["inpaint-quality.hole_l1"] < 1
        image = torch.rand(2, 1, 16, 16) * 2 - 1
        mask = torch.zeros(2, 1, 16, 16)
        mask[..., 4:12, 4:12] = 1
        done = complete(result.generators["generator"].eval(), image, mask)
        assert torch.equal(done[mask.expand_as(done) < 0.5], image[mask.expand_as(image) < 0.5])


class TestErrors:
    def _cli(self, tmp_path: Path, capsys: pytest.CaptureFixture[str], *overrides: str) -> str:
        (tmp_path / "run.toml").write_text(TINY)
        sets = [arg for o in overrides for arg in ("--set", o)]
        code = main(["train", str(tmp_path / "run.toml"), *sets, "--run-dir", str(tmp_path / "r")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert len(err) == 1, err
        return err[0]

    def test_depth_too_deep_for_the_image(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """16 px images and depth 5: one line naming the side, 2**depth and the option."""
        line = self._cli(tmp_path, capsys, "generator.depth=5")
        assert "image side 16 must be a multiple of 2**depth = 32 (depth 5)" in line

    def test_region_larger_than_the_image(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An overlap that pushes the region past the image edge is one line with the sums."""
        line = self._cli(tmp_path, capsys, "task.overlap=5")
        assert "predicted region (hole 8 + 2 x overlap 5 = 18 px) is larger than" in line

    def test_bad_option_values(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A negative overlap and an unknown predict value are config errors."""
        assert "'overlap' must be an integer >= 0 (got -1)" in self._cli(
            tmp_path, capsys, "task.overlap=-1"
        )
        assert "predict" in self._cli(tmp_path, capsys, "task.predict='hole'")


def test_example_validates() -> None:
    """examples/context-encoder-skimage.toml loads with gancore and gan-inpaint alone."""
    config = gancore.load_config(EXAMPLE)
    assert config.task.name == "gan-inpaint:context-encoder"
    assert config.generator is not None
    assert config.generator.name == "gan-inpaint:context-encoder"


def test_gan_inpaint_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gan inpaint` fills a centre hole with a context-encoder run, keeping known pixels; an
    image of another size is a one-line error."""
    config = _config(tmp_path, "run.steps=1", "training.checkpoint_every=1")
    gancore.train(config, tmp_path / "run", progress=False)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(16, 16), dtype=np.uint8)
    hole = np.zeros((16, 16), dtype=np.uint8)
    hole[4:12, 4:12] = 255
    Image.fromarray(pixels).save(tmp_path / "a.png")
    Image.fromarray(hole).save(tmp_path / "m.png")
    args = argparse.Namespace(
        run_dir=tmp_path / "run",
        image=tmp_path / "a.png",
        mask=tmp_path / "m.png",
        out=tmp_path / "out.png",
        checkpoint="latest",
        raw=False,
    )
    assert run_inpaint(args) == 0
    after = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(after[hole < 128], pixels[hole < 128])
    capsys.readouterr()  # training's progress lines
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(tmp_path / "mb.png")
    code = main(
        ["inpaint", str(tmp_path / "run"), "--image", str(tmp_path / "b.png"), "--mask",
         str(tmp_path / "mb.png"), "--out", str(tmp_path / "o.png")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert "built for 16x16 images (got 20x20)" in err[0]


def test_generator_in_the_inpaint_task(tmp_path: Path) -> None:
    """The inpaint task (random boxes and strokes, global and local critics) trains the
    context-encoder generator as a whole-image predictor."""
    config = _config(
        tmp_path,
        "task={name='inpaint', masks={kind='both'}}",
        "critic.depth=2",
    )
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert set(result.critics) == {"global", "local"}
    generator = result.generators["generator"]
    assert isinstance(generator, ContextEncoderGenerator)
    assert generator.output_side == 16
    assert np.isfinite(_records(tmp_path / "run")[-1]["loss/l1_hole"])
