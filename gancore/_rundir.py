"""What the loop writes into the run directory: log records, sample grids, curves, metric results,
checkpoints and the best-checkpoint record; and what it tells the user on the terminal."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gancore._build import Built, reference_points
from gancore._checkpoint import BEST, prune_checkpoints, save_checkpoint, step_dir_name
from gancore._classes import fixed_inputs
from gancore._datarecord import save_data_record
from gancore._errors import CheckpointError, ConfigError
from gancore._jsonlog import dumps
from gancore._pictures import save_curves, save_grid, save_samples, save_scatter
from gancore._stages import StageData
from gancore._state import AugmentFeedback, LoopState, rng_state
from gancore._task import mix_seed
from gancore.metrics.loop import LoopMetricContext, evaluate_metrics

if TYPE_CHECKING:
    from gancore._config import RunConfig
    from gancore._logbuffer import LogBuffer
    from gancore._players import Players
    from gancore._stages import Stage

__all__ = [
    "REALS_FILE",
    "RunFiles",
    "check_trackers",
    "environment",
    "format_duration",
    "report",
    "truncate_log",
    "write_json",
]

REALS_FILE = "reals.png"  # in samples/: the real images (or points) the grids are compared with


class RunFiles:
    """The run directory as the loop writes it. Only the main process writes files; the methods
    that gather from every process (checkpoints, metrics) are called on all of them."""

    def __init__(
        self, config: RunConfig, run_dir: Path, accelerator: Any, built: Built, players: Players
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.accelerator = accelerator
        self.built = built
        self.players = players
        self.main = accelerator.is_main_process
        self.log_file = run_dir / "metrics.jsonl"
        self.checkpoints = run_dir / "checkpoints"
        self._stage_data: dict[int, StageData] = {}  # metric_data's views, by resolution
        if self.main:  # what gan sample and gan eval need of the data when it cannot be read
            save_data_record(run_dir, config.data.name, built.dataset)
        # Fixed inputs for the sample grids, the same at every interval.
        self.reference = reference_points(built.dataset, config.run.seed)
        # A scatter of 2-D points needs many more samples than an image grid needs images.
        shown = config.training.num_samples
        shown = shown if self.reference is None else max(shown, 2500)
        # A conditional task shows one row per class, named in the margin.
        self.fixed_inputs, self.columns, self.row_names = fixed_inputs(
            built.task,
            self.sampling_generators()[0],
            built.dataset,
            shown,
            mix_seed(config.run.seed, 0x5A3),
            task_name=config.task.spec.name,
        )

    # -- terminal ---------------------------------------------------------------------------------

    def progress_bar(self, progress: bool | None, initial: int) -> Any:
        show = progress if progress is not None else sys.stderr.isatty()
        if not (self.main and show):
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.config.run.steps,
            initial=initial,
            unit="it",
            dynamic_ncols=True,
            desc=self.config.run.name,
            file=sys.stderr,
        )

    def say_goodbye(
        self, iteration: int, started: float, checkpoint: Path | None, interrupted: bool
    ) -> None:
        elapsed = format_duration(time.perf_counter() - started)
        if interrupted:
            print(
                f"stopped at step {iteration} after {elapsed}; checkpoint: {checkpoint}\n"
                f"resume with: gan train --resume {self.run_dir}",
                file=sys.stderr,
            )
            return
        report = self.run_dir / "report.html"
        lines = [
            f"done: {iteration} steps in {elapsed}",
            f"  samples:    {self.run_dir / 'samples'}",
            f"  curves:     {self.run_dir / 'curves.png'}",
            *([f"  report:     {report}"] if self.config.training.report else []),
            f"  metrics:    {self.log_file}",
            f"  checkpoint: {checkpoint}",
        ]
        print("\n".join(lines), file=sys.stderr)

    # -- logs -------------------------------------------------------------------------------------

    def train_record(
        self,
        state: LoopState,
        logs: LogBuffer,
        seconds: float,
        elapsed: float,
        stage: Stage,
        alpha: float,
    ) -> dict[str, Any]:
        """The ``"train"`` record of a log interval: counters, timings, the mean of every logged
        value over the interval and all processes, scheduled learning rates, augmenter values."""
        training = self.config.training
        names, means = logs.means()
        if means is not None and self.accelerator.num_processes > 1:
            means = self.accelerator.reduce(means, reduction="mean")
        record: dict[str, Any] = {
            "event": "train",
            "step": state.iteration,
            "images_seen": state.images_drawn,
            "time_s": round(elapsed, 3),
            "sec_per_step": seconds,
            "images_per_s": stage.batch_size * training.critic_steps / seconds,
            "nonfinite_skipped": state.nonfinite_total,
        }
        if self.config.stages:
            record["stage"] = stage.index
            record["stage/alpha"] = alpha
        if means is not None:
            record.update(zip(names, means.tolist(), strict=True))
        for group, opt in self.players.optimizers.items():  # the learning rate of the next step
            if self.config.optimizers[group].schedule != "constant":
                record[f"lr/{group}"] = opt.param_groups[0]["lr"]
        values = getattr(self.built.augmenter, "log_values", None)
        if callable(values):
            record.update({f"augment/{k}": v for k, v in values().items()})
        return record

    def write_log(self, record: dict[str, Any]) -> None:
        if self.main:
            with self.log_file.open("a") as fh:
                fh.write(dumps(record) + "\n")  # strict JSON: non-finite values as null
        if self.config.run.trackers:
            self.accelerator.log(
                {k: v for k, v in record.items() if isinstance(v, int | float)}, step=record["step"]
            )

    # -- samples and metrics ----------------------------------------------------------------------

    def sampling_generators(self) -> tuple[dict[str, nn.Module], str]:
        """The EMA generators when there are, else the trained ones, and which it is."""
        players = self.players
        if players.ema:
            return players.ema, "ema"
        return players.modules.get("generator", {}), "raw"

    def write_samples(self, at: int, stage: str | None = None) -> Path:
        """The fixed inputs' sample grid at step ``at``, its path; ``stage`` (a staged run's stage
        and alpha) goes in a strip above the grid with the grid's resolution."""
        modules, _ = self.sampling_generators()
        with _Evaluating(modules), torch.no_grad(), self.accelerator.autocast():
            device = self.accelerator.device
            inputs = {k: t.to(device) for k, t in self.fixed_inputs.items()}
            grid = self.built.task.sample(modules, inputs)
        path = self.run_dir / "samples" / f"{step_dir_name(at)}.png"
        save_samples(
            grid.images.float(),
            path,
            self.columns or grid.columns,
            self.reference,
            title=f"{self.config.run.name}, step {at}",
            row_names=self.row_names,
            header=_stage_header(stage, grid.images),
        )
        return path

    def write_reals(self) -> Path | None:
        """``samples/reals.png``: as many real images as a sample grid shows, drawn with a fixed
        seed (a conditional run's rows one class each, when the dataset lists its labels), or
        for 2-D data the reference points; its path, ``None`` for data of other shapes."""
        path = self.run_dir / "samples" / REALS_FILE
        if self.reference is not None:
            save_scatter(
                self.reference, path, title=f"{self.config.run.name}, real data", label="data"
            )
            return path
        dataset = self.built.dataset
        keys = _image_keys(dataset.shapes)
        if not keys:
            return None
        num = self.config.training.num_samples
        order = _real_order(dataset, num, self.config.run.seed, self.row_names, self.columns)
        get_batch = getattr(dataset, "get_batch", None)
        if callable(get_batch):
            batch = get_batch(order)
            images = [batch[k].float().cpu() for k in keys]
        else:
            items = [dataset[i] for i in order]
            images = [torch.stack([item[k] for item in items]).float().cpu() for k in keys]
        columns = self.columns or max(1, math.ceil(math.sqrt(len(order))))
        if len(images) > 1:  # paired data: each item's images side by side
            channels = max(x.shape[1] for x in images)
            images = [x.expand(-1, channels, -1, -1) for x in images]
            grid = torch.stack(images, dim=1).flatten(0, 1)
            columns *= len(images)
        else:
            grid = images[0]
        save_grid(grid, path, columns, row_names=self.row_names)
        return path

    def log_images(self, tag: str, path: Path | None, at: int) -> None:
        """The picture at ``path`` (a grid or scatter PNG) to every tracker that takes images
        (TensorBoard, W&B, Aim, ClearML, SwanLab), as ``tag`` at step ``at``; the others are
        skipped. A tracker that fails is a warning: images never stop training."""
        if not (self.main and self.config.run.trackers and path is not None and path.is_file()):
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))  # [H, W, 3] uint8
        for tracker in self.accelerator.trackers:
            name = getattr(tracker, "name", "")
            shaped = _tracker_images(name, tag, array)
            if shaped is None or not callable(getattr(tracker, "log_images", None)):
                continue  # a tracker without images (MLflow, Comet, DVCLive)
            values, kwargs = shaped
            try:
                tracker.log_images(values, step=at, **kwargs)
            except Exception as exc:  # a tracker's own failure must not end the run
                warnings.warn(
                    f"tracker {name!r}: could not log image {tag!r} at step {at}: {exc}",
                    UserWarning,
                    stacklevel=2,
                )

    def write_run_info(self, stages: Sequence[Stage]) -> None:
        """``environment.json`` (versions, devices, processes, plugins, start time; one entry per
        session, the newest last) and, for a staged run, ``stages.json`` (each stage's name and iterations), for the run report."""
        if not self.main:
            return
        # One entry per session: a resumed run may go on elsewhere, with other versions.
        path = self.run_dir / "environment.json"
        sessions: list[Any] = []
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sessions = list(json.loads(path.read_text()).get("sessions", []))
        sessions.append(environment(self.config, self.accelerator))
        write_json(path, {"sessions": sessions})
        if self.config.stages:
            write_json(
                self.run_dir / "stages.json",
                {
                    "stages": [
                        {
                            "index": s.index,
                            "name": s.name,
                            "start": s.start,
                            "end": s.end,
                            "resolution": s.resolution,
                            "batch_size": s.batch_size,
                        }
                        for s in stages
                    ]
                },
            )

    def write_report(self) -> None:
        """``report.html`` (gancore/_report.py) from the run directory as it stands; a failure
        is a warning, never the end of the run (main process)."""
        if not self.main:
            return
        from gancore._report import write_report

        try:
            write_report(self.run_dir)
        except Exception as exc:  # the report is a view: training goes on without it
            warnings.warn(
                f"{self.run_dir / 'report.html'}: not written ({type(exc).__name__}: {exc})",
                UserWarning,
                stacklevel=2,
            )

    def write_curves(self) -> None:
        """curves.png from metrics.jsonl as it stands (main process). The loop draws it once per
        step that wrote samples or metrics, after both, so the picture ends with the last thing
        logged (the final metrics come after the final grid)."""
        if self.main and self.log_file.exists():
            save_curves(self.log_file, self.run_dir / "curves.png")

    def metric_data(self, resolution: int | None) -> Any:
        """The data metrics compare with: the dataset, or during a stage with a ``resolution``
        below the data's its images at that resolution (one view per resolution, kept, so the
        reference statistics of each are computed once)."""
        dataset = self.built.dataset
        shape = tuple(dataset.shapes.get("x", ()))
        if resolution is None or len(shape) != 3 or shape[-2:] == (resolution, resolution):
            return dataset
        if resolution not in self._stage_data:
            self._stage_data[resolution] = StageData(dataset, resolution)
        return self._stage_data[resolution]

    def run_metrics(
        self, at: int, images_seen: int, resolution: int | None = None
    ) -> dict[str, Any]:
        """Every configured metric on the sampling generators, logged as a ``"metric"`` record;
        the same values on every process. ``resolution``: the stage's data resolution (the
        real images are compared at it, and the record says so)."""
        modules, kind = self.sampling_generators()
        started = time.perf_counter()
        data = self.metric_data(resolution)
        with _Evaluating(modules):  # batch norm uses its running statistics, does not update them
            context = LoopMetricContext(
                self.built.task,
                modules,
                data,
                self.accelerator.device,
                self.accelerator,
                generator_kind=kind,
                autocast=self.accelerator.autocast,
            )
            results = evaluate_metrics(self.built.metrics, context, kind)
        if self.accelerator.num_processes > 1:
            # Every process computed the same values up to round-off; they must agree exactly,
            # since whether to save a best checkpoint (a collective operation) depends on them.
            from accelerate.utils import broadcast_object_list

            results = broadcast_object_list([results], from_process=0)[0]
        self.write_log(
            {
                "event": "metric",
                "step": at,
                "images_seen": images_seen,
                "metrics_time_s": round(time.perf_counter() - started, 3),
                **({"resolution": resolution} if data is not self.built.dataset else {}),
                **results,
            }
        )
        return results

    def improves(self, state: LoopState, results: Mapping[str, Any]) -> dict[str, Any] | None:
        """The best-checkpoint record for this iteration if ``results`` beat the best so far on
        ``training.best_metric``, else ``None``; :meth:`checkpoint` records it once saved."""
        training = self.config.training
        key = training.best_metric
        if key is None or not isinstance(results.get(key), int | float):
            return None
        value = float(results[key])
        if not math.isfinite(value):  # a NaN would "beat" everything after it
            return None
        best = state.best
        if best and (
            value >= best["value"] if training.best_mode == "min" else value <= best["value"]
        ):
            return None
        return {
            "checkpoint": step_dir_name(state.iteration),
            "step": state.iteration,
            "metric": key,
            "value": value,
        }

    # -- checkpoints ------------------------------------------------------------------------------

    def checkpoint(
        self,
        state: LoopState,
        feedback: AugmentFeedback | None,
        best: Mapping[str, Any] | None = None,
    ) -> Path | None:
        """Save a checkpoint of everything a resume needs (on every process: RNG states are
        gathered); keep the newest ``training.keep_checkpoints`` and the best. ``best``, a record
        from :meth:`improves`, makes it the best checkpoint (``best.json``).

        Weights or optimizer states holding NaN or inf are not saved (a resume from them could
        only fail again): a warning names them, and ``None`` is returned, so the newest
        checkpoint stays the last finite one."""
        at = state.iteration
        weights, optimizers = self.players.weights(), self.players.optimizer_states()
        problem = _nonfinite(weights, optimizers)
        if self.accelerator.num_processes > 1:  # every process skips, or none
            flag = torch.tensor([float(problem is not None)], device=self.accelerator.device)
            if self.accelerator.reduce(flag, reduction="sum").item() > 0 and problem is None:
                problem = "another process's state is not finite"
        if problem is not None:
            if self.main:
                warnings.warn(
                    f"step {at}: no checkpoint written, {problem}; the newest checkpoint is "
                    "still the last one with finite values",
                    UserWarning,
                    stacklevel=2,
                )
            return None
        if best is not None:
            state.best = dict(best)  # saved with the checkpoint it names
        rng = _gather_objects(self.accelerator, rng_state())
        path = self.checkpoints / step_dir_name(at)
        if self.main:
            built = self.built
            images_seen = state.images_drawn
            saved = {
                "loop": state.state_dict(),
                "iteration": at,
                "images_seen": images_seen,
                "optimizers": optimizers,
                "augment_feedback": feedback.state_dict() if feedback is not None else {},
                "augmenter": _module_state(built.augmenter),
                "regularizers": [_module_state(r) for _, r in built.regularizers],
                "task": built.task.state_dict() if hasattr(built.task, "state_dict") else {},
                "rng": rng,
                "world_size": self.accelerator.num_processes,
            }
            path = save_checkpoint(
                self.checkpoints,
                at,
                weights,
                saved,
                meta={"run": self.config.run.name, "images_seen": images_seen},
            )
            keep = self.config.training.keep_checkpoints
            protected = [state.best["checkpoint"]] if state.best else []
            prune_checkpoints(self.checkpoints, keep, protected)
            if best is not None:
                write_json(self.checkpoints / BEST, state.best)
        self.accelerator.wait_for_everyone()
        return path


