"""The training loop: one function, in a fixed order, with Accelerate doing devices and processes.

Each iteration:

1. critic phase: ``training.critic_steps`` critic updates, each on a fresh batch; regularizers with
   ``interval = 1`` are part of the critic loss; constraints (``after_step``) follow each update;
2. lazy critic regularization: every ``interval`` critic updates, a separate penalty step;
3. generator phase: ``training.generator_steps`` generator updates (the last critic batch);
4. lazy generator regularization;
5. augmenter feedback: E[sign(D(real))], reduced over processes;
6. EMA of the generators;
7. learning-rate schedule;
8. log, samples, metrics, checkpoint (each at its interval, and all at the end).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, cast

import attrs
import numpy as np
import torch
from torch import nn

from gancore._allocator import keep_freed_memory
from gancore._checkpoint import (
    find_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    step_dir_name,
)
from gancore._classes import dataset_classes, save_classes
from gancore._config import RunConfig, config_to_toml
from gancore._data import BatchPlan, batches
from gancore._errors import ConfigError, TrainingError
from gancore._pictures import save_curves, save_samples
from gancore._task import BuildContext, StepContext, TaskBuildContext, _mix
from gancore.protocols import Augmenter, Dataset, Task

__all__ = [
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


# -------------------------------------------------------------------------------------------------
# Building a run's components (shared by train, sample and eval)
# -------------------------------------------------------------------------------------------------


@attrs.define
class Built:
    """Everything built from a config, before Accelerate touches it."""

    dataset: Dataset
    task: Task
    generators: dict[str, nn.Module]
    critics: dict[str, nn.Module]
    loss: Any
    regularizers: list[tuple[str, Any]]
    augmenter: Any
    metrics: list[tuple[str, Any]]


def build_run(config: RunConfig) -> Built:
    """Build the dataset, task, networks and the other components of ``config``.

    Networks are initialised from ``run.seed`` so every process builds identical weights.
    """
    torch.manual_seed(config.run.seed)
    dataset = config.data.build(None)
    task = config.task.build(None)
    generators, critics = task.build(TaskBuildContext(config=config, dataset=dataset))
    # Components other than the networks learn the shape of the data's main sample, "x".
    shape = tuple(dataset.shapes["x"]) if "x" in dataset.shapes else ()
    context = BuildContext(data_shape=shape)
    regularizers = [(c.spec.name, c.build(context)) for c in config.regularizers]
    for name, reg in regularizers:
        if getattr(reg, "player", None) not in ("critic", "generator"):
            raise ConfigError(
                [
                    f"regularizer {name!r}: player must be 'critic' or 'generator' "
                    f"(got {getattr(reg, 'player', None)!r})"
                ],
                config.source,
            )
        # Optional seam: a critic regularizer may change each critic once, before optimizers,
        # Accelerate and checkpoints see it (spectral normalization reparametrizes weights).
        setup_critic = getattr(reg, "setup_critic", None)
        if reg.player == "critic" and callable(setup_critic):
            for critic in critics.values():
                setup_critic(critic)
    return Built(
        dataset=dataset,
        task=task,
        generators=dict(generators),
        critics=dict(critics),
        loss=config.loss.build(context),
        regularizers=regularizers,
        augmenter=config.augmenter.build(context),
        metrics=[(c.spec.name, c.build(context)) for c in config.metrics],
    )


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


def lazy_correction(intervals: Sequence[int]) -> float:
    """c = 1 / (1 + sum 1/k) over a player's lazy regularizers; k/(k+1) for one (StyleGAN2)."""
    lazy = [k for k in intervals if k > 1]
    return 1.0 / (1.0 + sum(1.0 / k for k in lazy)) if lazy else 1.0


# -------------------------------------------------------------------------------------------------
# Small helpers
# -------------------------------------------------------------------------------------------------


