"""The degradation, SRResNet and the SRGAN critic, the sr-images dataset and the srgan task."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from gan_superres.datasets import SRImages, SRImagesOptions
from gan_superres.degrade import bicubic_upscale, downscale
from gan_superres.networks import (
    SRGANCriticOptions,
    SRResNetOptions,
    build_srgan_critic,
    build_srresnet,
)
from gan_superres.task import Srgan
from PIL import Image
from torch import nn

import gancore
import gancore.testing as gt


def _pil_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL's BICUBIC (Keys a = -0.5, antialiased) resize of a float [C, H, W] image, per channel."""
    return np.stack(
        [
            np.asarray(Image.fromarray(c, mode="F").resize(size, Image.Resampling.BICUBIC))
            for c in image
        ]
    )


class TestDegradation:
    def test_downscale_is_pils_bicubic(self) -> None:
        """Inside a margin of the kernel's support the x4 downscale equals PIL's BICUBIC; the
        values are clamped to [-1, 1]."""
        gen = torch.Generator().manual_seed(0)
        image = torch.rand(1, 3, 64, 48, generator=gen) * 1.6 - 0.8
        small = downscale(image, 4)
        assert small.shape == (1, 3, 16, 12)
        reference = _pil_resize(image[0].numpy(), (12, 16))
        np.testing.assert_allclose(
            small[0, :, 2:-2, 2:-2].numpy(), reference[:, 2:-2, 2:-2], atol=1e-5
        )
        assert small.abs().max() <= 1.0

    def test_upscale_is_pils_bicubic(self) -> None:
        """The bicubic baseline equals PIL's BICUBIC everywhere (a = -0.5, not torch's -0.75)."""
        gen = torch.Generator().manual_seed(1)
        image = torch.rand(1, 3, 9, 13, generator=gen) * 1.2 - 0.6
        big = bicubic_upscale(image, 2)
        reference = np.clip(_pil_resize(image[0].numpy(), (26, 18)), -1, 1)
        np.testing.assert_allclose(big[0].numpy(), reference, atol=1e-5)

    def test_pure_function_of_the_image(self) -> None:
        """An image's low-resolution input does not depend on the batch it is in."""
        gen = torch.Generator().manual_seed(2)
        batch = torch.rand(5, 3, 32, 32, generator=gen) * 2 - 1
        together = downscale(batch, 4)
        for i in range(5):
            assert torch.equal(together[i : i + 1], downscale(batch[i : i + 1], 4))
        assert torch.equal(downscale(batch, 4), together)

    def test_sides_must_divide(self) -> None:
        with pytest.raises(
            ValueError,
            match=r"image of 30x32 pixels: both sides must be multiples of the scale factor 4",
        ):
            downscale(torch.zeros(1, 3, 32, 30), 4)


