"""``gan inpaint RUN_DIR --image IN.png --mask MASK.png --out OUT.png``: fill a user's holes.

``--image``, ``--mask`` and ``--out`` are files, or folders: with an image folder, ``--mask`` is
either one mask file for every image or a folder holding a mask of the same file name for each
image, and ``--out`` is a folder. A mask is white (>= 128) in the hole. Images are converted to the
run's channels (grey or RGB); the generator is fully convolutional, so any image size works: the
image is reflection-padded to a size the network accepts and cropped back. Known pixels are kept
bit-exact (up to the 8-bit PNG of the input).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import gancore
from gan_inpaint.masks import MASK_EXTENSIONS, load_mask
from gan_inpaint.task import complete

__all__ = ["add_inpaint_arguments", "inpaint_images", "run_inpaint"]


def add_inpaint_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``gan inpaint``."""
    parser.add_argument("run_dir", type=Path, help="a trained run of task 'inpaint'")
    parser.add_argument(
        "--image", type=Path, required=True, help="image file, or a folder of images"
    )
    parser.add_argument(
        "--mask",
        type=Path,
        required=True,
        help="mask file (white = hole), or a folder of masks named like the images",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output PNG, or a folder for a folder of images"
    )
    parser.add_argument(
        "--checkpoint", default="latest", help="latest (default), best, or step-NNNNNNN"
    )
    parser.add_argument("--raw", action="store_true", help="use the trained generator, not the EMA")


def _load_run(run_dir: Path, checkpoint: str, raw: bool) -> Any:
    return gancore.load_run(run_dir, checkpoint, raw=raw)


def _read_image(path: Path, channels: int) -> torch.Tensor:
    """``[C, H, W]`` in ``[-1, 1]``."""
    with Image.open(path) as image:
        converted = image.convert("L" if channels == 1 else "RGB")
        pixels = np.asarray(converted, dtype=np.float32) / 127.5 - 1.0
    tensor = torch.from_numpy(pixels)
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def _write_image(image: torch.Tensor, path: Path) -> None:
    pixels = ((image.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).cpu()
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def inpaint_images(
    generator: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor, multiple: int = 1
) -> torch.Tensor:
    """Complete ``image`` ``[N, C, H, W]`` with hole ``mask`` ``[N, 1, H, W]`` at any size: pad
    (reflect) to a multiple of ``multiple``, run, crop back; known pixels stay exact."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    check_size = getattr(generator, "check_size", None)
    if callable(check_size):  # e.g. dilations too large for a small image
        check_size(h + pad_h, w + pad_w)
    padded_image = F.pad(image, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else image
    padded_mask = F.pad(mask, (0, pad_w, 0, pad_h)) if pad_h or pad_w else mask  # padding: known
    with torch.no_grad():
        done = complete(generator, padded_image, padded_mask)
    done = done[..., :h, :w]
    return torch.where(mask > 0.5, done, image)


def _pairs(image: Path, mask: Path, out: Path) -> list[tuple[Path, Path, Path]]:
    if not image.exists():
        raise FileNotFoundError(f"--image {str(image)!r} does not exist")
    if not mask.exists():
        raise FileNotFoundError(f"--mask {str(mask)!r} does not exist")
    if image.is_file():
        if mask.is_dir():
            raise ValueError("--mask must be a file when --image is a file")
        if out.is_dir():
            raise ValueError(f"--out {str(out)!r} is a folder; give a file name for one image")
        return [(image, mask, out)]
    files = sorted(p for p in image.iterdir() if p.suffix.lower() in MASK_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"--image folder {str(image)!r} holds no image file")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} must be a folder when --image is a folder")
    pairs = []
    for path in files:
        mask_path = mask if mask.is_file() else mask / path.name
        if not mask_path.is_file():
            raise FileNotFoundError(f"no mask {str(mask_path)!r} for image {str(path)!r}")
        pairs.append((path, mask_path, out / (path.stem + ".png")))
    return pairs


def run_inpaint(args: argparse.Namespace) -> int:
    """``gan inpaint``: complete each image with its mask and write the results."""
    pairs = _pairs(args.image, args.mask, args.out)
    run = _load_run(args.run_dir, args.checkpoint, args.raw)
    shape = tuple(run.built.dataset.shapes.get("x", ()))
    if not hasattr(run.built.task, "masks") or len(shape) != 3:
        raise ValueError(f"run {str(args.run_dir)!r} is not an 'inpaint' run")
    channels = shape[0]
    generator = run.generators["generator"]
    multiple = int(getattr(generator, "size_multiple", 1))
    for image_path, mask_path, out_path in pairs:
        image = _read_image(image_path, channels)
        h, w = image.shape[-2:]
        mask = load_mask(mask_path)
        if tuple(mask.shape[-2:]) != (h, w):
            raise ValueError(
                f"mask {str(mask_path)!r} is {mask.shape[-1]}x{mask.shape[-2]} but image "
                f"{str(image_path)!r} is {w}x{h}"
            )
        done = inpaint_images(
            generator, image[None].to(run.device), mask[None].to(run.device), multiple
        )
        _write_image(done[0], out_path)
        print(f"{out_path}  ({int(mask.sum())} hole pixels filled)")
    return 0