class _Stop:
    """Ctrl-C / SIGTERM: finish the step, checkpoint, exit. A second signal aborts at once."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # a second Ctrl-C interrupts immediately

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _GradsOff:
    """Within: ``requires_grad`` off for ``params`` (the player that is not being updated)."""

    def __init__(self, params: Sequence[nn.Parameter]) -> None:
        self.params = params

    def __enter__(self) -> None:
        _set_grad(self.params, False)

    def __exit__(self, *exc: object) -> None:
        _set_grad(self.params, True)


def _direct_calls(
    accelerator: Any, g_opt: Any, d_opt: Any
) -> tuple[Any, Any, Callable[[torch.Tensor], None]]:
    """The optimizers to ``zero_grad``/``step`` and the ``backward`` the loop calls: torch's own
    where Accelerate's wrappers would only add cost (see :func:`train`), else Accelerate's."""
    from accelerate.utils import DistributedType

    plain = (
        getattr(accelerator, "scaler", None) is None
        and accelerator.gradient_accumulation_steps == 1
        and accelerator.distributed_type
        in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
        and all(hasattr(opt, "optimizer") for opt in (g_opt, d_opt))
    )
    if not plain:
        return g_opt, d_opt, accelerator.backward

    def backward(loss: torch.Tensor) -> None:
        loss.backward()

    return g_opt.optimizer, d_opt.optimizer, backward


_LOG_FOLD = 256  # logged values kept per name before they are folded into one partial sum


def _sum(values: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """The sum of logged scalars (one stack and one reduction, not one addition per step)."""
    if len(values) == 1:
        return values[0].to(device)
    return torch.stack([v.to(device) for v in values]).sum()


def _compiled(modules: Mapping[str, nn.Module], mode: bool | str) -> dict[str, Callable[..., Any]]:
    """``torch.compile`` of each module (``mode`` True means torch's default mode); a failure to
    compile is a one-line :class:`TrainingError`."""
    chosen = None if mode is True or mode == "default" else str(mode)
    out: dict[str, Callable[..., Any]] = {}
    for name, module in modules.items():
        compiled = torch.compile(module, mode=chosen)

        def call(*args: Any, _compiled: Any = compiled, _name: str = name, **kwargs: Any) -> Any:
            try:
                return _compiled(*args, **kwargs)
            except Exception as exc:
                if _is_compile_error(exc):
                    raise TrainingError(_compile_message(f"compiling {_name!r}", exc)) from exc
                raise

        out[name] = call
    return out


def _is_compile_error(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor")) or "double backward" in str(exc)


def _compile_message(what: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip()), type(exc).__name__)
    if "double backward" in str(exc):
        return (
            "training.compile: torch.compile cannot differentiate through a gradient (double "
            "backward), which an every-step gradient penalty such as R1 or WGAN-GP needs; set "
            "training.compile = false, or run the penalty lazily (interval > 1)"
        )
    return (
        f"training.compile: {what} failed ({type(exc).__name__}: {first[:300]}); "
        "set training.compile = false"
    )


def _explained(backward: Callable[[torch.Tensor], None]) -> Callable[[torch.Tensor], None]:
    """``backward`` whose torch.compile failures are one-line :class:`TrainingError` s."""

    def call(loss: torch.Tensor) -> None:
        try:
            backward(loss)
        except Exception as exc:
            if _is_compile_error(exc):
                raise TrainingError(_compile_message("the backward pass", exc)) from exc
            raise

    return call


def _trainable(modules: Mapping[str, nn.Module]) -> list[nn.Parameter]:
    return [p for m in modules.values() for p in m.parameters() if p.requires_grad]


def _set_grad(params: Sequence[nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def _flat_state(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{name}.{k}": t for name, m in modules.items() for k, t in m.state_dict().items()}


def _load_flat_state(modules: Mapping[str, nn.Module], flat: Mapping[str, torch.Tensor]) -> None:
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict(
            {k[len(prefix) :]: t for k, t in flat.items() if k.startswith(prefix)}
        )


def _rng_state() -> dict[str, Any]:
    np_state = cast(tuple[Any, ...], np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": [*list(random.getstate()[1]), random.getstate()[0]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    *internal, version = state["python"]
    random.setstate((version, tuple(internal), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_process(seed: int, rank: int) -> None:
    """Per-process random streams (augmentations, dropout); latents and data do not use them."""
    process_seed = _mix(seed, rank, 7) % (2**31)
    torch.manual_seed(process_seed)
    np.random.seed(process_seed)
    random.seed(process_seed)


def _module_state(obj: Any) -> dict[str, torch.Tensor]:
    return obj.state_dict() if isinstance(obj, nn.Module) else {}


def _format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _check_trackers(config: RunConfig) -> None:
    import importlib.util

    modules = {
        "tensorboard": "tensorboard",
        "wandb": "wandb",
        "mlflow": "mlflow",
        "comet_ml": "comet_ml",
        "aim": "aim",
        "clearml": "clearml",
        "dvclive": "dvclive",
    }
    missing = [t for t in config.run.trackers if importlib.util.find_spec(modules[t]) is None]
    if missing:
        raise ConfigError(
            [f"run.trackers: {t!r} is not installed (pip install {t})" for t in missing],
            config.source,
        )


# -------------------------------------------------------------------------------------------------
# Metrics: generation split over processes
# -------------------------------------------------------------------------------------------------


class LoopMetricContext:
    """:class:`gancore.protocols.MetricContext` over a run's (EMA) generators, for every process.

    Every batch is split across processes: each generates (or loads) its contiguous share, applies
    the metric's function to it (``map_generated`` / ``map_real``: the feature extractor, so that
    extraction is split too), and the outputs are gathered in order, so every process ends with the
    same outputs as a single process would compute. ``generate`` and ``real`` yield whole batches
    of samples (gathered). Generation runs under ``autocast`` (the training precision); metrics
    turn it off for their extractors.

    ``generator_kind`` (``"ema"`` or ``"raw"``) and ``truncation`` (a generator's
    ``truncation_psi`` attribute, ``None`` without truncation) are stated in every result.
    """

    def __init__(
        self,
        task: Task,
        generators: Mapping[str, nn.Module],
        dataset: Dataset,
        device: torch.device,
        accelerator: Any = None,
        *,
        generator_kind: str | None = None,
        truncation: float | None = None,
        autocast: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.task = task
        self.generators = generators
        self.dataset = dataset
        self.device = device
        self.generator_kind = generator_kind
        if truncation is None:
            psis = [getattr(g, "truncation_psi", None) for g in generators.values()]
            truncation = next((float(p) for p in psis if p is not None), None)
        self.truncation = truncation
        self._accelerator = accelerator
        self._autocast = autocast or contextlib.nullcontext

    # -- MetricContext ----------------------------------------------------------------------------

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        for (images,) in self.map_generated(num, batch_size, seed, lambda x: (x,), []):
            yield images

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        order = self._real_order(num, seed)
        for start in range(0, num, batch_size):
            yield self._load(order[start : start + batch_size])

    # -- split across processes -------------------------------------------------------------------

    def everyone(self, flag: bool) -> bool:
        """True when ``flag`` is true on every process (a cache hit everywhere, say)."""
        acc = self._accelerator
        if acc is None or acc.num_processes == 1:
            return flag
        votes = acc.reduce(torch.tensor([float(flag)], device=self.device), reduction="sum")
        return bool(votes.item() == acc.num_processes)

    def map_generated(
        self,
        num: int,
        batch_size: int,
        seed: int,
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        shapes: list[tuple[int, ...]],
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """``fn`` of generated batches (``num`` samples from ``seed``), each process doing its share.

        Batch ``i`` comes from ``task.sample_inputs(..., seed=mix(seed, i))`` whatever the number
        of processes. The shape of one sample is appended to ``shapes`` once.
        """
        for index, start in enumerate(range(0, num, batch_size)):
            n = min(batch_size, num - start)
            inputs = self.task.sample_inputs(self.generators, self.dataset, n, _mix(seed, index))
            yield self._split(n, functools.partial(self._sample, inputs), fn, shapes)

    def map_real(
        self,
        num: int,
        batch_size: int,
        seed: int,
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        shapes: list[tuple[int, ...]],
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """``fn`` of the batches :meth:`real` yields, each process doing its share."""
        order = self._real_order(num, seed)
        for start in range(0, num, batch_size):
            rows = order[start : start + batch_size]
            yield self._split(len(rows), functools.partial(self._load, rows), fn, shapes)

    def _split(
        self,
        n: int,
        make: Callable[[int, int], torch.Tensor],
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        shapes: list[tuple[int, ...]],
    ) -> tuple[torch.Tensor, ...]:
        acc = self._accelerator
        world = acc.num_processes if acc is not None else 1
        rank = acc.process_index if acc is not None else 0
        sizes = [n // world + (r < n % world) for r in range(world)]
        lo = sum(sizes[:rank])
        # A process without a share (n < world) still runs on one sample: gather needs a tensor
        # of the right shape from everyone. Its output is dropped below.
        samples = make(lo, lo + sizes[rank]) if sizes[rank] else make(0, 1)
        if not shapes:
            shapes.append(tuple(samples.shape[1:]))
        outputs = fn(samples)
        if world == 1:
            return outputs
        gathered = []
        most = max(sizes)
        for out in outputs:
            padded = out.new_zeros((most, *out.shape[1:]))
            padded[: sizes[rank]] = out[: sizes[rank]]
            everyone = acc.gather(padded.contiguous())  # [world * most, ...], rank by rank
            gathered.append(
                torch.cat([everyone[r * most : r * most + sizes[r]] for r in range(world)])
            )
        return tuple(gathered)

    def _sample(self, inputs: Mapping[str, torch.Tensor], lo: int, hi: int) -> torch.Tensor:
        """Generated samples for rows ``lo:hi`` of ``inputs``."""
        share = {k: t[lo:hi].to(self.device) for k, t in inputs.items()}
        with torch.no_grad(), self._autocast():
            grid = self.task.sample(self.generators, share)
        return grid.images.float()

    def _real_order(self, num: int, seed: int) -> torch.Tensor:
        """Dataset indices of ``num`` real samples: a permutation from ``seed``, repeated if the
        dataset is smaller than ``num``."""
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.dataset), generator=gen)
        if num > len(order):
            order = order.repeat(math.ceil(num / len(order)))
        return order[:num]

    def _load(self, rows: torch.Tensor, lo: int = 0, hi: int | None = None) -> torch.Tensor:
        """Real samples ``x`` of dataset rows ``rows[lo:hi]``."""
        get_batch = getattr(self.dataset, "get_batch", None)
        indices = rows[lo:hi].tolist()
        if callable(get_batch):
            return get_batch(indices)["x"].to(self.device)
        return torch.stack([self.dataset[i]["x"] for i in indices]).to(self.device)


def metric_prefixes(names: Sequence[str]) -> list[str]:
    """Key prefixes of configured metrics: the name, then ``name-2``, ``name-3`` for repeats."""
    seen: dict[str, int] = {}
    prefixes = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        prefixes.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return prefixes


def _implied_protocol(name: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """A protocol for a metric that states none: its name, counts, seeds and text settings."""
    protocol: dict[str, Any] = {"metric": name}
    for key, value in result.items():
        if key.startswith(("num_", "seed")) or value is None or isinstance(value, str | bool):
            protocol[key] = value
    return protocol


def evaluate_metrics(
    metrics: Sequence[tuple[str, Any]],
    context: LoopMetricContext,
    generator_kind: str | None = None,
) -> dict[str, Any]:
    """Run every metric; flat results ``{"<metric>.<key>": value, "<metric>.protocol": {...}}``.

    A metric's own ``"protocol"`` dict is completed with the generator used (``"ema"``/``"raw"``)
    and the truncation; a metric that returns none gets one implied from its counts, seeds and text
    values. Repeated metric names are keyed ``name-2``, ``name-3``.
    """
    kind = generator_kind or context.generator_kind
    flat: dict[str, Any] = {}
    for prefix, (name, metric) in zip(
        metric_prefixes([n for n, _ in metrics]), metrics, strict=True
    ):
        result = dict(metric.evaluate(context))
        protocol = result.pop("protocol", None)
        protocol = (
            dict(protocol) if isinstance(protocol, Mapping) else _implied_protocol(name, result)
        )
        if protocol.get("generator") is None:
            protocol["generator"] = kind
        protocol.setdefault("truncation", context.truncation)
        result.setdefault("generator", kind)
        for key, value in result.items():
            flat[f"{prefix}.{key}"] = value
        flat[f"{prefix}.protocol"] = protocol
    return flat


def check_metrics(config: RunConfig, metrics: Sequence[tuple[str, Any]]) -> None:
    """Before the first step: ``training.best_metric`` names a value the metrics give, and every
    metric's extractor loads (a missing weights file stops the run now, not at its end)."""
    key = config.training.best_metric
    prefixes = metric_prefixes([n for n, _ in metrics])
    if key is not None:
        prefix, _, value = key.partition(".")
        if prefix not in prefixes:
            from gancore._names import did_you_mean

            configured = ", ".join(prefixes) or "none"
            raise ConfigError(
                [
                    f"training.best_metric: {key!r} names no configured metric"
                    f"{did_you_mean(prefix, prefixes)}; configured [[metrics]]: {configured} "
                    "(keys look like 'fid.fd-digits')"
                ],
                config.source,
            )
        metric = metrics[prefixes.index(prefix)][1]
        value_keys = getattr(metric, "value_keys", None)
        if callable(value_keys) and value not in value_keys():
            from gancore._names import did_you_mean

            keys = [f"{prefix}.{k}" for k in value_keys()]
            raise ConfigError(
                [
                    f"training.best_metric: metric {prefix!r} gives no value {value!r}"
                    f"{did_you_mean(key, keys)}; it gives {', '.join(keys)}"
                ],
                config.source,
            )
    for _, metric in metrics:
        load = getattr(metric, "load_extractor", None)
        if callable(load):
            load()


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
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``config``, writing the run directory ``run_dir``.

    ``resume`` continues from the newest intact checkpoint in ``run_dir`` (``fallback`` allows
    skipping a damaged newest one). ``progress`` forces the progress bar on or off (default: on a
    terminal). ``stop_after`` stops as if interrupted after that many iterations (for tests).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    training = config.training
    _check_trackers(config)
    run_dir = Path(run_dir)
    if not resume and ((run_dir / "metrics.jsonl").exists() or (run_dir / "checkpoints").exists()):
        raise ConfigError(
            [
                f"run directory {str(run_dir)!r} already holds a run; resume it (resume=True, "
                f"`gan train --resume {run_dir}`) or train into a new directory"
            ]
        )
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
    checkpoints = run_dir / "checkpoints"

    if training.keep_freed_memory:
        keep_freed_memory()  # before the first step allocates (gancore/_allocator.py)

    # -- build: identical weights on every process ----------------------------------------------
    built = build_run(config)
    task, dataset = built.task, built.dataset
    critic_regs = [(n, r) for n, r in built.regularizers if r.player == "critic"]
    generator_regs = [(n, r) for n, r in built.regularizers if r.player == "generator"]
    for _, obj in (*built.regularizers, ("augmenter", built.augmenter)):
        if isinstance(obj, nn.Module):
            obj.to(device)
    augmenter: Augmenter = built.augmenter
    check_metrics(config, built.metrics)  # fail now, not after the last step
    if main:  # only once the run builds: a config that fails leaves no run directory behind
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(config_to_toml(config))
        if (classes := dataset_classes(dataset)) is not None:  # names for --class and the grids
            save_classes(run_dir, classes)

    # Optimizers over every player's trainable parameters, with StyleGAN2's lazy correction.
    gen_params = _trainable(built.generators)
    critic_params = _trainable(built.critics)
    c_gen = lazy_correction([r.interval for _, r in generator_regs])
    c_critic = lazy_correction([r.interval for _, r in critic_regs])
    g_opt = config.optimizers.generator.build(gen_params, lr_scale=c_gen, beta_power=c_gen)
    d_opt = config.optimizers.critic.build(critic_params, lr_scale=c_critic, beta_power=c_critic)
    base_lrs = (config.optimizers.generator.lr * c_gen, config.optimizers.critic.lr * c_critic)

    # prepare() once, in a fixed order (generators, critics, then optimizers): checkpoint identity.
    gen_names, critic_names = list(built.generators), list(built.critics)
    prepared = accelerator.prepare(
        *built.generators.values(), *built.critics.values(), g_opt, d_opt
    )
    wrapped_gens = dict(zip(gen_names, prepared[: len(gen_names)], strict=True))
    wrapped_critics = dict(
        zip(
            critic_names, prepared[len(gen_names) : len(gen_names) + len(critic_names)], strict=True
        )
    )
    g_opt, d_opt = prepared[-2], prepared[-1]
    # Accelerate's wrappers cost more than a small model's whole step: AcceleratedOptimizer.step
    # looks for an optional package on disk (importlib find_spec) twice per call, zero_grad
    # inspects a signature, backward divides the loss by 1. Where they add nothing (no loss
    # scaler, no gradient accumulation, one process or DDP) the loop calls torch directly; the
    # wrapped optimizers still serve state_dict/load_state_dict. The math is the same.
    g_step, d_step, backward = _direct_calls(accelerator, g_opt, d_opt)
    # Autocast only where it does something: entering an autocast context is not free.
    autocast = accelerator.autocast if training.precision != "no" else contextlib.nullcontext
    gens = {n: accelerator.unwrap_model(m) for n, m in wrapped_gens.items()}
    critics = {n: accelerator.unwrap_model(m) for n, m in wrapped_critics.items()}
    # The EMA generators stay unprepared: never wrapped, never all-reduced, only copied into.
    ema = (
        {n: copy.deepcopy(m).eval().requires_grad_(False) for n, m in gens.items()}
        if (training.ema_half_life_images is not None)
        else {}
    )

    # torch.compile: the steps call compiled players; EMA, samples, metrics, lazy regularization
    # and checkpoints use the modules themselves (same parameters).
    step_gens, step_critics = (
        (_compiled(wrapped_gens, training.compile), _compiled(wrapped_critics, training.compile))
        if training.compile
        else (wrapped_gens, wrapped_critics)
    )
    if training.compile:
        backward = _explained(backward)
    step = StepContext(
        generators=step_gens,
        critics=step_critics,
        modules={**gens, **critics},
        loss=built.loss,
        augmenter=augmenter,
        critic_regularizers=critic_regs,
        device=device,
        seed=config.run.seed,
        rank=rank,
        world_size=world,
    )
    step.critic_unwrapped = critics  # type: ignore[attr-defined]

    # -- state -------------------------------------------------------------------------------------
    iteration = batches_drawn = critic_updates = generator_updates = 0
    nonfinite_total = nonfinite_run = 0
    sign_sum, sign_count, sign_images = torch.zeros((), device=device), 0, 0
    zero = torch.zeros((), device=device)  # never changed in place: StepContext adds out of place
    best: dict[str, Any] | None = None
    last_checkpoint: Path | None = None
    _seed_process(config.run.seed, rank)

    if resume:
        last_checkpoint = find_checkpoint(checkpoints, fallback=fallback)
        weights, state = load_checkpoint(last_checkpoint)
        _load_flat_state(gens, weights["generators"])
        _load_flat_state(critics, weights["critics"])
        if ema:
            _load_flat_state(ema, weights["ema"])
        g_opt.load_state_dict(state["optimizers"]["generator"])
        d_opt.load_state_dict(state["optimizers"]["critic"])
        iteration, batches_drawn = state["iteration"], state["batches_drawn"]
        critic_updates, generator_updates = state["critic_updates"], state["generator_updates"]
        nonfinite_total = state["nonfinite_total"]
        sign = state["augment_feedback"]
        sign_sum = sign["sum"].to(device)
        sign_count, sign_images = sign["count"], sign["images"]
        if isinstance(augmenter, nn.Module):
            augmenter.load_state_dict(state["augmenter"])
        for (_, reg), reg_state in zip(built.regularizers, state["regularizers"], strict=True):
            if isinstance(reg, nn.Module):
                reg.load_state_dict(reg_state)
        if hasattr(task, "load_state_dict"):
            task.load_state_dict(state["task"])
        if len(state["rng"]) == world:
            _set_rng_state(state["rng"][rank])
        else:
            _seed_process(_mix(config.run.seed, iteration), rank)
            if main:
                print(
                    f"note: resuming with {world} processes, the checkpoint had "
                    f"{len(state['rng'])}; augmentation randomness differs from an "
                    "uninterrupted run",
                    file=sys.stderr,
                )
        best = state.get("best") or None
        if main:
            _truncate_log(run_dir / "metrics.jsonl", iteration)

    if config.run.trackers:
        accelerator.init_trackers(config.run.name, config=_flat_config(config))

    plan = BatchPlan(
        len(dataset), training.batch_size, config.run.seed, rank, world, start=batches_drawn
    )
    data = batches(dataset, plan, device, training.num_workers)

    # Fixed inputs for the sample grids, the same at every interval.
    sample_seed = _mix(config.run.seed, 0x5A3)
    reference = _reference_points(dataset, config.run.seed)
    # A scatter of 2-D points needs many more samples than an image grid needs images.
    num_shown = training.num_samples if reference is None else max(training.num_samples, 2500)
    fixed_inputs = task.sample_inputs(gens, dataset, num_shown, sample_seed)

    def sampling_generators() -> tuple[dict[str, nn.Module], str]:
        return (ema, "ema") if ema else (gens, "raw")

    def write_samples(at: int) -> None:
        modules, _ = sampling_generators()
        was_training = {n: m.training for n, m in modules.items()}
        for m in modules.values():
            m.eval()
        with torch.no_grad(), accelerator.autocast():
            grid = task.sample(modules, {k: t.to(device) for k, t in fixed_inputs.items()})
        for n, m in modules.items():
            m.train(was_training[n])
        save_samples(
            grid.images.float(),
            run_dir / "samples" / f"{step_dir_name(at)}.png",
            grid.columns,
            reference,
            title=f"{config.run.name}, step {at}",
        )

    def run_metrics(at: int) -> dict[str, Any]:
        modules, kind = sampling_generators()
        was_training = {n: m.training for n, m in modules.items()}
        for m in modules.values():
            m.eval()  # batch norm uses its running statistics and does not update them
        context = LoopMetricContext(
            task,
            modules,
            dataset,
            device,
            accelerator,
            generator_kind=kind,
            autocast=accelerator.autocast,
        )
        results = evaluate_metrics(built.metrics, context, kind)
        for n, m in modules.items():
            m.train(was_training[n])
        if world > 1:
            # Every process computed the same values up to round-off; they must agree exactly,
            # since whether to save a best checkpoint (a collective operation) depends on them.
            from accelerate.utils import broadcast_object_list

            results = broadcast_object_list([results], from_process=0)[0]
        return results

    def checkpoint(at: int) -> Path:
        rng = _gather_objects(accelerator, _rng_state())
        path = checkpoints / step_dir_name(at)
        if main:
            state = {
                "iteration": at,
                "batches_drawn": batches_drawn,
                "critic_updates": critic_updates,
                "generator_updates": generator_updates,
                "images_seen": batches_drawn * training.batch_size,
                "nonfinite_total": nonfinite_total,
                "optimizers": {"generator": g_opt.state_dict(), "critic": d_opt.state_dict()},
                "augment_feedback": {
                    "sum": sign_sum.detach().cpu(),
                    "count": sign_count,
                    "images": sign_images,
                },
                "augmenter": _module_state(augmenter),
                "regularizers": [_module_state(r) for _, r in built.regularizers],
                "task": task.state_dict() if hasattr(task, "state_dict") else {},
                "rng": rng,
                "best": best or {},
                "world_size": world,
            }
            weights = {"generators": _flat_state(gens), "critics": _flat_state(critics)}
            if ema:
                weights["ema"] = _flat_state(ema)
            path = save_checkpoint(
                checkpoints,
                at,
                weights,
                state,
                meta={"run": config.run.name, "images_seen": state["images_seen"]},
            )
            prune_checkpoints(checkpoints, training.keep_checkpoints)
        accelerator.wait_for_everyone()
        return path

    log_file = run_dir / "metrics.jsonl"

    def write_log(record: dict[str, Any]) -> None:
        if main:
            with log_file.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        if config.run.trackers:
            accelerator.log(
                {k: v for k, v in record.items() if isinstance(v, int | float)}, step=record["step"]
            )

    # Logged scalars of the log interval, kept as tensors: no host sync, and no arithmetic, until
    # we log. Long intervals are folded into partial sums to bound the lists.
    log_values: dict[str, list[torch.Tensor]] = {}
    log_counts: dict[str, int] = {}

    def collect_logs() -> None:
        for name, value in step.logs.items():
            values = log_values.setdefault(name, [])
            values.append(value)
            log_counts[name] = log_counts.get(name, 0) + 1
            if len(values) >= _LOG_FOLD:
                values[:] = [_sum(values, device)]
        step.logs = {}

    def finite(loss: torch.Tensor) -> bool:
        if world == 1:
            return math.isfinite(loss.item())  # one read of the host value, no extra kernels
        bad = (~torch.isfinite(loss.detach())).float().reshape(1)
        if world > 1:
            bad = accelerator.reduce(bad, reduction="sum")
        return bool(bad.item() == 0)

    def skip_nonfinite(what: str, at: int) -> None:
        nonlocal nonfinite_total, nonfinite_run
        nonfinite_total += 1
        nonfinite_run += 1
        if nonfinite_run >= training.max_nonfinite_steps:
            last = (
                f"the last good checkpoint is {last_checkpoint}"
                if last_checkpoint
                else "no checkpoint had been written yet"
            )
            raise TrainingError(
                f"stopping at step {at}: {nonfinite_run} non-finite losses in a row (last: "
                f"{what}); {last}. Lower the learning rate, check the data, or try "
                "training.precision = 'no'"
            )

    def all_reduce_grads(params: Sequence[nn.Parameter]) -> None:
        """Average gradients of a phase that ran on unwrapped modules (lazy regularization)."""
        if world == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            flat = accelerator.reduce(flat, reduction="mean")
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    def other_player_frozen(
        modules: Mapping[str, nn.Module], params: Sequence[nn.Parameter]
    ) -> contextlib.AbstractContextManager[Any]:
        """No grads into, and no all-reduce for, the player that is not being updated."""
        if world == 1:  # nothing to all-reduce: only switch the gradients off
            return _GradsOff(params)
        stack = contextlib.ExitStack()
        for m in modules.values():
            stack.enter_context(accelerator.no_sync(m))
        _set_grad(params, False)
        stack.callback(_set_grad, params, True)
        return stack

    # -- progress --------------------------------------------------------------------------------
    show_bar = progress if progress is not None else sys.stderr.isatty()
    bar = None
    if main and show_bar:
        from tqdm import tqdm

        bar = tqdm(
            total=config.run.steps,
            initial=iteration,
            unit="it",
            dynamic_ncols=True,
            desc=config.run.name,
            file=sys.stderr,
        )
    # Only optimizers whose learning rate changes are touched each iteration.
    scheduled = [
        (player, opt, opt_config, base)
        for player, opt, opt_config, base in (
            ("generator", g_opt, config.optimizers.generator, base_lrs[0]),
            ("critic", d_opt, config.optimizers.critic, base_lrs[1]),
        )
        if opt_config.schedule != "constant"
    ]
    started = time.perf_counter()
    interval_start, interval_iterations = time.perf_counter(), 0
    start_iteration = iteration
    last_metrics: dict[str, Any] = {}
    interrupted = False
    saved_at = -1

    with _Stop() as stop:
        while iteration < config.run.steps:
            # ---- 1. critic phase -----------------------------------------------------------------
            batch: dict[str, torch.Tensor] = {}
            for k in range(training.critic_steps):
                batch = next(data)
                batches_drawn += 1
                step.begin(0, iteration, k)
                d_step.zero_grad(set_to_none=True)
                with other_player_frozen(wrapped_gens, gen_params), autocast():
                    loss = task.critic_step(step, batch)
                if finite(loss):
                    nonfinite_run = 0
                    backward(loss)
                    d_step.step()
                    for _, reg in critic_regs:
                        for module in critics.values():
                            reg.after_step(module)
                else:
                    skip_nonfinite("critic loss", iteration)
                collect_logs()
                if augmenter.feedback_interval:  # without feedback nobody reads the sums
                    sign_sum = sign_sum + step.real_sign_sum
                    sign_count += step.real_count
                    sign_images += step.real_images
                step.real_sign_sum, step.real_count, step.real_images = zero, 0, 0
                critic_updates += 1

                # ---- 2. lazy critic regularization: its own step, penalty x interval ------------
                for name, reg in critic_regs:
                    if reg.interval == 1 or critic_updates % reg.interval:
                        continue
                    d_step.zero_grad(set_to_none=True)
                    with autocast():
                        penalties = [
                            reg.penalty(_scorer(critics[c], augmenter), real, fake, extra)
                            for c, real, fake, extra in step.critic_calls
                        ]
                    penalties = [p for p in penalties if p is not None]
                    if not penalties:
                        continue
                    total = torch.stack(penalties).sum()
                    if finite(total):
                        backward(total * reg.interval)
                        all_reduce_grads(critic_params)
                        d_step.step()
                        for _, constraint in critic_regs:  # after every critic step (clipping)
                            for module in critics.values():
                                constraint.after_step(module)
                    else:
                        skip_nonfinite(f"{name} penalty", iteration)
                    step.log(f"reg/{name}", total)
                    collect_logs()

            # ---- 3. generator phase (on the last critic batch) ---------------------------------
            for k in range(training.generator_steps):
                step.begin(1, iteration, k)
                g_step.zero_grad(set_to_none=True)
                # Critic forward under no_sync: G's step must not all-reduce D's gradients.
                with other_player_frozen(wrapped_critics, critic_params), autocast():
                    loss = task.generator_step(step, batch)
                if finite(loss):
                    nonfinite_run = 0
                    backward(loss)
                    g_step.step()
                else:
                    skip_nonfinite("generator loss", iteration)
                collect_logs()
                generator_updates += 1

                # ---- 4. lazy generator regularization --------------------------------------------
                for name, reg in generator_regs:
                    if generator_updates % reg.interval:
                        continue
                    g_step.zero_grad(set_to_none=True)
                    with autocast():
                        penalties = [
                            reg.penalty(gens[g], inputs)
                            for g, inputs in step.generator_inputs.items()
                        ]
                    if not penalties:
                        continue
                    total = torch.stack(penalties).sum()
                    if finite(total):
                        backward(total * reg.interval)
                        all_reduce_grads(gen_params)
                        g_step.step()
                    else:
                        skip_nonfinite(f"{name} penalty", iteration)
                    step.log(f"reg/{name}", total)
                    collect_logs()

            # ---- 5. augmenter feedback: E[sign(D(real))] over all processes -------------------
            interval = augmenter.feedback_interval
            if interval and critic_updates % interval == 0 and sign_count:
                stats = torch.stack(
                    [
                        sign_sum.float(),
                        torch.tensor(float(sign_count), device=device),
                        torch.tensor(float(sign_images), device=device),
                    ]
                )
                if world > 1:
                    stats = accelerator.reduce(stats, reduction="sum")
                total_sign, count, images = stats.tolist()
                augmenter.feedback(total_sign / count, int(images))
                sign_sum, sign_count, sign_images = zero, 0, 0

            # ---- 6. EMA of the generators: beta = 0.5 ** (batch / half-life) -------------------
            iteration += 1
            images_seen = batches_drawn * training.batch_size
            if ema:
                beta = ema_beta(
                    training.batch_size,
                    training.ema_half_life_images,
                    images_seen,
                    training.ema_rampup,
                )
                for name, model in gens.items():
                    update_ema(ema[name], model, beta)

            # ---- 7. learning-rate schedules ----------------------------------------------------
            for _, opt, opt_config, base in scheduled:
                factor = lr_factor(
                    opt_config.schedule,
                    opt_config.decay_start,
                    opt_config.final_lr_scale,
                    iteration,
                    config.run.steps,
                )
                for group in opt.param_groups:
                    group["lr"] = base * factor

            # ---- 8. log, samples, metrics, checkpoint ---------------------------------------
            interval_iterations += 1
            done = iteration >= config.run.steps
            stop_now = bool(stop.signum) or (
                stop_after is not None and iteration - start_iteration >= stop_after
            )
            if world > 1:
                flag = torch.tensor([float(stop_now)], device=device)
                stop_now = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
            if bar is not None:
                bar.update(1)
            if iteration % training.log_every == 0 or done or stop_now:
                names = sorted(log_values)
                means = (
                    torch.stack([_sum(log_values[n], device) / log_counts[n] for n in names])
                    if names
                    else None
                )
                if means is not None and world > 1:
                    means = accelerator.reduce(means, reduction="mean")
                now = time.perf_counter()
                seconds = (now - interval_start) / max(1, interval_iterations)
                record: dict[str, Any] = {
                    "event": "train",
                    "step": iteration,
                    "images_seen": images_seen,
                    "time_s": round(now - started, 3),
                    "sec_per_step": seconds,
                    "images_per_s": training.batch_size * training.critic_steps / seconds,
                    "nonfinite_skipped": nonfinite_total,
                }
                if means is not None:
                    record.update(zip(names, means.tolist(), strict=True))
                for player, opt, _, _ in scheduled:  # the learning rate of the next step
                    record[f"lr/{player}"] = opt.param_groups[0]["lr"]
                for attr in ("log_values",):
                    values = getattr(augmenter, attr, None)
                    if callable(values):
                        record.update({f"augment/{k}": v for k, v in values().items()})
                write_log(record)
                log_values.clear()
                log_counts.clear()
                interval_start, interval_iterations = time.perf_counter(), 0
                if main:
                    _report(bar, record, config.run.steps, started, iteration - start_iteration)
            if main and (
                (training.sample_every and iteration % training.sample_every == 0)
                or done
                or stop_now
            ):
                write_samples(iteration)
                if log_file.exists():
                    save_curves(log_file, run_dir / "curves.png")
            if built.metrics and (
                (training.metrics_every and iteration % training.metrics_every == 0) or done
            ):
                metrics_started = time.perf_counter()
                last_metrics = run_metrics(iteration)
                write_log(
                    {
                        "event": "metric",
                        "step": iteration,
                        "images_seen": images_seen,
                        "metrics_time_s": round(time.perf_counter() - metrics_started, 3),
                        **last_metrics,
                    }
                )
                key = training.best_metric
                if key is not None and isinstance(last_metrics.get(key), int | float):
                    value = float(last_metrics[key])
                    better = best is None or (
                        value < best["value"]
                        if training.best_mode == "min"
                        else value > best["value"]
                    )
                    if better:
                        best = {
                            "checkpoint": step_dir_name(iteration),
                            "step": iteration,
                            "metric": key,
                            "value": value,
                        }
                        last_checkpoint = checkpoint(iteration)
                        saved_at = iteration
                        if main:
                            _write_json(checkpoints / "best.json", best)
            if saved_at != iteration and (
                (training.checkpoint_every and iteration % training.checkpoint_every == 0)
                or done
                or stop_now
            ):
                last_checkpoint = checkpoint(iteration)
                saved_at = iteration
            if stop_now and not done:
                interrupted = True
                break

    if bar is not None:
        bar.close()
    accelerator.end_training()
    if main:
        elapsed = _format_duration(time.perf_counter() - started)
        if interrupted:
            print(
                f"stopped at step {iteration} after {elapsed}; checkpoint: {last_checkpoint}\n"
                f"resume with: gan train --resume {run_dir}",
                file=sys.stderr,
            )
        else:
            print(
                f"done: {iteration} steps in {elapsed}\n"
                f"  samples:    {run_dir / 'samples'}\n"
                f"  curves:     {run_dir / 'curves.png'}\n"
                f"  metrics:    {log_file}\n"
                f"  checkpoint: {last_checkpoint}",
                file=sys.stderr,
            )
    return TrainResult(
        run_dir=run_dir,
        step=iteration,
        images_seen=batches_drawn * training.batch_size,
        checkpoint=last_checkpoint,
        interrupted=interrupted,
        metrics=last_metrics,
        generators=gens,
        critics=critics,
        ema=ema,
        regularizers=tuple(built.regularizers),
    )


