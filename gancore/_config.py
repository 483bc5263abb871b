"""Run configuration: one TOML file, validated against attrs classes, every problem reported at once.

Structuring is two-step for components: read ``name``, look the component up in the registry, then
structure the table's other keys against that component's own options class. Values are structured
one field at a time with one cattrs converter (strict about types: ``"5"`` is not an integer) and
each field's attrs validator is run on its own, so a file with five mistakes gets five lines.
"""

from __future__ import annotations

import inspect
import keyword
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import tomli_w
import torch
from attrs import validators as v

from gancore._errors import AmbiguousComponentError, ConfigError, UnknownComponentError
from gancore._names import did_you_mean
from gancore._registry import ComponentSpec, Registry

__all__ = [
    "Component",
    "InitSection",
    "OptimizerConfig",
    "RunConfig",
    "RunSection",
    "StageSection",
    "TrainingSection",
    "apply_overrides",
    "config_to_dict",
    "config_to_toml",
    "converter",
    "load_config",
    "parse_config",
    "structure_component",
    "structure_options",
    "toml_key",
]


def doc(text: str) -> dict[str, str]:
    """Field metadata: the documentation shown in the config reference."""
    return {"doc": text}


def toml_key(field: attrs.Attribute[Any]) -> str:
    """The TOML key of an attrs field: its ``__init__`` name, less the trailing underscore PEP 8
    adds to a Python keyword (field ``from_`` is key ``from``)."""
    key = field.alias or field.name
    return key[:-1] if key.endswith("_") and keyword.iskeyword(key[:-1]) else key


# -------------------------------------------------------------------------------------------------
# The converter: strict primitives
# -------------------------------------------------------------------------------------------------

_TOML_TYPE = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "array",
    dict: "table",
    tuple: "array",
}


def _given(value: Any) -> str:
    kind = _TOML_TYPE.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, dict) else "a table"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({kind})"


class _WrongTypeError(TypeError):
    pass


def _strict(
    expected: str, check: typing.Callable[[Any], bool], cast: typing.Callable[[Any], Any]
) -> typing.Callable[[Any, Any], Any]:
    def hook(value: Any, _type: Any) -> Any:
        if not check(value):
            raise _WrongTypeError(f"expected {expected}, got {_given(value)}")
        return cast(value)

    return hook


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(
        int, _strict("an integer", lambda x: isinstance(x, int) and not isinstance(x, bool), int)
    )
    conv.register_structure_hook(
        float,
        _strict(
            "a number", lambda x: isinstance(x, int | float) and not isinstance(x, bool), float
        ),
    )
    conv.register_structure_hook(
        bool, _strict("true or false", lambda x: isinstance(x, bool), bool)
    )
    conv.register_structure_hook(str, _strict("a string", lambda x: isinstance(x, str), str))
    return conv


converter = _make_converter()