def _srresnet(c: int, size: int, scale: int, **options: Any) -> nn.Module:
    context = gancore.BuildContext(
        data_shape=(c, size, size), input_shape=(c, size // scale, size // scale)
    )
    return build_srresnet(SRResNetOptions(**options), context)


class TestGenerator:
    def test_pixel_shuffle_layout(self) -> None:
        """PixelShuffle(2) sends channel 4c + 2i + j of pixel (y, x) to channel c of pixel
        (2y + i, 2x + j): the layout the sub-pixel convolutions are trained into."""
        x = torch.arange(2 * 8 * 3 * 5, dtype=torch.float32).reshape(2, 8, 3, 5)
        y = nn.PixelShuffle(2)(x)
        assert y.shape == (2, 2, 6, 10)
        for c in range(2):
            for i in range(2):
                for j in range(2):
                    assert torch.equal(y[:, c, i::2, j::2], x[:, 4 * c + 2 * i + j])

    @pytest.mark.parametrize(("scale", "blocks"), [(2, 1), (4, 2)])
    def test_layout_of_the_paper(self, scale: int, blocks: int) -> None:
        """A 9x9 head, ``blocks`` residual blocks of two 3x3 convs with BN and PReLU, one
        sub-pixel block (conv to 4 x channels, PixelShuffle(2), PReLU) per factor 2, a 9x9 tail."""
        g = _srresnet(3, 16, scale, blocks=blocks, channels=8)
        assert g.head[0].kernel_size == (9, 9)
        assert g.tail.kernel_size == (9, 9)
        assert len(g.trunk) == blocks
        block = g.trunk[0].body
        assert [type(m).__name__ for m in block] == [
            "Conv2d", "BatchNorm2d", "PReLU", "Conv2d", "BatchNorm2d"
        ]  # fmt: skip
        assert len(g.upsample) == int(np.log2(scale))
        for up in g.upsample:
            assert up[0].out_channels == 32
            assert isinstance(up[1], nn.PixelShuffle)
            assert up[1].upscale_factor == 2
            assert isinstance(up[2], nn.PReLU)

    def test_parameter_count_of_the_paper(self) -> None:
        """The paper's SRResNet (16 blocks, 64 channels, x4, RGB) has 1,549,462 parameters:
        head 9*9*3*64 + 64 + 1 (a channel-shared PReLU), 16 blocks of 2 x (3*3*64*64 + 64 + 128 BN)
        + 1, trunk end 3*3*64*64 + 64 + 128, two sub-pixel blocks 3*3*64*256 + 256 + 1, tail
        9*9*64*3 + 3."""
        g = _srresnet(3, 96, 4)
        head = 9 * 9 * 3 * 64 + 64 + 1
        block = 2 * (3 * 3 * 64 * 64 + 64 + 128) + 1
        trunk_end = 3 * 3 * 64 * 64 + 64 + 128
        up = 3 * 3 * 64 * 256 + 256 + 1
        tail = 9 * 9 * 64 * 3 + 3
        expected = head + 16 * block + trunk_end + 2 * up + tail
        assert sum(p.numel() for p in g.parameters()) == expected == 1_549_462

    def test_fully_convolutional(self) -> None:
        """Built for 16x16 crops, it upscales any size (what gan upscale relies on)."""
        g = _srresnet(1, 16, 4, blocks=1, channels=4).eval()
        assert g(torch.zeros(1, 1, 7, 5)).shape == (1, 1, 28, 20)

    def test_bicubic_residual_starts_at_bicubic(self) -> None:
        """residual = 'bicubic': the zero-initialised tail makes the untrained network the
        bicubic baseline exactly; its gradients still reach the tail."""
        g = _srresnet(3, 16, 4, blocks=1, channels=4, residual="bicubic")
        lr = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(3)) * 1.8 - 0.9
        out = g(lr)
        torch.testing.assert_close(out.clamp(-1, 1), bicubic_upscale(lr, 4), rtol=0, atol=1e-6)
        out.square().sum().backward()
        assert g.tail.weight.grad is not None
        assert g.tail.weight.grad.abs().sum() > 0

    def test_needs_a_whole_factor(self) -> None:
        context = gancore.BuildContext(data_shape=(3, 16, 16), input_shape=(3, 5, 5))
        with pytest.raises(ValueError, match="not the images 16x16 divided by a whole factor"):
            build_srresnet(SRResNetOptions(), context)
        context = gancore.BuildContext(data_shape=(3, 24, 24), input_shape=(3, 8, 8))
        with pytest.raises(ValueError, match=r"scale factor must be 2 or 4 \(got 3\)"):
            build_srresnet(SRResNetOptions(), context)


