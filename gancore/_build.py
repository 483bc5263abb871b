"""Building a run's components from its config (shared by train, sample and eval).

A task's networks are grouped into *players*: a group is the set of networks one optimizer
updates (``[optimizers.<group>]``), and each group is trained by one *phase* of an iteration (the
task method ``<phase>_step``). The classic GAN has two groups, ``generator`` and ``critic``, each
trained by its own phase; a task may add groups (InfoGAN's Q head, trained with the generator; a
VAE's encoder) or have no critic at all (a plain VAE). See docs/tasks.md, "Players".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import nn

from gancore._datarecord import RecordedData
from gancore._errors import ConfigError
from gancore._task import BuildContext, TaskBuildContext

if TYPE_CHECKING:
    from gancore._config import RunConfig
    from gancore.protocols import Augmenter, Dataset, Loss, Metric, Task

__all__ = [
    "DEFAULT_PLAYERS",
    "Built",
    "build_run",
    "flat_state",
    "load_flat_state",
    "reference_points",
    "task_players",
    "weights_group",
]

# group -> the phase that trains it, for tasks that declare nothing (the classic GAN)
DEFAULT_PLAYERS: Mapping[str, str] = {"critic": "critic", "generator": "generator"}


def task_players(task: Any) -> dict[str, str]:
    """A task's player groups and the phase training each: its ``players`` attribute, or
    :data:`DEFAULT_PLAYERS`. Phases run critic first, then generator, then the others in order."""
    declared = getattr(task, "players", None)
    return dict(declared) if declared is not None else dict(DEFAULT_PLAYERS)


def weights_group(group: str) -> str:
    """Name of a player group's weights in a checkpoint (``generators``, ``critics``, or the
    group's own name for other groups)."""
    return {"generator": "generators", "critic": "critics"}.get(group, group)


@attrs.define
class Built:
    """Everything built from a config, before Accelerate touches it."""

    dataset: Dataset
    task: Task
    players: dict[str, dict[str, nn.Module]]  # group -> player name -> module
    phases: dict[str, str]  # group -> the phase that trains it
    loss: Loss
    regularizers: list[tuple[str, Any]]  # (name, CriticRegularizer | GeneratorRegularizer)
    augmenter: Augmenter
    metrics: list[tuple[str, Metric]]

    @property
    def generators(self) -> dict[str, nn.Module]:
        return self.players.get("generator", {})

    @property
    def critics(self) -> dict[str, nn.Module]:
        return self.players.get("critic", {})


def _normalized_players(
    built: Any, declared: Mapping[str, str], task_name: str
) -> dict[str, dict[str, nn.Module]]:
    """``Task.build``'s result as group -> name -> module: a mapping by group, or the classic
    ``(generators, critics)`` pair."""
    if isinstance(built, tuple) and len(built) == 2:
        groups: dict[str, Any] = {"generator": built[0], "critic": built[1]}
    elif isinstance(built, Mapping):
        groups = dict(built)
    else:
        raise ValueError(
            f"task {task_name!r}: build() must return (generators, critics) or a mapping "
            f"group -> {{name: module}} (got {type(built).__name__})"
        )
    if not groups.get("critic"):
        groups.pop("critic", None)  # a task without a critic (a VAE) may return {} for it
    undeclared = sorted(set(groups) - set(declared))
    missing = sorted(set(declared) - set(groups))
    if undeclared or missing:
        raise ValueError(
            f"task {task_name!r}: build() returned player groups {sorted(groups)}, but the task "
            f"declares {sorted(declared)} (its 'players')"
        )
    seen: dict[str, str] = {}
    out: dict[str, dict[str, nn.Module]] = {}
    for group, modules in groups.items():
        for name, module in dict(modules).items():
            if name in seen:
                raise ValueError(
                    f"task {task_name!r}: player name {name!r} is used in groups {seen[name]!r} "
                    f"and {group!r}; names must be unique"
                )
            if not isinstance(module, nn.Module):
                raise ValueError(
                    f"task {task_name!r}: player {name!r} is a {type(module).__name__}, "
                    "expected a torch.nn.Module"
                )
            seen[name] = group
        out[group] = dict(modules)
    return out


def build_run(config: RunConfig, dataset: Dataset | None = None) -> Built:
    """Build the dataset, task, networks and the other components of ``config``; ``dataset``,
    when given, stands for ``[data]`` (a run's recorded data, when sampling without it).

    Networks are initialised from ``run.seed`` so every process builds identical weights.
    """
    torch.manual_seed(config.run.seed)
    if dataset is None:
        dataset = config.data.build(None)
    task = config.task.build(None)
    declared = task_players(task)
    players = _normalized_players(
        task.build(TaskBuildContext(config=config, dataset=dataset)),
        declared,
        config.task.spec.name,
    )
    # Components other than the networks learn the shape of the data's main sample, "x".
    shape = tuple(dataset.shapes["x"]) if "x" in dataset.shapes else ()
    context = BuildContext(data_shape=shape)
    regularizers = [(c.spec.name, c.build(context)) for c in config.regularizers]
    for name, reg in regularizers:
        player = getattr(reg, "player", None)
        if player not in ("critic", "generator"):
            raise ConfigError(
                [f"regularizer {name!r}: player must be 'critic' or 'generator' (got {player!r})"],
                config.source,
            )
        if player not in players:
            raise ConfigError(
                [
                    f"regularizers: {name!r} regularizes the {player}, and task "
                    f"{config.task.spec.name!r} has no {player}"
                ],
                config.source,
            )
        # Optional seam: a regularizer says now, not at its first lazy step, that it cannot
        # work on these networks (path length needs a generator with mapping and synthesis).
        check = getattr(reg, "check", None)
        if callable(check):
            try:
                check(players)
            except ValueError as exc:
                raise ConfigError([f"regularizers: {exc}"], config.source) from None
        # Optional seam: a critic regularizer may change each critic once, before optimizers,
        # Accelerate and checkpoints see it (spectral normalization reparametrizes weights).
        setup_critic = getattr(reg, "setup_critic", None)
        if player == "critic" and callable(setup_critic):
            for critic in players["critic"].values():
                setup_critic(critic)
    return Built(
        dataset=dataset,
        task=task,
        players=players,
        phases={group: declared[group] for group in players},
        loss=config.loss.build(context),
        regularizers=regularizers,
        augmenter=config.augmenter.build(context),
        metrics=[(c.spec.name, c.build(context)) for c in config.metrics],
    )


def flat_state(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """One state dict for several modules: keys ``<player>.<key>``."""
    return {f"{name}.{k}": t for name, m in modules.items() for k, t in m.state_dict().items()}


def load_flat_state(modules: Mapping[str, nn.Module], flat: Mapping[str, torch.Tensor]) -> None:
    """Load a :func:`flat_state` into ``modules`` (strict, module by module)."""
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict(
            {k[len(prefix) :]: t for k, t in flat.items() if k.startswith(prefix)}
        )


def reference_points(dataset: Dataset, seed: int, num: int = 2000) -> torch.Tensor | None:
    """Real points for scatter plots of 2-D data; ``None`` for images."""
    shape = dataset.shapes.get("x")
    if shape is None or len(shape) != 1 or isinstance(dataset, RecordedData):
        return None  # images, or recorded data without its points
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:num]
    get_batch = getattr(dataset, "get_batch", None)
    if callable(get_batch):
        return get_batch(order.tolist())["x"]
    return torch.stack([dataset[int(i)]["x"] for i in order])
