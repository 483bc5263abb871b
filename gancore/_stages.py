"""Staged training: a run as an ordered list of stages.

A stage has a length, and what changes at its start: the data resolution, networks grown or added
(the task's ``begin_stage``), modules frozen, optimizers reset, learning rates, and a blend factor
``alpha`` that ramps from 0 to 1 over part of the stage (PGGAN's fade-in; Karras et al. 2018).
The stage is loop state, so checkpoints carry it and a resumed run rebuilds the networks of its
stage before loading their weights (docs/training.md, "Stages").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gancore._errors import ConfigError
from gancore._task import mix_seed

if TYPE_CHECKING:
    from gancore._config import RunConfig, StageSection

__all__ = [
    "Stage",
    "StageData",
    "check_stage_names",
    "enter_stage",
    "freeze_modules",
    "planned_stages",
    "resize_batch",
    "stage_schedule",
]


@attrs.frozen(kw_only=True)
class Stage:
    """A stage as the loop runs it: its place, its iterations ``[start, end)`` and its options.

    Given to a task's optional ``begin_stage(stage, players)``, and to every step as
    ``step.stage`` (with ``step.alpha``, the blend factor of the current iteration).
    """

    index: int
    name: str
    start: int  # first iteration of the stage
    end: int  # the iteration after its last
    resolution: int | None = None
    batch_size: int = 1  # global batch size of the stage's real batches
    fade_in: float = 0.0
    train: tuple[str, ...] = ()
    freeze: tuple[str, ...] = ()
    reset_optimizers: bool = False
    lr: Mapping[str, float] = attrs.field(factory=dict)
    options: Mapping[str, Any] = attrs.field(factory=dict)

    def alpha(self, iteration: int) -> float:
        """Blend factor at ``iteration``: 0 -> 1 linearly over the first ``fade_in`` of the
        stage, then 1 (always 1 without a fade-in)."""
        if self.fade_in <= 0:
            return 1.0
        span = self.fade_in * (self.end - self.start)
        return min(1.0, max(0.0, (iteration - self.start) / span))

    def trains(self, group: str) -> bool:
        return not self.train or group in self.train


def stage_schedule(config: RunConfig) -> list[Stage]:
    """The run's stages with their iteration ranges; one stage spanning the run if none are set.

    Lengths in images become whole iterations of ``batch_size * critic_steps`` images, with the
    stage's batch size (``training.batch_size`` unless the stage sets its own). The last stage
    runs until ``run.steps``; a stage that would start at or after it is a config error.
    """
    sections: Sequence[StageSection] = config.stages
    steps = config.run.steps
    default_batch = config.training.batch_size
    if not sections:
        return [Stage(index=0, name="stage-0", start=0, end=steps, batch_size=default_batch)]
    stages: list[Stage] = []
    start = 0
    problems = []
    for index, section in enumerate(sections):
        last = index == len(sections) - 1
        batch_size = section.batch_size or default_batch
        per_iteration = batch_size * config.training.critic_steps
        if section.steps is not None:
            length: int | None = section.steps
        elif section.images is not None:
            length = math.ceil(section.images / per_iteration)
        else:
            length = None
            if not last:
                problems.append(
                    f"stages[{index}]: needs 'steps' or 'images' (only the last may omit them)"
                )
        if start >= steps:
            problems.append(
                f"stages[{index}]: starts at iteration {start}, at or after run.steps = {steps}"
            )
        end = steps if last else start + (length or 0)
        stages.append(
            Stage(
                index=index,
                name=section.name or f"stage-{index}",
                start=start,
                end=end,
                resolution=section.resolution,
                batch_size=batch_size,
                fade_in=section.fade_in,
                train=section.train,
                freeze=section.freeze,
                reset_optimizers=section.reset_optimizers,
                lr=dict(section.lr),
                options=dict(section.options),
            )
        )
        start = end
    if problems:
        raise ConfigError(problems, config.source)
    return stages


def planned_stages(config: RunConfig, task: Any, dataset: Any) -> RunConfig:
    """``config`` with the stages its task plans, when the run file has no ``[[stages]]``.

    A task whose stages follow from its data (SinGAN: one per scale of a pyramid that the image's
    size fixes) has ``plan_stages(config, dataset)``, returning stage tables as a run file would
    write them, each with its ``steps``. They replace the missing ``[[stages]]`` and their sum
    replaces ``run.steps``; the run directory's config.toml records both, so resuming, ``gan
    sample`` and ``gan eval`` see the same stages. Stages written in the run file win: the plan
    is not asked for.
    """
    from gancore._config import StageSection, structure_options

    plan = getattr(task, "plan_stages", None)
    if config.stages or not callable(plan):
        return config
    problems: list[str] = []
    sections = []
    for i, table in enumerate(plan(config, dataset)):
        section = structure_options(StageSection, table, f"stages[{i}]", problems, "a stage")
        if section is None:
            continue
        if section.steps is None:
            problems.append(f"stages[{i}]: a planned stage needs 'steps' (got {dict(table)!r})")
        sections.append(section)
    name = config.task.spec.name
    if problems or not sections:
        from gancore._errors import PluginError

        raise PluginError(
            f"task {name!r} planned invalid stages: {'; '.join(problems) or 'none at all'}"
        )
    steps = sum(section.steps or 0 for section in sections)
    return attrs.evolve(config, stages=tuple(sections), run=attrs.evolve(config.run, steps=steps))


def check_stage_names(
    stages: Sequence[Stage], players: Mapping[str, Mapping[str, nn.Module]], source: str | None
) -> None:
    """Before the first step: every group a stage trains or sets an lr for exists, and every
    frozen module names a player (modules below it may appear only when a stage grows them)."""
    names = sorted(n for group in players.values() for n in group)
    problems = []
    for stage in stages:
        for key, groups in (("train", stage.train), ("lr", list(stage.lr))):
            for group in groups:
                if group not in players:
                    problems.append(
                        f"stages[{stage.index}].{key}: no player group {group!r}; groups: "
                        f"{', '.join(sorted(players))}"
                    )
        for name in stage.freeze:
            if name.partition(".")[0] not in names:
                problems.append(
                    f"stages[{stage.index}].freeze: {name!r} names no player; players: "
                    f"{', '.join(names)}"
                )
    if problems:
        raise ConfigError(problems, source)


def freeze_modules(stage: Stage, modules: Mapping[str, nn.Module]) -> list[nn.Parameter]:
    """Switch off ``requires_grad`` of every module the stage freezes; the frozen parameters.

    A name is a player (``generator``) or a dotted path below one (``generator.blocks.0``).
    """
    frozen: list[nn.Parameter] = []
    for name in stage.freeze:
        player, _, path = name.partition(".")
        if player not in modules:
            raise ConfigError(
                [
                    f"stages[{stage.index}].freeze: {name!r} names no player; players: "
                    f"{', '.join(sorted(modules))}"
                ]
            )
        try:
            module = modules[player].get_submodule(path) if path else modules[player]
        except AttributeError:
            raise ConfigError(
                [f"stages[{stage.index}].freeze: player {player!r} has no module {path!r}"]
            ) from None
        for p in module.parameters():
            p.requires_grad_(False)
            frozen.append(p)
    return frozen


def resize_batch(batch: dict[str, torch.Tensor], resolution: int | None) -> dict[str, torch.Tensor]:
    """The batch with its images ``x`` ``[N, C, H, W]`` at ``resolution`` (area averaging)."""
    x = batch.get("x")
    if resolution is None or x is None or x.dim() != 4 or x.shape[-1] == resolution:
        return batch
    mode = "area" if resolution < x.shape[-1] else "nearest"
    return {**batch, "x": F.interpolate(x, size=(resolution, resolution), mode=mode)}


class StageData:
    """A view of a dataset whose images ``"x"`` come at ``resolution`` x ``resolution`` (area
    averaging when shrinking), as a stage's training batches do: what metrics compare a stage's
    samples with. Every other attribute is the dataset's."""

    def __init__(self, dataset: Any, resolution: int) -> None:
        self.dataset, self.resolution = dataset, resolution
        shapes = dict(dataset.shapes)
        if len(shapes.get("x", ())) == 3:
            shapes["x"] = (shapes["x"][0], resolution, resolution)
        self.shapes = shapes

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.dataset[index]
        if "x" not in item or item["x"].dim() != 3:
            return dict(item)
        return {**item, "x": resize_batch({"x": item["x"][None]}, self.resolution)["x"][0]}

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        get = getattr(self.dataset, "get_batch", None)
        if callable(get):
            batch = dict(get(indices))
        else:
            items = [self.dataset[i] for i in indices]
            batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        return resize_batch(batch, self.resolution)

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "resolution", "shapes"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def enter_stage(
    stage: Stage, task: Any, players: dict[str, dict[str, nn.Module]], seed: int
) -> bool:
    """What the start of ``stage`` changes in the networks: the task's ``begin_stage(stage,
    players)`` (which may grow, add or replace modules in ``players`` in place), then the modules
    the stage freezes. True if anything may have changed.

    The task runs under a random stream of its own, seeded from the run seed and the stage: new
    layers are initialised identically on every process and on resume, and the training's random
    streams are untouched.
    """
    begin = getattr(task, "begin_stage", None)
    if callable(begin):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix_seed(seed, 0x57A6E, stage.index) % (2**63))
            begin(stage, players)
    modules = {name: m for group in players.values() for name, m in group.items()}
    frozen = freeze_modules(stage, modules)
    return callable(begin) or bool(frozen)
