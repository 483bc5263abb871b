"""Every registration hook, exercised by an in-process plugin that registers a small real component.

Each test loads a registry with a plugin that implements one hook, finds the component by name with
its provider, description and options, names it in a run config, builds it and checks what it
computes on hand-written tensors. tests/test_docs.py requires a test here named after every hook.
"""

from __future__ import annotations

import argparse
import json
import math
import tomllib
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
import torch
from torch import nn

import gancore
from gancore import protocols
from gancore._cli import main
from gancore.builtin.augmenters import NoAugment
from gancore.metrics.extractors import build_extractor

PLUGIN = "demo"

# A run on 64 points of the ring with the built-in MLPs; tests replace the sections they exercise.
BASE_RUN = """
[data]
name = "toy2d"
size = 64

[generator]
name = "mlp"
latent_dim = 2
hidden = 8
depth = 1

[critic]
name = "mlp"
hidden = 8
depth = 1
"""


def load_demo(
    *hooks: Callable[..., None],
) -> tuple[gancore.Registry, gancore.PluginInfo]:
    """A registry of the built-ins and a plugin ``demo`` made of ``hooks`` (no entry points)."""
    module = types.ModuleType("demo_plugin")
    for hook in hooks:
        setattr(module, hook.__name__, hook)
    registry, infos = gancore.load_registry(entry_points=False, plugins=[(PLUGIN, module)], env={})
    info = infos[-1]
    assert (info.name, info.status, info.error) == (PLUGIN, "loaded", None)
    return registry, info


def run_config(registry: gancore.Registry, sections: str = "") -> gancore.RunConfig:
    """:data:`BASE_RUN` with the tables of ``sections`` added or replacing its own."""
    document = tomllib.loads(BASE_RUN) | tomllib.loads(sections)
    return gancore.parse_config(document, registry)


