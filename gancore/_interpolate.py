"""Latent interpolation (``gan interpolate``): a walk through a generator's latent space between
the samples of a few seeds, written as an animated GIF, an MP4 or a PNG strip.

The walk visits the seeds in order, ``steps`` frames per segment, and ends on the last seed:
``(len(seeds) - 1) * steps + 1`` frames. The end point of seed ``s`` is sample 0 of what
``LoadedRun.generate(num, seed=s)`` draws (the first sample ``gan sample --seed s`` shows for an
unconditional task), so frame 0 is that sample.

- ``space="z"``: the task's sample inputs are interpolated (every floating-point input; integer
  ones such as class labels are held), and each frame is the task's ``sample`` of them.
- ``space="w"``: for a generator with an intermediate latent space (:class:`MappedGenerator`:
  ``mapping(z)`` and ``synthesis(w)``, as StyleGAN's), the ``w = mapping(z)`` of the end points
  are interpolated and each frame is ``synthesis(w)``.
- Linear (:func:`lerp`) or spherical (:func:`slerp`). Spherical is the right path between
  Gaussian latents: in high dimension they lie near a sphere of radius ``sqrt(dim)``, and the
  straight line between two of them passes well inside it, where the generator has seen no
  latent during training (White 2016, "Sampling Generative Networks", Sec. 2.1). In ``w``, which
  is not Gaussian, the linear path is the usual one (Karras et al. 2019, Sec. 4.1).
- A conditional task walks each class along the same latent path: one tile per class in each
  frame (``label`` picks one class instead).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from einops import rearrange
from PIL import Image

from gancore._classes import dataset_classes, is_conditional
from gancore._errors import ConfigError
from gancore._inference import LoadedRun
from gancore._task import mix_seed
from gancore.metrics.loop import SEED_BLOCK

__all__ = [
    "MappedGenerator",
    "check_output",
    "end_point",
    "frame_count",
    "frame_pictures",
    "lerp",
    "slerp",
    "walk",
    "walk_labels",
    "write_walk",
]

Space = Literal["z", "w"]
# Frames generated per forward pass.
_BATCH = 64


@runtime_checkable
class MappedGenerator(Protocol):
    """A generator with an intermediate latent space ``W`` (``gan interpolate --space w``).

    - ``mapping(z)``: latents ``z`` ``[N, latent_dim]`` -> ``w``, any float tensor ``[N, ...]``
      (StyleGAN: ``[N, num_ws, style_dim]``, one ``w`` per style input);
    - ``synthesis(w)``: that ``w`` -> samples ``[N, C, H, W]``;

    such that, in eval mode, ``synthesis(mapping(z))`` is the generator's ``forward(z)``. The
    ``path-length`` regularizer of gan-stylegan uses the same two methods.
    """

    def mapping(self, z: torch.Tensor) -> torch.Tensor: ...

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor: ...


# -------------------------------------------------------------------------------------------------
# Paths
# -------------------------------------------------------------------------------------------------


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """``(1 - t) a + t b``: exactly ``a`` at ``t = 0`` and exactly ``b`` at ``t = 1``."""
    return (1.0 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dimension (Shoemake 1985; White 2016):

    ``sin((1 - t) omega) / sin(omega) * a + sin(t omega) / sin(omega) * b``, ``omega`` the angle
    between ``a`` and ``b``. Exactly ``a`` at ``t = 0`` and ``b`` at ``t = 1``; between unit
    vectors the path stays on the unit sphere and its angle from ``a`` is ``t * omega``. Where
    ``a`` and ``b`` are (anti)parallel (``sin(omega) < eps``) the path is :func:`lerp`'s.
    Computed in float64, returned in ``a``'s dtype.
    """
    a64, b64 = a.double(), b.double()
    norms = a64.norm(dim=-1, keepdim=True) * b64.norm(dim=-1, keepdim=True)
    cosine = ((a64 * b64).sum(dim=-1, keepdim=True) / norms.clamp_min(1e-300)).clamp(-1.0, 1.0)
    omega = torch.arccos(cosine)
    sine = torch.sin(omega)
    flat = sine < eps
    safe = torch.where(flat, torch.ones_like(sine), sine)
    spherical = (torch.sin((1.0 - t) * omega) / safe) * a64 + (torch.sin(t * omega) / safe) * b64
    return torch.where(flat, lerp(a64, b64, t), spherical).to(a.dtype)


