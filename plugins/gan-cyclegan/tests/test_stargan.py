"""StarGAN: labels, losses, networks, datasets, the task's steps, training, resume and translate."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gan_cyclegan.stargan import (
    DomainCritic,
    Domains,
    StarGAN,
    StarGANCritic,
    StarGANCriticOptions,
    StarGANOptions,
    classification_loss,
    draw_targets,
    gradient_penalty,
    held_out_errors,
    with_labels,
)
from gan_cyclegan.stargan_data import DigitsDomains, read_attributes
from gan_cyclegan.translate import add_translate_arguments, run_translate
from PIL import Image
from safetensors.torch import load_file
from torch import nn

import gancore
import gancore.testing as gt

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "stargan-digits.toml"
NAMES = (
    ("generator", "stargan"),
    ("critic", "stargan"),
    ("task", "stargan"),
    ("dataset", "digits-domains"),
    ("dataset", "attribute-images"),
)
_TRAINED: dict[str, Path] = {}
SINGLE = Domains("single", ("a", "b", "c"))
MULTI = Domains("multi", ("smile", "glasses"))


def _data(**options: Any) -> Any:
    """A dataset built as a run builds it (through the run's registry)."""
    document = {"data": options}
    return gancore.parse_config(document, gancore.get_registry()).data.build(None)


def _digits(**options: Any) -> DigitsDomains:
    data: DigitsDomains = _data(name="digits-domains", resolution=8, **options)
    return data


TINY: dict[str, Any] = {
    "run": {"name": "tiny", "seed": 0, "steps": 8},
    "data": {"name": "digits-domains", "resolution": 8, "limit": 48},
    "task": {"name": "stargan", "target": "other"},
    "generator": {"name": "stargan", "channels": 4, "blocks": 1, "downsamplings": 1},
    "critic": {"name": "stargan", "channels": 4, "layers": 2},
    "loss": {"name": "non-saturating"},
    "optimizers": {
        "generator": {"lr": 1e-4, "betas": [0.5, 0.999], "schedule": "linear", "decay_start": 4},
        "critic": {"lr": 1e-4, "betas": [0.5, 0.999], "schedule": "linear", "decay_start": 4},
    },
    "training": {
        "batch_size": 4,
        "critic_steps": 2,
        "log_every": 4,
        "sample_every": 8,
        "num_samples": 4,
        "checkpoint_every": 4,
        "keep_checkpoints": 10,
    },
}


def _config(**sections: Any) -> gancore.RunConfig:
    document = {**TINY, **sections}
    return gancore.parse_config(document, gancore.get_registry())


# -------------------------------------------------------------------------------------------------
# Hand-built players
# -------------------------------------------------------------------------------------------------


class LabelRecorder(nn.Module):
    """A generator that returns its image channels scaled by a parameter and records the label
    maps it was given (the channels after the image's)."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.scale = nn.Parameter(torch.tensor(0.5))
        self.labels: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.labels.append(x[:, self.channels :, 0, 0].detach().clone())
        return self.scale * x[:, : self.channels]


class LinearCritic(StarGANCritic):
    """A StarGAN critic whose trunk is the identity and whose score map is a fixed 1x1 conv."""

    def __init__(self) -> None:
        super().__init__(1, (4, 4), StarGANCriticOptions(channels=1, layers=1))
        self.trunk = nn.Sequential(nn.Identity())
        self.feature_channels, self.feature_size = 1, (4, 4)
        self.adversarial = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.constant_(self.adversarial.weight, 0.5)


class Identity:
    """An augmenter that changes nothing."""

    feedback_interval = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def feedback(self, real_sign_mean: float, images: int) -> None:
        del real_sign_mean, images


def _loss(name: str) -> Any:
    registry, _ = gancore.load_registry()
    spec = registry.get("loss", name)
    return spec.build(spec.defaults())


def _step(generator: nn.Module, critic: nn.Module, loss: Any) -> gancore.StepContext:
    return gancore.StepContext(
        players={"generator": {"generator": generator}, "critic": {"critic": critic}},
        modules={"generator": generator, "critic": critic},
        loss=loss,
        augmenter=Identity(),  # type: ignore[arg-type]
        feedback=None,
        device=torch.device("cpu"),
        seed=0,
        rank=0,
        world_size=1,
    )


def _f(value: torch.Tensor) -> float:
    return float(value.detach())


def _task(domains: Domains, **options: Any) -> StarGAN:
    task = StarGAN(StarGANOptions(**options))
    task.domains = domains
    return task


# -------------------------------------------------------------------------------------------------
# Labels and losses
# -------------------------------------------------------------------------------------------------


class TestLabels:
    def test_replication_shapes(self) -> None:
        """Labels [N, K] become K constant maps after the image's C channels."""
        x = torch.randn(4, 3, 8, 8)
        c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
        out = with_labels(x, c)
        assert out.shape == (4, 5, 8, 8)
        assert torch.equal(out[:, :3], x)
        assert torch.equal(out[:, 3:], c[:, :, None, None].expand(4, 2, 8, 8))

    def test_one_hot_for_single_labels(self) -> None:
        """Single-label domains feed G a one-hot vector; attributes as they are."""
        assert torch.equal(SINGLE.vector(torch.tensor([2, 0])), torch.eye(3)[[2, 0]])
        assert torch.equal(MULTI.vector(torch.tensor([[1.0, 0.0]])), torch.tensor([[1.0, 0.0]]))

    def test_targets(self) -> None:
        """'other' never picks the source domain, flips exactly one attribute; 'shuffle' permutes
        the batch's labels; 'uniform' stays in range."""
        torch.manual_seed(0)
        source = torch.arange(60) % 3
        assert (draw_targets(SINGLE, source, "other") != source).all()
        assert sorted(draw_targets(SINGLE, source, "shuffle").tolist()) == sorted(source.tolist())
        assert set(draw_targets(SINGLE, source, "uniform").tolist()) == {0, 1, 2}
        attributes = torch.bernoulli(torch.full((60, 2), 0.5))
        flipped = draw_targets(MULTI, attributes, "other")
        assert torch.equal((flipped != attributes).sum(1), torch.ones(60, dtype=torch.long))


class TestClassificationLoss:
    def test_cross_entropy_by_hand(self) -> None:
        """Single labels: -log softmax(logits)[label], averaged over the batch."""
        logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        expected = (-math.log(math.exp(2) / (math.exp(2) + 2)) - math.log(1 / (2 + math.e))) / 2
        got = classification_loss(SINGLE, logits, torch.tensor([0, 2]))
        assert float(got) == pytest.approx(expected, rel=1e-6)

    def test_binary_cross_entropy_by_hand(self) -> None:
        """Attributes: BCE summed over attributes, averaged over the batch."""
        logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
        labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])

        def bce(logit: float, y: float) -> float:
            p = 1 / (1 + math.exp(-logit))
            return -(y * math.log(p) + (1 - y) * math.log(1 - p))

        expected = (bce(0, 1) + bce(2, 0) + bce(1, 1) + bce(-1, 1)) / 2
        got = classification_loss(MULTI, logits, labels)
        assert float(got) == pytest.approx(expected, rel=1e-6)


