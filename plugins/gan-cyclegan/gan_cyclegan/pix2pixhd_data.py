"""``synthetic-scenes``: offline paired scenes for pix2pixHD, a semantic label map and its "photo".

Every item is ``{"a": [3, R, R], "x": [3, R, R]}`` in ``[-1, 1]``:

- ``"a"``, the input, is a colour-coded semantic label map: each pixel holds its class's palette
  colour (:data:`PALETTE`: background black, disc red, box green, band blue). The four colours are
  corners of the RGB cube, so a 1x1 convolution decodes the classes exactly; the paper feeds a
  one-hot map instead (Wang et al. 2018, Sec. 3.3), which would not fit the plugin's image grids
  and ``gan translate``'s image files.
- ``"x"``, the target, is a rendering of the same scene in which each class has its own colour,
  texture and shading, all functions of the shape's geometry, which the label map shows: the
  background a sky-to-ground gradient with a faint fixed texture; a disc a lit sphere (Lambert
  shading from the upper left and a highlight), so each pixel depends on the disc's centre and
  radius; a box wood-like grain along its longer side with a dark rim; a band stripes across it
  whose period follows its width. The mapping is learnable, and not per pixel: a pixel's class
  alone does not give its colour.

A scene holds one band (with probability 1/2), one or two boxes and one to three discs, drawn in
that order (later shapes cover earlier ones), at positions and sizes in units of the image side,
so 64 px and 128 px scenes look alike. Items are deterministic functions of ``(seed, split,
index)`` and are rendered on every read (no cache): exact resume holds and a re-read is
bit-identical. ``split = "held-out"`` draws from another stream than ``"train"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import torch

from gan_cyclegan.datasets import mix_seed

__all__ = [
    "CLASSES",
    "PALETTE",
    "SyntheticScenes",
    "SyntheticScenesOptions",
    "build_synthetic_scenes",
    "render_scene",
]

CLASSES = ("background", "disc", "box", "band")
# Colour of each class in the label map "a", RGB in [-1, 1] (corners of the cube).
PALETTE = ((-1.0, -1.0, -1.0), (1.0, -1.0, -1.0), (-1.0, 1.0, -1.0), (-1.0, -1.0, 1.0))
SPLITS = {"train": 0, "held-out": 1}


def _side(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and 16 <= value <= 1024 and value % 16 == 0):
        raise ValueError(
            f"'{attribute.name}' must be a multiple of 16 in [16, 1024] (got {value!r})"
        )


@attrs.frozen(kw_only=True)
class SyntheticScenesOptions:
    """Options of ``synthetic-scenes``."""

    resolution: int = attrs.field(
        default=64,
        validator=_side,
        metadata={"doc": "side of the images in pixels, a multiple of 16 in [16, 1024]"},
    )
    size: int = attrs.field(
        default=2000,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "number of items (scenes) in the split"},
    )
    split: Literal["train", "held-out"] = attrs.field(
        default="train",
        validator=attrs.validators.in_(tuple(SPLITS)),
        metadata={"doc": "'train' or 'held-out': two disjoint random streams of scenes"},
    )
    seed: int = attrs.field(
        default=0,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)],
        metadata={"doc": "seed of the scenes; item i is a function of (seed, split, i)"},
    )


def _grid(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres ``(y, x)`` in units of the side, each ``[side, side]``."""
    coords = (torch.arange(side, dtype=torch.float64) + 0.5) / side
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return y, x


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def render_scene(side: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The scene of ``seed`` at ``side`` px: ``(label map [3, side, side], photo [3, side,
    side])``, float32 in ``[-1, 1]``. Computed in float64, rounded once at the end."""
    gen = torch.Generator().manual_seed(seed)
    y, x = _grid(side)
    labels = torch.zeros(side, side, dtype=torch.long)
    # Background: sky (top) to ground (bottom) with a faint fixed texture.
    t = y[None]
    sky = torch.tensor([0.35, 0.6, 0.95], dtype=torch.float64)[:, None, None]
    ground = torch.tensor([0.45, 0.38, 0.22], dtype=torch.float64)[:, None, None]
    photo = sky * (1 - t) + ground * t
    photo = photo + 0.04 * torch.sin(2 * math.pi * 6 * x) * torch.sin(2 * math.pi * 6 * y)
    # A band: stripes across a strip of random angle and width.
    if float(torch.rand((), generator=gen)) < 0.5:
        angle = _uniform(gen, 0.0, math.pi)
        offset, width = _uniform(gen, -0.25, 0.25), _uniform(gen, 0.08, 0.2)
        normal = (math.cos(angle), math.sin(angle))
        across = (x - 0.5) * normal[0] + (y - 0.5) * normal[1] - offset  # signed distance
        along = -(x - 0.5) * normal[1] + (y - 0.5) * normal[0]
        inside = across.abs() < width / 2
        stripes = 0.5 + 0.5 * torch.sign(torch.sin(2 * math.pi * along / width))
        light = torch.tensor([0.9, 0.9, 1.0], dtype=torch.float64)[:, None, None]
        dark = torch.tensor([0.15, 0.25, 0.7], dtype=torch.float64)[:, None, None]
        photo = torch.where(inside, dark + (light - dark) * stripes, photo)
        labels[inside] = 3
    # Boxes: wood grain along the longer side, a dark rim.
    for _ in range(1 + int(torch.randint(2, (), generator=gen))):
        w, h = _uniform(gen, 0.15, 0.4), _uniform(gen, 0.15, 0.4)
        left, top = _uniform(gen, 0.0, 1.0 - w), _uniform(gen, 0.0, 1.0 - h)
        u, v = (x - left) / w, (y - top) / h  # 0..1 inside the box
        inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
        across = v if w >= h else u  # the grain runs along the longer side
        grain = 0.5 + 0.5 * torch.sin(2 * math.pi * 4 * across + 3 * (u * v))
        base = torch.tensor([0.55, 0.33, 0.12], dtype=torch.float64)[:, None, None]
        wood = base * (0.75 + 0.35 * grain)
        rim = torch.minimum(torch.minimum(u, 1 - u) * w, torch.minimum(v, 1 - v) * h) < 0.02
        wood = torch.where(rim, wood * 0.45, wood)
        photo = torch.where(inside, wood, photo)
        labels[inside] = 2
    # Discs: lit spheres (Lambert from the upper left, plus a highlight).
    for _ in range(1 + int(torch.randint(3, (), generator=gen))):
        r = _uniform(gen, 0.06, 0.16)
        cx, cy = _uniform(gen, r, 1 - r), _uniform(gen, r, 1 - r)
        dx, dy = (x - cx) / r, (y - cy) / r
        d2 = dx.square() + dy.square()
        inside = d2 < 1
        nz = (1 - d2).clamp(min=0).sqrt()
        light = torch.tensor([-0.5, -0.5, 0.707], dtype=torch.float64)
        light = light / light.norm()
        lambert = (dx * light[0] + dy * light[1] + nz * light[2]).clamp(min=0)
        highlight = lambert.pow(24)
        base = torch.tensor([0.95, 0.45, 0.1], dtype=torch.float64)[:, None, None]
        ball = base * (0.2 + 0.8 * lambert) + 0.5 * highlight
        photo = torch.where(inside, ball, photo)
        labels[inside] = 1
    palette = torch.tensor(PALETTE, dtype=torch.float32)  # [K, 3]
    label_map = palette[labels].permute(2, 0, 1).contiguous()  # [3, side, side]
    image = (photo.clamp(0, 1) * 2 - 1).to(torch.float32).contiguous()
    return label_map, image


class SyntheticScenes:
    """``{"a": label map [3, R, R], "x": photo [3, R, R]}``; see the module docstring."""

    def __init__(self, options: SyntheticScenesOptions) -> None:
        self.options = options
        r = options.resolution
        self.shapes: Mapping[str, tuple[int, ...]] = {"a": (3, r, r), "x": (3, r, r)}

    def __len__(self) -> int:
        return self.options.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = int(index)
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(f"synthetic-scenes: index {index} out of range for {len(self)} items")
        opts = self.options
        seed = mix_seed(opts.seed, SPLITS[opts.split], position)
        a, x = render_scene(opts.resolution, seed)
        return {"a": a, "x": x}

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The items at ``indices``, stacked."""
        items = [self[i] for i in indices]
        return {key: torch.stack([item[key] for item in items]) for key in ("a", "x")}


def build_synthetic_scenes(options: SyntheticScenesOptions, context: object) -> SyntheticScenes:
    """Build ``synthetic-scenes``; ``context`` is unused."""
    del context
    return SyntheticScenes(options)