def frame_count(num_seeds: int, steps: int) -> int:
    """Frames of a walk through ``num_seeds`` seeds, ``steps`` per segment, ending on the last."""
    return (num_seeds - 1) * steps + 1


def _positions(num_seeds: int, steps: int) -> list[tuple[int, float]]:
    """(segment, t) of each frame: segment ``i`` goes from seed ``i`` to seed ``i + 1``."""
    out = [(i, j / steps) for i in range(num_seeds - 1) for j in range(steps)]
    return [*out, (num_seeds - 2, 1.0)]


# -------------------------------------------------------------------------------------------------
# The walk
# -------------------------------------------------------------------------------------------------


def end_point(run: LoadedRun, seed: int, label: int | None = None) -> dict[str, torch.Tensor]:
    """The task's inputs of sample 0 of ``run.generate(num, seed)`` (of class ``label``, as
    ``run.context(label=label)`` draws them), each ``[1, ...]``."""
    task: Any = run.built.task  # 'labels' is the optional seam of conditional tasks
    # Drawn as the metric loop draws block 0 of a seed (gancore.metrics.loop): SEED_BLOCK inputs
    # from mix_seed(seed, 0); a smaller draw would not give the same first latent.
    block = mix_seed(seed, 0)
    if label is None:
        inputs = task.sample_inputs(run.generators, run.built.dataset, SEED_BLOCK, block)
    else:
        labels = torch.full((SEED_BLOCK,), label, dtype=torch.int64)
        inputs = task.sample_inputs(
            run.generators, run.built.dataset, SEED_BLOCK, block, labels=labels
        )
    return {key: value[:1] for key, value in inputs.items()}


def _mapped_generator(run: LoadedRun) -> tuple[str, MappedGenerator]:
    """The run's generator with ``mapping`` and ``synthesis``: the one named ``generator``, else
    the only one; a one-line error naming the generator(s) otherwise."""
    generators = run.generators
    name = "generator" if "generator" in generators else next(iter(generators), None)
    module = generators.get(name) if name is not None else None
    able = (
        module is not None
        and callable(getattr(module, "mapping", None))
        and callable(getattr(module, "synthesis", None))
    )
    if not able or (name != "generator" and len(generators) > 1):
        kinds = ", ".join(f"{n!r} ({type(g).__name__})" for n, g in generators.items())
        generator = run.config.generator.name if run.config.generator is not None else "?"
        raise ConfigError(
            [
                f"--space w: generator {generator!r} ({kinds}) has no mapping(z) and "
                "synthesis(w) methods, so no w space; use --space z"
            ]
        )
    return str(name), module  # type: ignore[return-value]  # checked above


def _latent_key(inputs: Mapping[str, torch.Tensor], task_name: str) -> str:
    floats = [k for k, v in inputs.items() if v.is_floating_point()]
    if len(floats) != 1:
        raise ConfigError(
            [
                f"--space w: task {task_name!r} gives its generator the float inputs "
                f"{floats or 'none'}; w needs exactly one latent z"
            ]
        )
    return floats[0]


def _interpolated(
    points: Sequence[torch.Tensor], positions: Sequence[tuple[int, float]], spherical: bool
) -> torch.Tensor:
    """The points along the walk, ``[frames, ...]``, from ``points`` (``[1, ...]`` each)."""
    path = slerp if spherical else lerp
    return torch.cat([path(points[i], points[i + 1], t) for i, t in positions])


