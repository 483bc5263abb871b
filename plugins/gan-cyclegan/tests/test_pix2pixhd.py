"""pix2pixHD: pyramid, feature matching, critics, generator levels, stages, resume, translate."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gan_cyclegan.networks import PatchGANCriticOptions
from gan_cyclegan.pix2pixhd import (
    FeaturePatchGANCritic,
    Pix2PixHD,
    Pix2PixHDGenerator,
    Pix2PixHDGeneratorOptions,
    Pix2PixHDOptions,
    build_pix2pixhd_critic,
    build_pix2pixhd_generator,
    downsample,
    feature_matching_loss,
    pyramid,
)
from gan_cyclegan.pix2pixhd_data import PALETTE, SyntheticScenes, SyntheticScenesOptions
from gan_cyclegan.translate import add_translate_arguments, run_translate
from PIL import Image
from safetensors.torch import load_file

import gancore
import gancore.testing

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

TINY = """
[run]
name = "tiny-hd"
seed = 0
steps = 8

[data]
name = "synthetic-scenes"
resolution = 32
size = 16

[task]
name = "pix2pixhd"
scales = 2
global_fraction = 0.5
local_fraction = 0.125

[generator]
name = "pix2pixhd"
channels = 4
max_channels = 8
downsamplings = 1
blocks = 1
local_blocks = 1

[critic]
name = "pix2pixhd"
layers = 1
channels = 4

[loss]
name = "least-squares"

[optimizers.generator]
lr = 2e-4
betas = [0.5, 0.999]

[optimizers.critic]
lr = 2e-4
betas = [0.5, 0.999]

[training]
batch_size = 2
log_every = 1
sample_every = 0
num_samples = 4
checkpoint_every = 1
keep_checkpoints = 20
"""


def _config(tmp_path: Path, *overrides: str) -> gancore.RunConfig:
    (tmp_path / "run.toml").write_text(TINY)
    return gancore.load_config(tmp_path / "run.toml", list(overrides))


def _generator(**options: Any) -> Pix2PixHDGenerator:
    torch.manual_seed(0)
    defaults: dict[str, Any] = {
        "channels": 4,
        "max_channels": 8,
        "downsamplings": 1,
        "blocks": 1,
        "local_blocks": 1,
    }
    return Pix2PixHDGenerator(3, 3, Pix2PixHDGeneratorOptions(**{**defaults, **options}))


def _critic(in_channels: int = 6, layers: int = 1) -> FeaturePatchGANCritic:
    torch.manual_seed(0)
    return FeaturePatchGANCritic(in_channels, PatchGANCriticOptions(layers=layers, channels=4))


class _Step:
    """The part of gancore.StepContext the task uses, with the critic loss of the run's loss."""

    def __init__(self, generator: Any, critics: dict[str, Any], level: str) -> None:
        self.generators = {"a_to_b": generator}
        self.critics = critics
        self.stage = SimpleNamespace(index=0, options={"level": level})
        self.loss = gancore.get_registry().get("loss", "least-squares").options()
        self.seen: dict[str, list[torch.Tensor]] = {}
        self.logged: dict[str, float] = {}

    def critic_loss(self, name: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        self.seen[name] = [real, fake]
        critic = self.critics[name]
        return self.loss.critic_loss(critic(real), critic(fake.detach()))

    def generator_loss(
        self, name: str, fake: torch.Tensor, real: torch.Tensor | None = None
    ) -> torch.Tensor:
        self.seen[name] = [fake]
        return self.loss.generator_loss(self.critics[name](fake))

    def unwrap(self, name: str) -> Any:
        return self.critics[name]

    def log(self, name: str, value: Any) -> None:
        self.logged[name] = float(torch.as_tensor(value).detach())


def _batch(side: int = 16, n: int = 2) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        "a": torch.rand(n, 3, side, side, generator=gen) * 2 - 1,
        "x": torch.rand(n, 3, side, side, generator=gen) * 2 - 1,
    }