def _scorer(
    critic: nn.Module, augment: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[..., torch.Tensor]:
    def score(x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return critic(augment(x), *extra)

    return score


def _gather_objects(accelerator: Any, obj: Any) -> list[Any]:
    if accelerator.num_processes == 1:
        return [obj]
    from accelerate.utils import gather_object

    return list(gather_object([obj]))


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def _reference_points(dataset: Dataset, seed: int, num: int = 2000) -> torch.Tensor | None:
    """Real points for scatter plots of 2-D data; ``None`` for images."""
    shape = dataset.shapes.get("x")
    if shape is None or len(shape) != 1:
        return None
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:num]
    get_batch = getattr(dataset, "get_batch", None)
    if callable(get_batch):
        return get_batch(order.tolist())["x"]
    return torch.stack([dataset[int(i)]["x"] for i in order])


def _flat_config(config: RunConfig) -> dict[str, Any]:
    from gancore._config import config_to_dict

    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, x in value.items():
                walk(f"{prefix}.{k}" if prefix else k, x)
        elif isinstance(value, list):
            flat[prefix] = str(value)
        else:
            flat[prefix] = value

    walk("", config_to_dict(config))
    return flat


def _report(bar: Any, record: Mapping[str, Any], total: int, started: float, done: int) -> None:
    losses = {k: v for k, v in record.items() if k.startswith(("loss/", "reg/", "augment/"))}
    if bar is not None:
        bar.set_postfix(
            {k.split("/", 1)[1]: f"{v:.3g}" for k, v in losses.items()}
            | {"img/s": f"{record['images_per_s']:.0f}"},
            refresh=False,
        )
        return
    elapsed = time.perf_counter() - started
    remaining = (total - record["step"]) * elapsed / max(1, done)
    parts = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
    print(
        f"step {record['step']}/{total} | {1 / record['sec_per_step']:.2f} it/s | "
        f"{record['images_per_s']:.0f} img/s | {parts} | eta {_format_duration(remaining)}",
        file=sys.stderr,
        flush=True,
    )