@torch.no_grad()
def walk(
    run: LoadedRun,
    seeds: Sequence[int],
    steps: int,
    *,
    space: Space = "z",
    spherical: bool = False,
    labels: Sequence[int | None] = (None,),
) -> torch.Tensor:
    """Samples along the walk, ``[frames, len(labels), C, H, W]`` (float, CPU): row ``r`` of
    each frame walks class ``labels[r]`` (``None``: the task's own inputs, unconditional)."""
    if len(seeds) < 2:
        raise ConfigError([f"--seeds: give at least two seeds to walk between (got {len(seeds)})"])
    if steps < 1:
        raise ConfigError([f"--steps: must be >= 1 (got {steps})"])
    task: Any = run.built.task
    task_name = run.config.task.spec.name
    positions = _positions(len(seeds), steps)
    rows = []
    for label in labels:
        ends = [end_point(run, seed, label) for seed in seeds]
        if space == "w":
            if label is not None:
                raise ConfigError(
                    [f"--space w: task {task_name!r} is conditional; walk it in z (--space z)"]
                )
            _, generator = _mapped_generator(run)
            key = _latent_key(ends[0], task_name)
            ws = [generator.mapping(end[key].to(run.device)) for end in ends]
            path = _interpolated(ws, positions, spherical)
            parts = [
                generator.synthesis(path[lo : lo + _BATCH]) for lo in range(0, len(path), _BATCH)
            ]
        else:
            # Float inputs (latents, continuous codes) move; the others (labels) are held.
            inputs = {
                key: (
                    _interpolated([end[key] for end in ends], positions, spherical)
                    if value.is_floating_point()
                    else value.expand(len(positions), *value.shape[1:])
                )
                for key, value in ends[0].items()
            }
            parts = [
                task.sample(
                    run.generators,
                    {k: v[lo : lo + _BATCH].to(run.device) for k, v in inputs.items()},
                ).images
                for lo in range(0, len(positions), _BATCH)
            ]
        rows.append(torch.cat([p.float().cpu() for p in parts]))
    return torch.stack(rows, dim=1)


def walk_labels(
    run: LoadedRun, label: int | None
) -> tuple[list[int | None], tuple[str, ...] | None]:
    """The rows of a walk and their names: class ``label``; else each class of a conditional
    task (its names from the run's data); else one unconditional row."""
    classes = dataset_classes(run.built.dataset)
    if label is not None:
        return [label], (classes[label],) if classes is not None else (str(label),)
    if not is_conditional(run.built.task):
        return [None], None
    if classes is None:
        raise ConfigError(
            [
                f"task {run.config.task.spec.name!r} is conditional and this run names no "
                "classes; pick one with --class K"
            ]
        )
    return list(range(len(classes))), classes


# -------------------------------------------------------------------------------------------------
# Pictures and files
# -------------------------------------------------------------------------------------------------


def _check_images(frames: torch.Tensor, task_name: str) -> None:
    if frames.dim() != 5 or frames.shape[2] not in (1, 3):
        shape = list(frames.shape[2:])
        raise ConfigError(
            [
                f"task {task_name!r} makes samples of shape {shape}; gan interpolate draws "
                "images [C, H, W] with 1 or 3 channels"
            ]
        )


def frame_pictures(
    frames: torch.Tensor, scale: int | None = None, pad: int = 2
) -> list[Image.Image]:
    """Frames ``[F, R, C, H, W]`` in ``[-1, 1]`` as pictures, the ``R`` tiles of a frame in a
    near-square grid with ``pad`` black pixels around each, enlarged ``scale`` times (nearest
    neighbour; default: the smallest factor that makes a frame at least 128 px wide or high)."""
    num, tiles, channels = frames.shape[:3]
    columns = max(1, math.ceil(math.sqrt(tiles)))
    rows = math.ceil(tiles / columns)
    blank = torch.full((num, rows * columns - tiles, *frames.shape[2:]), -1.0)
    padded = torch.nn.functional.pad(
        torch.cat([frames.float().clamp(-1, 1), blank], dim=1), (pad, pad, pad, pad), value=-1.0
    )
    grids = rearrange(padded, "f (r k) c h w -> f (r h) (k w) c", r=rows, k=columns)
    arrays = ((grids + 1) * 127.5).round().to(torch.uint8).numpy()
    height, width = arrays.shape[1:3]
    if scale is None:
        scale = max(1, math.ceil(128 / max(height, width)))
    pictures = []
    for array in arrays:
        picture = Image.fromarray(array[..., 0] if channels == 1 else array)
        if scale > 1:
            picture = picture.resize((width * scale, height * scale), Image.Resampling.NEAREST)
        pictures.append(picture)
    return pictures