def _nonfinite(
    weights: Mapping[str, Mapping[str, torch.Tensor]], optimizers: Mapping[str, Any]
) -> str | None:
    """What in ``weights`` (group -> name -> tensor) or the optimizer states is NaN or inf, the
    first such tensor and how many of its values; ``None`` if all are finite."""
    found: list[tuple[str, torch.Tensor]] = [
        (f"{group} weight {name!r}", t)
        for group, tensors in weights.items()
        for name, t in tensors.items()
    ]
    for group, opt_state in optimizers.items():
        for slot, values in opt_state.get("state", {}).items():
            for name, t in values.items():
                if isinstance(t, torch.Tensor):
                    found.append((f"{group} optimizer state {name!r} of parameter {slot}", t))
    tensors = [(what, t) for what, t in found if t.is_floating_point() or t.is_complex()]
    if not tensors:
        return None
    # One count per tensor, read back at once: a checkpoint is no place for a sync per tensor.
    device = tensors[0][1].device
    counts = torch.stack(
        [(~torch.isfinite(t.detach())).sum().to(device) for _, t in tensors]
    ).tolist()
    for (what, t), count in zip(tensors, counts, strict=True):
        if count:
            return f"{what} has {count} non-finite of {t.numel()} values"
    return None


class _Evaluating:
    """Within: ``modules`` in eval mode; their previous modes restored after."""

    def __init__(self, modules: Mapping[str, nn.Module]) -> None:
        self.modules = modules
        self.was_training = {n: m.training for n, m in modules.items()}

    def __enter__(self) -> None:
        for m in self.modules.values():
            m.eval()

    def __exit__(self, *exc: object) -> None:
        for n, m in self.modules.items():
            m.train(self.was_training[n])