class TestGradientPenalty:
    def test_linear_critic(self) -> None:
        """D(x) = <w, x> has gradient w everywhere: the penalty is (||w|| - 1)^2."""
        w = torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(0))

        def critic(x: torch.Tensor) -> torch.Tensor:
            return (w * x).flatten(1).sum(1)

        real, fake = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
        expected = (w.norm() - 1).square()
        assert _f(gradient_penalty(critic, real, fake)) == pytest.approx(_f(expected), 1e-5)

    def test_score_map_is_averaged(self) -> None:
        """A patch critic's sample score is the mean of its map: a map of h*w copies of <w, x>
        gets the penalty of one copy."""
        w = torch.full((1, 1, 2, 2), 0.25)

        def critic(x: torch.Tensor) -> torch.Tensor:
            return (w * x).flatten(1).sum(1)[:, None, None, None].expand(-1, 1, 3, 3)

        real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
        assert _f(gradient_penalty(critic, real, fake)) == pytest.approx(0.25, rel=1e-5)


# -------------------------------------------------------------------------------------------------
# Networks
# -------------------------------------------------------------------------------------------------


class TestNetworks:
    @pytest.mark.parametrize("size", [8, 16, 32])
    def test_generator_conforms(self, size: int) -> None:
        """G maps image + K label maps to an image of the same size, in [-1, 1]."""
        generator = gt.check_generator(
            "stargan",
            {"channels": 4, "blocks": 1, "downsamplings": 2},
            data_shape=(3, size, size),
            input_shape=(3 + 4, size, size),
        )
        out = generator(torch.randn(2, 7, size, size))
        assert out.abs().max() <= 1

    def test_paper_generator_layout(self) -> None:
        """Defaults: 64 channels, two 4x4 stride-2 downsamplings, 6 blocks, affine instance norm."""
        registry, _ = gancore.load_registry()
        spec = registry.get("generator", "stargan")
        g = spec.build(
            spec.defaults(),
            gancore.BuildContext(data_shape=(3, 128, 128), input_shape=(8, 128, 128)),
        )
        convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
        assert convs[0].kernel_size == (7, 7)
        assert convs[0].out_channels == 64
        assert [c.out_channels for c in convs[1:3]] == [128, 256]
        assert convs[1].kernel_size == (4, 4)
        assert convs[1].stride == (2, 2)
        assert len(convs) == 3 + 2 * 6 + 1
        assert all(m.affine for m in g.modules() if isinstance(m, nn.InstanceNorm2d))

    @pytest.mark.parametrize(("size", "layers"), [(8, 2), (16, 3), (32, 4)])
    def test_critic_conforms_and_shapes(self, size: int, layers: int) -> None:
        """The score map is [N, 1, H / 2**layers, W / 2**layers]; with the domain head the logits
        are [N, K], read from the same forward pass."""
        body = gt.check_critic(
            "stargan", {"channels": 4, "layers": layers}, data_shape=(3, size, size)
        )
        assert isinstance(body, StarGANCritic)
        critic = DomainCritic(body, 5)
        critic.recorded = []
        x = torch.randn(2, 3, size, size)
        scores = critic(x)
        side = size >> layers
        assert scores.shape == (2, 1, side, side)
        assert torch.equal(scores, body(x))
        (logits,) = critic.recorded
        assert logits.shape == (2, 5)
        assert torch.allclose(logits, critic.classify(x))

    def test_paper_critic_layout(self) -> None:
        """Defaults at 128x128: 6 layers doubling from 64 to 2048, LeakyReLU 0.01, no norm, a 2x2
        score map and a 2x2-kernel domain head."""
        registry, _ = gancore.load_registry()
        spec = registry.get("critic", "stargan")
        body = spec.build(spec.defaults(), gancore.BuildContext(data_shape=(3, 128, 128)))
        widths = [m.out_channels for m in body.trunk if isinstance(m, nn.Conv2d)]
        assert widths == [64, 128, 256, 512, 1024, 2048]
        assert all(m.negative_slope == 0.01 for m in body.modules() if isinstance(m, nn.LeakyReLU))
        assert not any(isinstance(m, nn.InstanceNorm2d | nn.BatchNorm2d) for m in body.modules())
        assert DomainCritic(body, 5).head.kernel_size == (2, 2)

    def test_too_many_layers_is_an_error(self) -> None:
        """A critic deeper than the image allows says which layers value would fit."""
        registry, _ = gancore.load_registry()
        spec = registry.get("critic", "stargan")
        with pytest.raises(ValueError, match=r"critic\.layers <= 3"):
            spec.build(spec.defaults(), gancore.BuildContext(data_shape=(1, 8, 8)))