class TestRegistration:
    def test_names(self) -> None:
        """The generator, critic, task and dataset are registered under 'pix2pixhd' and
        'synthetic-scenes'."""
        registry = gancore.get_registry()
        for kind in ("generator", "critic", "task"):
            assert registry.get(kind, "pix2pixhd").qualified_name == "gan-cyclegan:pix2pixhd"
        assert registry.get("dataset", "synthetic-scenes") is not None

    def test_options_round_trip(self) -> None:
        """Every component's options survive TOML and every option field is documented."""
        for kind, name in (
            ("task", "pix2pixhd"),
            ("generator", "pix2pixhd"),
            ("critic", "pix2pixhd"),
            ("dataset", "synthetic-scenes"),
        ):
            gancore.testing.check_options_roundtrip(name, kind=kind)


class TestPyramid:
    def test_downsample_known_values(self) -> None:
        """3x3 mean, stride 2, padding 1 left out: the corner output averages the 2x2 corner."""
        x = torch.arange(16.0).reshape(1, 1, 4, 4)
        out = downsample(x)
        assert out.shape == (1, 1, 2, 2)
        assert out[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)
        assert out[0, 0, 1, 1] == pytest.approx(x[0, 0, 1:4, 1:4].mean().item())
        assert out[0, 0, 0, 1] == pytest.approx(x[0, 0, 0:2, 1:4].mean().item())

    def test_odd_sizes_round_up(self) -> None:
        """A 5x5 image gives 3x3, 2x2 after it."""
        sizes = [t.shape[-1] for t in pyramid(torch.zeros(1, 2, 5, 5), 3)]
        assert sizes == [5, 3, 2]


class TestFeatureMatching:
    def test_known_answer(self) -> None:
        """Sum over critics and layers of the mean absolute difference."""
        real = [[torch.ones(2, 3), torch.zeros(4)], [torch.full((5,), 3.0)]]
        fake = [[torch.zeros(2, 3), torch.full((4,), -2.0)], [torch.full((5,), 2.5)]]
        assert feature_matching_loss(real, fake).item() == pytest.approx(1.0 + 2.0 + 0.5)

    def test_equals_formula_on_tiny_critics(self) -> None:
        """On two 1-layer critics at two scales, the loss equals Eq. 4 written out layer by
        layer (conv, LeakyReLU; conv, norm, LeakyReLU), and only fakes receive gradients."""
        critics = [_critic(), _critic()]
        real = torch.rand(2, 6, 16, 16) * 2 - 1
        fake = (torch.rand(2, 6, 16, 16) * 2 - 1).requires_grad_(True)
        expected = torch.zeros(())
        for k, critic in enumerate(critics):
            r, f = pyramid(real, 2)[k], pyramid(fake, 2)[k]
            net = critic.net
            for lo, hi in ((0, 2), (2, 5)):  # the LeakyReLU outputs of a 1-layer PatchGAN
                r, f = net[lo:hi](r), net[lo:hi](f)
                expected = expected + (r - f).abs().sum() / r.numel()
        got = feature_matching_loss(
            [c.layer_features(pyramid(real, 2)[k])[:-1] for k, c in enumerate(critics)],
            [c.layer_features(pyramid(fake, 2)[k])[:-1] for k, c in enumerate(critics)],
        )
        assert got.item() == pytest.approx(expected.item(), rel=1e-6)
        got.backward()
        assert fake.grad is not None
        assert fake.grad.abs().sum() > 0

    def test_real_features_are_detached(self) -> None:
        """No gradient reaches the real features."""
        r = torch.ones(3, requires_grad=True)
        feature_matching_loss([[r]], [[torch.zeros(3, requires_grad=True)]]).backward()
        assert r.grad is None


class TestCritic:
    def test_layer_features_end_with_the_scores(self) -> None:
        """layers + 1 activations, then the scores of forward()."""
        critic = _critic(layers=2)
        x = torch.rand(2, 6, 24, 24)
        features = critic.layer_features(x)
        assert len(features) == 4
        assert [f.shape[1] for f in features] == [4, 8, 16, 1]
        assert torch.equal(features[-1], critic(x))

    def test_conforms(self) -> None:
        """gancore's critic conformance checks pass."""
        gancore.testing.check_critic(
            "pix2pixhd", PatchGANCriticOptions(layers=1, channels=4), data_shape=(6, 16, 16)
        )

    def test_too_small(self) -> None:
        """Images smaller than the critic's field are refused with the numbers."""
        context = gancore.BuildContext(data_shape=(6, 8, 8))
        with pytest.raises(ValueError, match="too small for layers = 3"):
            build_pix2pixhd_critic(PatchGANCriticOptions(), context)


