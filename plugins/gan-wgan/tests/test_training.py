"""gan-wgan inside gancore's loop: any critic, critics with extra inputs, augmentation, examples,
and two gloo processes."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils import parametrize

import gancore
import gancore.testing as gt
from gancore.protocols import Dataset

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

# -------------------------------------------------------------------------------------------------
# A class-conditional task whose critic takes the label as an extra input
# -------------------------------------------------------------------------------------------------


class LabelledGenerator(nn.Module):
    """(z [N, 8], label [N]) -> 8x8 images in [-1, 1]."""

    latent_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8 + 10, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh())

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([z, F.one_hot(label.long(), 10).to(z.dtype)], dim=1)
        return self.net(inputs).view(-1, 1, 8, 8)


class LabelledCritic(nn.Module):
    """Projection critic: D(x, y) = head(h(x)) + <embed(y), h(x)>; refuses a missing label."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten()
        )
        self.head = nn.Linear(8 * 4 * 4, 1)
        self.embed = nn.Embedding(10, 8 * 4 * 4)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if len(extra) != 1 or extra[0].shape != (x.shape[0],):
            raise ValueError(f"labelled critic: expected one label per image (got {extra!r})")
        h = self.features(x)
        return self.head(h).squeeze(1) + (self.embed(extra[0].long()) * h).sum(dim=1)


@attrs.frozen(kw_only=True)
class LabelledTask:
    """Class-conditional digits: the label goes to the generator and, as an extra input, the
    critic."""

    def build(self, context: Any) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        return {"generator": LabelledGenerator()}, {"critic": LabelledCritic()}

    def critic_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        real, label = batch["x"], batch["label"]
        z = step.latents(real.shape[0], 8)
        with torch.no_grad():
            fake = step.generators["generator"](z, label)
        return step.critic_loss("critic", real, fake, label)

    def generator_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        label = batch["label"]
        z = step.latents(label.shape[0], 8)
        return step.generator_loss("critic", step.generators["generator"](z, label), label)

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Dataset, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        z = torch.randn(num, 8, generator=torch.Generator().manual_seed(seed))
        return {"z": z, "label": torch.arange(num) % 10}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"], inputs["label"]))


class _TaskPlugin:
    @gancore.hookimpl
    def gancore_register_tasks(self, register: gancore.RegisterCallback) -> None:
        register("labelled", LabelledTask, description="Test: class-conditional digits.")


def _registry_with_task() -> gancore.Registry:
    """gan-wgan and the in-process test task (the conftest lets only gan-wgan load)."""
    env = dict(os.environ) | {"GANCORE_LOAD_PLUGINS": "gan-wgan,labelled-task"}
    registry, _ = gancore.load_registry(plugins=[("labelled-task", _TaskPlugin())], env=env)
    return registry


LABELLED = """
[run]
name = "labelled"
seed = 0
steps = 4

[data]
name = "digits"
resolution = 8
limit = 64

[task]
name = "labelled"

[loss]
name = "wgan"

[augmenter]
name = "hflip"
p = 0.5

[optimizers.generator]
lr = 1e-3
betas = [0.0, 0.9]

[optimizers.critic]
lr = 1e-3
betas = [0.0, 0.9]

[training]
batch_size = 16
critic_steps = 2
log_every = 1
sample_every = 0
checkpoint_every = 0
"""


def _train(tmp_path: Path, text: str, *overrides: str) -> tuple[gancore.TrainResult, list[dict]]:
    registry = _registry_with_task()
    (tmp_path / "run.toml").write_text(text)
    config = gancore.load_config(tmp_path / "run.toml", list(overrides), registry=registry)
    result = gancore.train(config, tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if r["event"] == "train"]
    return result, records


