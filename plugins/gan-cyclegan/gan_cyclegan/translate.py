"""``gan translate RUN_DIR --direction a-to-b --input DIR_OR_FILE --output DIR``, and
``gan translate RUN_DIR --to DOMAIN [--to DOMAIN2 ...] --input ... --output DIR`` for StarGAN.

Loads a trained ``cyclegan``, ``pix2pix`` or ``stargan`` run, reads every image of ``--input`` (a
file, or the image files directly inside a folder), resizes it to the run's training resolution,
translates it with the chosen generator (the EMA weights when the run kept them, unless ``--raw``)
and writes ``<output>/<name>.png`` for each. A StarGAN run translates into each ``--to`` target:
``<output>/<target>/<name>.png``, and with several targets also ``<output>/grid.png`` (one row
per input: the input, then each target's translation). A target is a domain name (a class of the
run's data), or for attribute runs ``attr=1,attr2=0`` (listed attributes set, the others 0) or
an attribute name alone (that attribute 1, the others 0).
"""

from __future__ import annotations

import argparse
import difflib
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image
from tqdm.auto import tqdm

import gancore
from gan_cyclegan.datasets import IMAGE_EXTENSIONS, list_images, read_image
from gan_cyclegan.stargan import Domains, StarGAN, translate

__all__ = ["DIRECTIONS", "add_translate_arguments", "parse_target", "run_translate"]

# --direction -> (generator name, dataset key of its input domain)
DIRECTIONS = {"a-to-b": ("a_to_b", "a"), "b-to-a": ("b_to_a", "x")}


def add_translate_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``gan translate``."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trained run directory")
    parser.add_argument(
        "--direction",
        choices=sorted(DIRECTIONS),
        default="a-to-b",
        help="a-to-b (generator a_to_b, default) or b-to-a (b_to_a; CycleGAN runs only)",
    )
    parser.add_argument(
        "--to",
        action="append",
        metavar="DOMAIN",
        help="StarGAN runs: a target domain, or attr=1,attr2=0 for attribute runs (repeatable; "
        "several targets also write grid.png)",
    )
    parser.add_argument(
        "--input", type=Path, required=True, help="an image file, or a folder of images"
    )
    parser.add_argument(
        "--output", type=Path, required=True, help="folder for the translations (created)"
    )
    parser.add_argument(
        "--checkpoint", default="latest", help="latest (default), best, or step-NNNNNNN"
    )
    parser.add_argument("--raw", action="store_true", help="use the trained generator, not the EMA")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="images translated at once (default 16)"
    )


def _inputs(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(
                f"--input: '{path}' is not an image file ({', '.join(IMAGE_EXTENSIONS)})"
            )
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"--input: no such file or folder '{path}'")
    return list_images(str(path), "--input")


def _load(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """An image as float ``[C, H, W]`` in ``[-1, 1]`` at the run's shape (bicubic resize)."""
    channels, height, width = shape
    image = read_image(path, channels).float() / 127.5 - 1.0
    if image.shape[-2:] != (height, width):
        image = F.interpolate(
            image[None], size=(height, width), mode="bicubic", align_corners=False, antialias=True
        )[0]
    return image.clamp(-1.0, 1.0)


def _save(image: torch.Tensor, path: Path) -> None:
    pixels = ((image.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).cpu()
    array = rearrange(pixels, "c h w -> h w c").numpy()
    picture = Image.fromarray(
        np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array)
    )
    picture.save(path, format="PNG")


def run_translate(args: argparse.Namespace) -> int:
    """Translate ``args.input`` with ``args.run_dir``'s generator into ``args.output``."""
    if args.batch_size < 1:
        raise gancore.ConfigError([f"--batch-size: must be >= 1 (got {args.batch_size})"])
    if args.direction not in DIRECTIONS:
        raise gancore.ConfigError(
            [
                f"--direction: expected one of {', '.join(sorted(DIRECTIONS))} (got {args.direction!r})"
            ]
        )
    files = _inputs(Path(args.input))
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"--input: several images are named {twice[0]!r}; outputs would collide")
    run = gancore.load_run(Path(args.run_dir), args.checkpoint, raw=args.raw)
    targets = getattr(args, "to", None)
    if targets is not None or isinstance(run.built.task, StarGAN):
        return _run_stargan(args, run, files, targets)
    name, key = DIRECTIONS[args.direction]
    if name not in run.generators:
        have = ", ".join(sorted(run.generators))
        raise gancore.ConfigError(
            [
                f"--direction {args.direction}: run {str(args.run_dir)!r} has no generator "
                f"{name!r} (it has: {have}; pix2pix translates a-to-b only)"
            ]
        )
    shapes = run.built.dataset.shapes
    if key not in shapes:
        raise gancore.ConfigError(
            [
                f"{str(args.run_dir)!r}: the run's dataset has no key {key!r}; is it a translation run?"
            ]
        )
    shape = tuple(shapes[key])
    generator = run.generators[name]
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    batches = [files[i : i + args.batch_size] for i in range(0, len(files), args.batch_size)]
    for chunk in tqdm(batches, desc=f"translate {args.direction}", unit="batch", disable=None):
        images = torch.stack([_load(p, shape) for p in chunk]).to(run.device)
        with torch.no_grad():
            translated = generator(images)
        for path, image in zip(chunk, translated, strict=True):
            _save(image, output / f"{path.stem}.png")
    print(
        f"wrote {len(files)} image(s) to {output} (generator {name}, {run.checkpoint.name}, "
        f"{run.generator_kind} weights)"
    )
    return 0