class TestGenerator:
    def test_conforms(self) -> None:
        """gancore's image-to-image generator checks pass."""
        options = Pix2PixHDGeneratorOptions(channels=4, max_channels=8, downsamplings=1, blocks=1)
        gancore.testing.check_generator(
            "pix2pixhd", options, data_shape=(3, 8, 8), input_shape=(3, 8, 8)
        )

    def test_paper_architecture_is_expressible(self) -> None:
        """The defaults are the paper's: G1 c7s1-64 ... d1024, 9 blocks; G2 c7s1-32, d64, 3."""
        options = Pix2PixHDGeneratorOptions()
        assert (options.channels, options.downsamplings, options.blocks) == (64, 4, 9)
        assert (options.max_channels, options.local_blocks) == (1024, 3)

    def test_local_front_end_is_added_to_global_features(self) -> None:
        """G2's residual blocks receive front(x) + G1.features(downsample(x))."""
        generator = _generator()
        x = torch.rand(2, 3, 16, 16) * 2 - 1
        seen: dict[str, torch.Tensor] = {}
        generator.local_enhancer.back.register_forward_pre_hook(
            lambda m, args: seen.update(back=args[0])
        )
        out = generator(x, level="joint")
        front = generator.local_enhancer.front(x)
        coarse = generator.global_generator.features(downsample(x))
        assert front.shape == coarse.shape == (2, 4, 8, 8)
        assert torch.allclose(seen["back"], front + coarse)
        assert out.shape == (2, 3, 16, 16)

    def test_levels(self) -> None:
        """'global' is G1 alone at the given size; 'local' leaves G1 without gradients;
        'joint' trains both; level None follows the buffer (G1 upsampled in 'global')."""
        generator = _generator()
        half = torch.rand(2, 3, 8, 8) * 2 - 1
        assert torch.equal(generator(half, level="global"), generator.global_generator(half))
        x = torch.rand(2, 3, 16, 16) * 2 - 1
        for level, g1_trains in (("local", False), ("joint", True)):
            generator.zero_grad(set_to_none=True)
            generator(x, level=level).mean().backward()
            g1 = [p.grad for p in generator.global_generator.body.parameters()]
            g2 = [p.grad for p in generator.local_enhancer.parameters()]
            assert all(g is not None for g in g2), level
            assert all((g is not None) == g1_trains for g in g1), level
        assert generator.level == "joint"
        with torch.no_grad():
            assert torch.equal(generator(x), generator(x, level="joint"))
            generator.set_level("global")
            small = generator.global_generator(downsample(x))
            expected = F.interpolate(small, size=(16, 16), mode="bilinear").clamp(-1, 1)
            assert torch.equal(generator(x), expected)
        assert int(generator.state_dict()["level_index"]) == 0

    def test_size_errors(self) -> None:
        """Sides not divisible by 2 ** (downsamplings + 1) are refused with the numbers."""
        context = gancore.BuildContext(data_shape=(3, 16, 16), input_shape=(3, 16, 16))
        with pytest.raises(ValueError, match=r"multiples of 2 \*\* \(downsamplings \+ 1\) = 32"):
            build_pix2pixhd_generator(Pix2PixHDGeneratorOptions(), context)


