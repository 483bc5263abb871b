"""Loop seams that Lipschitz constraints need (gan-wgan), tested with stand-in components.

- ``setup_critic``: an optional method of a critic regularizer, called once on every critic when the
  run is built, before optimizers, Accelerate and checkpoints see it (spectral normalization).
- ``after_step`` runs after every critic optimizer step, lazy regularization steps included
  (weight clipping).
- ``TrainResult`` carries the trained, unwrapped networks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import attrs
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils import parametrize

import gancore
import gancore.testing
from gancore._train import build_run, train
from tests.conftest import TOY_CONFIG, load, write_toml


class _Scale(nn.Module):
    """A parametrization with a learnable factor: W -> scale * W."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.scale * weight


@attrs.frozen(kw_only=True)
class _ScaleFirstLayer:
    """Test regularizer: reparametrizes the critic's first Linear layer; no penalty."""

    player: ClassVar[str] = "critic"
    interval: ClassVar[int] = 1
    calls: ClassVar[list[str]] = []

    def setup_critic(self, critic: nn.Module) -> None:
        self.calls.append(type(critic).__name__)
        layer = next(m for m in critic.modules() if isinstance(m, nn.Linear))
        parametrize.register_parametrization(layer, "weight", _Scale())

    def penalty(self, *args: object) -> None:
        return None

    def after_step(self, critic: nn.Module) -> None:
        pass


@attrs.frozen(kw_only=True)
class _Clamp:
    """Test constraint: clamps every critic parameter to [-bound, bound] and counts its calls."""

    player: ClassVar[str] = "critic"
    interval: ClassVar[int] = 1
    calls: ClassVar[list[int]] = []

    bound: float = 0.05

    def penalty(self, *args: object) -> None:
        return None

    @torch.no_grad()
    def after_step(self, critic: nn.Module) -> None:
        self.calls.append(1)
        for p in critic.parameters():
            p.clamp_(-self.bound, self.bound)


def _registry_with(name: str, cls: Callable[..., object]) -> gancore.Registry:
    class Plugin:
        @gancore.hookimpl
        def gancore_register_regularizers(self, register: gancore.RegisterCallback) -> None:
            register(name, cls, description="Test regularizer.")

    registry, _ = gancore.load_registry(entry_points=False, plugins=[("seams", Plugin())])
    return registry


class TestSetupCritic:
    def test_runs_once_per_critic_before_the_optimizer(self, tmp_path: Path) -> None:
        """The critic is reparametrized before its optimizer exists, so the new parameter trains."""
        _ScaleFirstLayer.calls.clear()
        registry = _registry_with("scale-first", _ScaleFirstLayer)
        config = load(
            write_toml(tmp_path / "toy.toml", TOY_CONFIG),
            "regularizers=[{name='scale-first'}]",
            "run.steps=5",
            registry=registry,
        )
        result = train(config, tmp_path / "run", progress=False)
        assert _ScaleFirstLayer.calls == ["MLPCritic"]
        critic = result.critics["critic"]
        scale = critic.net[0].parametrizations.weight[0].scale  # type: ignore[index, union-attr]
        assert scale.item() != 1.0  # the critic optimizer updated it
        assert result.checkpoint is not None
        weights = load_file(str(result.checkpoint / "critics.safetensors"))
        assert any("parametrizations.weight.0.scale" in key for key in weights)

    def test_resume_rebuilds_the_same_critic(self, tmp_path: Path) -> None:
        """A run that reparametrizes its critic resumes from its own checkpoint."""
        registry = _registry_with("scale-first", _ScaleFirstLayer)
        config = load(
            write_toml(tmp_path / "toy.toml", TOY_CONFIG),
            "regularizers=[{name='scale-first'}]",
            "run.steps=6",
            "training.checkpoint_every=3",
            registry=registry,
        )
        first = gancore.testing.train_interrupted(config, tmp_path / "run", after=3)
        assert first.interrupted and first.step == 3
        second = train(config, tmp_path / "run", resume=True, progress=False)
        assert second.step == 6

    def test_build_run_applies_it_for_sample_and_eval(self, tmp_path: Path) -> None:
        """build_run, shared by train, sample and eval, applies setup_critic too."""
        registry = _registry_with("scale-first", _ScaleFirstLayer)
        config = load(
            write_toml(tmp_path / "toy.toml", TOY_CONFIG),
            "regularizers=[{name='scale-first'}]",
            registry=registry,
        )
        built = build_run(config)
        assert parametrize.is_parametrized(built.critics["critic"].net[0], "weight")  # type: ignore[index, arg-type]


class TestAfterStep:
    def test_follows_every_critic_step_lazy_steps_included(self, tmp_path: Path) -> None:
        """A constraint runs after the 4 critic updates and the 2 lazy R1 updates of 4 steps."""
        _Clamp.calls.clear()
        registry = _registry_with("clamp", _Clamp)
        config = load(
            write_toml(tmp_path / "toy.toml", TOY_CONFIG),
            "regularizers=[{name='clamp', bound=0.05}, {name='r1', gamma=100.0, interval=2}]",
            "training.critic_steps=1",
            "run.steps=4",
            "optimizers.critic.lr=0.1",
            registry=registry,
        )
        result = train(config, tmp_path / "run", progress=False)
        assert len(_Clamp.calls) == 6
        for tensor in result.critics["critic"].parameters():
            assert tensor.abs().max().item() <= 0.05 + 1e-7


class TestTrainResult:
    def test_carries_the_trained_networks(self, tmp_path: Path) -> None:
        """The result holds the unwrapped generator and critic with the checkpoint's weights."""
        config = load(write_toml(tmp_path / "toy.toml", TOY_CONFIG), "run.steps=3")
        result = train(config, tmp_path / "run", progress=False)
        assert set(result.generators) == {"generator"} and set(result.critics) == {"critic"}
        assert result.checkpoint is not None
        saved = load_file(str(result.checkpoint / "critics.safetensors"))
        for key, tensor in result.critics["critic"].state_dict().items():
            assert torch.equal(saved[f"critic.{key}"], tensor), key