def _module_state(obj: Any) -> dict[str, torch.Tensor]:
    return obj.state_dict() if isinstance(obj, nn.Module) else {}


def _gather_objects(accelerator: Any, obj: Any) -> list[Any]:
    if accelerator.num_processes == 1:
        return [obj]
    from accelerate.utils import gather_object

    return list(gather_object([obj]))


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """``data`` as JSON at ``path``, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from.

    A last line without its newline was cut short by a crash: it is dropped with a warning. Any
    other line that is not a JSON object is damage, a :class:`CheckpointError` naming the file and
    the line; the file is then left as it was.
    """
    if not path.exists():
        return
    text = path.read_text()
    lines = text.splitlines()
    kept = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            if number == len(lines) and not text.endswith("\n"):
                warnings.warn(
                    f"{path}: dropped line {number}, cut short by a crash ({len(line)} characters "
                    "without a newline)",
                    UserWarning,
                    stacklevel=2,
                )
                continue
            raise CheckpointError(f"{path}: line {number} is not valid JSON ({exc})") from None
        if not isinstance(record, dict) or not isinstance(record.get("step", 0), int):
            raise CheckpointError(
                f"{path}: line {number} is not a log record (a JSON object with an integer 'step')"
            )
        if record.get("step", 0) <= step:
            kept.append(line)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def check_trackers(config: RunConfig) -> None:
    """Every tracker in ``run.trackers`` is installed (a missing one is a config error)."""
    import importlib.util

    missing = [t for t in config.run.trackers if importlib.util.find_spec(t) is None]
    if missing:
        raise ConfigError(
            [f"run.trackers: {t!r} is not installed (pip install {t})" for t in missing],
            config.source,
        )


