"""Loading a trained run for sampling and evaluation (``gan sample``, ``gan eval``); the exported
generators of :mod:`gancore._export` are built the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from gancore._build import Built, build_run, load_flat_state, reference_points
from gancore._checkpoint import find_checkpoint, load_checkpoint
from gancore._classes import fixed_inputs
from gancore._config import RunConfig, load_config
from gancore._datarecord import DataUnavailableError, load_data_record
from gancore._errors import ConfigError
from gancore._stages import Stage, enter_stage, stage_schedule
from gancore.metrics.loop import LoopMetricContext, evaluate_metrics
from gancore.protocols import Dataset

__all__ = ["LoadedRun", "build_loaded", "load_run"]


@attrs.define
class LoadedRun:
    """A run's config, built components and generator weights from one checkpoint, or from a
    generator exported with ``gan export`` (:func:`gancore.load_generator`)."""

    config: RunConfig
    built: Built
    generators: dict[str, nn.Module]
    generator_kind: str  # "ema" or "raw"
    checkpoint: Path  # the checkpoint folder, or the exported .safetensors file
    device: torch.device
    # A staged run's stage at the checkpoint and its blend factor (None: the run has no stages).
    stage: Stage | None = None
    alpha: float = 1.0

    def stage_note(self, images: torch.Tensor) -> str | None:
        """``stage 8x8 (2 of 4), 8x8 px, alpha 0.25`` for a staged run's ``images`` ``[N, C, H, W]``
        (the alpha only during a fade-in); None for a run without stages."""
        if self.stage is None:
            return None
        count = len(self.config.stages)
        note = f"stage {self.stage.name} ({self.stage.index + 1} of {count})"
        if images.dim() == 4:
            note += f", {images.shape[-2]}x{images.shape[-1]} px"
        if self.alpha < 1.0:
            note += f", alpha {self.alpha:.2f}"
        return note

    def context(
        self, dataset: Dataset | None = None, label: int | None = None
    ) -> LoopMetricContext:
        """A metric context over this run's generators and ``dataset`` (default: the run's),
        restricted to class ``label`` when given."""
        return LoopMetricContext(
            self.built.task,
            self.generators,
            dataset if dataset is not None else self.built.dataset,
            self.device,
            generator_kind=self.generator_kind,
            label=label,
        )

    @torch.no_grad()
    def generate(self, num: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        """``num`` samples ``[num, ...]`` on the CPU, drawn as metrics draw them from ``seed``
        (the same whatever ``batch_size``)."""
        try:
            return torch.cat(list(self.context().generate(num, batch_size, seed))).cpu()
        except DataUnavailableError as exc:
            raise exc.needed_by(f"sampling task {self.config.task.spec.name!r}") from None

    @torch.no_grad()
    def sample_grid(
        self,
        num: int,
        seed: int,
        label: int | None = None,
        classes: Sequence[str] | None = None,
        batch_size: int = 256,
    ) -> tuple[torch.Tensor, int | None, tuple[str, ...] | None]:
        """``(samples, columns, row_names)`` of a conditional task's grid (see
        :func:`gancore._classes.fixed_inputs`): ``num`` samples of class ``label``, or with no
        label one row per class of ``classes`` (default: the dataset's)."""
        task = self.built.task
        try:
            return self._sample_grid(task, num, seed, label, classes, batch_size)
        except DataUnavailableError as exc:
            raise exc.needed_by(f"sampling task {self.config.task.spec.name!r}") from None

    def _sample_grid(
        self,
        task: Any,
        num: int,
        seed: int,
        label: int | None,
        classes: Sequence[str] | None,
        batch_size: int,
    ) -> tuple[torch.Tensor, int | None, tuple[str, ...] | None]:
        inputs, columns, rows = fixed_inputs(
            task,
            self.generators,
            self.built.dataset,
            num,
            seed,
            label,
            classes=classes,
            task_name=self.config.task.spec.name,
        )
        total = len(next(iter(inputs.values())))
        parts = []
        for lo in range(0, total, batch_size):
            share = {k: t[lo : lo + batch_size].to(self.device) for k, t in inputs.items()}
            grid = task.sample(self.generators, share)
            parts.append(grid.images.float().cpu())
            if lo == 0 and columns is None and label is None:  # the task's own layout
                columns = grid.columns
        return torch.cat(parts), columns, rows

    def reference(self) -> torch.Tensor | None:
        return reference_points(self.built.dataset, self.config.run.seed)

    def evaluate(
        self,
        metrics: Sequence[tuple[str, Any]],
        dataset: Dataset | None = None,
        label: int | None = None,
    ) -> dict[str, Any]:
        """Flat results of ``metrics`` (see :func:`gancore.metrics.loop.evaluate_metrics`),
        scored against ``dataset`` (default: the run's own), restricted to class ``label`` when
        given, headed by the run and checkpoint names."""
        named = [(name, _NamedMetric(name, metric)) for name, metric in metrics]
        result = evaluate_metrics(named, self.context(dataset, label), self.generator_kind)
        return {"run": str(self.config.run.name), "checkpoint": self.checkpoint.name, **result}


def _shape(tensor: torch.Tensor) -> str:
    return str(list(tensor.shape))


def weights_misfit(
    modules: dict[str, nn.Module], flat: dict[str, torch.Tensor], config: RunConfig
) -> str | None:
    """Why the checkpoint tensors ``flat`` (keys ``<player>.<key>``) cannot load into
    ``modules`` (built from ``config``), or ``None`` when they fit.

    Names the first tensor whose shape differs, or that is missing or extra, counts the others,
    and names the config tables of the players concerned (``generator``, ``critic``) where a
    player has one.
    """
    model = {f"{name}.{k}": t for name, m in modules.items() for k, t in m.state_dict().items()}
    prefixes = tuple(f"{name}." for name in modules)
    saved = {k: t for k, t in flat.items() if k.startswith(prefixes)}
    differ = [
        f"{k} is {_shape(saved[k])} in the checkpoint and {_shape(t)} in the model"
        for k, t in model.items()
        if k in saved and saved[k].shape != t.shape
    ]
    missing = [f"{k} is in the model but not in the checkpoint" for k in model if k not in saved]
    extra = [f"{k} is in the checkpoint but not in the model" for k in saved if k not in model]
    problems = differ + missing + extra
    if not problems:
        return None
    players = sorted({p.partition(".")[0] for p in problems})
    tables = [p for p in players if getattr(config, p, None) is not None]
    others = len(problems) - 1
    more = {0: "", 1: ", and 1 more tensor disagrees"}.get(
        others, f", and {others} more tensors disagree"
    )
    hint = f" (changed {' or '.join(tables)} options?)" if tables else ""
    return problems[0] + more + hint


def _dataset(config: RunConfig, run_dir: Path) -> Dataset:
    """The run's dataset; when it cannot be read, what ``data.json`` recorded of it (a run from
    before that file re-raises the reading error)."""
    try:
        return config.data.build(None)
    except (OSError, ValueError) as exc:
        recorded = load_data_record(run_dir, reason=_first_line(exc))
        if recorded is None:
            raise
        return recorded


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def read_run_checkpoint(
    run_dir: Path, which: str = "latest"
) -> tuple[RunConfig, Path, dict[str, Any], dict[str, Any]]:
    """A run directory's config, the path of its checkpoint ``which`` (``latest``, ``best`` or a
    ``step-NNNNNNN`` name), and that checkpoint's weights and saved state; one-line errors for a
    folder that is not a run and for a missing or damaged checkpoint."""
    config_file = run_dir / "config.toml"
    if not config_file.is_file():
        raise ConfigError([f"{str(run_dir)!r} is not a run directory (no config.toml)"])
    config = load_config(config_file)
    path = find_checkpoint(
        run_dir / "checkpoints",
        which=which,
        hint="pass --checkpoint {name} to use the previous intact checkpoint",
    )
    weights, saved = load_checkpoint(path)
    return config, path, weights, saved


def load_run(run_dir: Path, which: str = "latest", raw: bool = False) -> LoadedRun:
    """A run's config, built components and generator weights from checkpoint ``which``
    (``latest``, ``best`` or a ``step-NNNNNNN`` name). The data is read when it can be; without
    it, sampling a task whose inputs are noise still works (see :mod:`gancore._datarecord`)."""
    config, path, weights, saved = read_run_checkpoint(run_dir, which)
    use_ema = "ema" in weights and not raw
    loop = saved.get("loop", {})
    return build_loaded(
        config,
        _dataset(config, run_dir),
        weights["ema" if use_ema else "generators"],
        generator_kind="ema" if use_ema else "raw",
        source=path,
        stage=int(loop.get("stage", 0)),
        iteration=int(loop.get("iteration", 1)),
        misfit=f"checkpoint {path.name} does not fit config.toml",
    )


def build_loaded(
    config: RunConfig,
    dataset: Dataset,
    flat: dict[str, torch.Tensor],
    *,
    generator_kind: str,
    source: Path,
    stage: int,
    iteration: int,
    misfit: str,
    device: torch.device | str | None = None,
) -> LoadedRun:
    """Build ``config``'s networks on ``dataset`` (the real data or a record of it), grown to
    ``stage`` as a staged run's checkpoint at ``iteration`` had them, and load the generator
    weights ``flat`` (keys ``<player>.<key>``) on ``device`` (default: CUDA when available).
    Shared by :func:`load_run` and :func:`gancore.load_generator`; ``misfit`` starts the error
    when the weights do not fit."""
    built = build_run(config, dataset)
    # A staged run's networks are those of the checkpoint's stage (grown, added).
    stages = stage_schedule(config)
    if not 0 <= stage < len(stages):
        raise ConfigError([f"{misfit}: stage {stage} is not one of the run's {len(stages)}"])
    for entered in stages[: stage + 1]:
        enter_stage(entered, built.task, built.players, config.run.seed)
    # the blend factor of the checkpoint's last iteration
    alpha = stages[stage].alpha(max(0, iteration - 1))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    problem = weights_misfit(built.generators, flat, config)
    if problem is not None:
        raise ConfigError([f"{misfit}: {problem}"])
    load_flat_state(built.generators, flat)
    for module in built.generators.values():
        module.to(device).eval()
    return LoadedRun(
        config=config,
        built=built,
        generators=built.generators,
        generator_kind=generator_kind,
        checkpoint=source,
        device=device,
        stage=stages[stage] if config.stages else None,
        alpha=alpha,
    )


class _NamedMetric:
    """A metric whose need for unreadable data is reported under its name."""

    def __init__(self, name: str, metric: Any) -> None:
        self._name = name
        self._metric = metric

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._metric, attribute)

    def evaluate(self, context: Any) -> Any:
        try:
            return self._metric.evaluate(context)
        except DataUnavailableError as exc:
            raise exc.needed_by(f"metric {self._name!r}") from None
