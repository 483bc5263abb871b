"""SinGAN: the pyramid, the residual generation, the noise amplitudes, the stages the task plans,
frozen coarser scales, the reconstruction after training, the dataset's errors, gan sample."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gan_progressive.singan import (
    SinGAN,
    SinGANCritic,
    SinGANGenerator,
    SingleImage,
    SingleImageOptions,
    load_image,
    pyramid_sizes,
    resize,
    scale_channels,
)
from PIL import Image
from safetensors.torch import load_file

import gancore
import gancore.testing as gt
from gancore._cli import main


def _image_file(path: Path, height: int = 12, width: int = 16, seed: int = 0) -> Path:
    """A smooth random RGB image (a few blobs), saved as PNG."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3))
    for _ in range(4):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(2, 5)
        image += (
            rng.uniform(0.2, 1.0, 3) * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / r**2)[..., None]
        )
    pixels = (255 * image / image.max()).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _run(image: Path, iterations: int, **task: Any) -> dict[str, Any]:
    return {
        "run": {"name": "singan-test", "seed": 0},
        "data": {"name": "single-image", "image": str(image), "max_size": 64},
        "task": {"name": "singan", "iterations": iterations, "min_size": 11, **task},
        "loss": {"name": "wgan"},
        "regularizers": [{"name": "wgan-gp", "weight": 0.1, "per_pixel": True}],
        "optimizers": {
            g: {"name": "adam", "lr": 5e-4, "betas": [0.5, 0.999]} for g in ("generator", "critic")
        },
        "training": {
            "batch_size": 1,
            "critic_steps": 3,
            "generator_steps": 3,
            "log_every": 10,
            "sample_every": 0,
            "checkpoint_every": 0,
        },
    }


class TestPyramid:
    def test_sizes_follow_the_paper(self) -> None:
        """A 250x250 image at r = 4/3 down to 25 px: 10 scales, the short side from 25 to 250,
        neighbours in the adjusted ratio (25 / 250)^(1/9)."""
        sizes = pyramid_sizes(250, 250, scale_factor=0.75, min_size=25, max_size=250)
        assert len(sizes) == 10
        assert sizes[0] == (25, 25)
        assert sizes[-1] == (250, 250)
        r = 0.1 ** (1 / 9)
        assert sizes == [(round(250 * r ** (9 - k)),) * 2 for k in range(10)]

    def test_long_side_capped_and_aspect_kept(self) -> None:
        """600x400 at max_size 250: 167x250 (the aspect kept), 8 scales, coarsest short side 25."""
        sizes = pyramid_sizes(400, 600, scale_factor=0.75, min_size=25, max_size=250)
        assert sizes[-1] == (167, 250)
        assert len(sizes) == math.ceil(math.log(25 / 167) / math.log(0.75)) + 1 == 8
        assert sizes[0][0] == 25
        assert sizes[0][1] == round(250 * 25 / 167)
        assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(sizes))

    def test_small_image_is_one_scale(self) -> None:
        assert pyramid_sizes(20, 30, scale_factor=0.75, min_size=25, max_size=250) == [(20, 30)]

    def test_channels_double_every_four_scales(self) -> None:
        assert [scale_channels(k, 32, 128) for k in range(13)] == [32] * 4 + [64] * 4 + [128] * 5


def _generator(tmp_path: Path, scales: int = 2) -> SinGANGenerator:
    image = SingleImage(SingleImageOptions(image=str(_image_file(tmp_path / "i.png")))).image
    sizes = pyramid_sizes(12, 16, scale_factor=0.75, min_size=11, max_size=16)
    generator = SinGANGenerator(image, sizes, channels=4, max_channels=8, noise_amp=0.1)
    while len(generator.scales) < scales:
        generator.add_scale()
    return generator