# -------------------------------------------------------------------------------------------------
# The task's steps
# -------------------------------------------------------------------------------------------------


class TestSteps:
    def test_generator_loss_terms_and_source_label(self) -> None:
        """Generator loss = adv + lambda_cls * CE(D_cls(G(x, c)), c) + lambda_rec * |G(G(x, c),
        c') - x|, with the reconstruction asked for the SOURCE label c'."""
        torch.manual_seed(0)
        generator, body = LabelRecorder(), LinearCritic()
        critic = DomainCritic(body, 3)
        task = _task(SINGLE, classification_weight=2.0, reconstruction_weight=7.0, target="other")
        x = torch.rand(4, 1, 4, 4) * 2 - 1
        source = torch.tensor([0, 1, 2, 0])
        step = _step(generator, critic, _loss("non-saturating"))
        total = task.generator_step(step, {"x": x, "label": source})
        first, second = generator.labels
        target = first.argmax(1)
        assert (target != source).all()
        assert torch.equal(second, SINGLE.vector(source))  # reconstruction: back to c'
        fake = 0.5 * x
        adversarial = nn.functional.softplus(-body(fake)).mean()
        classify = nn.functional.cross_entropy(critic.classify(fake), target)
        reconstruction = (0.25 * x - x).abs().mean()
        expected = adversarial + 2.0 * classify + 7.0 * reconstruction
        assert _f(total) == pytest.approx(_f(expected), rel=1e-5)
        assert float(step.logs["loss/reconstruction"]) == pytest.approx(_f(reconstruction))

    def test_critic_loss_terms(self) -> None:
        """Critic loss = L_D + lambda_cls * CE(D_cls(x), c') (+ the penalty, off here)."""
        torch.manual_seed(0)
        generator, body = LabelRecorder(), LinearCritic()
        critic = DomainCritic(body, 3)
        task = _task(SINGLE, classification_weight=3.0, gradient_penalty=0.0)
        x = torch.rand(4, 1, 4, 4) * 2 - 1
        source = torch.tensor([0, 1, 2, 0])
        total = task.critic_step(
            _step(generator, critic, _loss("non-saturating")), {"x": x, "label": source}
        )
        sp = nn.functional.softplus
        adversarial = sp(-body(x)).mean() + sp(body(0.5 * x)).mean()
        classify = nn.functional.cross_entropy(critic.classify(x), source)
        assert _f(total) == pytest.approx(_f(adversarial + 3.0 * classify), rel=1e-5)
        assert critic.recorded is None  # the head is off again for the penalties' passes

    def test_penalty_is_added(self) -> None:
        """With gradient_penalty = w, the critic loss grows by w times a logged penalty."""
        generator, critic = LabelRecorder(), DomainCritic(LinearCritic(), 3)
        batch = {"x": torch.rand(4, 1, 4, 4), "label": torch.tensor([0, 1, 2, 0])}
        losses = []
        for weight in (0.0, 5.0):
            torch.manual_seed(0)
            step = _step(generator, critic, _loss("non-saturating"))
            losses.append(_task(SINGLE, gradient_penalty=weight).critic_step(step, batch))
        penalty = float(step.logs["loss/gradient_penalty"])
        # the linear critic's gradient is 0.5/16 per pixel of a 4x4 image: norm 0.125
        assert penalty == pytest.approx((0.125 - 1) ** 2, rel=1e-5)
        assert _f(losses[1] - losses[0]) == pytest.approx(5.0 * penalty, rel=1e-5)

    def test_attribute_grid(self) -> None:
        """With attributes, the grid shows per row the input then each attribute flipped."""
        generator = LabelRecorder()
        task = _task(MULTI)
        source = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
        grid = task.sample(
            {"generator": generator}, {"x": torch.zeros(2, 1, 4, 4), "source": source}
        )
        assert grid.columns == 3
        assert grid.images.shape == (6, 1, 4, 4)
        assert torch.equal(generator.labels[0], torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        assert torch.equal(generator.labels[1], torch.tensor([[1.0, 1.0], [0.0, 1.0]]))


# -------------------------------------------------------------------------------------------------
# Datasets
# -------------------------------------------------------------------------------------------------


def _write_images(folder: Path, names: list[str], size: int = 10, mode: str = "RGB") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        shape = (size, size + 2, 3) if mode == "RGB" else (size, size + 2)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode).save(folder / name)