def flat_config(config: RunConfig) -> dict[str, Any]:
    """The resolved config as ``{"a.b.c": value}`` for trackers' hyperparameter tables."""
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


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def report(bar: Any, record: Mapping[str, Any], total: int, started: float, done: int) -> None:
    """Progress: the bar's postfix on a terminal, else a plain line with rate and ETA."""
    losses = {k: v for k, v in record.items() if k.startswith(("loss/", "reg/", "augment/"))}
    if bar is not None:
        staged = {"stage": record["stage"]} if "stage" in record else {}
        bar.set_postfix(
            staged
            | {k.split("/", 1)[1]: f"{v:.3g}" for k, v in losses.items()}
            | {"img/s": f"{record['images_per_s']:.0f}"},
            refresh=False,
        )
        return
    elapsed = time.perf_counter() - started
    remaining = (total - record["step"]) * elapsed / max(1, done)
    parts = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
    stage = ""
    if "stage" in record:  # staged runs: where the run is, and the fade-in
        stage = f"stage {record['stage']} alpha {record['stage/alpha']:.2f} | "
    print(
        f"step {record['step']}/{total} | {stage}{1 / record['sec_per_step']:.2f} it/s | "
        f"{record['images_per_s']:.0f} img/s | {parts} | eta {format_duration(remaining)}",
        file=sys.stderr,
        flush=True,
    )