class TestTaskSteps:
    def _task_and_step(self, level: str, scales: int = 3) -> tuple[Pix2PixHD, _Step]:
        critics = {f"critic_{k}": _critic() for k in range(scales)}
        task = Pix2PixHD(Pix2PixHDOptions(scales=scales))
        return task, _Step(_generator(), critics, level)

    def test_critics_see_the_pyramid_of_the_pair(self) -> None:
        """Critic k receives avgpool^k of (a, x) and of (a, G(a)), concatenated in channels; the
        loss is the sum over critics of the run's least-squares critic loss."""
        task, step = self._task_and_step("joint")
        batch = _batch(32)
        loss = task.critic_step(step, batch)  # type: ignore[arg-type]
        with torch.no_grad():
            fake = step.generators["a_to_b"](batch["a"], level="joint")
        real_pair = torch.cat([batch["a"], batch["x"]], 1)
        fake_pair = torch.cat([batch["a"], fake], 1)
        expected = torch.zeros(())
        for k in range(3):
            real_k, fake_k = real_pair, fake_pair
            for _ in range(k):
                real_k = F.avg_pool2d(real_k, 3, 2, 1, count_include_pad=False)
                fake_k = F.avg_pool2d(fake_k, 3, 2, 1, count_include_pad=False)
            seen_real, seen_fake = step.seen[f"critic_{k}"]
            assert seen_real.shape == (2, 6, 32 // 2**k, 32 // 2**k)
            assert torch.equal(seen_real, real_k)
            assert torch.allclose(seen_fake, fake_k)
            critic = step.critics[f"critic_{k}"]
            lsgan = (
                0.5 * (critic(real_k) - 1).square().mean() + 0.5 * critic(fake_k).square().mean()
            )
            expected = expected + lsgan
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    def test_generator_loss_terms(self) -> None:
        """Generator loss = 1.0 * sum_k 0.5 (D_k(fake_k) - 1)^2 + 10 * feature matching."""
        task, step = self._task_and_step("joint", scales=2)
        batch = _batch(32)
        loss = task.generator_step(step, batch)  # type: ignore[arg-type]
        fake = step.generators["a_to_b"](batch["a"], level="joint")
        real_pairs = pyramid(torch.cat([batch["a"], batch["x"]], 1), 2)
        fake_pairs = pyramid(torch.cat([batch["a"], fake], 1), 2)
        critics = [step.critics[f"critic_{k}"] for k in range(2)]
        adversarial = sum(
            0.5 * (c(f) - 1).square().mean() for c, f in zip(critics, fake_pairs, strict=True)
        )
        matching = feature_matching_loss(
            [c.layer_features(r)[:-1] for c, r in zip(critics, real_pairs, strict=True)],
            [c.layer_features(f)[:-1] for c, f in zip(critics, fake_pairs, strict=True)],
        )
        assert step.logged["loss/feature_matching"] == pytest.approx(matching.item(), rel=1e-5)
        assert loss.item() == pytest.approx((adversarial + 10 * matching).item(), rel=1e-5)

    def test_perceptual_loss(self) -> None:
        """With an extractor, the perceptual term is the mean absolute difference of its
        features of G(a) and x, weighted perceptual_weight (here the bundled digits-classifier,
        standing in for the paper's VGG19)."""
        from gancore.metrics import build_extractor

        critics = {"critic_0": _critic()}
        options = Pix2PixHDOptions(scales=1, extractor="digits-classifier", perceptual_weight=3.0)
        task, step = Pix2PixHD(options), _Step(_generator(), critics, "joint")
        batch = _batch(32)
        loss = task.generator_step(step, batch)  # type: ignore[arg-type]
        extractor = build_extractor("digits-classifier")
        with torch.no_grad():
            fake = step.generators["a_to_b"](batch["a"], level="joint")
            expected = (extractor(fake) - extractor(batch["x"])).abs().mean().item()
        assert step.logged["loss/perceptual"] == pytest.approx(expected, rel=1e-5)
        plain = Pix2PixHD(Pix2PixHDOptions(scales=1))  # the same networks, no perceptual term
        without = plain.generator_step(_Step(_generator(), critics, "joint"), batch)  # type: ignore[arg-type]
        assert loss.item() - without.item() == pytest.approx(3.0 * expected, rel=1e-4)

    def test_global_stage_runs_g1_at_half_resolution(self) -> None:
        """At level 'global' G1 receives a downsampled by 2, and the critics half-size pairs."""
        task, step = self._task_and_step("global", scales=2)
        seen: dict[str, torch.Size] = {}
        g1 = step.generators["a_to_b"].global_generator
        g1.register_forward_pre_hook(lambda m, args: seen.update(g1=args[0].shape))
        step.generators["a_to_b"].local_enhancer.register_forward_pre_hook(
            lambda m, args: seen.update(g2=args[0].shape)
        )
        task.critic_step(step, _batch(32))  # type: ignore[arg-type]
        assert seen == {"g1": (2, 3, 16, 16)}  # G2 never runs
        assert step.seen["critic_0"][0].shape == (2, 6, 16, 16)
        assert step.seen["critic_1"][0].shape == (2, 6, 8, 8)


class TestTaskBuild:
    def test_planned_stages(self, tmp_path: Path) -> None:
        """global, local, joint with the fractions of run.steps; empty ones left out."""
        config = _config(tmp_path, "run.steps=100")
        task = Pix2PixHD(Pix2PixHDOptions(global_fraction=0.5, local_fraction=0.1))
        plan = task.plan_stages(config, None)
        assert [(s["name"], s["steps"]) for s in plan] == [
            ("global", 50),
            ("local", 10),
            ("joint", 40),
        ]
        assert [s["options"]["level"] for s in plan] == ["global", "local", "joint"]
        none_local = Pix2PixHD(Pix2PixHDOptions(global_fraction=0.3, local_fraction=0.0))
        assert [s["name"] for s in none_local.plan_stages(config, None)] == ["global", "joint"]

    def test_errors(self, tmp_path: Path) -> None:
        """A generator without levels, a critic without layer features and a bad stage level
        are one-line errors naming the component or key."""
        with pytest.raises(ValueError, match="generator must train coarse to fine"):
            _built_players(_config(tmp_path, "generator={name='resnet', blocks=1, channels=4}"))
        with pytest.raises(ValueError, match="layer_features"):
            _built_players(_config(tmp_path, "critic={name='patchgan', layers=1, channels=4}"))
        bad = "stages=[{steps=8, options={level='coarse'}}]"
        with pytest.raises(ValueError, match=r"stages\[0\]\.options\.level"):
            _built_players(_config(tmp_path, bad))
        with pytest.raises(ValueError, match="global_fraction"):
            Pix2PixHDOptions(global_fraction=0.8, local_fraction=0.5)

    def test_missing_extractor_weights(self, tmp_path: Path) -> None:
        """The perceptual loss's extractor fails at build when its weights file is absent."""
        missing = str(tmp_path / "nothing.pth")
        config = _config(
            tmp_path, "task.extractor='inception-v3'", f"task.weights_path='{missing}'"
        )
        with pytest.raises(FileNotFoundError, match=r"nothing\.pth"):
            _built_players(config)


class TestSyntheticScenes:
    def test_conforms(self) -> None:
        """gancore's dataset checks pass (shapes, range, reads alike, get_batch)."""
        gancore.testing.check_dataset(
            "synthetic-scenes", SyntheticScenesOptions(resolution=16, size=8)
        )

    def test_deterministic_and_split(self) -> None:
        """Item i is the same from two instances; held-out items differ from training ones."""
        one = SyntheticScenes(SyntheticScenesOptions(resolution=32, size=4))
        two = SyntheticScenes(SyntheticScenesOptions(resolution=32, size=4))
        held = SyntheticScenes(SyntheticScenesOptions(resolution=32, size=4, split="held-out"))
        for i in range(4):
            assert torch.equal(one[i]["x"], two[i]["x"])
            assert torch.equal(one[i]["a"], two[i]["a"])
            assert not torch.equal(one[i]["x"], held[i]["x"])

    def test_label_map_and_photo(self) -> None:
        """'a' holds palette colours only; 'x' varies within a class (not a per-pixel map)."""
        item = SyntheticScenes(SyntheticScenesOptions(resolution=64, size=1))[0]
        colours = {tuple(c) for c in item["a"].flatten(1).T.tolist()}
        assert colours <= set(PALETTE)
        background = (item["a"] == -1).all(0)
        assert item["x"][:, background].std(dim=1).min() > 0.05


def _trained(config: gancore.RunConfig, run_dir: Path) -> gancore.TrainResult:
    return gancore.train(config, run_dir, progress=False)


def _built_players(config: gancore.RunConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's networks at their initial weights, built as a run builds them."""
    torch.manual_seed(config.run.seed)
    dataset = config.data.build(None)
    task = config.task.build(None)
    players: tuple[dict[str, Any], dict[str, Any]] = task.build(
        gancore.TaskBuildContext(config=config, dataset=dataset)
    )
    return players


def _assert_same_checkpoints(a: Path, b: Path) -> None:
    for name in ("generators", "critics"):
        left = load_file(str(a / f"{name}.safetensors"))
        right = load_file(str(b / f"{name}.safetensors"))
        assert left.keys() == right.keys()
        for key in left:
            assert torch.equal(left[key], right[key]), key


class TestStages:
    @pytest.mark.slow
    def test_two_processes_through_every_stage(self, tmp_path: Path) -> None:
        """In 2 gloo processes the run passes global (G2 unused), local (G1 unused) and joint
        and both ranks end with the same weights: the task asks DistributedDataParallel to look
        for unused parameters (``find_unused_parameters``)."""
        (tmp_path / "run.toml").write_text(TINY)
        ranks = gancore.testing.train_processes(
            tmp_path / "run.toml",
            tmp_path / "two",
            overrides=["training.checkpoint_every=8"],
            env={"GANCORE_LOAD_PLUGINS": "gan-cyclegan"},
        )
        assert int(ranks[0]["generators.a_to_b.level_index"]) == 2  # ended in 'joint'
        for key in ranks[0]:
            assert torch.equal(ranks[0][key], ranks[1][key]), key

    @pytest.mark.slow
    def test_hand_over(self, tmp_path: Path) -> None:
        """Stage 'global' trains G1 only (G2 keeps its initial weights), 'local' trains G2 on
        the G1 it inherits (unchanged), 'joint' trains both; the level buffer follows."""
        run = tmp_path / "run"
        _trained(_config(tmp_path), run)
        steps = {
            s: load_file(str(run / "checkpoints" / f"step-{s:07d}" / "generators.safetensors"))
            for s in (1, 4, 5, 8)
        }
        g1 = [k for k in steps[1] if k.startswith("a_to_b.global_generator.")]
        g2 = [k for k in steps[1] if k.startswith("a_to_b.local_enhancer.")]
        built = _built_players(_config(tmp_path))  # the initial weights, from run.seed
        initial = {f"a_to_b.{k}": v for k, v in built[0]["a_to_b"].state_dict().items()}
        assert all(torch.equal(steps[4][k], initial[k]) for k in g2)
        assert not all(torch.equal(steps[4][k], initial[k]) for k in g1)
        assert all(torch.equal(steps[5][k], steps[4][k]) for k in g1)  # frozen in 'local'
        assert not all(torch.equal(steps[5][k], steps[4][k]) for k in g2)
        assert not all(torch.equal(steps[8][k], steps[5][k]) for k in g1)  # 'joint'
        assert [int(steps[s]["a_to_b.level_index"]) for s in (1, 4, 5, 8)] == [0, 0, 1, 2]
        # Each critic is a player of its own: the loop logs its losses through the run's loss.
        events = [
            json.loads(line)
            for line in (run / "metrics.jsonl").read_text().splitlines()
            if '"event": "train"' in line
        ]
        assert [e["stage"] for e in events] == [0, 0, 0, 0, 1, 2, 2, 2]
        for key in ("loss/critic/critic_1", "loss/generator/critic_1", "loss/feature_matching"):
            assert all(math.isfinite(e[key]) for e in events), key

    @pytest.mark.slow
    @pytest.mark.parametrize("after", [3, 4])
    def test_resume_across_the_boundary_is_exact(self, tmp_path: Path, after: int) -> None:
        """8 steps straight equal `after` + resume + the rest, across global -> local -> joint."""
        config = _config(tmp_path, "training.checkpoint_every=4")
        straight = _trained(config, tmp_path / "straight")
        gancore.testing.train_interrupted(config, tmp_path / "resumed", after=after)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        assert straight.step == resumed.step == 8
        assert straight.checkpoint is not None
        assert resumed.checkpoint is not None
        _assert_same_checkpoints(straight.checkpoint, resumed.checkpoint)

    @pytest.mark.slow
    def test_resume_is_exact_on_image_folders(self, tmp_path: Path) -> None:
        """On a 'paired' folder dataset (PNGs resized 40 -> 36, cropped to 32), 8 steps equal
        3 + resume + 5 across the stage boundary."""
        rng = np.random.default_rng(0)
        for folder in ("a", "b"):
            (tmp_path / folder).mkdir()
            for i in range(6):
                pixels = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels, mode="RGB").save(tmp_path / folder / f"{i:02d}.png")
        data = (
            f"data={{name='paired', a='{tmp_path / 'a'}', b='{tmp_path / 'b'}', "
            "resolution=32, load_size=36}"
        )
        config = _config(tmp_path, data, "training.checkpoint_every=4")
        straight = _trained(config, tmp_path / "straight")
        gancore.testing.train_interrupted(config, tmp_path / "resumed", after=3)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        assert straight.checkpoint is not None
        assert resumed.checkpoint is not None
        _assert_same_checkpoints(straight.checkpoint, resumed.checkpoint)


@pytest.mark.slow
def test_translate_a_pix2pixhd_run(tmp_path: Path) -> None:
    """`gan translate RUN` writes one translation per label map, equal to the generator's."""
    run = tmp_path / "run"
    _trained(_config(tmp_path, "run.steps=6", "training.sample_every=6"), run)
    assert (run / "samples" / "step-0000006.png").is_file()
    inputs = tmp_path / "in"
    inputs.mkdir()
    scenes = SyntheticScenes(SyntheticScenesOptions(resolution=32, size=2, split="held-out"))
    for i in range(2):
        pixels = ((scenes[i]["a"].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
        Image.fromarray(pixels, mode="RGB").save(inputs / f"scene{i}.png")
    parser = argparse.ArgumentParser()
    add_translate_arguments(parser)
    args = parser.parse_args([str(run), "--input", str(inputs), "--output", str(tmp_path / "out")])
    assert run_translate(args) == 0
    loaded = gancore.load_run(run)
    with Image.open(tmp_path / "out" / "scene0.png") as picture:
        written = torch.from_numpy(np.array(picture)).permute(2, 0, 1).float() / 127.5 - 1
    with torch.no_grad():
        expected = loaded.generators["a_to_b"](scenes[0]["a"][None])[0]
    assert written.shape == (3, 32, 32)
    assert (written - expected).abs().max() <= 1 / 127.5 + 1e-6


def test_example_validates() -> None:
    """examples/pix2pixhd-*.toml are valid run files of the pix2pixhd task."""
    examples = sorted(EXAMPLES.glob("pix2pixhd-*.toml"))
    assert examples
    for path in examples:
        assert gancore.load_config(path).task.name == "gan-cyclegan:pix2pixhd"


@pytest.mark.slow
def test_example_trains(tmp_path: Path) -> None:
    """examples/pix2pixhd-scenes.toml trains 4 steps as written (global then joint) and leaves
    a sample grid, metrics.jsonl and a checkpoint."""
    overrides = ["run.steps=4", "data.size=8", "training.sample_every=4", "training.log_every=2"]
    config = gancore.load_config(EXAMPLES / "pix2pixhd-scenes.toml", overrides)
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.step == 4
    assert (tmp_path / "run" / "samples" / "step-0000004.png").is_file()
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count('"event": "train"') == 2
    assert result.checkpoint is not None


@pytest.mark.slow
def test_training_lowers_held_out_l1(tmp_path: Path) -> None:
    """60 iterations on 32 px scenes lower the held-out L1 of the translations."""
    config = _config(
        tmp_path,
        "run.steps=60",
        "data.size=200",
        "training.checkpoint_every=60",
        "training.log_every=20",
        "training.batch_size=4",
        "generator.channels=8",
        "optimizers.generator.lr=1e-3",
    )
    held = SyntheticScenes(SyntheticScenesOptions(resolution=32, size=32, split="held-out"))
    batch = held.get_batch(range(32))

    def l1(generator: torch.nn.Module) -> float:
        with torch.no_grad():
            return float((generator(batch["a"]) - batch["x"]).abs().mean())

    before = l1(_built_players(config)[0]["a_to_b"].eval())
    _trained(config, tmp_path / "run")
    after = l1(gancore.load_run(tmp_path / "run").generators["a_to_b"])
    assert after < 0.8 * before, (before, after)