# -------------------------------------------------------------------------------------------------
# Field-by-field structuring with complete error reports
# -------------------------------------------------------------------------------------------------


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in arms)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} {_plural(args[0]) if len(set(args)) == 1 else 'values'}"
    if origin in (list, Sequence):
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin in (dict, Mapping):
        return "a table"
    if isinstance(tp, type) and attrs.has(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(
        tp, _describe(tp)
    )


_ATTRS_MESSAGE = re.compile(r"^'(?P<name>[^']+)' must be (?P<what>.+?)(?:: (?P<got>.+))?$", re.S)


def _reword(exc: BaseException) -> str:
    """attrs' "'gamma' must be >= 0: -1.0" becomes "'gamma' must be >= 0 (got -1.0)"."""
    text = str(exc.args[0]) if exc.args else str(exc)
    match = _ATTRS_MESSAGE.match(text)
    if match and match.group("got") and "(got" not in text:
        return f"'{match.group('name')}' must be {match.group('what')} (got {match.group('got')})"
    return text.splitlines()[0] if text else type(exc).__name__


def _structure_value(value: Any, tp: Any, path: str, problems: list[str]) -> Any:
    """Structure one value against ``tp``; on failure append a problem and return ``attrs.NOTHING``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        for arm in (a for a in args if a is not type(None)):
            sub: list[str] = []
            out = _structure_value(value, arm, path, sub)
            if not sub:
                return out
        problems.append(f"{path}: expected {_describe(tp)}, got {_given(value)}")
        return attrs.NOTHING
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        problems.append(f"{path}: expected {_describe(tp)}, got {_given(value)}")
        return attrs.NOTHING
    if origin is tuple:
        if not isinstance(value, list | tuple):
            problems.append(f"{path}: expected {_describe(tp)}, got {_given(value)}")
            return attrs.NOTHING
        variadic = len(args) == 2 and args[1] is Ellipsis
        if not variadic and len(value) != len(args):
            problems.append(f"{path}: expected {_describe(tp)}, got {_given(value)}")
            return attrs.NOTHING
        item_types = [args[0]] * len(value) if variadic else list(args)
        before = len(problems)
        items = [
            _structure_value(item, it, f"{path}[{i}]", problems)
            for i, (item, it) in enumerate(zip(value, item_types, strict=True))
        ]
        return tuple(items) if len(problems) == before else attrs.NOTHING
    if isinstance(tp, type) and attrs.has(tp):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a table, got {_given(value)}")
            return attrs.NOTHING
        out = structure_options(tp, value, path, problems)
        return attrs.NOTHING if out is None else out
    try:
        return converter.structure(value, tp)
    except _WrongTypeError as exc:
        problems.append(f"{path}: {exc}")
    except Exception as exc:  # cattrs' own errors for types we do not special-case
        problems.append(f"{path}: expected {_describe(tp)}, got {_given(value)} ({_reword(exc)})")
    return attrs.NOTHING


def _field_types(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: fall back to the declared types
        hints = {}
    return {
        f.name: hints.get(f.name, f.type if not isinstance(f.type, str) else Any)
        for f in attrs.fields(cls)
    }


def structure_options(
    cls: type, table: Mapping[str, Any], path: str, problems: list[str], what: str | None = None
) -> Any | None:
    """Structure ``table`` into attrs class ``cls``; problems are appended, ``None`` on failure."""
    fields = {toml_key(f): f for f in attrs.fields(cls) if f.init}
    types_ = _field_types(cls)
    before = len(problems)
    accepts = ", ".join(fields) or "no options"
    label = what or cls.__name__
    for key in table:
        if key not in fields:
            problems.append(
                f"{_join(path, key)}: unknown key{did_you_mean(key, fields)}; "
                f"{label} accepts: {accepts}"
            )
    values: dict[str, Any] = {}
    for key, field in fields.items():
        if key not in table:
            if field.default is attrs.NOTHING:
                problems.append(
                    f"{_join(path, key)}: required key is missing "
                    f"(expected {_describe(types_[field.name])})"
                )
            continue
        sub_problems: list[str] = []
        value = _structure_value(table[key], types_[field.name], _join(path, key), sub_problems)
        if sub_problems:
            problems.extend(sub_problems)
            continue
        if field.validator is not None:
            try:
                field.validator(None, field, value)
            except (ValueError, TypeError) as exc:
                problems.append(f"{_join(path, key)}: {_reword(exc)}")
                continue
        values[field.alias or field.name] = value
    if len(problems) > before:
        return None
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:  # cross-field checks in __attrs_post_init__
        problems.append(f"{path or label}: {_reword(exc)}")
        return None


def _finite(_instance: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    """Refuses infinities (NaN already fails every ordering validator)."""
    if value is not None and not math.isfinite(value):
        raise ValueError(f"'{toml_key(attribute)}' must be a finite number (got {value})")


def _positive_finite(_instance: Any, _attribute: Any, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"a learning rate must be a finite number > 0 (got {value})")


# Upper bounds of sizes that cannot work however large the machine: one global batch is held in
# memory as a list of indices, a sample grid is drawn at once, a seed goes through 64-bit mixing.
MAX_BATCH_SIZE = 2**20
MAX_STEPS_PER_ITERATION = 1000
MAX_NUM_SAMPLES = 2**16
MAX_WORKERS = 256
MAX_SEED = 2**32 - 1
MAX_RESOLUTION = 2**14


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# -------------------------------------------------------------------------------------------------
# The sections of a run
# -------------------------------------------------------------------------------------------------

TRACKERS = ("tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive")


@attrs.frozen(kw_only=True)
class Component:
    """A registered component chosen in config: its spec and its structured options.

    It also remembers where it was parsed (none of which takes part in equality or the resolved
    TOML): the registry, so that its factory can resolve the components it needs through its build
    context; its key path (``data``, ``metrics[0]``) and the config file, for error messages.
    """

    spec: ComponentSpec
    options: Any
    registry: Registry | None = attrs.field(default=None, eq=False, repr=False)
    path: str = attrs.field(default="", eq=False, repr=False)
    source: str | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.qualified_name

    def build(self, context: Any = None) -> Any:
        """The built component. Its factory gets ``context`` with this component's registry and
        key path filled in; ``None`` (a dataset or a task, built before anything knows a shape)
        becomes a :class:`~gancore.BuildContext` with ``data_shape = ()``. A
        :class:`ConfigError` the factory raises (from ``context.resolve``) names the config file."""
        from gancore._task import BuildContext  # _task resolves tables through this module

        if context is None:
            context = BuildContext(data_shape=(), registry=self.registry, path=self.path)
        elif isinstance(context, BuildContext):
            registry = context.registry if context.registry is not None else self.registry
            context = attrs.evolve(context, registry=registry, path=self.path or context.path)
        if self.spec.kind in NETWORK_KINDS:
            self._check_memory(context)
        try:
            return self.spec.build(self.options, context)
        except ConfigError as exc:
            if exc.source is not None or self.source is None:
                raise
            raise ConfigError(exc.problems, self.source) from None
        except RuntimeError as exc:  # the allocator gave up: say which component asked
            if not _is_out_of_memory(exc):
                raise
            raise ConfigError(
                [f"{self._where()}: ran out of memory while building it ({_first_line(exc)})"],
                self.source,
            ) from None

    def _where(self) -> str:
        return f"{self.path or self.spec.kind} {self.spec.name!r}"

    def _check_memory(self, context: Any) -> None:
        """Refuse a network whose training memory cannot fit, estimated from a build on the
        meta device (shapes only, nothing allocated, no random draw)."""
        available = available_memory()
        if available is None:
            return
        try:
            with torch.device("meta"):
                module = self.spec.build(self.options, context)
        except Exception:  # a network that cannot be built on meta is not estimated
            return
        if not isinstance(module, torch.nn.Module):
            return
        parameters = sum(p.numel() * p.element_size() for p in module.parameters())
        buffers = sum(b.numel() * b.element_size() for b in module.buffers())
        # Training holds each parameter four times: weights, gradients, Adam's two moments.
        needed = 4 * parameters + buffers
        if needed > available:
            count = sum(p.numel() for p in module.parameters())
            raise ConfigError(
                [
                    f"{self._where()}: its {count:,} parameters need about "
                    f"{needed / 2**30:.1f} GiB to train (weights, gradients, Adam's two "
                    f"moments), more than the {available / 2**30:.1f} GiB of memory available; "
                    "make it smaller (channels, depth)"
                ],
                self.source,
            )


# Kinds whose memory is estimated before they are built.
NETWORK_KINDS = ("generator", "critic")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), ``None`` where the
    system does not say. Networks are built in this memory before they move to a device."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _is_out_of_memory(exc: RuntimeError) -> bool:
    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@attrs.frozen(kw_only=True)
class RunSection:
    """``[run]``: what the run is called, where it goes, how long it lasts."""

    name: str = attrs.field(
        default="run",
        validator=v.matches_re(r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
        metadata=doc("Name of the run directory under `output_dir` (letters, digits, . _ -)."),
    )
    output_dir: str = attrs.field(
        default="runs", metadata=doc("Folder that holds run directories (relative to the cwd).")
    )
    seed: int = attrs.field(
        default=0,
        validator=[v.ge(0), v.le(MAX_SEED)],
        metadata=doc("Seed of every random draw (0 to 2^32 - 1)."),
    )
    steps: int = attrs.field(
        default=1000,
        validator=v.ge(1),
        metadata=doc(
            "Training length in iterations; one iteration = `training.critic_steps` critic "
            "updates and `training.generator_steps` generator updates (>= 1)."
        ),
    )
    trackers: tuple[str, ...] = attrs.field(
        default=(),
        validator=v.deep_iterable(v.in_(TRACKERS)),
        metadata=doc(
            "Accelerate trackers to log to besides metrics.jsonl, e.g. ['tensorboard']; each must "
            "be installed. Empty = none."
        ),
    )


@attrs.frozen(kw_only=True)
class TrainingSection:
    """``[training]``: batch, steps per iteration, EMA, precision and intervals."""

    batch_size: int = attrs.field(
        default=64,
        validator=[v.ge(1), v.le(MAX_BATCH_SIZE)],
        metadata=doc(
            "Global batch size per step, summed over processes (1 to 2^20 = 1048576; at most "
            "the dataset's size, checked when the run is built)."
        ),
    )
    critic_steps: int = attrs.field(
        default=1,
        validator=[v.ge(1), v.le(MAX_STEPS_PER_ITERATION)],
        metadata=doc(
            "Critic updates per iteration, each on a fresh batch (WGAN uses 5; 1 to 1000)."
        ),
    )
    generator_steps: int = attrs.field(
        default=1,
        validator=[v.ge(1), v.le(MAX_STEPS_PER_ITERATION)],
        metadata=doc("Generator updates per iteration (1 to 1000)."),
    )
    ema_half_life_images: float | None = attrs.field(
        default=None,
        validator=v.optional([v.gt(0), _finite]),
        metadata=doc(
            "Half-life of the generator's exponential moving average, in images (> 0, finite; "
            "StyleGAN2: 10000). Unset = no EMA; samples and metrics use the trained generator."
        ),
    )
    ema_rampup: float | None = attrs.field(
        default=None,
        validator=v.optional([v.gt(0), _finite]),
        metadata=doc(
            "EMA ramp-up: the half-life is min(ema_half_life_images, images_seen * ema_rampup) "
            "(> 0, finite; StyleGAN2-ADA uses 0.05). Unset = no ramp-up."
        ),
    )
    precision: Literal["no", "bf16", "fp16"] = attrs.field(
        default="no",
        metadata=doc(
            "Mixed precision through Accelerate: 'no' (float32), 'bf16' (autocast), or 'fp16' "
            "(autocast with a gradient scaler, for GPUs without bf16; needs a GPU). An fp16 "
            "step the scaler skips for overflowing gradients is not a non-finite loss."
        ),
    )
    compile: Literal[False, True, "default", "reduce-overhead", "max-autotune"] = attrs.field(
        default=False,
        metadata=doc(
            "torch.compile the generators and critics for the training steps: false (eager), "
            "true or 'default', 'reduce-overhead' (CUDA graphs), 'max-autotune'. The first "
            "steps pay the compilation (a minute or more on a CPU); penalties that differentiate "
            "through the critic's gradient (R1, WGAN-GP) every step need compile = false or a "
            "lazy interval."
        ),
    )
    keep_freed_memory: bool = attrs.field(
        default=True,
        validator=v.instance_of(bool),
        metadata=doc(
            "Keep memory a step frees for the next step instead of returning it to the system "
            "(glibc's mallopt: mmap threshold 32 MiB, trim threshold 1 GiB; process-wide, stays "
            "after training; nothing elsewhere than glibc). Saves re-faulting the activations' "
            "pages every step on a CPU; false = leave the allocator as it is."
        ),
    )
    log_every: int = attrs.field(
        default=50, validator=v.ge(1), metadata=doc("Iterations between log lines (>= 1).")
    )
    sample_every: int = attrs.field(
        default=500,
        validator=v.ge(0),
        metadata=doc("Iterations between sample grids; 0 = only at the end."),
    )
    num_samples: int = attrs.field(
        default=64,
        validator=[v.ge(1), v.le(MAX_NUM_SAMPLES)],
        metadata=doc(
            "Images in a sample grid, 1 to 65536 (a 2-D scatter shows at least 2500 points)."
        ),
    )
    report: bool = attrs.field(
        default=True,
        validator=v.instance_of(bool),
        metadata=doc(
            "Write report.html, the run's self-contained HTML report (docs/run_report.md), "
            "into the run directory when the run ends or stops; false = never (`gan report` "
            "still writes it on demand)."
        ),
    )
    report_every: int = attrs.field(
        default=0,
        validator=v.ge(0),
        metadata=doc(
            "Also rewrite report.html every this many sample grids, i.e. every "
            "`sample_every * report_every` iterations (>= 0); 0 = only at the end."
        ),
    )
    metrics_every: int = attrs.field(
        default=0,
        validator=v.ge(0),
        metadata=doc("Iterations between metric evaluations; 0 = only at the end."),
    )
    checkpoint_every: int = attrs.field(
        default=1000,
        validator=v.ge(0),
        metadata=doc("Iterations between checkpoints; 0 = only at the end."),
    )
    keep_checkpoints: int = attrs.field(
        default=3,
        validator=v.ge(1),
        metadata=doc("Checkpoints kept (the newest; the best is kept besides)."),
    )
    best_metric: str | None = attrs.field(
        default=None,
        metadata=doc(
            "Metric value that picks the best checkpoint, as 'metric.key', e.g. "
            "'mode-coverage.modes_covered'. Unset = no best checkpoint."
        ),
    )
    best_mode: Literal["min", "max"] = attrs.field(
        default="min", metadata=doc("Whether a lower ('min') or higher ('max') best_metric wins.")
    )
    max_nonfinite_steps: int = attrs.field(
        default=10,
        validator=v.ge(1),
        metadata=doc(
            "Consecutive non-finite losses tolerated (each step is skipped) before the run stops."
        ),
    )
    num_workers: int = attrs.field(
        default=0,
        validator=[v.ge(0), v.le(MAX_WORKERS)],
        metadata=doc(
            "Data-loader worker processes per training process, 0 to 256 (0 = load in-process)."
        ),
    )
    accumulate: int = attrs.field(
        default=1,
        validator=v.ge(1),
        metadata=doc(
            "Gradient accumulation: every update splits its batch into this many micro-batches "
            "and sums their gradients (each loss divided by the count) before the optimizer "
            "steps: the same update as the whole batch at once, in the memory of one part. "
            "batch_size must divide evenly by accumulate times the number of processes (>= 1)."
        ),
    )
    sync_batchnorm: bool | None = attrs.field(
        default=None,
        metadata=doc(
            "Batch norm statistics over the global batch (all processes) rather than each "
            "process's share: true, false, or unset = on whenever more than one process trains "
            "a network with batch norm, so that one process and several train the same model."
        ),
    )


def _non_empty(_instance: Any, _attribute: Any, value: str) -> None:
    if not value.strip():
        raise ValueError(f"'from' must be a path (got {value!r})")


@attrs.frozen(kw_only=True)
class InitSection:
    """``[init]``: optional; a new run starts from the weights of another (fine-tuning, transfer).

    Without it the networks start from their own initialization. Matched tensors (same name and
    shape) are loaded before the first step; the run still counts from step 0 with fresh
    optimizers. See "Fine-tuning: [init]" in docs/training.md.
    """

    from_: str = attrs.field(
        validator=_non_empty,
        metadata=doc(
            "Where the weights come from (relative to the cwd): a run directory (its newest "
            "intact checkpoint), a checkpoint folder (`RUN/checkpoints/step-NNNNNNN`), or a "
            "`.safetensors` file whose keys are `<group>.<player>.<tensor>`, e.g. "
            "`generators.generator.net.0.weight` (a file named after a group, such as a "
            "checkpoint's `generators.safetensors`, holds `<player>.<tensor>` keys)."
        ),
    )
    strict: bool = attrs.field(
        default=False,
        validator=v.instance_of(bool),
        metadata=doc(
            "true: any missing, unexpected or shape-mismatched tensor stops the run (one line "
            "each); false: load what matches and report the rest in init.json."
        ),
    )
    groups: tuple[str, ...] | None = attrs.field(
        default=None,
        metadata=doc(
            "Weight groups to load, e.g. `['generators', 'ema']` to keep a fresh critic; the "
            "others keep their own initialization, except the EMA, which starts from the "
            "source's generators when they load. Unset = every group."
        ),
    )
    exclude: tuple[str, ...] = attrs.field(
        default=(),
        metadata=doc(
            "Tensors not to load, as shell patterns on `<group>.<player>.<tensor>` names, e.g. "
            "`['critics.critic.net.9.*']` to re-initialize a critic's last layer. Excluded "
            "tensors are listed in the report and never make `strict` fail."
        ),
    )


_SKIPPED_OPTIMIZER_ARGS = {
    "params",
    "lr",
    "foreach",
    "capturable",
    "differentiable",
    "fused",
    "maximize",
}


def optimizer_classes() -> dict[str, type[torch.optim.Optimizer]]:
    """torch optimizers by lowercase class name (``adam``, ``adamw``, ``rmsprop``, ``sgd``, ...)."""
    out = {}
    for name in dir(torch.optim):
        obj = getattr(torch.optim, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, torch.optim.Optimizer)
            and (obj is not torch.optim.Optimizer)
        ):
            out[name.lower()] = obj
    return out


@attrs.frozen(kw_only=True)
class OptimizerConfig:
    """``[optimizers.generator]`` / ``[optimizers.critic]``: a torch optimizer and its schedule.

    Any ``torch.optim`` class by name; keys other than those below are passed to its constructor.
    """

    name: str = attrs.field(
        default="adam", metadata=doc("torch.optim class, case-insensitive: adam, adamw, rmsprop...")
    )
    lr: float = attrs.field(
        default=2e-4, validator=[v.gt(0), _finite], metadata=doc("Learning rate (> 0, finite).")
    )
    schedule: Literal["constant", "linear", "cosine"] = attrs.field(
        default="constant",
        metadata=doc(
            "Learning-rate schedule: constant, or from `decay_start` a linear or cosine decay to "
            "lr * final_lr_scale at the last step."
        ),
    )
    decay_start: int = attrs.field(
        default=0,
        validator=v.ge(0),
        metadata=doc("Iteration at which linear/cosine decay begins (CycleGAN: half the run)."),
    )
    final_lr_scale: float = attrs.field(
        default=0.0,
        validator=[v.ge(0), v.le(1)],
        metadata=doc("Learning rate at the end of a decay, as a fraction of lr (0..1)."),
    )
    options: dict[str, Any] = attrs.field(
        factory=dict, metadata=doc("Other constructor arguments, e.g. betas = [0.0, 0.99].")
    )

    @property
    def optimizer_class(self) -> type[torch.optim.Optimizer]:
        return optimizer_classes()[self.name]

    def build(
        self, params: Any, lr_scale: float = 1.0, beta_power: float = 1.0
    ) -> torch.optim.Optimizer:
        """The optimizer; ``lr_scale``/``beta_power`` apply the lazy-regularization correction."""
        kwargs = dict(self.options)
        if "betas" in kwargs:
            kwargs["betas"] = tuple(float(b) ** beta_power for b in kwargs["betas"])
        factory: Any = self.optimizer_class  # a concrete subclass; Optimizer's own init has no lr
        optimizer: torch.optim.Optimizer = factory(params, lr=self.lr * lr_scale, **kwargs)
        return optimizer


def _structure_optimizer(table: Any, path: str, problems: list[str]) -> OptimizerConfig | None:
    if not isinstance(table, dict):
        problems.append(f"{path}: expected a table, got {_given(table)}")
        return None
    own = {f.name for f in attrs.fields(OptimizerConfig)} - {"options"}
    name = table.get("name", "adam")
    classes = optimizer_classes()
    if not isinstance(name, str) or name.lower() not in classes:
        shown = name if isinstance(name, str) else _given(name)
        problems.append(
            f"{path}.name: unknown optimizer {shown!r}{did_you_mean(str(name).lower(), classes)}; "
            f"available: {', '.join(sorted(classes))}"
        )
        return None
    cls = classes[name.lower()]
    signature = inspect.signature(cls.__init__)
    accepted = {
        p: param.default
        for p, param in signature.parameters.items()
        if p not in _SKIPPED_OPTIMIZER_ARGS
        and p != "self"
        and param.kind is not inspect.Parameter.VAR_KEYWORD
    }
    before = len(problems)
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key in own:
            continue
        if key not in accepted:
            problems.append(
                f"{_join(path, key)}: unknown option for torch.optim.{cls.__name__}"
                f"{did_you_mean(key, list(accepted) + list(own))}; "
                f"accepts: {', '.join(sorted(own | set(accepted)))}"
            )
            continue
        kwargs[key] = _numbers_as_floats(value, accepted[key])
        if _has_infinity(kwargs[key]):
            problems.append(f"{_join(path, key)}: must be finite (got {_given(value)})")
    base = structure_options(
        OptimizerConfig,
        {k: table[k] for k in table if k in own} | {"name": name.lower()},
        path,
        problems,
        what="an optimizer table",
    )
    if base is None or len(problems) > before:
        return None
    # Let torch check values (betas in [0, 1), eps >= 0, ...) now rather than at step 0.
    try:
        factory: Any = cls
        factory([torch.zeros(1, requires_grad=True)], lr=base.lr, **kwargs)
    except (ValueError, TypeError) as exc:
        problems.append(f"{path}: torch.optim.{cls.__name__} rejected the options: {exc}")
        return None
    # Fill in the optimizer's own defaults so the resolved config shows them; defaults TOML cannot
    # write (Adafactor's eps = (None, 1e-3)) stay implicit.
    for key, default in accepted.items():
        if key not in kwargs and default is not inspect.Parameter.empty and _toml_ready(default):
            kwargs[key] = default
    return attrs.evolve(base, options=kwargs)


def _has_infinity(value: Any) -> bool:
    """True when ``value`` (a number or a nested list of them) holds an infinity or NaN."""
    if isinstance(value, list | tuple):
        return any(_has_infinity(item) for item in value)
    return isinstance(value, float) and not math.isfinite(value)


def _toml_ready(value: Any) -> bool:
    """True for values TOML can hold: booleans, numbers, strings and (nested) lists of them."""
    if isinstance(value, list | tuple):
        return all(_toml_ready(item) for item in value)
    return isinstance(value, bool | int | float | str)


def _numbers_as_floats(value: Any, default: Any) -> Any:
    """TOML ``[0, 0.9]`` holds an int; torch's Adam rejects mixed betas, so numbers become floats
    wherever the optimizer's default is a float (or a tuple of floats)."""
    if isinstance(value, list | tuple):
        value = tuple(value)
        if isinstance(default, tuple) and all(isinstance(d, float) for d in default):
            return tuple(
                float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in value
            )
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _default_tables() -> dict[str, OptimizerConfig]:
    return {"generator": OptimizerConfig(), "critic": OptimizerConfig()}


@attrs.frozen(kw_only=True)
class OptimizersSection:
    """``[optimizers.<group>]``: one optimizer per player group the task trains (the classic GAN:
    ``generator`` and ``critic``; two-time-scale updates are just two lrs)."""

    tables: Mapping[str, OptimizerConfig] = attrs.field(factory=_default_tables)

    @property
    def generator(self) -> OptimizerConfig:
        return self.tables["generator"]

    @property
    def critic(self) -> OptimizerConfig:
        return self.tables["critic"]

    def __getitem__(self, group: str) -> OptimizerConfig:
        return self.tables[group]


@attrs.frozen(kw_only=True)
class StageSection:
    """``[[stages]]``: one stage of a staged run (progressive growing, per-scale training,
    pre-training then adversarial training). Stages run in order; the task decides what changes
    at the start of each (its ``begin_stage``), the loop applies the keys below."""

    name: str = attrs.field(
        default="", metadata=doc("A label for logs and pictures; empty = 'stage-<index>'.")
    )
    steps: int | None = attrs.field(
        default=None,
        validator=v.optional(v.ge(1)),
        metadata=doc(
            "Length in iterations (>= 1). Unset on the last stage = until run.steps; give "
            "`steps` or `images`, not both."
        ),
    )
    images: int | None = attrs.field(
        default=None,
        validator=v.optional(v.ge(1)),
        metadata=doc(
            "Length in real images shown to the critic (>= 1), rounded up to whole iterations "
            "of batch_size * training.critic_steps images (the stage's batch_size, else "
            "training.batch_size)."
        ),
    )
    resolution: int | None = attrs.field(
        default=None,
        validator=v.optional([v.ge(1), v.le(MAX_RESOLUTION)]),
        metadata=doc(
            "Image data resolution during the stage (1 to 16384): every real batch is resized "
            "to R x R (area averaging when shrinking) before the task sees it. Unset = the "
            "data's own."
        ),
    )
    batch_size: int | None = attrs.field(
        default=None,
        validator=v.optional(v.ge(1)),
        metadata=doc(
            "Global batch size during the stage (>= 1; PGGAN lowers it as the resolution "
            "grows). Unset = training.batch_size."
        ),
    )
    fade_in: float = attrs.field(
        default=0.0,
        validator=[v.ge(0), v.le(1)],
        metadata=doc(
            "Fraction of the stage over which the blend factor `stage/alpha` ramps linearly "
            "from 0 to 1 (PGGAN's fade-in of new layers); 0 = alpha is 1 throughout."
        ),
    )
    train: tuple[str, ...] = attrs.field(
        default=(),
        metadata=doc(
            "Player groups trained in this stage, e.g. ['generator'] for SRGAN's MSE "
            "pre-training; empty = every group."
        ),
    )
    freeze: tuple[str, ...] = attrs.field(
        default=(),
        metadata=doc(
            "Modules kept fixed from this stage on, as 'player' or 'player.sub.module' "
            "(SinGAN: the generators of coarser scales)."
        ),
    )
    reset_optimizers: bool = attrs.field(
        default=False,
        metadata=doc(
            "Start every optimizer afresh at the stage's start (PGGAN resets Adam's moments); "
            "false = keep the state of parameters that stay."
        ),
    )
    lr: dict[str, float] = attrs.field(
        factory=dict,
        validator=v.deep_mapping(v.instance_of(str), _positive_finite),
        metadata=doc(
            "Learning rates for this stage by player group (each > 0, finite), e.g. "
            "{generator = 1e-4}; a group not named keeps its [optimizers] lr."
        ),
    )
    options: dict[str, Any] = attrs.field(
        factory=dict, metadata=doc("Free-form options the task reads in begin_stage.")
    )

    def __attrs_post_init__(self) -> None:
        if self.steps is not None and self.images is not None:
            raise ValueError("'steps' and 'images' are both set; give one")


@attrs.frozen(kw_only=True)
class RunConfig:
    """A whole run, validated."""

    run: RunSection = attrs.field(factory=RunSection)
    data: Component
    task: Component
    generator: Component | None = None
    critic: Component | None = None
    loss: Component
    regularizers: tuple[Component, ...] = ()
    augmenter: Component
    metrics: tuple[Component, ...] = ()
    optimizers: OptimizersSection = attrs.field(factory=OptimizersSection)
    training: TrainingSection = attrs.field(factory=TrainingSection)
    stages: tuple[StageSection, ...] = ()
    init: InitSection | None = None
    source: str | None = None
    # The registry the config was parsed with: its components resolve what they need from it.
    registry: Registry | None = attrs.field(default=None, eq=False, repr=False)


# Component sections: (section, kind, default name or None when required/optional, is_list)
COMPONENT_SECTIONS: tuple[tuple[str, str, str | None, bool], ...] = (
    ("data", "dataset", None, False),
    ("task", "task", "unconditional", False),
    ("generator", "generator", None, False),
    ("critic", "critic", None, False),
    ("loss", "loss", "non-saturating", False),
    ("regularizers", "regularizer", None, True),
    ("augmenter", "augmenter", "none", False),
    ("metrics", "metric", None, True),
)
PLAIN_SECTIONS = {"run": RunSection, "training": TrainingSection, "init": InitSection}
# Plain sections that may be absent as a whole (the run's value is then None).
OPTIONAL_SECTIONS = {"init"}
ALL_SECTIONS = [s for s, *_ in COMPONENT_SECTIONS] + [
    "run",
    "training",
    "optimizers",
    "stages",
    "init",
]
REQUIRED_SECTIONS = {"data"}


def structure_component(
    registry: Registry,
    kind: str,
    table: Any,
    path: str,
    problems: list[str],
    source: str | None = None,
) -> Component | None:
    """The component of ``kind`` that ``table`` (``{name = ..., options...}``) names, structured
    against ``registry``; problems are appended under the key path ``path``, ``None`` on failure."""
    if not isinstance(table, dict):
        problems.append(f"{path}: expected a table with a 'name' key, got {_given(table)}")
        return None
    name = table.get("name")
    if name is None:
        problems.append(
            f"{path}.name: required key is missing (a {kind} name; see `gan components {kind}`)"
        )
        return None
    if not isinstance(name, str):
        problems.append(f"{path}.name: expected a string, got {_given(name)}")
        return None
    try:
        spec = registry.get(kind, name)
    except (UnknownComponentError, AmbiguousComponentError) as exc:
        problems.append(f"{path}.name: {exc}")
        return None
    rest = {k: val for k, val in table.items() if k != "name"}
    options = structure_options(spec.options, rest, path, problems, what=f"{kind} {spec.name!r}")
    if options is None:
        return None
    return Component(spec=spec, options=options, registry=registry, path=path, source=source)


def parse_config(
    document: Mapping[str, Any], registry: Registry, source: str | None = None
) -> RunConfig:
    """Validate a TOML document (already parsed) into a :class:`RunConfig`."""
    problems: list[str] = []
    for key in document:
        if key not in ALL_SECTIONS:
            problems.append(
                f"{key}: unknown section{did_you_mean(key, ALL_SECTIONS)}; "
                f"sections: {', '.join(ALL_SECTIONS)}"
            )
    values: dict[str, Any] = {"source": source}
    for section, cls in PLAIN_SECTIONS.items():
        if section in OPTIONAL_SECTIONS and section not in document:
            continue
        table = document.get(section, {})
        if not isinstance(table, dict):
            problems.append(f"{section}: expected a table, got {_given(table)}")
            continue
        values[section] = structure_options(cls, table, section, problems, what=f"[{section}]")
    for section, kind, default, is_list in COMPONENT_SECTIONS:
        raw = document.get(section)
        if raw is None:
            if section in REQUIRED_SECTIONS:
                problems.append(
                    f"{section}: required section is missing (a table with the "
                    f"name of a {kind}; see `gan components {kind}`)"
                )
            elif default is not None:
                values[section] = structure_component(
                    registry, kind, {"name": default}, section, problems, source
                )
            continue
        if is_list:
            if isinstance(raw, dict):
                problems.append(_one_table(section, raw))
                continue
            if not isinstance(raw, list):
                problems.append(
                    f"{section}: expected a list of tables ([[{section}]]), got {_given(raw)}"
                )
                continue
            items = [
                structure_component(registry, kind, item, f"{section}[{i}]", problems, source)
                for i, item in enumerate(raw)
            ]
            values[section] = tuple(i for i in items if i is not None)
        else:
            values[section] = structure_component(registry, kind, raw, section, problems, source)
    _structure_optimizers(document.get("optimizers", {}), values.get("task"), values, problems)
    _structure_stages(document.get("stages", []), values, problems)
    if problems:
        raise ConfigError(problems, source)
    return RunConfig(**values, registry=registry)


def _task_groups(task: Component | None) -> tuple[str, dict[str, str]]:
    """(task name, player group -> phase) of the configured task (the classic pair if unknown)."""
    from gancore._build import DEFAULT_PLAYERS, task_players

    if task is None:
        return "?", dict(DEFAULT_PLAYERS)
    try:
        return task.spec.name, task_players(task.build(None))
    except Exception:  # a task that fails to build is reported where the run is built
        return task.spec.name, dict(DEFAULT_PLAYERS)


def _structure_optimizers(
    optimizers: Any, task: Component | None, values: dict[str, Any], problems: list[str]
) -> None:
    """``[optimizers.<group>]`` for each player group the task declares: generator and critic
    default to Adam's defaults; any other group needs its table; a table for no group is an error."""
    if not isinstance(optimizers, dict):
        problems.append(f"optimizers: expected a table, got {_given(optimizers)}")
        return
    task_name, groups = _task_groups(task)
    ordered = sorted(groups)
    for key in optimizers:
        if key not in groups:
            problems.append(
                f"optimizers.{key}: task {task_name!r} has no player group {key!r}"
                f"{did_you_mean(key, ordered)}; its groups: {', '.join(ordered)}"
            )
    tables: dict[str, OptimizerConfig] = {}
    for group in groups:
        if group not in optimizers and group not in ("generator", "critic"):
            problems.append(
                f"optimizers.{group}: required table is missing (task {task_name!r} trains "
                f"player group {group!r}; add an [optimizers.{group}] table)"
            )
            continue
        table = _structure_optimizer(optimizers.get(group, {}), f"optimizers.{group}", problems)
        if table is not None:
            tables[group] = table
    if len(tables) == len(groups):
        values["optimizers"] = OptimizersSection(tables=tables)


def _one_table(section: str, table: dict[str, Any]) -> str:
    """The problem of a list section written as one table: ``[regularizers]`` for
    ``[[regularizers]]`` (TOML reads the first as a table, the second as a list of tables)."""
    what = f" (name = {table['name']!r})" if isinstance(table.get("name"), str) else ""
    return (
        f"{section}: expected a list of tables, got one table{what}; write [[{section}]] "
        f"(double brackets) instead of [{section}], once per entry"
    )


def _structure_stages(raw: Any, values: dict[str, Any], problems: list[str]) -> None:
    if isinstance(raw, dict):
        problems.append(_one_table("stages", raw))
        return
    if not isinstance(raw, list):
        problems.append(f"stages: expected a list of tables ([[stages]]), got {_given(raw)}")
        return
    before = len(problems)
    stages = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(f"stages[{i}]: expected a table, got {_given(item)}")
            continue
        stages.append(structure_options(StageSection, item, f"stages[{i}]", problems, "a stage"))
    if len(problems) == before:
        values["stages"] = tuple(stages)


# -------------------------------------------------------------------------------------------------
# Files and overrides
# -------------------------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """``a.b=VALUE`` -> (["a", "b"], value). VALUE is a TOML value; a bare word is a string."""
    if "=" not in text:
        raise ConfigError([f"--set {text!r}: expected KEY=VALUE, e.g. training.batch_size=32"])
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError([f"--set {text!r}: expected a dotted key like training.batch_size"])
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words are strings: --set data.path=./images
    path: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return path, value


def apply_overrides(document: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to a parsed TOML document (a deep copy is returned)."""
    import copy

    doc_ = copy.deepcopy(document)
    problems: list[str] = []
    for text in overrides:
        try:
            path, value = parse_override(text)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        node: Any = doc_
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            if isinstance(node, list):
                if not isinstance(part, int) or part >= len(node):
                    problems.append(f"--set {text!r}: no item {part} in a list of {len(node)}")
                    break
                node = node[part]
            elif isinstance(node, dict):
                key = str(part)
                if key not in node:
                    node[key] = [] if isinstance(nxt, int) else {}
                node = node[key]
            else:
                problems.append(
                    f"--set {text!r}: {'.'.join(map(str, path[: i + 1]))} is not a table"
                )
                break
        else:
            last = path[-1]
            if isinstance(node, list) and isinstance(last, int) and last < len(node):
                node[last] = value
            elif isinstance(node, dict):
                node[str(last)] = value
            else:
                problems.append(f"--set {text!r}: cannot set {last!r} here")
    if problems:
        raise ConfigError(problems)
    return doc_


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            [f"no such file {str(p)!r}"] if not p.exists() else [f"{str(p)!r} is not a file"]
        )
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], str(p)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror}"], str(p)) from None


def load_config(
    path: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None
) -> RunConfig:
    """Read, override and validate a run file. Raises :class:`ConfigError` listing every problem."""
    if registry is None:
        from gancore._plugins import get_registry

        registry = get_registry()
    document = apply_overrides(read_toml(path), overrides)
    return parse_config(document, registry, source=str(path))


# -------------------------------------------------------------------------------------------------
# The resolved config, back to TOML
# -------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Unstructure to TOML-ready values: tuples become lists, None-valued keys are dropped."""
    if attrs.has(type(value)):
        value = converter.unstructure(value)
    if isinstance(value, dict):
        return {k: _plain(x) for k, x in value.items() if x is not None}
    if isinstance(value, list | tuple):
        return [_plain(x) for x in value]
    return value


def _plain_section(section: Any) -> dict[str, Any]:
    """An attrs section as a TOML table keyed by :func:`toml_key` (``from_`` is written ``from``)."""
    return _plain({toml_key(f): getattr(section, f.name) for f in attrs.fields(type(section))})


def _component_dict(component: Component) -> dict[str, Any]:
    options = {}
    if attrs.has(type(component.options)):
        options = {
            toml_key(f): _resolved(f, getattr(component.options, f.name))
            for f in attrs.fields(type(component.options))
            if f.init
        }
    return {"name": component.name} | _plain(options)


def _resolved(field: attrs.Attribute[Any], value: Any) -> Any:
    """A relative path in an option marked ``metadata={"path": True}`` made absolute against the
    working directory (where a run file's relative paths start), so that the run directory's
    config.toml, written when training starts, still works from anywhere later."""
    if field.metadata.get("path") and isinstance(value, str) and value:
        return os.path.abspath(value)
    return value


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """The fully resolved config (defaults filled in, qualified names), TOML-ready."""
    out: dict[str, Any] = {"run": _plain(config.run)}
    for section, _kind, _default, is_list in COMPONENT_SECTIONS:
        value = getattr(config, section)
        if value is None:
            continue
        if is_list:
            if value:
                out[section] = [_component_dict(c) for c in value]
        else:
            out[section] = _component_dict(value)
    out["optimizers"] = {
        group: {k: x for k, x in _plain(opt).items() if k != "options"} | _plain(opt.options)
        for group, opt in config.optimizers.tables.items()
    }
    out["training"] = _plain(config.training)
    if config.stages:
        out["stages"] = [_plain(stage) for stage in config.stages]
    if config.init is not None:
        out["init"] = _plain_section(config.init)
    return out


def config_to_toml(config: RunConfig) -> str:
    return tomli_w.dumps(config_to_dict(config))