class TestGenerator:
    def test_residual_generation(self, tmp_path: Path) -> None:
        """x_0 = G_0(sigma_0 z_0, 0); x_1 = G_1(up(x_0) + sigma_1 z_1, up(x_0)) with G_k(a, b) =
        tanh(net_k(a)) + b; the coarsest noise has one channel, repeated."""
        g = _generator(tmp_path)
        (h0, w0), (h1, w1) = g.sizes
        assert g.latent_dim == h0 * w0 + 3 * h1 * w1
        z = torch.randn(2, g.latent_dim)
        z0 = z[:, : h0 * w0].reshape(2, 1, h0, w0).expand(-1, 3, -1, -1)
        z1 = z[:, h0 * w0 :].reshape(2, 3, h1, w1)
        with torch.no_grad():
            g0, g1 = g.scales
            x0 = g0.tail(g0.body(g.amplitudes[0] * z0))
            up = F.interpolate(x0, size=(h1, w1), mode="bilinear", align_corners=False)
            x1 = g1.tail(g1.body(up + g.amplitudes[1] * z1)) + up
            torch.testing.assert_close(g(z), x1)

    def test_noise_amplitude_is_the_coarser_reconstructions_rmse(self, tmp_path: Path) -> None:
        """sigma_0 = 1; sigma_1 = 0.1 * RMSE(up(x_0^rec), x_1), x_0^rec = G_0(fixed noise)."""
        g = _generator(tmp_path, scales=1)
        with torch.no_grad():
            rec0 = g.scales[0](g.rec_noise.expand(-1, 3, -1, -1), torch.zeros_like(g.real(0)))
            expected = 0.1 * torch.sqrt(F.mse_loss(resize(rec0, g.sizes[1]), g.real(1)))
        g.add_scale()
        assert g.amplitudes[0].item() == 1.0
        assert g.amplitudes[1].item() == pytest.approx(expected.item(), rel=1e-6)

    def test_new_scale_starts_from_the_previous_when_widths_match(self, tmp_path: Path) -> None:
        g = _generator(tmp_path)
        for a, b in zip(g.scales[0].parameters(), g.scales[1].parameters(), strict=True):
            assert torch.equal(a, b)
        critic = SinGANCritic(3, channels=4, max_channels=8)
        before = {k: v.clone() for k, v in critic.critic.state_dict().items()}
        critic.next_scale()
        assert critic.scale == 1
        for key, value in critic.critic.state_dict().items():
            assert torch.equal(value, before[key]), key

    def test_start_scale_keeps_the_coarse_scales_of_the_reconstruction(
        self, tmp_path: Path
    ) -> None:
        """With start_scale 1, scale 0 is the reconstruction's whatever the noise; at start 2 of
        2 scales every sample is the reconstruction."""
        g = _generator(tmp_path)
        z = torch.randn(3, g.latent_dim)
        with torch.no_grad():
            g.start_scale = 2
            torch.testing.assert_close(g(z), g.reconstruct().expand(3, -1, -1, -1))
            g.start_scale = 0
            assert not torch.allclose(g(z)[0], g(z)[1])


class TestStages:
    def test_plan_two_stages_per_scale(self, tmp_path: Path) -> None:
        """Per scale: lr_drop of the iterations at the configured lr (the first adds the scale,
        freezes the previous generator and resets the optimizers), the rest at lr / 10."""
        config = gancore.parse_config(
            _run(_image_file(tmp_path / "i.png", 24, 32), 10), gancore.get_registry()
        )
        dataset = config.data.build(None)
        task = config.task.build(None)
        stages = task.plan_stages(config, dataset)
        sizes = task.sizes(dataset)
        assert len(stages) == 2 * len(sizes)
        assert len(sizes) == 4
        assert [s["steps"] for s in stages] == [8, 2] * 4
        assert stages[2] == {
            "name": f"scale 1 {sizes[1][0]}x{sizes[1][1]}",
            "steps": 8,
            "reset_optimizers": True,
            "options": {"scale": 1},
            "freeze": ["generator.scales.0"],
        }
        assert stages[3]["lr"] == pytest.approx({"generator": 5e-5, "critic": 5e-5})
        one = SinGAN(iterations=10, lr_drop=1.0, min_size=11).plan_stages(config, dataset)
        assert [s["steps"] for s in one] == [10] * 4

    def test_training_runs_every_scale_and_freezes_the_coarser(self, tmp_path: Path) -> None:
        """run.steps becomes the planned total and config.toml records the stages; after the
        run each scale's generator equals its weights at the end of its own stages."""
        image = _image_file(tmp_path / "i.png")
        config = gancore.parse_config(_run(image, 4, lr_drop=0.5), gancore.get_registry())
        result = gancore.train(config, tmp_path / "run")
        generator = result.generators["generator"]
        assert len(generator.scales) == 2
        saved = gancore.load_config(tmp_path / "run" / "config.toml")
        assert saved.run.steps == 8
        assert len(saved.stages) == 4
        assert [s.options["scale"] for s in saved.stages] == [0, 0, 1, 1]
        # The same run stopped after scale 0: its scale-0 weights are the full run's.
        short = gancore.parse_config(
            _run(image, 4, lr_drop=0.5)
            | {"run": {"name": "short", "seed": 0, "steps": 4}}
            | {"stages": [_stage(s) for s in saved.stages[:2]]},
            gancore.get_registry(),
        )
        first = gancore.train(short, tmp_path / "short").generators["generator"]
        for key, value in first.scales[0].state_dict().items():
            assert torch.equal(value, generator.scales[0].state_dict()[key]), key

    @pytest.mark.parametrize("stop_at", [3, 4, 5])
    def test_resume_is_exact_within_and_across_scales(self, tmp_path: Path, stop_at: int) -> None:
        """Stopped inside scale 0, at the boundary where scale 1 is added, and inside scale 1,
        then resumed: every weight and buffer (pyramid, amplitudes, fixed noise) equals a
        straight run's."""
        image = _image_file(tmp_path / "i.png")
        document = _run(image, 4, lr_drop=0.5)

        def config() -> gancore.RunConfig:
            return gancore.parse_config(document, gancore.get_registry())

        straight = gancore.train(config(), tmp_path / "straight", progress=False)
        first = gt.train_interrupted(config(), tmp_path / "resumed", stop_at)
        assert first.interrupted
        assert first.step == stop_at
        resumed = gancore.train(config(), tmp_path / "resumed", resume=True, progress=False)
        for group in ("generators", "critics"):
            ours = {n: m.state_dict() for n, m in getattr(resumed, group).items()}
            theirs = {n: m.state_dict() for n, m in getattr(straight, group).items()}
            for name, state in theirs.items():
                assert state.keys() == ours[name].keys()
                for key, value in state.items():
                    assert torch.equal(value, ours[name][key]), (group, name, key)

    @pytest.mark.slow
    def test_reconstruction_after_training(self, tmp_path: Path) -> None:
        """Trained on a tiny image, the fixed noise gives the image back: RMSE under 0.3 of the
        image's own spread after 300 iterations per scale (the paper's reconstruction loss at
        alpha 10; an untrained generator's is about the spread itself)."""
        image = _image_file(tmp_path / "i.png")
        document = _run(image, 300, lr_drop=1.0)
        document["training"]["critic_steps"] = 1
        config = gancore.parse_config(document, gancore.get_registry())
        generator = gancore.train(config, tmp_path / "run").generators["generator"]
        with torch.no_grad():
            rec = generator.reconstruct()
        real = generator.real(1)
        rmse = torch.sqrt(F.mse_loss(rec, real)).item()
        assert rmse < 0.3 * real.std().item(), (rmse, real.std().item())  # measured: 0.28