class TestAttributeImages:
    def test_items(self, tmp_path: Path) -> None:
        """Items are the images and their attributes as 0/1 floats (-1 reads as 0), read alike
        twice, cached or not."""
        _write_images(tmp_path, ["a.png", "b.png"])
        (tmp_path / "attributes.csv").write_text("file,smile,hat\na.png,1,-1\nb.png,-1,1\n")
        dataset = gt.check_dataset(
            "attribute-images", {"path": str(tmp_path), "resolution": 8}, num_items=2
        )
        assert dataset.attributes == ("smile", "hat")
        assert torch.equal(dataset[0]["labels"], torch.tensor([1.0, 0.0]))
        fresh = _data(name="attribute-images", path=str(tmp_path), resolution=8, cache=False)
        assert torch.equal(fresh[1]["x"], dataset[1]["x"])

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("name,smile\na.png,1\n", "must start with a header 'file,attr1,attr2,...'"),
            ("file,smile\na.png,2\n", "line 2, column 'smile': expected 0/1 or -1/1 (got '2')"),
            ("file,smile\na.png\n", "line 2: expected 2 values (got 1)"),
            ("file,smile\nc.png,1\n", "are not in"),
            ("file,hat\na.png,1\n", "has no column 'smile' (columns: hat)"),
        ],
    )
    def test_errors_are_one_line(self, tmp_path: Path, text: str, message: str) -> None:
        """Bad CSVs and missing images are one-line errors naming the file, row and column."""
        _write_images(tmp_path, ["a.png"])
        (tmp_path / "attributes.csv").write_text(text)
        with pytest.raises((ValueError, FileNotFoundError)) as error:
            _data(name="attribute-images", path=str(tmp_path), attributes=["smile"])
        assert message in str(error.value)
        assert "\n" not in str(error.value)

    def test_missing_csv(self, tmp_path: Path) -> None:
        """No attributes file: the error names where it was looked for."""
        with pytest.raises(FileNotFoundError, match=r"attributes\.csv' does not exist"):
            read_attributes(tmp_path / "attributes.csv", None)