class TestCritic:
    def test_layout_of_the_paper(self) -> None:
        """Eight 3x3 convs, 64 to 512 filters, strides 1, 2, 1, 2, ...; BN on all but the first;
        dense 1024 then one logit per image; 96x96 crops end as 6x6x512."""
        d = build_srgan_critic(SRGANCriticOptions(), gancore.BuildContext(data_shape=(3, 96, 96)))
        convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
        assert [m.out_channels for m in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
        assert [m.stride[0] for m in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
        assert all(m.kernel_size == (3, 3) for m in convs)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in d.features) == 7
        assert [m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 9
        dense = [m for m in d.head if isinstance(m, nn.Linear)]
        assert [(m.in_features, m.out_features) for m in dense] == [(6 * 6 * 512, 1024), (1024, 1)]
        assert d(torch.zeros(2, 3, 96, 96)).shape == (2,)


class TestDataset:
    def test_crops_of_bundled_photos(self) -> None:
        """camera (512x512) at size 96, stride 96: 5 x 5 crops, in [-1, 1], named by photo."""
        data = SRImages(SRImagesOptions(images=("skimage:camera", "skimage:coins"), size=96))
        coins = (303 // 96) * (384 // 96)
        assert len(data) == 25 + coins
        assert data.sources[:25] == ["camera"] * 25
        assert data.sources[25:] == ["coins"] * coins
        assert data.shapes == {"x": (3, 96, 96)}
        assert data.images.min() >= -1
        assert data.images.max() <= 1
        import skimage.data

        camera = torch.from_numpy(skimage.data.camera().astype(np.float32) / 127.5 - 1)
        assert torch.allclose(data[6]["x"][0], camera[96:192, 96:192], atol=1e-6)

    def test_paired_folder(self, tmp_path: Path) -> None:
        """With 'lr', each crop comes with the LR crop at the same place, scale times smaller."""
        gen = np.random.default_rng(0)
        hr = gen.integers(0, 256, (64, 96, 3), dtype=np.uint8)
        lr = gen.integers(0, 256, (16, 24, 3), dtype=np.uint8)
        (tmp_path / "hr").mkdir()
        (tmp_path / "lr").mkdir()
        Image.fromarray(hr).save(tmp_path / "hr" / "a.png")
        Image.fromarray(lr).save(tmp_path / "lr" / "a.png")
        options = SRImagesOptions(
            images=(str(tmp_path / "hr"),), lr=str(tmp_path / "lr"), scale=4, size=32
        )
        data = SRImages(options)
        assert len(data) == 2 * 3
        assert data.shapes == {"x": (3, 32, 32), "lr": (3, 8, 8)}
        item = data[4]  # second row, second column: HR (32, 32), LR (8, 8)
        expected_hr = torch.from_numpy(hr[32:64, 32:64].astype(np.float32) / 127.5 - 1)
        expected_lr = torch.from_numpy(lr[8:16, 8:16].astype(np.float32) / 127.5 - 1)
        assert torch.allclose(item["x"], expected_hr.permute(2, 0, 1), atol=1e-6)
        assert torch.allclose(item["lr"], expected_lr.permute(2, 0, 1), atol=1e-6)
        gt.check_dataset("sr-images", options)

    def test_paired_errors(self, tmp_path: Path) -> None:
        (tmp_path / "hr").mkdir()
        (tmp_path / "lr").mkdir()
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "hr" / "a.png")
        Image.fromarray(np.zeros((10, 8, 3), np.uint8)).save(tmp_path / "lr" / "a.png")
        options = SRImagesOptions(
            images=(str(tmp_path / "hr"),), lr=str(tmp_path / "lr"), scale=4, size=16
        )
        with pytest.raises(
            ValueError,
            match=r"'lr': 'a' is 8x10 but its high-resolution image 32x32 / scale 4 is 8x8",
        ):
            SRImages(options)
        (tmp_path / "lr" / "a.png").unlink()
        with pytest.raises(FileNotFoundError, match="'lr': no low-resolution image named 'a'"):
            SRImages(options)
        with pytest.raises(ValueError, match="'scale' must be set"):
            SRImagesOptions(lr=str(tmp_path))
        with pytest.raises(ValueError, match="'images': 'skimage:balloon' is not one of"):
            SRImagesOptions(images=("skimage:balloon",))


TINY = """
[run]
name = "tiny-sr"
seed = 0
steps = 6

[data]
name = "sr-images"
images = ["skimage:camera"]
size = 32
stride = 16

[task]
name = "srgan"
scale = 2
extractor = "sr-features"
pretrain = 0.5

[generator]
name = "srresnet"
blocks = 1
channels = 8

[critic]
name = "srgan"
channels = 4
dense = 16

[loss]
name = "non-saturating"

[optimizers.generator]
lr = 1e-3
betas = [0.9, 0.999]

[optimizers.critic]
lr = 1e-3
betas = [0.9, 0.999]

[training]
batch_size = 4
log_every = 1
sample_every = 3
checkpoint_every = 3
num_samples = 4
"""


def _config(tmp_path: Path, *overrides: str) -> gancore.RunConfig:
    (tmp_path / "run.toml").write_text(TINY)
    return gancore.load_config(tmp_path / "run.toml", list(overrides))


class TestTask:
    def test_planned_stages(self, tmp_path: Path) -> None:
        """10 steps, pretrain 0.6, lr_drop 0.5: 6 MSE steps (generator only), 2 adversarial at
        the configured lr with fresh optimizers, 2 at a tenth."""
        config = _config(tmp_path, "run.steps=10", "task.pretrain=0.6")
        stages = config.task.options.plan_stages(config, None)
        assert [(s["name"], s["steps"]) for s in stages] == [
            ("mse", 6),
            ("gan", 2),
            ("gan lr/10", 2),
        ]
        assert stages[0]["train"] == ["generator"]
        assert stages[0]["options"] == {"mode": "mse"}
        assert stages[1]["reset_optimizers"] is True
        assert stages[1]["options"] == {"mode": "gan"}
        assert stages[2]["lr"] == pytest.approx({"generator": 1e-4, "critic": 1e-4})
        only_gan = _config(tmp_path, "task.pretrain=0", "task.lr_drop=1").task.options
        assert [s["name"] for s in only_gan.plan_stages(config, None)] == ["gan"]

    def test_generator_loss_is_the_papers(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Mode 'gan': w_c MSE(s phi(SR), s phi(HR)) + w_p MSE(SR, HR) + w_a L_adv; mode 'mse':
        MSE(SR, HR) alone."""
        task = Srgan(
            scale=2,
            content_weight=0.5,
            pixel_weight=0.25,
            adversarial_weight=1e-3,
            feature_scale=0.2,
        )
        pool = nn.AvgPool2d(2)
        fake = SimpleNamespace(feature_map=pool)
        monkeypatch.setattr(Srgan, "content_extractor", lambda self, registry=None: _Moves(fake))
        torch.manual_seed(0)
        generator = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(3, 3, 1))
        hr = torch.rand(2, 3, 8, 8) * 2 - 1
        logged: dict[str, float] = {}

        def step(mode: str) -> SimpleNamespace:
            return SimpleNamespace(
                generators={"generator": generator},
                stage=SimpleNamespace(index=0, options={"mode": mode}),
                log=lambda name, value: logged.__setitem__(name, float(value.detach())),
                generator_loss=lambda critic, fake, real=None: fake.mean() * 0 + 0.7,
            )

        total = task.generator_step(step("gan"), {"x": hr})
        with torch.no_grad():
            sr = generator(downscale(hr, 2))
        mse = torch.mean((sr - hr) ** 2)
        content = torch.mean((0.2 * pool(sr) - 0.2 * pool(hr)) ** 2)
        assert float(total.detach()) == pytest.approx(
            float(0.5 * content + 0.25 * mse + 1e-3 * 0.7), rel=1e-6
        )
        assert logged["loss/content"] == pytest.approx(float(content), rel=1e-6)
        assert float(task.generator_step(step("mse"), {"x": hr}).detach()) == pytest.approx(
            float(mse), rel=1e-6
        )
        with pytest.raises(ValueError, match=r"options.mode: expected 'mse' or 'gan' \(got 'l1'\)"):
            task.generator_step(step("l1"), {"x": hr})

    def test_paired_batches_use_their_lr(self) -> None:
        """With an 'lr' key the task does not degrade 'x' itself."""
        from gan_superres.task import low_resolution

        batch = {"x": torch.zeros(1, 3, 8, 8), "lr": torch.ones(1, 3, 4, 4)}
        assert torch.equal(low_resolution(batch, 2), batch["lr"])
        assert torch.equal(low_resolution({"x": batch["x"]}, 2), torch.zeros(1, 3, 4, 4))

    def test_mse_stage_leaves_the_critic_alone(self, tmp_path: Path) -> None:
        """Through the 3 MSE steps the critic's weights stay as built while the generator's
        change; the adversarial steps then change the critic."""
        config = _config(tmp_path, "training.checkpoint_every=1", "training.keep_checkpoints=10")
        gancore.train(config, tmp_path / "run", progress=False)

        def weights(step: int) -> dict[str, dict[str, torch.Tensor]]:
            path = tmp_path / "run" / "checkpoints" / f"step-{step:07d}"
            return gancore.load_checkpoint(path)[0]

        first, mse_end, last = weights(1), weights(3), weights(6)

        def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
            return all(torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())

        assert same(first["critics"], mse_end["critics"])
        assert not same(first["generators"], mse_end["generators"])
        assert not same(mse_end["critics"], last["critics"])

    @pytest.mark.parametrize("after", [2, 3, 4])
    def test_resume_is_exact_across_the_boundary(self, tmp_path: Path, after: int) -> None:
        """6 steps straight equal ``after`` + resume + the rest: inside the MSE stage, at its
        end (the adversarial stage starts from the pre-trained generator) and inside the next."""
        config = _config(tmp_path)
        straight = gancore.train(config, tmp_path / "a", progress=False)
        gt.train_interrupted(config, tmp_path / "b", after=after)
        resumed = gancore.train(config, tmp_path / "b", resume=True, progress=False)
        for group, name in (("generators", "generator"), ("critics", "critic")):
            a = getattr(straight, group)[name].state_dict()
            b = getattr(resumed, group)[name].state_dict()
            for key in a:
                assert torch.equal(a[key], b[key]), (name, key)

    def test_sample_grid_is_bicubic_sr_hr(self, tmp_path: Path) -> None:
        """Triplet rows: bicubic, SR, HR; 'upscaled' gives the SR images alone."""
        task = Srgan(scale=2, content_weight=0.0)
        data = SRImages(SRImagesOptions(images=("skimage:camera",), size=32))
        generator = _srresnet(3, 32, 2, blocks=1, channels=4).eval()
        inputs = task.sample_inputs({"generator": generator}, data, 3, seed=0)
        assert inputs["x"].shape == (3, 3, 32, 32)
        assert inputs["lr"].shape == (3, 3, 16, 16)
        grid = task.sample({"generator": generator}, inputs)
        assert grid.columns == 8
        assert grid.images.shape == (24, 3, 32, 32)
        assert torch.equal(grid.images[:3], bicubic_upscale(inputs["lr"], 2))
        assert torch.equal(grid.images[16:19], inputs["x"])
        assert torch.all(grid.images[3:8] == -1)
        upscaled = attrs_evolve(task, samples="upscaled").sample({"generator": generator}, inputs)
        assert torch.equal(upscaled.images, grid.images[8:11])

    def test_build_errors(self, tmp_path: Path) -> None:
        with pytest.raises(
            ValueError,
            match="the dataset's images of 30x30 pixels: both sides must be multiples of the scale factor 4",
        ):
            gancore.train(
                _config(tmp_path, "data.size=30", "task.scale=4"), tmp_path / "r", progress=False
            )


class _Moves:
    """A stand-in extractor with ``.to(device)``."""

    def __init__(self, inner: Any) -> None:
        self.feature_map = inner.feature_map

    def to(self, device: Any) -> _Moves:
        return self


def attrs_evolve(task: Srgan, **changes: Any) -> Srgan:
    import attrs

    return attrs.evolve(task, **changes)


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_example_validates() -> None:
    """examples/srgan-skimage.toml loads with this plugin alone and plans 500 + 250 + 250 steps."""
    config = gancore.load_config(EXAMPLES / "srgan-skimage.toml")
    assert config.task.name == "gan-superres:srgan"
    stages = config.task.options.plan_stages(config, None)
    assert [s["steps"] for s in stages] == [500, 250, 250]
    assert stages[2]["lr"] == pytest.approx({"generator": 1e-5, "critic": 1e-5})