def _stage(section: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": section.name,
        "steps": section.steps,
        "options": dict(section.options),
    }
    if section.freeze:
        out["freeze"] = list(section.freeze)
    if section.lr:
        out["lr"] = dict(section.lr)
    if section.reset_optimizers:
        out["reset_optimizers"] = True
    return out


class TestData:
    def test_dataset_conforms(self, tmp_path: Path) -> None:
        dataset = gt.check_dataset(
            "single-image", {"image": str(_image_file(tmp_path / "i.png")), "max_size": 8}
        )
        assert dataset.shapes["x"] == (3, 6, 8)
        assert len(dataset) == 1

    def test_bundled_photo_and_errors(self, tmp_path: Path) -> None:
        coffee = load_image("skimage:coffee", 3)
        assert coffee.shape == (3, 400, 600)
        assert 0.0 <= coffee.min() <= coffee.max() <= 1.0
        with pytest.raises(
            ValueError,
            match=r"^data\.image: scikit-image has no sample image 'balloon'; its samples: astronaut, ",
        ):
            load_image("skimage:balloon", 3)
        with pytest.raises(ValueError, match=r"^data.image: no such file '/no/such.png'$"):
            load_image("/no/such.png", 3)

    def test_task_refuses_a_dataset_of_several_images(self, tmp_path: Path) -> None:
        with pytest.raises(gancore.ConfigError) as caught:
            gt.check_task(
                "singan", tmp_path / "run", data={"name": "digits", "resolution": 16, "limit": 8}
            )
        assert "task 'singan' learns one image; the dataset has 8 items" in str(caught.value)


class TestCommandLine:
    def test_train_and_sample(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """gan train on a run file; gan sample at the training size, from scale 1, and twice as
        wide; a wrong scale is a one-line error."""
        import tomli_w

        image = _image_file(tmp_path / "i.png")
        run_file = tmp_path / "run.toml"
        document = _run(image, 2, lr_drop=1.0)
        document["training"]["checkpoint_every"] = 4
        run_file.write_text(tomli_w.dumps(document))
        run_dir = tmp_path / "run"
        assert main(["train", str(run_file), "--run-dir", str(run_dir), "--progress", "lines"]) == 0
        assert main(["sample", str(run_dir), "--num", "4"]) == 0
        assert main(["sample", str(run_dir), "--num", "4", "--start-scale", "1"]) == 0
        assert main(["sample", str(run_dir), "--num", "2", "--size-factor", "1", "2"]) == 0
        out = capsys.readouterr().out
        assert "(2 samples of 12x32 px, 1 x 2 the training size)" in out
        with Image.open(run_dir / "samples" / "size-1x2-0.png") as picture:
            assert picture.width > picture.height
        assert main(["sample", str(run_dir), "--start-scale", "5"]) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(
            "error: --start-scale: expected a scale from 0 to 1 (the checkpoint has 2 trained "
            "scales; got 5)"
        )
        weights = load_file(
            str(run_dir / "checkpoints" / "step-0000004" / "generators.safetensors")
        )
        assert "generator.amplitudes" in weights
        assert "generator.real_1" in weights


@pytest.mark.slow
def test_two_processes_keep_one_model(tmp_path: Path) -> None:
    """Batch 2 over 2 gloo processes (one noise sample each, a scale added mid-run): both ranks
    end with the same weights, buffers (pyramid, amplitudes) included."""
    import tomli_w

    document = _run(_image_file(tmp_path / "i.png"), 6, lr_drop=0.5)
    document["training"]["batch_size"] = 2
    (tmp_path / "run.toml").write_text(tomli_w.dumps(document))
    env = {"GANCORE_LOAD_PLUGINS": "gan-wgan,gan-progressive"}
    rank0, rank1 = gt.train_processes(tmp_path / "run.toml", tmp_path / "two", env=env)
    assert "generators.generator.scales.1.tail.0.weight" in rank0
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key