class TestDigitsDomains:
    def test_conforms(self) -> None:
        """Items are {'x', 'label'} with the domains as classes; get_batch equals the items."""
        gt.check_dataset("digits-domains", {"resolution": 8, "limit": 12})

    def test_training_split_is_disjoint_and_unpaired(self) -> None:
        """Each training digit is in exactly one domain, in turn; none is held out."""
        train, held = _digits(), _digits(split="held-out")
        assert train.classes == ("original", "inverted", "thick")
        assert len(set(train.digit_index.tolist())) == len(train) == 1797 - 297
        assert set(train.digit_index.tolist()).isdisjoint(held.digit_index.tolist())
        assert torch.equal(train.labels, torch.arange(len(train)) % 3)

    def test_only_one_domain(self) -> None:
        """only = NAME keeps that domain's training items, with their labels and all classes."""
        thick = _digits(only="thick")
        assert len(thick) == 500
        assert (thick.labels == 2).all()
        assert thick.classes == ("original", "inverted", "thick")
        with pytest.raises(gancore.ConfigError, match="'only' must be one of the domains"):
            _digits(only="bold")

    def test_held_out_ground_truth(self) -> None:
        """Held-out digit i in domain j is item i*k + j and ground_truth[j, i]; the styles are
        the known maps."""
        held = _digits(split="held-out", domains=["original", "inverted", "thick", "recolored"])
        assert held.shapes["x"] == (3, 8, 8)
        assert len(held) == 4 * 297
        truth = held.ground_truth
        assert torch.equal(held[5 * 4 + 1]["x"], truth[1, 5])
        assert torch.equal(truth[1], -truth[0])
        assert (truth[2] >= truth[0]).all()  # dilation only adds ink

    def test_perfect_translator_has_zero_error(self) -> None:
        """A generator that looks up the ground truth has a zero error matrix; the identity has
        zeros on the diagonal only."""
        held = _digits(split="held-out")
        truth = held.ground_truth  # [k, n, C, H, W]
        _k, n = truth.shape[:2]
        table = truth.flatten(0, 1).flatten(1)  # [k * n, C*H*W], row s * n + i

        def oracle(inputs: torch.Tensor) -> torch.Tensor:
            """Looks each input up among the held-out images and returns the answer."""
            x, target = inputs[:, :1], inputs[:, 1:, 0, 0].argmax(1)
            found = (x.flatten(1)[:, None] == table[None]).all(-1).float().argmax(1)
            return truth[target, found % n]

        errors = held_out_errors(oracle, held, batch_size=64)
        assert torch.equal(errors, torch.zeros(3, 3, dtype=torch.float64))
        identity = held_out_errors(lambda inputs: inputs[:, :1], held)
        assert (identity.diagonal() == 0).all()
        assert (identity + torch.eye(3) > 0.1).all()