def _stage_header(stage: str | None, images: torch.Tensor) -> str | None:
    """``stage 8x8 (alpha 0.50), 8x8 px`` above a staged run's grid; None otherwise."""
    if stage is None:
        return None
    size = f", {images.shape[-2]}x{images.shape[-1]} px" if images.dim() == 4 else ""
    return f"{stage}{size}"


def _tracker_images(
    name: str, tag: str, array: Any
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(values, kwargs)`` for Accelerate's ``log_images`` of the tracker ``name``: one RGB
    picture ``[H, W, 3]`` (uint8) in the shape that tracker takes; ``None`` for the others."""
    if name == "tensorboard":  # SummaryWriter.add_images: a batch
        return {tag: array[None]}, {"dataformats": "NHWC"}
    if name in ("wandb", "swanlab"):  # a list of pictures
        return {tag: [array]}, {}
    if name in ("aim", "clearml"):  # one picture
        return {tag: array}, {}
    return None


def _image_keys(shapes: Mapping[str, Sequence[int]]) -> list[str]:
    """The dataset keys that hold images ``[C, H, W]`` (C = 1 or 3) of the size of ``"x"``
    (``"x"`` first): what the real-image grid shows."""
    x = tuple(shapes.get("x", ()))
    if len(x) != 3 or x[0] not in (1, 3):
        return []
    others = sorted(
        k
        for k, shape in shapes.items()
        if k != "x" and len(shape) == 3 and shape[0] in (1, 3) and tuple(shape[1:]) == x[1:]
    )
    return ["x", *others]


def _real_order(
    dataset: Any, num: int, seed: int, row_names: Sequence[str] | None, columns: int | None
) -> list[int]:
    """Indices of the real images shown: ``num`` drawn with ``seed``; for a class-per-row grid
    (``row_names``, ``columns`` per row) ``columns`` of each class, when the dataset has a
    ``labels`` tensor (reading every item's label would decode every image)."""
    generator = torch.Generator().manual_seed(mix_seed(seed, 0x2EA1))
    order = torch.randperm(len(dataset), generator=generator)
    labels = getattr(dataset, "labels", None)
    if row_names and columns and isinstance(labels, torch.Tensor) and len(labels) == len(dataset):
        shuffled = labels.long()[order]
        rows = [order[shuffled == label][:columns].tolist() for label in range(len(row_names))]
        if all(rows):  # a class short of items repeats its last one, to keep its row
            return [i for row in rows for i in row + [row[-1]] * (columns - len(row))]
    return order[:num].tolist()


def environment(config: RunConfig, accelerator: Any) -> dict[str, Any]:
    """Where and with what the run trains: versions, devices, processes, precision, the
    plugin distributions its components come from, the command line and the start time."""
    import importlib.metadata
    import platform

    import gancore

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    device = accelerator.device
    if device.type == "cuda":
        devices = torch.cuda.get_device_name(device)
    else:
        devices = f"{device.type} ({os.cpu_count()} CPU cores, {torch.get_num_threads()} threads)"
    dists = sorted(
        {
            name.split(":", 1)[0]
            for name in _component_names(config)
            if ":" in name and not name.startswith("gancore:")
        }
    )
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gancore": gancore.__version__,
        "torch": torch.__version__,
        "accelerate": version("accelerate"),
        "cuda": torch.version.cuda or "none",
        "device": devices,
        "processes": accelerator.num_processes,
        "precision": config.training.precision,
        "plugins": {dist: version(dist) for dist in dists},
        "command": " ".join(sys.argv),
    }


def _component_names(config: RunConfig) -> list[str]:
    """The qualified component names of ``config`` (``"gan-wgan:wgan-gp"``)."""
    from gancore._config import config_to_dict

    names: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("name"), str):
                names.append(value["name"])
            for x in value.values():
                walk(x)
        elif isinstance(value, list):
            for x in value:
                walk(x)

    walk(config_to_dict(config))
    return names
