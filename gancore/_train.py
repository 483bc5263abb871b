"""The training loop: one function, in a fixed order, with Accelerate doing devices and processes.

Each iteration runs the phases of :func:`gancore._phases.plan_phases` in order; for the classic
GAN:

1. critic phase: ``training.critic_steps`` critic updates, each on a fresh batch; regularizers with
   ``interval = 1`` are part of the critic loss; constraints (``after_step``) follow each update;
   every ``interval`` updates, each lazy regularizer's own update;
2. generator phase: ``training.generator_steps`` generator updates (on the last critic batch),
   then the lazy generator regularizers;
3. augmenter feedback: E[sign(D(real))], reduced over processes;
4. EMA of the generators;
5. learning-rate schedule;
6. log, samples, metrics, checkpoint (each at its interval, and all at the end).

Before an iteration that starts a new stage, the task's ``begin_stage`` grows or adds networks and
the loop rebuilds what depends on them (:class:`gancore._players.Players`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
import torch
from torch import nn

from gancore._allocator import keep_freed_memory
from gancore._atomic import atomic_write_text
from gancore._build import Built, build_run, weights_group
from gancore._checkpoint import (
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_leftovers,
)
from gancore._classes import dataset_classes, save_classes
from gancore._config import RunConfig, config_to_toml
from gancore._data import BatchPlan, batches
from gancore._errors import CheckpointError, ConfigError, TrainingError
from gancore._fast import explained, frozen
from gancore._init import apply_init
from gancore._logbuffer import LogBuffer
from gancore._phases import Phase, lazy_correction, loss_terms, plan_phases
from gancore._players import Players
from gancore._rundir import RunFiles, check_trackers, flat_config, report, truncate_log
from gancore._runlock import RunLock, hold_run_dir
from gancore._stages import (
    Stage,
    check_stage_names,
    enter_stage,
    planned_stages,
    resize_batch,
    stage_schedule,
)
from gancore._state import AugmentFeedback, LoopState, seed_process, set_rng_state
from gancore._task import StepContext, critic_tag, mix_seed
from gancore.metrics.loop import (
    LoopMetricContext,
    check_metrics,
    evaluate_metrics,
    metric_prefixes,
)

__all__ = [
    "Built",
    "LoopMetricContext",
    "TrainResult",
    "build_run",
    "check_metrics",
    "ema_beta",
    "evaluate_metrics",
    "lazy_correction",
    "lr_factor",
    "metric_prefixes",
    "train",
    "update_ema",
]


@attrs.frozen(kw_only=True)
class TrainResult:
    """What a finished (or interrupted) run leaves behind."""

    run_dir: Path
    step: int
    images_seen: int
    checkpoint: Path | None
    interrupted: bool = False
    metrics: Mapping[str, Any] = attrs.field(factory=dict)
    generators: Mapping[str, nn.Module] = attrs.field(factory=dict)  # trained, unwrapped
    critics: Mapping[str, nn.Module] = attrs.field(factory=dict)
    ema: Mapping[str, nn.Module] = attrs.field(factory=dict)  # empty without EMA
    # (name, regularizer) in [[regularizers]] order, with their final state (e.g. running means)
    regularizers: Sequence[tuple[str, Any]] = ()
    players: Mapping[str, Mapping[str, nn.Module]] = attrs.field(factory=dict)  # every group


def lr_factor(config_schedule: str, decay_start: int, final: float, step: int, steps: int) -> float:
    """Learning-rate multiplier at ``step`` of ``steps``: constant, or a linear or cosine decay from
    ``decay_start`` to ``final`` at the last step."""
    if config_schedule == "constant" or step < decay_start:
        return 1.0
    span = max(1, steps - decay_start)
    t = min(1.0, (step - decay_start) / span)
    if config_schedule == "linear":
        return 1.0 - (1.0 - final) * t
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * t))


def ema_beta(
    batch_size: int, half_life_images: float | None, images_seen: int, rampup: float | None = None
) -> float:
    """EMA decay per step: ``0.5 ** (batch / half_life)``, the half-life optionally ramped up as
    ``min(half_life, images_seen * rampup)`` (Karras et al. 2020, StyleGAN2-ADA)."""
    if half_life_images is None:
        return 0.0
    half_life = float(half_life_images)
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * model for parameters; buffers are copied."""
    ema_params: list[torch.Tensor] = list(ema.parameters())
    if ema_params:
        model_params: list[torch.Tensor] = list(model.parameters())
        torch._foreach_lerp_(ema_params, model_params, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


# -------------------------------------------------------------------------------------------------
# The loop
# -------------------------------------------------------------------------------------------------


def train(
    config: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    fallback: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``config``, writing the run directory ``run_dir``.

    ``resume`` continues from the newest intact checkpoint in ``run_dir`` (``fallback`` allows
    skipping a damaged newest one). ``progress`` forces the progress bar on or off (default: on a
    terminal).
    """
    return run_training(config, run_dir, resume=resume, fallback=fallback, progress=progress)


def run_training(
    config: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    fallback: bool = False,
    progress: bool | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """:func:`train`, and ``stop_after``: stop as if interrupted after that many iterations
    (:func:`gancore.testing.train_interrupted` uses it)."""
    run_dir = Path(run_dir)
    lock = RunLock(run_dir)
    # Signals are ours from the first line: one during start-up stops at once, with a message,
    # leaving a run directory that `--resume` (or the same command) starts again.
    with _Stop() as stop:
        try:
            return _run(
                config,
                run_dir,
                stop,
                lock,
                resume=resume,
                fallback=fallback,
                progress=progress,
                stop_after=stop_after,
            )
        except _Interrupted as exc:
            return _stopped_in_start_up(run_dir, exc.signum)
        finally:
            lock.release()


def end_processes() -> None:
    """Leave the process group of a multi-process launch (torchrun, ``accelerate launch``):
    every rank waits for the others, then tears the group down while the interpreter is whole.
    Does nothing in a single process.

    :func:`train` leaves the group open, so that a script may train again in the same processes;
    call this once, after the last training (``gan train`` and the test worker do). The order
    matters: the run's data-parallel wrappers (which hold the group too) are collected first, so
    that the group's last reference is the one dropped here, after a barrier, when no collective
    is in flight. Left to interpreter exit instead, gloo's worker threads are torn down during
    finalization, where a rank can hang and keep the launcher waiting for ever."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def _run(
    config: RunConfig,
    run_dir: Path,
    stop: _Stop,
    lock: RunLock,
    *,
    resume: bool,
    fallback: bool,
    progress: bool | None,
    stop_after: int | None,
) -> TrainResult:
    """:func:`run_training` with the signals handled by ``stop``; ``lock`` is taken here."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    training = config.training
    check_trackers(config)
    # train() may run several times in one process (tests, notebooks): forget the previous run's
    # precision settings, keep the process group.
    AcceleratorState._reset_state(reset_partial_state=False)
    # Launched as several processes (torchrun, accelerate launch) on a machine without a GPU:
    # Accelerate uses gloo data parallelism only when told it is on the CPU.
    multi_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(
        cpu=multi_cpu,
        mixed_precision=training.precision,
        log_with=list(config.run.trackers) or None,
        project_dir=str(run_dir),
    )
    main = accelerator.is_main_process
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    _check_settings(config, world, device)
    checkpoints = run_dir / "checkpoints"
    hold_run_dir(lock, accelerator)  # one run at a time in a run directory (gancore/_runlock.py)
    if not resume and ((run_dir / "metrics.jsonl").exists() or checkpoints.exists()):
        raise ConfigError(
            [
                f"run directory {str(run_dir)!r} already holds a run; resume it (resume=True, "
                f"`gan train --resume {run_dir}`) or train into a new directory"
            ]
        )
    if resume:  # a killed writer's folders: finish or undo its swap, never load from them
        if main:
            remove_leftovers(checkpoints)
        accelerator.wait_for_everyone()
    # A run stopped before its first checkpoint (a signal, the non-finite guard) starts again.
    restart = resume and not list_checkpoints(checkpoints)
    if training.keep_freed_memory:
        keep_freed_memory()  # before the first step allocates (gancore/_allocator.py)

    # -- build: identical weights on every process ----------------------------------------------
    built = build_run(config)
    task, dataset, augmenter = built.task, built.dataset, built.augmenter
    config = planned_stages(config, task, dataset)  # a task that plans its own stages (SinGAN)
    for _, obj in (*built.regularizers, ("augmenter", augmenter)):
        if isinstance(obj, nn.Module):
            obj.to(device)
    check_metrics(config, built.metrics)  # fail now, not after the last step
    stages = stage_schedule(config)
    check_stage_names(stages, built.players, config.source)
    if world > 1 and getattr(task, "find_unused_parameters", False):
        # The task's steps leave some parameters without a gradient (a stage trains part of a
        # network): DistributedDataParallel must look for them, or its next step waits forever
        # for their all-reduce. Others keep the cheaper default (docs/tasks.md, "Stages").
        from accelerate.utils import DistributedDataParallelKwargs

        accelerator.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)
    # StyleGAN2's lazy correction c of each group's optimizer (lr * c, betas ** c).
    corrections = {
        group: lazy_correction([r.interval for _, r in built.regularizers if r.player == group])
        for group in built.players
    }
    players = Players(accelerator, config, built.players, corrections)
    feedback = AugmentFeedback.zero(device) if augmenter.feedback_interval else None
    step = StepContext(
        players=players.wrapped,
        modules=players.all_modules(),
        loss=built.loss,
        augmenter=augmenter,
        feedback=feedback,
        device=device,
        seed=config.run.seed,
        rank=rank,
        world_size=world,
        loss_terms=loss_terms(built.regularizers),
        optimizers=players.optimizers,
    )
    step.accumulate = training.accumulate  # micro-batches per update
    # Autocast only where it does something: entering an autocast context is not free.
    autocast = accelerator.autocast if training.precision != "no" else contextlib.nullcontext
    state = LoopState()
    last_checkpoint: Path | None = None
    seed_process(config.run.seed, rank)

    def begin(stage: Stage) -> list[tuple[Phase, list[nn.Module], list[nn.Parameter]]]:
        """Enter ``stage`` (grow or add networks, freeze, reset optimizers, set learning rates);
        the phases it runs, each with the modules and parameters of the players it leaves be."""
        changed = enter_stage(stage, task, built.players, config.run.seed)
        if changed or (stage.reset_optimizers and stage.index > 0):
            players.regroup(built.players, reset=stage.reset_optimizers)
            step.set_players(players.wrapped, players.all_modules(), players.optimizers)
        for group in players.modules:
            players.set_lr(group, stage.lr.get(group, config.optimizers[group].lr))
        step.stage = stage
        planned = plan_phases(
            task,
            built.phases,
            built.regularizers,
            training.critic_steps,
            training.generator_steps,
            stage.trains,
        )
        return [(phase, *players.frozen_for(phase.groups)) for phase in planned]

    phases = begin(stages[0])
    # [init]: start from another run's weights, in place, before the first step (a resumed run
    # has its own). The optimizers hold these same tensors and no state yet: they start fresh.
    init_report = None
    if config.init is not None and (not resume or restart):
        groups = {weights_group(g): m for g, m in players.modules.items()}
        init_report = apply_init(config.init, {**groups, "ema": players.ema})
    if resume and not restart:  # everything is loaded before anything in the run dir changes
        last_checkpoint = find_checkpoint(checkpoints, fallback=fallback)
        weights, saved = load_checkpoint(last_checkpoint)
        try:
            state.load_state_dict(_loop_state(saved, training.batch_size))
            for stage in stages[1 : state.stage + 1]:
                phases = begin(stage)  # the networks of the checkpoint's stage
            players.load_weights(weights)
            players.load_optimizer_states(saved["optimizers"])
            _restore_components(built, saved, feedback)
        except (KeyError, RuntimeError, ValueError, IndexError) as exc:
            raise CheckpointError(
                f"checkpoint {str(last_checkpoint)!r} does not fit the run's config: "
                f"{_first_line(exc)} (did --set change the networks, the regularizers or the "
                "players? the run directory is unchanged)"
            ) from None
        if len(saved["rng"]) == world:
            set_rng_state(saved["rng"][rank])
        else:
            seed_process(mix_seed(config.run.seed, state.iteration), rank)
            if main:
                print(
                    f"note: resuming with {world} processes, the checkpoint had "
                    f"{len(saved['rng'])}; augmentation randomness differs from an "
                    "uninterrupted run",
                    file=sys.stderr,
                )
    if main:  # only once the run builds (and its checkpoint loads): a failure leaves no trace
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.toml", config_to_toml(config))  # only if changed
        if (classes := dataset_classes(dataset)) is not None:  # names for --class and grids
            save_classes(run_dir, classes)
        if restart:
            print(
                f"note: {str(run_dir)!r} holds no checkpoint (the run stopped before its first "
                "one): starting it from step 0",
                file=sys.stderr,
            )
        if resume:
            truncate_log(run_dir / "metrics.jsonl", state.iteration)
        if init_report is not None:
            init_report.write(run_dir / "init.json")
            print(init_report.text(), file=sys.stderr)
    if config.run.trackers:
        accelerator.init_trackers(config.run.name, config=flat_config(config))

    def data_stream(batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of ``batch_size`` from the stream's position (a stage may change the size)."""
        plan = BatchPlan(
            len(dataset), batch_size, config.run.seed, rank, world, position=state.images_drawn
        )
        return batches(dataset, plan, device, training.num_workers)

    data_batch_size = stages[state.stage].batch_size
    data = data_stream(data_batch_size)
    backward = explained(players.backward) if training.compile else players.backward
    files = RunFiles(config, run_dir, accelerator, built, players)
    logs = LogBuffer(device)
    if main:  # what the run report shows besides the logs; the grids the run starts from
        files.write_run_info(stages)
        with _rng_kept(device):  # drawing them (a dataset's crops, noise) leaves training be
            files.log_images("reals", files.write_reals(), state.iteration)  # resumed runs too
            if state.iteration == 0:  # the untrained generator (a resumed run has its grid)
                first = stages[0]
                label = (
                    f"stage {first.name} (alpha {first.alpha(0):.2f})" if config.stages else None
                )
                files.log_images("samples", files.write_samples(0, label), 0)

    updates = _Updates(
        accelerator,
        players,
        step,
        built,
        state,
        backward,
        logs,
        autocast,
        training.accumulate,
        training.max_nonfinite_steps,
    )

    # -- the loop ----------------------------------------------------------------------------------
    bar = files.progress_bar(progress, state.iteration)
    started = interval_start = time.perf_counter()
    interval_iterations, start_iteration = 0, state.iteration
    last_metrics: dict[str, Any] = {}
    interrupted, saved_at = False, -1
    batch: dict[str, torch.Tensor] = {}
    parts: list[dict[str, torch.Tensor]] = []

    with stop.deferred():
        while state.iteration < config.run.steps:
            if state.iteration >= stages[state.stage].end:  # a new stage starts
                state.stage += 1
                phases = begin(stages[state.stage])
            stage = stages[state.stage]
            step.alpha = stage.alpha(state.iteration)
            if stage.batch_size != data_batch_size:  # the stage's own batch size
                data_batch_size = stage.batch_size
                data = data_stream(data_batch_size)

            # ---- 1-2. the phases: critic, generator (and a task's own), with their penalties ---
            for phase, others_wrapped, others_params in phases:
                for k in range(phase.repeats):
                    if phase.fresh_batches:
                        batch = resize_batch(next(data), stage.resolution)
                        state.batches_drawn += 1
                        state.images_drawn += stage.batch_size
                        parts = _micro_batches(batch, training.accumulate)
                    updates.update(phase, k, parts, others_wrapped, others_params)

            # ---- 3. augmenter feedback: E[sign(D(real))] over all processes -------------------
            interval = augmenter.feedback_interval
            if feedback is not None and state.updates.get("critic", 0) % interval == 0:
                feedback.deliver(augmenter, functools.partial(_reduce_sum, accelerator))

            # ---- 4. EMA of the generators: beta = 0.5 ** (batch / half-life) -------------------
            state.iteration += 1
            images_seen = state.images_drawn
            if players.ema:
                beta = ema_beta(
                    stage.batch_size,
                    training.ema_half_life_images,
                    images_seen,
                    training.ema_rampup,
                )
                for name, ema in players.ema.items():
                    update_ema(ema, players.modules["generator"][name], beta)

            # ---- 5. learning-rate schedules ----------------------------------------------------
            for group, opt in players.optimizers.items():
                table = config.optimizers[group]
                if table.schedule != "constant":
                    factor = lr_factor(
                        table.schedule,
                        table.decay_start,
                        table.final_lr_scale,
                        state.iteration,
                        config.run.steps,
                    )
                    for pg in opt.param_groups:
                        pg["lr"] = players.base_lr(group) * factor

            # ---- 6. log, samples, metrics, checkpoint ---------------------------------------
            interval_iterations += 1
            done = state.iteration >= config.run.steps
            stop_now = bool(stop.signum) or (
                stop_after is not None and state.iteration - start_iteration >= stop_after
            )
            if world > 1:
                flag = torch.tensor([float(stop_now)], device=device)
                stop_now = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
            if bar is not None:
                bar.update(1)
            if state.iteration % training.log_every == 0 or done or stop_now:
                now = time.perf_counter()
                seconds = (now - interval_start) / max(1, interval_iterations)
                record = files.train_record(state, logs, seconds, now - started, stage, step.alpha)
                logs.clear()
                files.write_log(record)
                interval_start, interval_iterations = time.perf_counter(), 0
                if main:
                    report(
                        bar, record, config.run.steps, started, state.iteration - start_iteration
                    )
            sampled = main and (
                (training.sample_every and state.iteration % training.sample_every == 0)
                or done
                or stop_now
            )
            if sampled:  # a staged run's grid says its stage (the resolution is the grid's)
                label = f"stage {stage.name} (alpha {step.alpha:.2f})" if config.stages else None
                grid = files.write_samples(state.iteration, label)
                files.log_images("samples", grid, state.iteration)  # to TensorBoard, W&B, ...
            measured = built.metrics and (
                (training.metrics_every and state.iteration % training.metrics_every == 0) or done
            )
            if measured:
                last_metrics = files.run_metrics(state.iteration, images_seen, stage.resolution)
                if (best := files.improves(state, last_metrics)) is not None:
                    # None: not written (non-finite values), the last finite one stays newest
                    last_checkpoint = files.checkpoint(state, feedback, best) or last_checkpoint
                    updates.last_checkpoint = last_checkpoint
                    saved_at = state.iteration
            if sampled or measured:  # once, after the last record of the step
                files.write_curves()
            if saved_at != state.iteration and (
                (training.checkpoint_every and state.iteration % training.checkpoint_every == 0)
                or done
                or stop_now
            ):
                last_checkpoint = files.checkpoint(state, feedback) or last_checkpoint
                updates.last_checkpoint = last_checkpoint
                saved_at = state.iteration
            # report.html last, when everything of the step is on disk: at the end (or a stop)
            # and every training.report_every sample grids
            report_interval = training.sample_every * training.report_every
            if (
                main
                and training.report
                and (
                    done or stop_now or (report_interval and state.iteration % report_interval == 0)
                )
            ):
                files.write_report()
            if stop_now and not done:
                interrupted = True
                break

    if bar is not None:
        bar.close()
    # Not accelerator.end_training(): besides ending the trackers, it destroys the process group
    # on each rank as that rank gets here, with no barrier. A rank then drops gloo's last
    # reference with its DDP wrappers when this frame ends, holding the GIL, while gloo's worker
    # thread may still need the GIL to free the tensors of the last collective: a deadlock (CI
    # hung three times as `_run` returned; gdb showed these two stacks in a local repeat). The
    # group is ended by end_processes, every rank together, after a barrier.
    for tracker in accelerator.trackers:
        tracker.finish()
    if main:
        files.say_goodbye(state.iteration, started, last_checkpoint, interrupted)
    return TrainResult(
        run_dir=run_dir,
        step=state.iteration,
        images_seen=state.images_drawn,
        checkpoint=last_checkpoint,
        interrupted=interrupted,
        metrics=last_metrics,
        generators=players.modules.get("generator", {}),
        critics=players.modules.get("critic", {}),
        ema=players.ema,
        regularizers=tuple(built.regularizers),
        players=players.modules,
    )


class _Updates:
    """One optimizer update of a phase, as the loop runs it: the task's step on each micro-batch
    with the phase's every-step penalties, backward, the optimizers' steps; then the phase's lazy
    penalties, each an update of its own every ``interval`` updates."""

    def __init__(
        self,
        accelerator: Any,
        players: Players,
        step: StepContext,
        built: Built,
        state: LoopState,
        backward: Callable[[torch.Tensor], None],
        logs: LogBuffer,
        autocast: Callable[[], contextlib.AbstractContextManager[Any]],
        micro: int,
        max_nonfinite: int,
    ) -> None:
        self.accelerator, self.players, self.step, self.built = accelerator, players, step, built
        self.state, self.backward, self.logs, self.autocast = state, backward, logs, autocast
        self.micro = micro  # micro-batches per update (training.accumulate)
        self.max_nonfinite = max_nonfinite  # non-finite losses in a row that stop the run
        # What runs after each update of the critic / generator phase: the critic regularizers'
        # after_step (constraints), and the generator regularizers' that define one.
        self.after_step: dict[str, list[Any]] = {
            "critic": [r for _, r in built.regularizers if r.player == "critic"],
            "generator": [
                r
                for _, r in built.regularizers
                if r.player == "generator" and callable(getattr(r, "after_step", None))
            ],
        }
        self.last_checkpoint: Path | None = None  # named by the non-finite guard

    def update(
        self,
        phase: Phase,
        k: int,
        parts: Sequence[dict[str, torch.Tensor]],
        others_wrapped: Sequence[nn.Module],
        others_params: Sequence[nn.Parameter],
    ) -> None:
        """The ``k``-th update of ``phase`` in this iteration, on the batch's micro-batches."""
        step, players, micro = self.step, self.players, self.micro
        for group in phase.groups:
            players.steppers[group].zero_grad(set_to_none=True)
        # The gradients of every micro-batch, each loss divided by their number, then one step.
        recorded, good = [], True
        for j, part in enumerate(parts):
            step.begin(phase.key, self.state.iteration, k, j)
            # The other players frozen: no gradients into them, no all-reduce of theirs; while
            # accumulating, no all-reduce of this phase's own either.
            holding: contextlib.AbstractContextManager[Any] = _NO_CONTEXT  # last: all-reduce
            if j < micro - 1:
                holding = _no_sync(self.accelerator, players.prepared, phase)
            with frozen(self.accelerator, others_wrapped, others_params), self.autocast(), holding:
                loss = phase.step(step, part)
                for name, reg in phase.every_step:
                    calls = (step.critic_calls, step.generator_inputs)
                    for value in self.penalties(phase, name, reg, calls, lazy=False):
                        loss = loss + value
            good = self.backward_finite(loss if micro == 1 else loss / micro, phase.name, "loss")
            recorded.append((step.critic_calls, step.generator_inputs))
            if not good:
                break
        # Logged values sum over the micro-batches: the update's mean is logged.
        n = len(recorded)
        self.logs.add(step.logs if n == 1 else {key: v / n for key, v in step.logs.items()})
        step.logs = {}
        if good:
            self.state.nonfinite_run = 0
            self.step_optimizers(phase, lazy=False)
        done = self.state.updates.get(phase.name, 0) + 1
        self.state.updates[phase.name] = done
        for name, reg in phase.lazy:
            if done % reg.interval == 0:
                self.lazy_update(phase, name, reg, recorded)

    def lazy_update(self, phase: Phase, name: str, reg: Any, recorded: list[Any]) -> None:
        """Lazy regularization: its own update on what the last update recorded, the penalty
        multiplied by ``interval`` (and divided over the micro-batches)."""
        for group in phase.groups:
            self.players.steppers[group].zero_grad(set_to_none=True)
        totals, good = [], True
        for calls in recorded:
            with self.autocast():
                values = self.penalties(phase, name, reg, calls, lazy=True)
            if not values:
                continue
            totals.append(torch.stack(values).sum())
            scale = reg.interval if self.micro == 1 else reg.interval / self.micro
            good = good and self.backward_finite(totals[-1] * scale, name, "penalty")
        if not totals:
            return
        if good:
            self.step_optimizers(phase, lazy=True)
        self.step.log(f"reg/{name}", totals[0] if self.micro == 1 else torch.stack(totals).mean())
        self.logs.add(self.step.logs)
        self.step.logs = {}

    def backward_finite(self, loss: torch.Tensor, name: str, what: str) -> bool:
        """backward of a finite loss; a non-finite one is counted, and its update skipped."""
        if not _finite(self.accelerator, loss):
            where = f"{name} {what}"  # "critic loss", "r1 penalty"
            _skip_nonfinite(self.state, self.max_nonfinite, where, self.last_checkpoint)
            return False
        self.backward(loss)
        return True

    def step_optimizers(self, phase: Phase, lazy: bool) -> None:
        """Each of the phase's optimizers steps; constraints follow every critic update."""
        for group in phase.groups:
            if lazy:  # the penalty ran on the bare modules, outside DDP's all-reduce
                _all_reduce_grads(self.accelerator, self.players.trainable(group))
            self.players.steppers[group].step()
        # weight clipping and other constraints; running means of the parameters
        for reg in self.after_step.get(phase.name, ()):
            for module in self.players.modules[phase.name].values():
                reg.after_step(module)

    def penalties(
        self, phase: Phase, name: str, reg: Any, recorded: Any, lazy: bool
    ) -> list[torch.Tensor]:
        """A regularizer's penalties on what one step of ``phase`` recorded (its critic calls
        and generator inputs): per critic call (through the step's critics, or the bare ones in a
        lazy update), or per generator."""
        critic_calls, generator_inputs = recorded
        modules, step = self.players.modules, self.step
        out = []
        if phase.name == "critic":
            for critic, real, fake, extra in critic_calls:
                score = (
                    _scorer(modules["critic"][critic], self.built.augmenter)
                    if lazy
                    else step.scorer(critic)
                )
                value = reg.penalty(score, real, fake, extra)
                if value is not None:
                    out.append(value)
                    if not lazy:
                        step.log(f"reg/{name}{critic_tag(critic)}", value)
        else:
            for generator, inputs in generator_inputs.items():
                value = reg.penalty(modules["generator"][generator], inputs)
                out.append(value)
                if not lazy:
                    step.log(f"reg/{name}", value)
        return out


def _check_settings(config: RunConfig, world: int, device: torch.device) -> None:
    """Training settings that depend on where the run is: one line each."""
    training = config.training
    problems = []
    if training.precision == "fp16" and device.type != "cuda":
        problems.append(
            f"training.precision: 'fp16' needs a GPU (its gradient scaler is CUDA's; this "
            f"process runs on {device.type}); use 'bf16' or 'no'"
        )
    sizes = [("training.batch_size", training.batch_size)] + [
        (f"stages[{i}].batch_size", stage.batch_size)
        for i, stage in enumerate(config.stages)
        if stage.batch_size is not None
    ]
    for key, size in sizes:
        if size % (world * training.accumulate):
            problems.append(
                f"{key} ({size}) must split evenly into training.accumulate "
                f"({training.accumulate}) micro-batches on each of {world} process(es)"
            )
    if problems:
        raise ConfigError(problems, config.source)


class _Interrupted(BaseException):
    """A signal during start-up. A BaseException, as KeyboardInterrupt is, so that no
    ``except Exception`` between the handler and :func:`run_training` takes it for a failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Stop:
    """Ctrl-C / SIGTERM. During start-up: stop at once (:class:`_Interrupted`). In the loop
    (:meth:`deferred`): finish the step, checkpoint, exit; a second signal aborts at once."""

    def __init__(self) -> None:
        self.signum = 0
        self._deferred = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._deferred:
            raise _Interrupted(signum)
        self.signum = signum
        self._restore()  # a second Ctrl-C interrupts immediately

    @contextlib.contextmanager
    def deferred(self) -> Iterator[_Stop]:
        """The loop: a signal only sets :attr:`signum`; the default handlers return after it."""
        self._deferred = True
        try:
            yield self
        finally:
            self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __exit__(self, *exc: object) -> None:
        self._restore()


def _stopped_in_start_up(run_dir: Path, signum: int) -> TrainResult:
    """Say how a run stopped by a signal before its first step goes on; what it leaves."""
    saved = list_checkpoints(run_dir / "checkpoints")
    if int(os.environ.get("RANK", "0")) == 0:
        name = signal.Signals(signum).name
        how = (
            f"resume with: gan train --resume {run_dir}"
            if (run_dir / "config.toml").is_file()
            else "nothing was written; run the same command again"
        )
        print(f"stopped by {name} during start-up, before the first step; {how}", file=sys.stderr)
    return TrainResult(
        run_dir=run_dir,
        step=int(saved[-1].name.removeprefix("step-")) if saved else 0,
        images_seen=0,
        checkpoint=saved[-1] if saved else None,
        interrupted=True,
    )


def _rng_kept(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Within: random draws that leave the global random state (CPU, and ``device``'s) as it
    was before."""
    devices = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def _scorer(
    critic: nn.Module, augment: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[..., torch.Tensor]:
    def score(x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return critic(augment(x), *extra)

    return score


def _micro_batches(batch: dict[str, torch.Tensor], micro: int) -> list[dict[str, torch.Tensor]]:
    """``batch`` as ``micro`` consecutive equal parts (itself when ``micro`` is 1)."""
    if micro == 1:
        return [batch]
    size = next(iter(batch.values())).shape[0] // micro
    return [{k: t[j * size : (j + 1) * size] for k, t in batch.items()} for j in range(micro)]


_NO_CONTEXT = contextlib.nullcontext()  # reusable: entering it does nothing


def _no_sync(
    accelerator: Any, prepared: Mapping[str, Mapping[str, nn.Module]], phase: Phase
) -> contextlib.AbstractContextManager[Any]:
    """No gradient all-reduce for the phase's own players (a micro-batch that is not the last of
    its update; DDP reads the flag in the forward)."""
    if accelerator.num_processes == 1:
        return _NO_CONTEXT
    stack = contextlib.ExitStack()
    for group in phase.groups:
        for module in prepared[group].values():
            stack.enter_context(accelerator.no_sync(module))
    return stack


def _finite(accelerator: Any, loss: torch.Tensor) -> bool:
    """The loss is finite on every process (a skipped update must be skipped everywhere)."""
    if accelerator.num_processes == 1:
        return math.isfinite(loss.item())  # one read of the host value, no extra kernels
    bad = (~torch.isfinite(loss.detach())).float().reshape(1)
    return bool(accelerator.reduce(bad, reduction="sum").item() == 0)


def _skip_nonfinite(state: LoopState, limit: int, what: str, last: Path | None) -> None:
    """Count a skipped update; too many in a row stop the run with a one-line error."""
    state.nonfinite_total += 1
    state.nonfinite_run += 1
    if state.nonfinite_run >= limit:
        where = (
            f"the last good checkpoint is {last}" if last else "no checkpoint had been written yet"
        )
        raise TrainingError(
            f"stopping at step {state.iteration}: {state.nonfinite_run} non-finite losses in "
            f"a row (last: {what}); {where}. Lower the learning rate, check the data, or try "
            "training.precision = 'no'"
        )


def _all_reduce_grads(accelerator: Any, params: Sequence[nn.Parameter]) -> None:
    """Average gradients of an update that ran on unwrapped modules (lazy penalties)."""
    grads = [p.grad for p in params if p.grad is not None]
    if accelerator.num_processes > 1 and grads:
        flat = accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def _reduce_sum(accelerator: Any, tensor: torch.Tensor) -> torch.Tensor:
    if accelerator.num_processes == 1:
        return tensor
    reduced: torch.Tensor = accelerator.reduce(tensor, reduction="sum")
    return reduced


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _loop_state(saved: Mapping[str, Any], batch_size: int) -> Mapping[str, Any]:
    """The loop state of a checkpoint (from its counters, for checkpoints of gancore 0.1; the
    images drawn from the batches, of ``batch_size``, for checkpoints without that count)."""
    if "loop" in saved:
        loop: Mapping[str, Any] = saved["loop"]
        if "images_drawn" not in loop:
            loop = {**loop, "images_drawn": int(loop["batches_drawn"]) * batch_size}
        return loop
    return {
        "iteration": saved["iteration"],
        "batches_drawn": saved["batches_drawn"],
        "images_drawn": int(saved["batches_drawn"]) * batch_size,
        "updates": {"critic": saved["critic_updates"], "generator": saved["generator_updates"]},
        "nonfinite_total": saved["nonfinite_total"],
        "best": saved.get("best") or {},
    }


def _restore_components(built: Built, saved: Mapping[str, Any], feedback: Any) -> None:
    """The state of the augmenter, the regularizers, the task and the pending feedback."""
    if isinstance(built.augmenter, nn.Module):
        built.augmenter.load_state_dict(saved["augmenter"])
    for (_, reg), reg_state in zip(built.regularizers, saved["regularizers"], strict=True):
        if isinstance(reg, nn.Module):
            reg.load_state_dict(reg_state)
    load = getattr(built.task, "load_state_dict", None)
    if callable(load):
        load(saved["task"])
    if feedback is not None:
        feedback.load_state_dict(saved["augment_feedback"])