# -------------------------------------------------------------------------------------------------
# Plugin, example and runs
# -------------------------------------------------------------------------------------------------


class TestRegistered:
    def test_components(self) -> None:
        """Each StarGAN component is registered by gan-cyclegan, documented, and survives TOML."""
        gt.check_plugin_components("gan-cyclegan", NAMES, exact=False)

    def test_example_validates(self) -> None:
        """examples/stargan-digits.toml is a valid run file with the paper's settings."""
        config = gancore.load_config(EXAMPLE)
        assert config.task.name == "gan-cyclegan:stargan"
        assert config.training.critic_steps == 5
        task = config.task.options
        assert (task.classification_weight, task.reconstruction_weight) == (1.0, 10.0)
        assert task.gradient_penalty == 10.0

    def test_task_needs_domains(self) -> None:
        """A dataset without labels is a one-line error naming the datasets to use."""
        config = _config(data={"name": "digits-translation", "resolution": 8, "limit": 4})
        task = config.task.build(None)
        with pytest.raises(ValueError, match="must give 'label'"):
            task.build(gancore.TaskBuildContext(config=config, dataset=config.data.build(None)))


@pytest.mark.slow
class TestTraining:
    def test_trains_with_attributes(self, tmp_path: Path) -> None:
        """A few steps on attribute-images: finite losses, a grid and a checkpoint."""
        _write_images(tmp_path / "faces", [f"{i}.png" for i in range(8)], mode="L")
        rows = "".join(f"{i}.png,{i % 2},{(i // 2) % 2}\n" for i in range(8))
        (tmp_path / "faces" / "attributes.csv").write_text("file,smile,hat\n" + rows)
        data = {"name": "attribute-images", "path": str(tmp_path / "faces"), "resolution": 8}
        document = {**TINY, "data": {**data, "channels": 1}, "task": {"name": "stargan"}}
        document["run"] = {**TINY["run"], "steps": 4}
        gt.check_training(document, tmp_path / "run")

    def test_resume_is_exact_on_an_image_folder(self, tmp_path: Path) -> None:
        """8 steps straight equal 4 + resume + 4 on image-folder class subfolders: weights of G
        and D (with its domain head) bit for bit."""
        for j, domain in enumerate(("cats", "dogs", "owls")):
            _write_images(tmp_path / "data" / domain, [f"{j}{i}.png" for i in range(5)])
        data = {
            "name": "image-folder",
            "path": str(tmp_path / "data"),
            "labels": "subfolders",
            "resolution": 8,
            "channels": 3,
        }
        config = _config(data=data, task={"name": "stargan", "target": "shuffle"})
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        gt.train_interrupted(config, tmp_path / "resumed", after=4)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        assert straight.checkpoint is not None
        assert resumed.checkpoint is not None
        assert straight.checkpoint.name == resumed.checkpoint.name == "step-0000008"
        for name in ("generators", "critics"):
            a = load_file(str(straight.checkpoint / f"{name}.safetensors"))
            b = load_file(str(resumed.checkpoint / f"{name}.safetensors"))
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), key
        assert "critic.head.weight" in a

    def test_learns_the_translations(self, tmp_path: Path) -> None:
        """400 iterations of the example (2 critic steps each) cut the held-out error over the 6
        translations below the untrained generator's and well below the identity's."""
        torch.set_num_threads(1)
        config = gancore.load_config(
            EXAMPLE,
            [
                "run.steps=400",
                "training.critic_steps=2",
                "training.sample_every=0",
                "training.checkpoint_every=0",
                "optimizers.generator.decay_start=200",
                "optimizers.critic.decay_start=200",
            ],
        )
        held = _data(name="digits-domains", resolution=16, split="held-out")
        torch.manual_seed(0)
        dataset = config.data.build(None)
        untrained = config.task.build(None).build(
            gancore.TaskBuildContext(config=config, dataset=dataset)
        )[0]["generator"]
        off = ~torch.eye(3, dtype=torch.bool)
        before = held_out_errors(untrained.eval(), held)[off].mean()
        result = gancore.train(config, tmp_path / "run", progress=False)
        errors = held_out_errors(result.generators["generator"].eval(), held)
        identity = held_out_errors(lambda inputs: inputs[:, :1], held)[off].mean()
        assert errors[off].mean() < 0.8 * before
        assert errors[off].mean() < 0.6 * identity