class TestConditionalCriticUnderAugmentation:
    def test_penalties_reach_a_critic_with_extra_inputs(self, tmp_path: Path) -> None:
        """Every penalty, eager and lazy, calls the critic with its label and stays finite."""
        result, records = _train(
            tmp_path,
            LABELLED,
            "regularizers=[{name='wgan-gp'}, {name='wgan-gp', interval=2}, {name='wgan-lp'}, "
            "{name='dragan'}, {name='drift'}]",
        )
        assert result.step == 4
        last = records[-1]
        assert last["nonfinite_skipped"] == 0
        for key in ("reg/wgan-gp", "reg/wgan-lp", "reg/dragan", "reg/drift", "loss/critic"):
            assert math.isfinite(last[key]), key

    def test_constraints_on_a_critic_with_extra_inputs(self, tmp_path: Path) -> None:
        """Spectral norm wraps the conv, linear and embedding layers; clipping bounds them all."""
        result, _ = _train(
            tmp_path, LABELLED, "regularizers=[{name='spectral-norm'}, {name='weight-clip'}]"
        )
        critic = result.critics["critic"]
        for layer in (critic.features[0], critic.head, critic.embed):  # type: ignore[index]
            assert parametrize.is_parametrized(layer, "weight")
        for name, param in critic.named_parameters():
            assert param.abs().max().item() <= 0.01, name

    def test_spectral_norm_resumes_exactly(self, tmp_path: Path) -> None:
        """4 steps straight equal 2 + resume + 2: checkpoints carry the power-iteration vectors."""
        registry = _registry_with_task()
        (tmp_path / "run.toml").write_text(LABELLED)
        config = gancore.load_config(
            tmp_path / "run.toml",
            ["regularizers=[{name='spectral-norm'}, {name='wgan-gp'}]"],
            registry=registry,
        )
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        gancore.testing.train_interrupted(config, tmp_path / "resumed", after=2)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        assert straight.checkpoint is not None
        assert resumed.checkpoint is not None
        a = load_file(str(straight.checkpoint / "critics.safetensors"))
        b = load_file(str(resumed.checkpoint / "critics.safetensors"))
        assert any(key.endswith("_u") for key in a)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


class TestWeightClipInTheLoop:
    def test_mlp_critic_stays_clipped(self, tmp_path: Path) -> None:
        """Through the loop with RMSprop, every critic weight ends within [-c, c]."""
        registry, _ = gancore.load_registry()
        config = gancore.load_config(
            EXAMPLES / "wgan-clip-ring.toml",
            ["run.steps=3", "training.metrics_every=0", "metrics=[]", "optimizers.critic.lr=0.1"],
            registry=registry,
        )
        result = gancore.train(config, tmp_path / "run", progress=False)
        (clip,) = [r.options.clip for r in config.regularizers if r.spec.name == "weight-clip"]
        assert clip == 0.05  # the example's value
        for param in result.critics["critic"].parameters():
            assert param.abs().max() <= torch.tensor(clip, dtype=param.dtype)  # c in float32


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.glob("wgan-*.toml")) or ["(none found)"]
)
def test_example_trains(example: str, tmp_path: Path) -> None:
    """Each examples/wgan-*.toml trains for two steps as written (with short intervals)."""
    assert example != "(none found)"
    config = gancore.load_config(
        EXAMPLES / example,
        ["run.steps=2", "training.sample_every=0", "training.checkpoint_every=0", "metrics=[]"],
    )
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.step == 2


# -------------------------------------------------------------------------------------------------
# Two gloo processes on the CPU
# -------------------------------------------------------------------------------------------------

TOY = """
[run]
name = "toy-gp"
seed = 0
steps = 6

[data]
name = "toy2d"
mixture = "ring"
size = 2000

[generator]
name = "mlp"
latent_dim = 2
hidden = 32
depth = 2

[critic]
name = "mlp"
hidden = 32
depth = 2

[loss]
name = "wgan"

[[regularizers]]
name = "wgan-gp"

[[regularizers]]
name = "wgan-gp"
weight = 5.0
interval = 2

[[regularizers]]
name = "spectral-norm"

[optimizers.generator]
lr = 1e-3
betas = [0.0, 0.9]

[optimizers.critic]
lr = 1e-3
betas = [0.0, 0.9]

[training]
batch_size = 32
critic_steps = 2
log_every = 1
sample_every = 0
checkpoint_every = 0
"""


@pytest.mark.slow
@pytest.mark.distributed
class TestTwoProcesses:
    def test_gradient_penalty_under_two_gloo_processes(self, tmp_path: Path) -> None:
        """With a different interpolation draw on each rank, eager and lazy GP gradients are
        all-reduced: both ranks end with identical (spectrally normalized) critics."""
        (tmp_path / "toy.toml").write_text(TOY)
        rank0, rank1 = gt.train_processes(
            tmp_path / "toy.toml",
            tmp_path / "out",
            env={"GANCORE_LOAD_PLUGINS": "gan-wgan"},
            timeout=300,
        )
        assert rank0.keys() == rank1.keys()
        assert any("parametrizations.weight.original" in key for key in rank0)
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), key
        records = [
            json.loads(line)
            for line in (tmp_path / "out" / "run" / "metrics.jsonl").read_text().splitlines()
        ]
        last = [r for r in records if r["event"] == "train"][-1]
        assert last["step"] == 6
        assert last["nonfinite_skipped"] == 0
        assert math.isfinite(last["reg/wgan-gp"])
        assert last["reg/wgan-gp"] > 0