def mp4_writer() -> Callable[..., Any] | None:
    """imageio's ``mimwrite`` when an FFmpeg writer (imageio-ffmpeg) is installed, else ``None``."""
    import importlib.util

    if (
        importlib.util.find_spec("imageio") is None
        or importlib.util.find_spec("imageio_ffmpeg") is None
    ):
        return None
    import imageio.v2 as imageio

    return imageio.mimwrite


SUFFIXES = (".gif", ".mp4", ".png")


def check_output(out: Path, fps: float, scale: int | None) -> Callable[..., Any] | None:
    """One-line errors for an output ``gan interpolate`` cannot write (checked before any frame
    is drawn); the MP4 writer for a ``.mp4``."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ConfigError([f"--out: expected a .gif, .mp4 or .png file (got {str(out)!r})"])
    if not fps > 0:
        raise ConfigError([f"--fps: must be > 0 (got {fps:g})"])
    if scale is not None and scale < 1:
        raise ConfigError([f"--scale: must be >= 1 (got {scale})"])
    if suffix != ".mp4":
        return None
    writer = mp4_writer()
    if writer is None:
        raise ConfigError(
            [
                f"--out {out}: writing MP4 needs an FFmpeg writer (pip install imageio "
                "imageio-ffmpeg); or write an animated .gif"
            ]
        )
    return writer


def _write_mp4(
    writer: Callable[..., Any], pictures: Sequence[Image.Image], path: Path, fps: float
) -> None:
    import numpy as np

    # H.264 in yuv420p needs even sizes: pad with black to the next even size.
    arrays = [np.asarray(p.convert("RGB")) for p in pictures]
    h, w = arrays[0].shape[:2]
    arrays = [np.pad(a, ((0, h % 2), (0, w % 2), (0, 0))) for a in arrays]
    writer(str(path), arrays, fps=fps, macro_block_size=2)


def write_walk(
    frames: torch.Tensor,
    out: Path,
    *,
    fps: float = 12.0,
    scale: int | None = None,
    row_names: Sequence[str] | None = None,
    task_name: str = "task",
) -> int:
    """Write frames ``[F, R, C, H, W]`` to ``out``: an animated GIF that loops (``.gif``), an
    MP4 (``.mp4``, needs imageio-ffmpeg) or a PNG strip, one row per ``R`` and one column per
    frame (``.png``); the number of frames written. Written atomically."""
    out = Path(out)
    suffix = out.suffix.lower()
    writer = check_output(out, fps, scale)
    _check_images(frames, task_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp{suffix}")
    try:
        if suffix == ".png":
            from gancore._pictures import save_grid

            strip = rearrange(frames, "f r c h w -> (r f) c h w")
            save_grid(strip, tmp, columns=frames.shape[0], row_names=row_names)
        else:
            pictures = frame_pictures(frames, scale)
            if suffix == ".gif":
                pictures[0].save(
                    tmp,
                    format="GIF",
                    save_all=True,
                    append_images=pictures[1:],
                    duration=round(1000 / fps),
                    loop=0,  # loop forever
                )
            elif writer is not None:  # .mp4: check_output found the writer
                _write_mp4(writer, pictures, tmp, fps)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return int(frames.shape[0])
