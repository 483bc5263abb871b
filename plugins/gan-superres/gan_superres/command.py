"""``gan upscale RUN_DIR --input IN.png|DIR --output OUT.png|DIR``: super-resolve images with a
trained ``srgan`` run.

Usage::

    gan upscale runs/srgan-skimage --input photo.png --output photo-x4.png
    gan upscale runs/srgan-skimage --input photos/ --output photos-x4/ --tile 256

- **Images.** Any size. Each image is read in the run's channels (grey or RGB, as its training
  data: colour to grey by BT.601 luma, grey repeated to RGB; alpha dropped), mapped to
  ``[-1, 1]``, upscaled by the run's factor (``[task] scale``) and written as an 8-bit PNG
  (values clamped). A file ``--input`` writes the ``--output`` file (a ``.png`` name, or an
  existing folder to write ``NAME.png`` into); a folder ``--input`` upscales every image file
  directly inside it, in name order, into the ``--output`` folder as ``NAME.png``.
- **Weights.** ``--checkpoint`` picks ``latest`` (default), ``best`` or ``step-NNNNNNN``; the EMA
  generator when the run kept one, unless ``--raw``. The device is gancore's (CUDA when there is
  one), as for ``gan sample``.
- **Tiling**, so that large images fit in memory. The LR image is cut into ``--tile`` x ``--tile``
  tiles (default 128 LR pixels; 0 = the whole image in one pass). Each tile runs with
  ``--overlap`` LR pixels of its surroundings around it (clipped at the image's border, where the
  network sees the same zero padding as in one pass), and only the tile's own region of the
  output (``scale`` times its size) is kept. When the overlap is at least the network's
  receptive-field radius, every kept output pixel sees exactly the inputs and the padding it sees
  in one pass, so the result equals the one pass up to float rounding (the tests check it):
  the batch norms run in eval mode, where each is a per-channel affine map of one pixel, blind to
  the tile's statistics. With less overlap, seams show.
- **Receptive-field radius** of ``srresnet``, in LR pixels: how far from an LR pixel the inputs
  that shape its ``scale x scale`` output block can lie. Walking back from the output block
  through the layers (same-padded convolutions reach ``k // 2`` pixels; ``PixelShuffle(2)`` maps
  row ``y`` to row ``y // 2``): at x2, the 9x9 tail's 4 HR pixels are 2 LR pixels; at x4, HR rows
  ``[0, 3]`` need ``[-4, 7]`` (tail), i.e. 2x rows ``[-2, 3]``, ``[-3, 4]`` before the second
  sub-pixel block's 3x3 convolution, i.e. LR rows ``[-2, 2]``: 2 LR pixels again. Then the first
  sub-pixel convolution (3x3 at LR) adds 1, the trunk's closing 3x3 convolution 1, each residual
  block's two 3x3 convolutions 2, and the 9x9 head 4 (the skips reach less): ``2 x blocks + 8``
  LR pixels, **40** for the paper's 16 blocks, at either scale. :func:`receptive_radius` walks
  the loaded network this way, and the default ``--overlap`` is its result (40 for a network it
  does not know). The tests confirm the figure with a gradient probe: the input gradient of one
  LR pixel's output block is non-zero exactly out to that radius.
- **Progress** over all images, in LR pixels: a bar with rate and ETA on a terminal, plain lines
  otherwise (``--progress bar|lines`` forces either), on stderr as ``gan train`` does; stdout says
  what was written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import nn

import gancore
from gan_superres.datasets import IMAGE_EXTENSIONS, read_image
from gan_superres.networks import SRResNet
from gan_superres.task import Srgan, upscale

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "add_upscale_arguments",
    "receptive_radius",
    "run_upscale",
    "upscale_image",
]

DEFAULT_TILE = 128  # LR pixels per tile side
DEFAULT_OVERLAP = 40  # LR pixels: the paper's srresnet's receptive-field radius (16 blocks)
LINE_SECONDS = 10.0  # plain-line progress: at most one line this often within an image


def add_upscale_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``gan upscale``."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trained run of task srgan")
    parser.add_argument(
        "--input", type=Path, required=True, help="an image file, or a folder of images"
    )
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        help="output PNG for a file (or an existing folder to put NAME.png in); a folder for a "
        "folder",
    )
    parser.add_argument(
        "--checkpoint", default="latest", help="latest (default), best, or step-NNNNNNN"
    )
    parser.add_argument("--raw", action="store_true", help="use the trained generator, not the EMA")
    parser.add_argument(
        "--tile",
        type=int,
        default=DEFAULT_TILE,
        metavar="T",
        help=f"LR pixels per tile side (default {DEFAULT_TILE}); 0 = the whole image in one pass",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        metavar="O",
        help="LR pixels of context around each tile (default: the generator's receptive-field "
        f"radius, {DEFAULT_OVERLAP} for the paper's srresnet); at least that gives the one-pass "
        "result",
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "lines"],
        default="auto",
        help="progress display (default: a bar on a terminal, plain lines otherwise)",
    )


# -- the network's reach ------------------------------------------------------------------------


def _reach(module: nn.Module) -> int:
    """Pixels a chain of same-padded convolutions reaches on each side: the sum of their radii."""
    return sum(
        m.dilation[0] * (m.kernel_size[0] // 2)
        for m in module.modules()
        if isinstance(m, nn.Conv2d)
    )


def receptive_radius(generator: nn.Module) -> int | None:
    """The receptive-field radius of an ``srresnet`` in LR pixels (``2 x blocks + 8``; 40 for the
    paper's), from its layers; None for another network."""
    if not isinstance(generator, SRResNet):
        return None
    # The output rows of LR row 0 are [0, scale - 1]; walk back to the input rows they need.
    low, high = -_reach(generator.tail), generator.scale - 1 + _reach(generator.tail)
    for block in reversed(generator.upsample):
        low, high = low // 2, high // 2  # PixelShuffle(2): output row y comes from row y // 2
        low, high = low - _reach(block), high + _reach(block)
    trunk = _reach(generator.head) + _reach(generator.trunk) + _reach(generator.trunk_end)
    return max(-low, high) + trunk


# -- upscaling ----------------------------------------------------------------------------------


def _tiles(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """``(top, left, height, width)`` of the tiles of an image, row by row; tile 0 = one."""
    if tile == 0:
        return [(0, 0, height, width)]
    return [
        (top, left, min(tile, height - top), min(tile, width - left))
        for top in range(0, height, tile)
        for left in range(0, width, tile)
    ]


def upscale_image(
    generator: nn.Module,
    lr: torch.Tensor,
    scale: int,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    *,
    on_tile: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``lr`` ``[1, C, h, w]`` in ``[-1, 1]`` -> ``[1, C, h * scale, w * scale]`` clamped to
    ``[-1, 1]``, without gradients: ``tile`` x ``tile`` tiles (0 = one pass), each run on the
    generator's device with ``overlap`` LR pixels of context; the result is on ``lr``'s device.
    The generator must be in eval mode (as :func:`gancore.load_run` gives it). ``on_tile`` is
    called after each tile with its number of LR pixels (progress)."""
    if lr.dim() != 4 or lr.shape[0] != 1:
        raise ValueError(
            f"upscale_image: expected lr of shape [1, C, h, w] (got {tuple(lr.shape)})"
        )
    if tile < 0 or overlap < 0:
        raise ValueError(f"upscale_image: tile and overlap must be >= 0 (got {tile}, {overlap})")
    if generator.training:  # batch norm would use each tile's own statistics
        raise ValueError("upscale_image: the generator is in training mode; call .eval() first")
    parameter = next(generator.parameters(), None)
    device = parameter.device if parameter is not None else lr.device
    dtype = parameter.dtype if parameter is not None else lr.dtype
    _, channels, height, width = lr.shape
    out = lr.new_empty((1, channels, height * scale, width * scale))
    for top, left, rows, columns in _tiles(height, width, tile):
        # the tile and its context, clipped at the image's border
        y0, x0 = max(0, top - overlap), max(0, left - overlap)
        y1, x1 = min(height, top + rows + overlap), min(width, left + columns + overlap)
        sr = upscale(generator, lr[..., y0:y1, x0:x1].to(device=device, dtype=dtype))
        wanted = ((y1 - y0) * scale, (x1 - x0) * scale)
        if tuple(sr.shape[-2:]) != wanted:
            raise ValueError(
                f"the generator made {sr.shape[-1]}x{sr.shape[-2]} pixels from {x1 - x0}x"
                f"{y1 - y0}; scale {scale} needs {wanted[1]}x{wanted[0]}"
            )
        y, x = (top - y0) * scale, (left - x0) * scale  # the tile's own region in sr
        out[..., top * scale : (top + rows) * scale, left * scale : (left + columns) * scale] = sr[
            ..., y : y + rows * scale, x : x + columns * scale
        ].to(out.device)
        if on_tile is not None:
            on_tile(rows * columns)
    return out


# -- files --------------------------------------------------------------------------------------


def _jobs(source: Path, target: Path) -> list[tuple[Path, Path]]:
    """``(input file, output PNG)`` for each image of ``--input``."""
    if not source.exists():
        raise FileNotFoundError(f"--input {str(source)!r} does not exist")
    if source.is_file():
        if source.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(
                f"--input {str(source)!r} is not an image file ({', '.join(IMAGE_EXTENSIONS)})"
            )
        if target.is_dir():
            target = target / f"{source.stem}.png"
        elif target.suffix.lower() != ".png":
            raise ValueError(
                f"--output {str(target)!r}: give a .png file name (or an existing folder)"
            )
        jobs = [(source, target)]
    else:
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"--input folder {str(source)!r} holds no image file")
        if target.exists() and not target.is_dir():
            raise ValueError(f"--output {str(target)!r} must be a folder when --input is a folder")
        stems = [p.stem for p in files]
        if twice := sorted({s for s in stems if stems.count(s) > 1}):
            raise ValueError(
                f"--input: several images are named {twice[0]!r}; their outputs would collide"
            )
        jobs = [(p, target / f"{p.stem}.png") for p in files]
    inputs = {p.resolve() for p, _ in jobs}
    for _, out in jobs:
        if out.resolve() in inputs:
            raise ValueError(f"--output would overwrite the input {str(out)!r}; choose another")
    return jobs


def _size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, from its header."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read image {str(path)!r}: {error}") from None


def _write_png(image: torch.Tensor, path: Path) -> None:
    """``[C, H, W]`` in ``[-1, 1]`` (clamped) as an 8-bit grey or RGB PNG."""
    pixels = ((image.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).cpu()
    array = rearrange(pixels, "c h w -> h w c").numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array)).save(
        path, format="PNG"
    )


# -- progress -----------------------------------------------------------------------------------


def _rate(pixels_per_second: float) -> str:
    for factor, prefix in ((1e6, "M"), (1e3, "k")):
        if pixels_per_second >= factor:
            return f"{pixels_per_second / factor:.3g} {prefix}px/s"
    return f"{pixels_per_second:.3g} px/s"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class _Progress:
    """LR pixels done over all images: a tqdm bar (rate, ETA) when ``show_bar``, else a plain
    line on stderr after each image, and at most every ``LINE_SECONDS`` within one."""

    def __init__(self, total: int, images: int, show_bar: bool, label: str) -> None:
        self.total, self.images, self.done = total, images, 0
        self.started = self.last_line = time.perf_counter()
        self.index, self.name, self.tiles, self.tiles_done = 0, "", 0, 0
        self.bar: Any = None
        if show_bar:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                unit="px",
                unit_scale=True,
                dynamic_ncols=True,
                desc=label,
                file=sys.stderr,
            )

    def _line(self, text: str) -> None:
        elapsed = time.perf_counter() - self.started
        rate = self.done / max(elapsed, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        where = f"image {self.index}/{self.images} {self.name}"
        print(
            f"{where}: {text} | {_rate(rate)} | eta {_duration(eta)}",
            file=sys.stderr,
            flush=True,
        )
        self.last_line = time.perf_counter()

    def start_image(self, name: str, tiles: int) -> None:
        self.index += 1
        self.name, self.tiles, self.tiles_done = name, tiles, 0
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=False)

    def tile(self, pixels: int) -> None:
        """One tile of ``pixels`` LR pixels done."""
        self.done += pixels
        self.tiles_done += 1
        if self.bar is not None:
            self.bar.update(pixels)
        elif self.tiles_done < self.tiles and time.perf_counter() - self.last_line >= LINE_SECONDS:
            self._line(f"tile {self.tiles_done}/{self.tiles}")

    def end_image(self, note: str) -> None:
        if self.bar is None:
            self._line(note)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- the command --------------------------------------------------------------------------------


def _check_arguments(args: argparse.Namespace) -> None:
    problems = [
        f"--{flag}: must be >= 0 (got {value})"
        for flag, value in (("tile", args.tile), ("overlap", args.overlap))
        if value is not None and value < 0
    ]
    if problems:
        raise gancore.ConfigError(problems)


def _load_srgan(run_dir: Path, checkpoint: str, raw: bool) -> tuple[Any, int, int]:
    """The loaded run, its channels and its scale factor; an error unless it is an srgan run."""
    run = gancore.load_run(run_dir, checkpoint, raw=raw)
    task = run.built.task
    shape = tuple(run.built.dataset.shapes.get("x", ()))
    if not isinstance(task, Srgan) or "generator" not in run.generators or len(shape) != 3:
        name = run.config.task.spec.name
        raise ValueError(
            f"run {str(run_dir)!r} has task {name!r}; gan upscale needs a run of task 'srgan'"
        )
    return run, int(shape[0]), int(task.scale)


def run_upscale(args: argparse.Namespace) -> int:
    """``gan upscale``: upscale each image of ``--input`` with the run's generator."""
    _check_arguments(args)
    jobs = _jobs(Path(args.input), Path(args.output))
    sizes = [_size(path) for path, _ in jobs]  # unreadable files fail before any work
    run, channels, scale = _load_srgan(Path(args.run_dir), args.checkpoint, args.raw)
    generator = run.generators["generator"]
    radius = receptive_radius(generator)
    overlap = args.overlap if args.overlap is not None else (radius or DEFAULT_OVERLAP)
    split = args.tile and any(max(w, h) > args.tile for w, h in sizes)
    if split and radius is not None and overlap < radius:
        print(
            f"warning: --overlap {overlap} is below the generator's receptive-field radius "
            f"({radius} LR pixels): tile seams will show",
            file=sys.stderr,
        )
    show_bar = {"auto": sys.stderr.isatty(), "bar": True, "lines": False}[args.progress]
    progress = _Progress(sum(w * h for w, h in sizes), len(jobs), show_bar, f"upscale x{scale}")
    try:
        for (source, target), (width, height) in zip(jobs, sizes, strict=True):
            tiles = len(_tiles(height, width, args.tile))
            progress.start_image(source.name, tiles)
            lr = read_image(source, channels)[None] * 2.0 - 1.0
            sr = upscale_image(generator, lr, scale, args.tile, overlap, on_tile=progress.tile)
            _write_png(sr[0], target)
            progress.end_image(
                f"{width}x{height} -> {width * scale}x{height * scale}, {tiles} tile(s)"
            )
    finally:
        progress.close()
    where = str(jobs[0][1]) if len(jobs) == 1 else f"{len(jobs)} images to {args.output}"
    tiling = f"tile {args.tile}, overlap {overlap}" if args.tile else "one pass"
    print(
        f"wrote {where} (x{scale}, {run.checkpoint.name}, {run.generator_kind} weights, {tiling})"
    )
    return 0