# -------------------------------------------------------------------------------------------------
# StarGAN: --to
# -------------------------------------------------------------------------------------------------


def _closest(text: str, names: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(text, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_target(domains: Domains, text: str) -> torch.Tensor:
    """The label vector ``c`` ``[K]`` that a ``--to`` value names, or a one-line
    :class:`gancore.ConfigError` naming the known domains or attributes."""
    names = domains.names
    if domains.kind == "single":
        if text not in names:
            raise gancore.ConfigError(
                [
                    f"--to: unknown domain {text!r}{_closest(text, names)}; domains: {', '.join(names)}"
                ]
            )
        return domains.vector(torch.tensor([names.index(text)]))[0]
    c = torch.zeros(len(names))
    for part in text.split(","):
        attribute, _, value = part.strip().partition("=")
        attribute, value = attribute.strip(), value.strip() or "1"
        if attribute not in names:
            raise gancore.ConfigError(
                [
                    f"--to: unknown attribute {attribute!r}{_closest(attribute, names)}; "
                    f"attributes: {', '.join(names)}"
                ]
            )
        if value not in ("0", "1"):
            raise gancore.ConfigError(
                [f"--to: attribute {attribute!r} must be 0 or 1 (got {value!r} in {text!r})"]
            )
        c[names.index(attribute)] = float(value)
    return c


def _run_stargan(
    args: argparse.Namespace, run: gancore.LoadedRun, files: list[Path], targets: list[str] | None
) -> int:
    task = run.built.task
    if not isinstance(task, StarGAN) or task.domains is None:
        raise gancore.ConfigError(
            [
                f"--to: run {str(args.run_dir)!r} is not a stargan run (task "
                f"{run.config.task.spec.name!r}); use --direction"
            ]
        )
    domains = task.domains
    if not targets:
        raise gancore.ConfigError(
            [
                f"{str(args.run_dir)!r} is a stargan run: give --to DOMAIN (domains: "
                f"{', '.join(domains.names)})"
            ]
        )
    labels = [parse_target(domains, text) for text in targets]
    slugs = [re.sub(r"[^A-Za-z0-9._=,+-]", "_", text) for text in targets]
    if len(set(slugs)) != len(slugs):
        raise gancore.ConfigError([f"--to: a target is given twice ({', '.join(targets)})"])
    shape = tuple(run.built.dataset.shapes["x"])
    generator = run.generators["generator"]
    output = Path(args.output)
    for slug in slugs:
        (output / slug).mkdir(parents=True, exist_ok=True)
    rows: list[torch.Tensor] = []  # [1 + targets, C, H, W] per input, for the grid
    batches = [files[i : i + args.batch_size] for i in range(0, len(files), args.batch_size)]
    for chunk in tqdm(batches, desc="translate", unit="batch", disable=None):
        images = torch.stack([_load(p, shape) for p in chunk]).to(run.device)
        outputs = []
        with torch.no_grad():
            for slug, c in zip(slugs, labels, strict=True):
                translated = translate(generator, images, c.to(run.device).expand(len(images), -1))
                outputs.append(translated.cpu())
                for path, image in zip(chunk, translated, strict=True):
                    _save(image, output / slug / f"{path.stem}.png")
        if len(targets) > 1:
            rows += list(torch.stack([images.cpu(), *outputs], dim=1))
    if rows:
        gancore.save_grid(torch.cat(rows), output / "grid.png", columns=1 + len(targets))
    grid = f" and {output / 'grid.png'}" if rows else ""
    print(
        f"wrote {len(files) * len(targets)} image(s) to {output}{grid} (targets "
        f"{', '.join(targets)}, {run.checkpoint.name}, {run.generator_kind} weights)"
    )
    return 0
