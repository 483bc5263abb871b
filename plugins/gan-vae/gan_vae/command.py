"""``gan reconstruct RUN_DIR --input FILE_OR_DIR --output DIR``: reconstructions by a trained
``vae`` or ``vae-gan`` run.

Every image of ``--input`` (a file, or the image files directly inside a folder) is read, made
grey or RGB as the run's data, resized to the run's resolution (bicubic, antialiased), scaled to
``[-1, 1]``, encoded to its posterior mean ``mu(x)`` and decoded: ``<output>/<name>.png``. Also
``<output>/grid.png``: one row per input, the input then its reconstruction. The EMA weights are
used when the run kept them, unless ``--raw``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image

import gancore

__all__ = ["IMAGE_EXTENSIONS", "add_reconstruct_arguments", "run_reconstruct"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def add_reconstruct_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``gan reconstruct``."""
    parser.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="a trained vae or vae-gan run"
    )
    parser.add_argument(
        "--input", type=Path, required=True, help="an image file, or a folder of images"
    )
    parser.add_argument(
        "--output", "--out", type=Path, required=True, help="folder for the reconstructions"
    )
    parser.add_argument(
        "--checkpoint", default="latest", help="latest (default), best, or step-NNNNNNN"
    )
    parser.add_argument("--raw", action="store_true", help="use the trained weights, not the EMA")


def _inputs(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(
                f"--input: '{path}' is not an image file (expected {', '.join(IMAGE_EXTENSIONS)})"
            )
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"--input: no such file or folder '{path}'")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"--input: the folder '{path}' holds no image files")
    return files


def _load(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """An image as ``[C, H, W]`` in ``[-1, 1]`` at the run's shape."""
    channels, height, width = shape
    try:
        with Image.open(path) as picture:
            array = np.asarray(picture.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    except OSError as exc:
        raise ValueError(f"--input: cannot read '{path}' as an image ({exc})") from None
    image = torch.from_numpy(array).reshape(array.shape[0], array.shape[1], -1)
    image = rearrange(image, "h w c -> 1 c h w") / 127.5 - 1.0
    if image.shape[-2:] != (height, width):
        image = F.interpolate(
            image, size=(height, width), mode="bicubic", align_corners=False, antialias=True
        )
    return image[0].clamp(-1.0, 1.0)


def _save(image: torch.Tensor, path: Path) -> None:
    pixels = ((image.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).cpu()
    array = rearrange(pixels, "c h w -> h w c").numpy()
    Image.fromarray(np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array)).save(
        path, format="PNG"
    )


def run_reconstruct(args: argparse.Namespace) -> int:
    """Reconstruct ``args.input`` with ``args.run_dir``'s encoder and decoder."""
    files = _inputs(Path(args.input))
    run = gancore.load_run(Path(args.run_dir), args.checkpoint, raw=args.raw)
    task = run.built.task
    reconstruct = getattr(task, "reconstruct", None)
    if "encoder" not in run.generators or not callable(reconstruct):
        raise gancore.ConfigError(
            [
                f"{str(args.run_dir)!r}: the run has no encoder (task "
                f"{run.config.task.spec.name!r}); gan reconstruct needs a 'vae' or 'vae-gan' run"
            ]
        )
    shape = tuple(run.built.dataset.shapes["x"])
    images = torch.stack([_load(p, shape) for p in files]).to(run.device)
    with torch.no_grad():
        outputs = reconstruct(run.generators, images)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for path, image in zip(files, outputs, strict=True):
        _save(image, output / f"{path.stem}.png")
    pairs = rearrange(torch.stack([images, outputs]).cpu(), "two n c h w -> (n two) c h w")
    gancore.save_grid(pairs, output / "grid.png", columns=2)
    print(
        f"wrote {len(files)} reconstruction(s) and grid.png to {output} ({run.checkpoint.name}, "
        f"{run.generator_kind} weights)"
    )
    return 0