@pytest.mark.slow
class TestTranslate:
    @pytest.fixture
    def run_dir(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A 2-step run on digits-domains, trained once for the class."""
        if "translate" not in _TRAINED:
            tmp = tmp_path_factory.mktemp("stargan-translate")
            config = _config(run={**TINY["run"], "steps": 2})
            gancore.train(config, tmp / "run", progress=False)
            _TRAINED["translate"] = tmp / "run"
        return _TRAINED["translate"]

    def _args(self, *argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        add_translate_arguments(parser)
        return parser.parse_args(list(argv))

    def test_writes_files_and_grid(self, run_dir: Path, tmp_path: Path) -> None:
        """Two targets: one file per (input, target) in a folder per target, and grid.png with a
        row per input and columns input + targets; the file is G(x, c) to 1/255."""
        _write_images(tmp_path / "in", ["p.png", "q.png"], size=12, mode="L")
        out = tmp_path / "out"
        args = self._args(
            str(run_dir),
            "--to",
            "inverted",
            "--to",
            "thick",
            "--input",
            str(tmp_path / "in"),
            "--output",
            str(out),
        )
        assert run_translate(args) == 0
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
            "grid.png",
            "inverted/p.png",
            "inverted/q.png",
            "thick/p.png",
            "thick/q.png",
        ]
        with Image.open(out / "grid.png") as grid:
            assert 2 * grid.size[0] == 3 * grid.size[1]  # 3 columns, 2 rows of equal cells
        loaded = gancore.load_run(run_dir)
        with Image.open(tmp_path / "in" / "p.png") as picture:
            x = torch.from_numpy(np.array(picture)).float()[None, None] / 127.5 - 1
        x = nn.functional.interpolate(x, size=(8, 8), mode="bicubic", antialias=True).clamp(-1, 1)
        c = torch.tensor([[0.0, 1.0, 0.0]])
        with torch.no_grad():
            expected = (loaded.generators["generator"](with_labels(x, c))[0, 0] + 1) * 127.5
        with Image.open(out / "inverted" / "p.png") as picture:
            got = torch.from_numpy(np.array(picture)).float()
        assert (got - expected.round()).abs().max() <= 1.0

    def test_unknown_domain(
        self, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown --to is one error line naming the domains, exit code 2; so is a StarGAN run
        without --to."""
        from gancore._cli import main

        _write_images(tmp_path / "in", ["p.png"], mode="L")
        common = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")]
        assert main(["translate", str(run_dir), "--to", "invertd", *common]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            "error: --to: unknown domain 'invertd' (did you mean 'inverted'?); domains: "
            "original, inverted, thick"
        ]
        assert main(["translate", str(run_dir), *common]) == 2
        assert "give --to DOMAIN" in capsys.readouterr().err

    def test_to_needs_a_stargan_run(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--to on a CycleGAN run is one error line that points to --direction."""
        from gancore._cli import main

        document = {
            **TINY,
            "run": {**TINY["run"], "steps": 1},
            "data": {"name": "digits-translation", "resolution": 8, "limit": 8},
            "task": {"name": "cyclegan", "identity_weight": 0.0},
            "generator": {"name": "resnet", "channels": 4, "blocks": 1, "downsamplings": 1},
            "critic": {"name": "patchgan", "channels": 4, "layers": 1},
        }
        config = gancore.parse_config(document, gancore.get_registry())
        gancore.train(config, tmp_path / "run", progress=False)
        _write_images(tmp_path / "in", ["p.png"], mode="L")
        capsys.readouterr()  # the training's lines
        argv = [
            "translate",
            str(tmp_path / "run"),
            "--to",
            "thick",
            "--input",
            str(tmp_path / "in"),
        ]
        assert main([*argv, "--output", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert "is not a stargan run (task 'cyclegan'); use --direction" in err[0]