def assert_registered(
    registry: gancore.Registry,
    info: gancore.PluginInfo,
    kind: str,
    name: str,
    *,
    factory: Any,
    options: type,
    description: str,
) -> gancore.ComponentSpec:
    """The component is found by its short and qualified name, with the demo plugin's provenance."""
    spec = registry.get(kind, name)
    assert spec is registry.get(kind, f"{PLUGIN}:{name}")
    assert (spec.kind, spec.name, spec.provider) == (kind, name, PLUGIN)
    assert (spec.factory, spec.options, spec.description) == (factory, options, description)
    assert info.components == [(kind, name)]
    return spec


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The lines of a run's metrics.jsonl."""
    text = (run_dir / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def task_context(config: gancore.RunConfig) -> gancore.TaskBuildContext:
    return gancore.TaskBuildContext(config=config, dataset=config.data.build(None))


# -------------------------------------------------------------------------------------------------
# Small components, one per kind
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SummingGeneratorOptions:
    """Options of :class:`SummingGenerator`."""

    latent_dim: int = attrs.field(
        default=3, validator=attrs.validators.ge(1), metadata={"doc": "size of z; >= 1"}
    )
    gain: float = attrs.field(default=1.0, metadata={"doc": "initial value of the gain"})


class SummingGenerator(nn.Module):
    """Every output element is ``gain * sum(z)``: ``[N, latent_dim] -> [N, *data_shape]``."""

    def __init__(self, latent_dim: int, gain: float, data_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.data_shape = data_shape
        self.gain = nn.Parameter(torch.tensor(gain))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        total = self.gain * z.sum(dim=1)
        return total.reshape(-1, *[1] * len(self.data_shape)).expand(-1, *self.data_shape)


def build_summing_generator(
    options: SummingGeneratorOptions, context: gancore.BuildContext
) -> SummingGenerator:
    return SummingGenerator(options.latent_dim, options.gain, context.data_shape)


@attrs.frozen(kw_only=True)
class WeightedSumOptions:
    """Options of :class:`WeightedSumCritic`."""

    weight: float = attrs.field(default=1.0, metadata={"doc": "initial weight"})


class WeightedSumCritic(nn.Module):
    """``weight * sum(x)`` over every non-batch element: ``[N, ...] -> [N]``."""

    def __init__(self, weight: float, data_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.data_shape = data_shape
        self.weight = nn.Parameter(torch.tensor(weight))

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.weight * x.flatten(1).sum(dim=1)


def build_weighted_sum_critic(
    options: WeightedSumOptions, context: gancore.BuildContext
) -> WeightedSumCritic:
    return WeightedSumCritic(options.weight, context.data_shape)


@attrs.frozen(kw_only=True)
class MeanDifference:
    """Wasserstein-style loss: the critic minimises ``scale * (mean D(fake) - mean D(real))``."""

    scale: float = attrs.field(
        default=1.0, validator=attrs.validators.gt(0), metadata={"doc": "multiplier; > 0"}
    )

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return self.scale * (fake_scores.mean() - real_scores.mean())

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -self.scale * fake_scores.mean()


@attrs.frozen(kw_only=True)
class Drift:
    """``epsilon * E[D(x)^2]`` over real ``x`` (ProGAN's drift penalty)."""

    player: ClassVar[str] = "critic"

    epsilon: float = attrs.field(
        default=0.001, validator=attrs.validators.ge(0), metadata={"doc": "weight; >= 0"}
    )
    interval: int = attrs.field(
        default=1, validator=attrs.validators.ge(1), metadata={"doc": "critic steps; >= 1"}
    )

    def penalty(
        self,
        critic: Callable[..., torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        return self.epsilon * critic(real, *extra).square().mean()

    def after_step(self, critic: nn.Module) -> None:
        """A pure penalty."""


@attrs.frozen(kw_only=True)
class OutputEnergyOptions:
    """Options of :class:`OutputEnergy`."""

    weight: float = attrs.field(default=1.0, metadata={"doc": "weight"})
    interval: int = attrs.field(default=4, metadata={"doc": "generator steps between penalties"})


class OutputEnergy(nn.Module):
    """``weight * E[G(z)^2]``: a generator regularizer with a buffer counting its calls."""

    player = "generator"

    def __init__(self, weight: float, interval: int) -> None:
        super().__init__()
        self.weight = weight
        self.interval = interval
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def penalty(self, generator: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.weight * generator(inputs).square().mean()


def build_output_energy(
    options: OutputEnergyOptions, context: gancore.BuildContext
) -> OutputEnergy:
    return OutputEnergy(options.weight, options.interval)


@attrs.frozen(kw_only=True)
class ShiftOptions:
    """Options of :class:`Shift`."""

    offset: float = attrs.field(default=0.0, metadata={"doc": "added to every element"})


class Shift(nn.Module):
    """``x + offset``; remembers the last feedback in a buffer, so checkpoints carry it."""

    feedback_interval = 4

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset
        self.register_buffer("last_sign_mean", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.offset

    def feedback(self, real_sign_mean: float, images: int) -> None:
        self.last_sign_mean.fill_(real_sign_mean)


def build_shift(options: ShiftOptions, context: gancore.BuildContext) -> Shift:
    return Shift(options.offset)


@attrs.frozen(kw_only=True)
class RampOptions:
    """Options of :class:`Ramp`."""

    size: int = attrs.field(default=8, validator=attrs.validators.ge(1), metadata={"doc": "items"})
    dim: int = attrs.field(default=2, validator=attrs.validators.ge(1), metadata={"doc": "D"})


class Ramp:
    """Item ``i`` is the vector ``[i / size] * dim``: deterministic in the index."""

    def __init__(self, size: int, dim: int) -> None:
        self.size = size
        self.dim = dim
        self.shapes = {"x": (dim,)}

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(f"ramp: index {index} out of range for {self.size} items")
        return {"x": torch.full((self.dim,), index / self.size)}


def build_ramp(options: RampOptions, context: gancore.BuildContext) -> Ramp:
    # Datasets are built before anything knows a shape; the context carries only the registry.
    assert context.data_shape == () and context.registry is not None and context.path == "data"
    return Ramp(options.size, options.dim)


@attrs.frozen(kw_only=True)
class MeanMatching:
    """Unconditional GAN whose generator also matches the batch mean of the data."""

    weight: float = attrs.field(
        default=1.0, validator=attrs.validators.ge(0), metadata={"doc": "weight of the match"}
    )

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        return {"generator": context.build_generator()}, {"critic": context.build_critic()}

    def _fake(self, step: gancore.StepContext, num: int) -> torch.Tensor:
        z = step.latents(num, int(step.unwrap("generator").latent_dim))  # type: ignore[arg-type]
        step.record_generator_inputs("generator", z)
        return step.generators["generator"](z)

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        real = batch["x"]
        with torch.no_grad():
            fake = self._fake(step, real.shape[0])
        return step.critic_loss("critic", real, fake)

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        real = batch["x"]
        fake = self._fake(step, real.shape[0])
        matching = (fake.mean(dim=0) - real.mean(dim=0)).square().sum()
        step.log("loss/mean-matching", matching)
        return step.generator_loss("critic", fake) + self.weight * matching

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        dim = int(generators["generator"].latent_dim)  # type: ignore[arg-type]
        return {"z": torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"]))


@attrs.frozen(kw_only=True)
class MeanDistance:
    """Euclidean distance between the means of generated and real samples."""

    num_samples: int = attrs.field(default=8, metadata={"doc": "samples of each side"})
    batch_size: int = attrs.field(default=4, metadata={"doc": "samples per batch"})
    seed: int = attrs.field(default=0, metadata={"doc": "seed of both draws"})

    def evaluate(self, context: protocols.MetricContext) -> dict[str, Any]:
        def mean(batches: Iterator[torch.Tensor]) -> torch.Tensor:
            return torch.cat([b.double().flatten(1) for b in batches]).mean(dim=0)

        fake = mean(context.generate(self.num_samples, self.batch_size, self.seed))
        real = mean(context.real(self.num_samples, self.batch_size, self.seed))
        return {
            "mean-distance": float(torch.linalg.vector_norm(fake - real)),
            "protocol": {"num_samples": self.num_samples, "seed": self.seed},
        }


@attrs.frozen(kw_only=True)
class ChannelMeanOptions:
    """Options of :class:`ChannelMean`."""

    weights_path: str | None = attrs.field(default=None, metadata={"doc": "unused: no weights"})
    sha256: str | None = attrs.field(default=None, metadata={"doc": "unused: no weights"})


class ChannelMean(nn.Module):
    """Features = the mean of each channel: ``[N, C, H, W] -> [N, C]``."""

    input_size = 8
    resize_filter = "none"
    weights_sha256 = "no-weights"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))


def build_channel_mean(options: ChannelMeanOptions, context: None) -> ChannelMean:
    return ChannelMean()


class FixedContext:
    """A :class:`gancore.protocols.MetricContext` over two fixed tensors, in batches."""

    def __init__(self, generated: torch.Tensor, real: torch.Tensor) -> None:
        self.generated = generated
        self.real_samples = real
        self.dataset: Any = None
        self.device = torch.device("cpu")

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        yield from self.generated[:num].split(batch_size)

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        yield from self.real_samples[:num].split(batch_size)


# -------------------------------------------------------------------------------------------------
# Hook implementations
# -------------------------------------------------------------------------------------------------


@gancore.hookimpl
def gancore_register_generators(register: gancore.RegisterCallback) -> None:
    register(
        "summing",
        build_summing_generator,
        options=SummingGeneratorOptions,
        description="Every output element is gain * sum(z).",
    )


@gancore.hookimpl
def gancore_register_critics(register: gancore.RegisterCallback) -> None:
    register(
        "weighted-sum",
        build_weighted_sum_critic,
        options=WeightedSumOptions,
        description="Scores weight * sum(x).",
    )


@gancore.hookimpl
def gancore_register_losses(register: gancore.RegisterCallback) -> None:
    register("mean-difference", MeanDifference, description="Scaled mean score difference.")


@gancore.hookimpl
def gancore_register_regularizers(register: gancore.RegisterCallback) -> None:
    register("drift", Drift, description="Drift penalty epsilon * E[D(x)^2].")
    register(
        "output-energy",
        build_output_energy,
        options=OutputEnergyOptions,
        description="Generator penalty weight * E[G(z)^2].",
    )


@gancore.hookimpl
def gancore_register_augmenters(register: gancore.RegisterCallback) -> None:
    register("shift", build_shift, options=ShiftOptions, description="Adds a constant offset.")


@gancore.hookimpl
def gancore_register_datasets(register: gancore.RegisterCallback) -> None:
    register("ramp", build_ramp, options=RampOptions, description="Item i is [i / size] * dim.")


@gancore.hookimpl
def gancore_register_tasks(register: gancore.RegisterCallback) -> None:
    register("mean-matching", MeanMatching, description="Unconditional GAN plus mean matching.")


@gancore.hookimpl
def gancore_register_metrics(register: gancore.RegisterCallback) -> None:
    register("mean-distance", MeanDistance, description="Distance between sample means.")


@gancore.hookimpl
def gancore_register_extractors(register: gancore.RegisterCallback) -> None:
    register(
        "channel-mean",
        build_channel_mean,
        options=ChannelMeanOptions,
        description="Mean of each channel.",
    )


# -------------------------------------------------------------------------------------------------
# One test class per hook
# -------------------------------------------------------------------------------------------------


class TestRegisterGenerators:
    def test_gancore_register_generators_builds_for_the_data_shape(self) -> None:
        """A registered generator is configured by name, sized by the data and computes gain * sum(z)."""
        registry, info = load_demo(gancore_register_generators)
        assert_registered(
            registry,
            info,
            "generator",
            "summing",
            factory=build_summing_generator,
            options=SummingGeneratorOptions,
            description="Every output element is gain * sum(z).",
        )
        config = run_config(registry, '[generator]\nname = "summing"\nlatent_dim = 3\ngain = 0.5')
        assert config.generator is not None
        assert config.generator.name == "demo:summing"
        assert config.generator.options == SummingGeneratorOptions(latent_dim=3, gain=0.5)
        generator = task_context(config).build_generator()
        assert isinstance(generator, SummingGenerator)
        assert isinstance(generator, protocols.Generator)
        z = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
        # toy2d items are (2,): each row is 0.5 * sum(z) twice
        assert generator(z).tolist() == [[3.0, 3.0], [0.5, 0.5]]

    def test_gancore_register_generators_serves_the_core_task(self) -> None:
        """The built-in unconditional task builds the plugin's generator and samples from it."""
        registry, _ = load_demo(gancore_register_generators)
        config = run_config(registry, '[generator]\nname = "demo:summing"\nlatent_dim = 4')
        task = config.task.build(None)
        generators, critics = task.build(task_context(config))
        assert isinstance(generators["generator"], SummingGenerator)
        assert list(critics) == ["critic"]
        inputs = task.sample_inputs(generators, None, num=5, seed=0)
        assert inputs["z"].shape == (5, 4)
        grid = task.sample(generators, inputs)
        assert grid.images.shape == (5, 2)
        assert torch.equal(grid.images[:, 0], inputs["z"].sum(dim=1))


class TestRegisterCritics:
    def test_gancore_register_critics_scores_a_batch(self) -> None:
        """A registered critic is configured by name, built for the data and scores weight * sum(x)."""
        registry, info = load_demo(gancore_register_critics)
        assert_registered(
            registry,
            info,
            "critic",
            "weighted-sum",
            factory=build_weighted_sum_critic,
            options=WeightedSumOptions,
            description="Scores weight * sum(x).",
        )
        config = run_config(registry, '[critic]\nname = "weighted-sum"\nweight = 2')
        assert config.critic is not None
        assert config.critic.options == WeightedSumOptions(weight=2.0)
        critic = task_context(config).build_critic()
        assert isinstance(critic, WeightedSumCritic)
        assert isinstance(critic, protocols.Critic)
        assert critic.data_shape == (2,)
        scores = critic(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        assert scores.tolist() == [6.0, 14.0]

    def test_gancore_register_critics_factory_must_return_a_module(self) -> None:
        """A critic factory returning something else than a module is an error naming it."""

        @gancore.hookimpl
        def gancore_register_critics(register: gancore.RegisterCallback) -> None:
            register(
                "broken",
                lambda options, context: "not a module",
                options=WeightedSumOptions,
                description="Returns a string.",
            )

        registry, _ = load_demo(gancore_register_critics)
        config = run_config(registry, '[critic]\nname = "broken"')
        with pytest.raises(ValueError, match="factory returned str") as exc:
            task_context(config).build_critic()
        assert str(exc.value) == (
            "critic 'demo:broken': factory returned str, expected a torch.nn.Module"
        )


class TestRegisterLosses:
    def test_gancore_register_losses_computes_both_losses(self) -> None:
        """A loss that is its own options is structured from TOML and computes both terms."""
        registry, info = load_demo(gancore_register_losses)
        assert_registered(
            registry,
            info,
            "loss",
            "mean-difference",
            factory=MeanDifference,
            options=MeanDifference,
            description="Scaled mean score difference.",
        )
        config = run_config(registry, '[loss]\nname = "mean-difference"\nscale = 2')
        loss = config.loss.build(gancore.BuildContext(data_shape=(2,)))
        assert loss is config.loss.options
        assert loss == MeanDifference(scale=2.0)
        assert isinstance(loss, protocols.Loss)
        real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
        # 2 * (mean(fake) - mean(real)) = 2 * (-1 - 2); generator: -2 * mean(fake) = 2
        assert loss.critic_loss(real, fake).item() == -6.0
        assert loss.generator_loss(fake).item() == 2.0

    def test_gancore_register_losses_options_are_validated(self) -> None:
        """The loss's own validators check its TOML keys, with the key path."""
        registry, _ = load_demo(gancore_register_losses)
        with pytest.raises(gancore.ConfigError) as exc:
            run_config(registry, '[loss]\nname = "mean-difference"\nscale = 0\nscael = 1')
        assert exc.value.problems == [
            "loss.scael: unknown key (did you mean 'scale'?); loss 'mean-difference' accepts: "
            "scale",
            "loss.scale: 'scale' must be > 0 (got 0.0)",
        ]


class TestRegisterRegularizers:
    def test_gancore_register_regularizers_critic_penalty(self) -> None:
        """A critic regularizer is configured in [[regularizers]] and computes its penalty."""
        registry, info = load_demo(gancore_register_regularizers)
        spec = registry.get("regularizer", "drift")
        assert (spec.provider, spec.qualified_name) == (PLUGIN, "demo:drift")
        assert (spec.factory, spec.options) == (Drift, Drift)
        assert spec.description == "Drift penalty epsilon * E[D(x)^2]."
        assert info.components == [("regularizer", "drift"), ("regularizer", "output-energy")]
        config = run_config(registry, '[[regularizers]]\nname = "drift"\nepsilon = 0.5')
        (component,) = config.regularizers
        drift = component.build(gancore.BuildContext(data_shape=(2,)))
        assert drift == Drift(epsilon=0.5, interval=1)
        assert isinstance(drift, protocols.CriticRegularizer)
        real = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
        # scores 2 and 4: 0.5 * (4 + 16) / 2
        penalty = drift.penalty(lambda x: x.sum(dim=1), real, torch.zeros(2, 2), ())
        assert penalty.item() == 5.0

    def test_gancore_register_regularizers_generator_penalty(self) -> None:
        """A stateful generator regularizer is built by its factory and keeps its state in a buffer."""
        registry, _ = load_demo(gancore_register_regularizers)
        assert_options = registry.get("regularizer", "output-energy")
        assert (assert_options.factory, assert_options.options) == (
            build_output_energy,
            OutputEnergyOptions,
        )
        assert assert_options.description == "Generator penalty weight * E[G(z)^2]."
        config = run_config(registry, '[[regularizers]]\nname = "output-energy"\nweight = 0.1')
        energy = config.regularizers[0].build(gancore.BuildContext(data_shape=(2,)))
        assert isinstance(energy, OutputEnergy)
        assert isinstance(energy, protocols.GeneratorRegularizer)
        assert (energy.player, energy.interval) == ("generator", 4)
        # identity generator on [[1, 2], [3, 4]]: 0.1 * (1 + 4 + 9 + 16) / 4
        penalty = energy.penalty(nn.Identity(), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        assert penalty.item() == pytest.approx(0.75)
        assert energy.state_dict()["calls"].item() == 1


class TestRegisterAugmenters:
    def test_gancore_register_augmenters_is_differentiable_and_takes_feedback(self) -> None:
        """A stateful augmenter shifts its input, passes gradients and stores feedback in a buffer."""
        registry, info = load_demo(gancore_register_augmenters)
        assert_registered(
            registry,
            info,
            "augmenter",
            "shift",
            factory=build_shift,
            options=ShiftOptions,
            description="Adds a constant offset.",
        )
        config = run_config(registry, '[augmenter]\nname = "shift"\noffset = 0.25')
        augmenter = config.augmenter.build(gancore.BuildContext(data_shape=(1, 4, 4)))
        assert isinstance(augmenter, Shift)
        assert isinstance(augmenter, protocols.Augmenter)
        x = torch.zeros(2, 1, 4, 4, requires_grad=True)
        out = augmenter(x)
        assert torch.equal(out, torch.full((2, 1, 4, 4), 0.25))
        out.sum().backward()
        assert x.grad is not None
        assert torch.equal(x.grad, torch.ones(2, 1, 4, 4))
        augmenter.feedback(0.5, 64)
        assert augmenter.state_dict()["last_sign_mean"].item() == 0.5

    def test_gancore_register_augmenters_is_applied_by_the_step_context(self) -> None:
        """The loop's scorer runs every critic input through the configured augmenter."""
        registry, _ = load_demo(gancore_register_augmenters)
        config = run_config(registry, '[augmenter]\nname = "shift"\noffset = 1.0')
        step = gancore.StepContext(
            players={"generator": {}, "critic": {"critic": lambda x: x.sum(dim=1)}},
            modules={},
            loss=MeanDifference(),
            augmenter=config.augmenter.build(gancore.BuildContext(data_shape=(2,))),
            feedback=None,
            device=torch.device("cpu"),
            seed=0,
            rank=0,
            world_size=1,
        )
        # (0 + 1) + (2 + 1) = 4
        assert step.scorer("critic")(torch.tensor([[0.0, 2.0]])).tolist() == [4.0]


class TestRegisterDatasets:
    def test_gancore_register_datasets_items_and_shapes(self) -> None:
        """A registered dataset is built from [data] and yields deterministic dict items."""
        registry, info = load_demo(gancore_register_datasets)
        assert_registered(
            registry,
            info,
            "dataset",
            "ramp",
            factory=build_ramp,
            options=RampOptions,
            description="Item i is [i / size] * dim.",
        )
        config = run_config(registry, '[data]\nname = "ramp"\nsize = 4\ndim = 3')
        dataset = config.data.build(None)
        assert isinstance(dataset, protocols.Dataset)
        assert (len(dataset), dataset.shapes) == (4, {"x": (3,)})
        assert dataset[2]["x"].tolist() == [0.5, 0.5, 0.5]
        assert torch.equal(dataset[3]["x"], dataset[3]["x"])

    def test_gancore_register_datasets_sizes_the_networks(self) -> None:
        """The built-in networks take their size from the plugin dataset's shapes."""
        registry, _ = load_demo(gancore_register_datasets)
        config = run_config(registry, '[data]\nname = "ramp"\ndim = 5')
        context = task_context(config)
        generator = context.build_generator()
        critic = context.build_critic()
        fake = generator(torch.zeros(3, 2))
        assert fake.shape == (3, 5)
        assert critic(fake).shape[0] == 3


class TestRegisterTasks:
    def step_context(self, generator: nn.Module, critic: nn.Module) -> gancore.StepContext:
        step = gancore.StepContext(
            players={"generator": {"generator": generator}, "critic": {"critic": critic}},
            modules={"generator": generator, "critic": critic},
            loss=MeanDifference(),
            augmenter=NoAugment(),
            feedback=None,
            device=torch.device("cpu"),
            seed=0,
            rank=0,
            world_size=1,
        )
        step.begin(0, 0, 0)
        return step

    def test_gancore_register_tasks_steps_compute_the_losses(self) -> None:
        """A registered task builds its players and computes both steps' losses from a batch."""
        registry, info = load_demo(gancore_register_tasks, gancore_register_generators)
        spec = registry.get("task", "mean-matching")
        assert (spec.provider, spec.factory, spec.options) == (PLUGIN, MeanMatching, MeanMatching)
        assert spec.description == "Unconditional GAN plus mean matching."
        assert info.components == [("generator", "summing"), ("task", "mean-matching")]
        config = run_config(
            registry,
            '[task]\nname = "mean-matching"\nweight = 0.5\n'
            '[generator]\nname = "summing"\ngain = 0.0\n',
        )
        task = config.task.build(None)
        assert task == MeanMatching(weight=0.5)
        assert isinstance(task, protocols.Task)
        generators, critics = task.build(task_context(config))
        generator, critic = generators["generator"], critics["critic"]
        assert isinstance(generator, SummingGenerator)
        step = self.step_context(generator, critic)
        batch = {"x": torch.tensor([[1.0, 2.0], [3.0, 4.0]])}
        # gain 0: every fake is 0, so D(fake) = the critic's output for 0
        zero_score = critic(torch.zeros(1, 2)).mean()
        real_score = critic(batch["x"]).mean()
        critic_loss = task.critic_step(step, batch)
        assert critic_loss.item() == pytest.approx((zero_score - real_score).item())
        step.begin(1, 0, 0)
        # -mean D(0) + 0.5 * ||0 - [2, 3]||^2 = -D(0) + 6.5
        generator_loss = task.generator_step(step, batch)
        assert generator_loss.item() == pytest.approx(-zero_score.item() + 6.5)
        assert step.logs["loss/mean-matching"].item() == 13.0
        assert step.generator_inputs["generator"].shape == (2, 3)

    def test_gancore_register_tasks_trains_a_run(self, tmp_path: Path) -> None:
        """The loop trains a plugin task for two steps and logs what the task logs."""
        registry, _ = load_demo(gancore_register_tasks)
        config = run_config(
            registry,
            '[task]\nname = "mean-matching"\nweight = 0.5\n'
            "[run]\nsteps = 2\n[training]\nbatch_size = 8\nlog_every = 1\n"
            "sample_every = 0\ncheckpoint_every = 0\nnum_samples = 4\n",
        )
        result = gancore.train(config, tmp_path / "run", progress=False)
        assert (result.step, result.images_seen) == (2, 16)
        records = read_records(tmp_path / "run")
        logged = [r["loss/mean-matching"] for r in records if "loss/mean-matching" in r]
        assert len(logged) == 2 and all(math.isfinite(v) and v >= 0 for v in logged)
        resolved = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
        assert resolved["task"] == {"name": "demo:mean-matching", "weight": 0.5}


class TestRegisterMetrics:
    def test_gancore_register_metrics_evaluates_a_context(self) -> None:
        """A registered metric is configured in [[metrics]] and scores a context's samples."""
        registry, info = load_demo(gancore_register_metrics)
        assert_registered(
            registry,
            info,
            "metric",
            "mean-distance",
            factory=MeanDistance,
            options=MeanDistance,
            description="Distance between sample means.",
        )
        config = run_config(
            registry, '[[metrics]]\nname = "mean-distance"\nnum_samples = 4\nbatch_size = 3'
        )
        (component,) = config.metrics
        metric = component.build(gancore.BuildContext(data_shape=(2,)))
        assert metric == MeanDistance(num_samples=4, batch_size=3, seed=0)
        assert isinstance(metric, protocols.Metric)
        context = FixedContext(generated=torch.ones(6, 2), real=torch.zeros(6, 2))
        result = metric.evaluate(context)
        assert result == {
            "mean-distance": pytest.approx(math.sqrt(2.0)),
            "protocol": {"num_samples": 4, "seed": 0},
        }


class TestRegisterExtractors:
    def test_gancore_register_extractors_builds_by_name(self) -> None:
        """A registered extractor is built by name with its protocol attributes and frozen."""
        registry, info = load_demo(gancore_register_extractors)
        assert_registered(
            registry,
            info,
            "extractor",
            "channel-mean",
            factory=build_channel_mean,
            options=ChannelMeanOptions,
            description="Mean of each channel.",
        )
        gancore.reset_registry((registry, [info]))  # metrics look extractors up process-wide
        extractor = build_extractor("channel-mean")
        assert isinstance(extractor, ChannelMean)
        assert isinstance(extractor, protocols.FeatureExtractor)
        assert extractor.name == "channel-mean"
        assert not extractor.training
        images = torch.stack([torch.zeros(2, 8, 8), torch.ones(2, 8, 8)])
        images[:, 1] -= 0.5
        assert extractor(images).tolist() == [[0.0, -0.5], [1.0, 0.5]]

    def test_gancore_register_extractors_serves_the_fid_metric(self) -> None:
        """The built-in FID metric measures with the plugin extractor: a mean shift d gives 2 * d^2."""
        registry, info = load_demo(gancore_register_extractors)
        gancore.reset_registry((registry, [info]))
        config = run_config(
            registry,
            '[[metrics]]\nname = "fid"\nextractor = "channel-mean"\nnum_generated = 6\n'
            "num_real = 6\nbatch_size = 4\nquantize = false\ncache_reference = false\n",
        )
        metric = config.metrics[0].build(gancore.BuildContext(data_shape=(2, 8, 8)))
        real = torch.linspace(-0.5, 0.5, 6).reshape(6, 1, 1, 1) * torch.tensor([1.0, -2.0]).reshape(
            1, 2, 1, 1
        )
        real = real.expand(6, 2, 8, 8).contiguous()
        # same covariance, means shifted by 0.25 in both channels: FD = 2 * 0.25^2
        result = metric.evaluate(FixedContext(generated=real + 0.25, real=real))
        assert metric.value_keys() == ["fd-channel-mean"]
        assert result["fd-channel-mean"] == pytest.approx(0.125, abs=1e-6)
        assert result["protocol"]["extractor"] == "channel-mean"
        assert result["protocol"]["extractor_weights_sha256"] == "no-weights"


# -------------------------------------------------------------------------------------------------
# All hooks of one plugin in one run
# -------------------------------------------------------------------------------------------------

EVERY_HOOK = (
    gancore_register_generators,
    gancore_register_critics,
    gancore_register_losses,
    gancore_register_regularizers,
    gancore_register_augmenters,
    gancore_register_datasets,
    gancore_register_tasks,
    gancore_register_metrics,
    gancore_register_extractors,
)

EVERY_COMPONENT_RUN = """
[run]
steps = 4

[data]
name = "ramp"
size = 16

[task]
name = "mean-matching"

[generator]
name = "summing"

[critic]
name = "weighted-sum"

[loss]
name = "mean-difference"

[[regularizers]]
name = "drift"

[[regularizers]]
name = "output-energy"
interval = 2

[augmenter]
name = "shift"
offset = 0.1

[[metrics]]
name = "mean-distance"

[optimizers.generator]
name = "sgd"
lr = 0.01

[optimizers.critic]
name = "sgd"
lr = 0.01

[training]
batch_size = 4
log_every = 1
sample_every = 0
checkpoint_every = 0
num_samples = 4
best_metric = "mean-distance.mean-distance"
"""


class TestEveryHook:
    def test_one_plugin_implements_every_hook(self) -> None:
        """A plugin implementing all eleven hooks registers one component per kind (two
        regularizers), one command and four sample options."""
        hooks = (*EVERY_HOOK, gancore_register_commands, gancore_register_sample_options)
        registry, info = load_demo(*hooks)
        assert {hook.__name__ for hook in hooks} == {
            name for name in dir(gancore.hookspecs) if name.startswith("gancore_register_")
        }
        assert sorted(kind for kind, _ in info.components) == sorted(
            [*protocols.KINDS, "regularizer", "command", *["sample-option"] * 4]
        )
        assert list(registry.commands) == ["greet"]
        assert list(registry.sample_options) == ["--offset", "--offset-twice", "--mean", "--max"]
        assert {s.provider for s in registry.specs()} == {"gancore", PLUGIN}

    def test_a_run_made_only_of_plugin_components_trains(self, tmp_path: Path) -> None:
        """Dataset, task, networks, loss, both regularizers, augmenter and metric of a plugin train."""
        registry, _ = load_demo(*EVERY_HOOK)
        config = gancore.parse_config(tomllib.loads(EVERY_COMPONENT_RUN), registry)
        result = gancore.train(config, tmp_path / "run", progress=False)
        assert (result.step, result.images_seen) == (4, 16)
        assert isinstance(result.generators["generator"], SummingGenerator)
        assert isinstance(result.critics["critic"], WeightedSumCritic)
        assert math.isfinite(result.metrics["mean-distance.mean-distance"])
        assert result.metrics["mean-distance.protocol"]["num_samples"] == 8
        records = read_records(tmp_path / "run")
        assert any("reg/drift" in r for r in records)
        assert any("reg/output-energy" in r for r in records)


# -------------------------------------------------------------------------------------------------
# gancore_register_commands
# -------------------------------------------------------------------------------------------------


def _add_greet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--times", type=int, default=1)


def _greet(args: argparse.Namespace) -> int | None:
    if args.times < 1:
        raise gancore.ConfigError([f"--times: must be >= 1 (got {args.times})"])
    if args.name == "nobody":
        raise FileNotFoundError("no such person: 'nobody'")
    print("\n".join([f"hello {args.name}"] * args.times))
    return None if args.name != "error" else 3


@gancore.hookimpl
def gancore_register_commands(register: gancore.RegisterCommandCallback) -> None:
    register(
        "greet",
        _greet,
        configure=_add_greet_arguments,
        description="say hello to NAME, --times times",
    )


def _one_command(name: str, configure: Any = None) -> types.ModuleType:
    """A plugin module whose commands hook registers one command ``name``."""

    @gancore.hookimpl
    def gancore_register_commands(register: gancore.RegisterCommandCallback) -> None:
        register(name, lambda args: 0, configure=configure, description=f"the {name} command")

    module = types.ModuleType(f"command_{name}")
    module.gancore_register_commands = gancore_register_commands  # type: ignore[attr-defined]
    return module


class TestRegisterCommands:
    def test_gancore_register_commands_runs_through_gan(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`gan greet` parses the plugin's arguments and returns its status (None means 0)."""
        registry, info = load_demo(gancore_register_commands)
        assert info.components == [("command", "greet")]
        spec = registry.commands["greet"]
        assert (spec.provider, spec.description) == (PLUGIN, "say hello to NAME, --times times")
        gancore.reset_registry((registry, [info]))
        assert main(["greet", "ada", "--times", "2"]) == 0
        assert capsys.readouterr().out == "hello ada\nhello ada\n"
        assert main(["greet", "error"]) == 3
        with pytest.raises(SystemExit):
            main(["--help"])
        assert "greet" in capsys.readouterr().out

    def test_gancore_register_commands_user_mistakes_are_one_line(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """ConfigError and FileNotFoundError from a command are one `error:` line, exit 2."""
        registry, info = load_demo(gancore_register_commands)
        gancore.reset_registry((registry, [info]))
        assert main(["greet", "ada", "--times", "0"]) == 2
        assert capsys.readouterr().err == "error: --times: must be >= 1 (got 0)\n"
        assert main(["greet", "nobody"]) == 2
        assert capsys.readouterr().err == "error: no such person: 'nobody'\n"

    @pytest.mark.parametrize(
        ("first", "second", "error"),
        [
            (
                "train",
                None,
                "plugin 'a', hook gancore_register_commands: command 'train' is a built-in "
                "command of gan",
            ),
            (
                "Bad_Name",
                None,
                "plugin 'a', hook gancore_register_commands: command name must be lowercase "
                "kebab-case like 'translate' (got 'Bad_Name')",
            ),
            (
                "greet",
                "greet",
                "plugin 'b', hook gancore_register_commands: command 'greet' is already "
                "registered by plugin 'a'",
            ),
        ],
    )
    def test_gancore_register_commands_refuses_taken_names(
        self, first: str, second: str | None, error: str
    ) -> None:
        """A built-in command's name, a bad name or another plugin's command fails that plugin."""
        plugins = [("a", _one_command(first))]
        if second is not None:
            plugins.append(("b", _one_command(second)))
        with pytest.warns(gancore.PluginWarning) as caught:
            registry, infos = gancore.load_registry(entry_points=False, plugins=plugins, env={})
        failed = infos[-1]
        assert failed.status == "failed"
        assert failed.error == f"gancore_register_commands raised PluginError: {error}"
        assert len(caught) == 1
        assert sorted(c.provider for c in registry.commands.values()) == (
            ["a"] if second is not None else []
        )

    def test_gancore_register_commands_faulty_configure_is_left_out(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A command whose configure() raises is left out with a warning; gan still works."""

        def broken(parser: argparse.ArgumentParser) -> None:
            raise RuntimeError("boom")

        registry, infos = gancore.load_registry(
            entry_points=False, plugins=[("a", _one_command("shaky", broken))], env={}
        )
        gancore.reset_registry((registry, infos))
        with warnings.catch_warnings():  # let gan print the warning as users see it
            warnings.simplefilter("always")
            assert main(["plugins"]) == 0
        captured = capsys.readouterr()
        assert "  command: shaky" in captured.out
        assert captured.err == (
            "warning: plugin 'a': command 'shaky' could not add its arguments: RuntimeError: boom\n"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(SystemExit) as exc:
                main(["shaky"])
        assert exc.value.code == 2


# -------------------------------------------------------------------------------------------------
# gancore_register_sample_options
# -------------------------------------------------------------------------------------------------


class _Offset(nn.Module):
    """A generator whose samples are moved by ``offset``."""

    def __init__(self, generator: nn.Module, offset: float) -> None:
        super().__init__()
        self.generator, self.offset = generator, offset
        self.latent_dim = generator.latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z) + self.offset


def _offset(run: gancore.LoadedRun, args: argparse.Namespace) -> str:
    offset = args.offset * (2 if args.offset_twice else 1)
    run.generators["generator"] = _Offset(run.generators["generator"], offset)
    return f"offset {offset:g}"


def _statistic(which: str) -> Callable[[gancore.LoadedRun, argparse.Namespace], str]:
    def picture(run: gancore.LoadedRun, args: argparse.Namespace) -> str:
        samples = run.generate(args.num, args.seed)
        value = samples.mean() if which == "mean" else samples.max()
        return f"{which} of {args.num} samples: {float(value):.6f}"

    return picture


@gancore.hookimpl
def gancore_register_sample_options(register: gancore.RegisterSampleOptionCallback) -> None:
    register(
        "--offset",
        argument={"type": float, "metavar": "X"},
        help="move every sample by X",
        adjust=_offset,
    )
    register("--offset-twice", help="with --offset: move by 2 X", requires="--offset")
    register("--mean", help="print the mean of the samples instead", picture=_statistic("mean"))
    register("--max", help="print the largest coordinate instead", picture=_statistic("max"))


def _one_sample_option(flag: str, **kwargs: Any) -> types.ModuleType:
    """A plugin module whose sample options hook registers ``flag`` with ``kwargs``."""

    @gancore.hookimpl
    def gancore_register_sample_options(register: gancore.RegisterSampleOptionCallback) -> None:
        register(flag, **({"help": "an option"} | kwargs))

    module = types.ModuleType("sample_option")
    module.gancore_register_sample_options = gancore_register_sample_options  # type: ignore[attr-defined]
    return module


class TestRegisterSampleOptions:
    @pytest.fixture
    def run_dir(self, tmp_path: Path) -> Path:
        """A one-step run of BASE_RUN, with the demo's sample options as the process registry."""
        registry, info = load_demo(gancore_register_sample_options)
        gancore.reset_registry((registry, [info]))
        config = run_config(registry, "[run]\nsteps = 1\n[training]\nsample_every = 0")
        gancore.train(config, tmp_path / "run", progress=False)
        return tmp_path / "run"

    def test_gancore_register_sample_options_adjust_then_picture(
        self, run_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`gan sample` gets the options: adjustments apply (in order) before the picture."""
        registry = gancore.get_registry()
        option = registry.sample_options["--offset"]
        assert (option.provider, option.help, option.dest) == (
            PLUGIN,
            "move every sample by X",
            "offset",
        )
        run = gancore.load_run(run_dir)
        mean = float(run.generate(16, 0).mean())
        capsys.readouterr()
        assert main(["sample", str(run_dir), "--num", "16", "--mean"]) == 0
        assert capsys.readouterr().out == f"mean of 16 samples: {mean:.6f}\n"
        command = ["sample", str(run_dir), "--num", "16", "--offset", "1.5", "--offset-twice"]
        assert main([*command, "--mean"]) == 0
        assert capsys.readouterr().out == f"mean of 16 samples: {mean + 3:.6f}\n"
        out = run_dir / "offset.png"
        assert main([*command, "--out", str(out)]) == 0  # no picture option: the usual grid
        assert capsys.readouterr().out == f"wrote {out}\n" and out.is_file()
        with pytest.raises(SystemExit):
            main(["sample", "--help"])
        assert "move every sample by X [demo]" in capsys.readouterr().out

    def test_gancore_register_sample_options_user_mistakes_are_one_line(
        self, run_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing required flag and two pictures are one `error:` line, exit 2."""
        capsys.readouterr()
        assert main(["sample", str(run_dir), "--offset-twice"]) == 2
        assert capsys.readouterr().err == "error: --offset-twice: needs --offset X\n"
        assert main(["sample", str(run_dir), "--mean", "--max"]) == 2
        assert capsys.readouterr().err == (
            "error: --mean and --max: each draws the whole picture; give one\n"
        )

    def test_gancore_register_sample_options_absent_flag_is_unknown(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """Without the plugin that registers it, a flag is argparse's unknown argument, exit 2."""
        registry, infos = gancore.load_registry(entry_points=False, env={})
        gancore.reset_registry((registry, infos))
        with pytest.raises(SystemExit) as exc:
            main(["sample", str(tmp_path), "--truncation", "0.7"])
        assert exc.value.code == 2
        assert "unrecognized arguments: --truncation 0.7" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("flag", "kwargs", "error"),
        [
            ("--num", {}, "sample option '--num' is a built-in option of gan sample"),
            (
                "truncation",
                {},
                "a sample option is a kebab-case flag like '--truncation' (got 'truncation')",
            ),
            ("--x", {"help": "two\nlines"}, "sample option '--x': help must be one non-empty line"),
            (
                "--x",
                {"argument": {"dest": "y", "type": int}},
                "sample option '--x': argument may set action, type, choices, metavar, nargs, "
                "const (got dest)",
            ),
            (
                "--x",
                {"argument": {"nargs": 0}},
                "sample option '--x': argparse refused its argument: nargs for store actions "
                "must be != 0",
            ),
            (
                "--x",
                {"adjust": _offset, "picture": _statistic("mean")},
                "sample option '--x': give adjust or picture, not both",
            ),
        ],
    )
    def test_gancore_register_sample_options_refuses_bad_options(
        self, flag: str, kwargs: dict[str, Any], error: str
    ) -> None:
        """A built-in flag, a bad flag or help, an argparse spec it refuses fail the plugin."""
        plugins = [("a", _one_sample_option(flag, **kwargs))]
        with pytest.warns(gancore.PluginWarning):
            registry, infos = gancore.load_registry(entry_points=False, plugins=plugins, env={})
        prefix = "gancore_register_sample_options raised PluginError: plugin 'a', hook "
        assert infos[-1].error is not None  # argparse's own text may go on
        assert infos[-1].error.startswith(f"{prefix}gancore_register_sample_options: {error}")
        assert registry.sample_options == {}

    def test_gancore_register_sample_options_refuses_taken_flags(self) -> None:
        """A flag another plugin registered first fails the second plugin, naming the first."""
        plugins = [("a", _one_sample_option("--x")), ("b", _one_sample_option("--x"))]
        with pytest.warns(gancore.PluginWarning):
            registry, infos = gancore.load_registry(entry_points=False, plugins=plugins, env={})
        assert (infos[-1].name, infos[-1].status) == ("b", "failed")
        assert infos[-1].error is not None
        assert infos[-1].error.endswith("sample option '--x' is already registered by plugin 'a'")
        assert [o.provider for o in registry.sample_options.values()] == ["a"]
