"""Hole masks: random rectangles, a centred square, free-form strokes, both, or a folder of files.

A mask is ``[N, 1, H, W]`` float32, **1 in the hole** (pixels to fill) and 0 on known pixels.
Sizes are fractions of the image side, so one ``[task.masks]`` table works at every resolution.
Every draw takes an optional ``torch.Generator``: training draws from the process's generator
(seeded by the loop and saved in checkpoints, so resume is exact); sample grids and metrics pass a
seeded one.

- ``rectangle``: DeepFill v1's masks (Yu et al. 2018, Sec. 5): a box of ``rectangle_size`` of the
  side at a random position (``margin`` from the edges), shrunk by a random jitter of up to
  ``rectangle_jitter`` of the side per dimension; the hole lies inside the box.
- ``center``: the centred square of ``rectangle_size`` of the side (Context Encoders' protocol,
  Pathak et al. 2016: a 64 x 64 hole in a 128 x 128 image).
- ``strokes``: free-form brush strokes (Yu et al. 2019, DeepFill v2): ``strokes`` polylines of
  ``vertices`` vertices, each step of random direction and length, drawn with a round brush of
  ``stroke_width``. At 256 px the ranges match the paper's (1-3 strokes, 4-12 vertices, width
  12-40 px).
- ``both``: the union of a ``rectangle`` and ``strokes`` mask.
- ``folder``: user masks, image files in ``folder`` (white = hole), one picked at random per image
  and resized (nearest) to the image size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "MASK_EXTENSIONS",
    "MASK_KINDS",
    "MaskOptions",
    "center_masks",
    "crop",
    "draw_masks",
    "load_mask",
    "local_boxes",
    "rectangle_masks",
    "stroke_masks",
]

MASK_KINDS = ("rectangle", "center", "strokes", "both", "folder")
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _fraction(default: float, doc: str, *, allow_zero: bool = False) -> Any:
    low = attrs.validators.ge(0.0) if allow_zero else attrs.validators.gt(0.0)
    return attrs.field(
        default=default,
        converter=float,
        validator=[low, attrs.validators.le(1.0)],
        metadata={"doc": doc},
    )


def _ordered_pair(kind: type, low: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """Validator: a pair ``(min, max)`` of ``kind`` with ``low <= min <= max``."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        ok = (
            isinstance(value, tuple)
            and len(value) == 2
            and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
            and low <= value[0] <= value[1]
        )
        if not ok:
            raise ValueError(
                f"'{attribute.name}' must be a pair [min, max] with {low} <= min <= max "
                f"(got {value!r})"
            )

    return validate


def _float_pair(value: Any) -> Any:
    return tuple(float(v) for v in value) if isinstance(value, list | tuple) else value


@attrs.frozen(kw_only=True)
class MaskOptions:
    """How holes are drawn (the ``[task.masks]`` table). Sizes are fractions of the image side."""

    kind: Literal["rectangle", "center", "strokes", "both", "folder"] = attrs.field(
        default="both",
        validator=attrs.validators.in_(MASK_KINDS),
        metadata={
            "doc": "'rectangle' (random box, DeepFill v1), 'center' (centred square, Context "
            "Encoders), 'strokes' (free-form brush strokes, DeepFill v2), 'both' (union of a "
            "rectangle and strokes) or 'folder' (user masks from 'folder')"
        },
    )
    rectangle_size: float = _fraction(
        0.5,
        "side of the rectangle's box (and of the 'center' square), fraction of the image side; "
        "(0, 1] (DeepFill v1: 128 of 256 = 0.5)",
    )
    rectangle_jitter: float = _fraction(
        0.125,
        "the hole is the box shrunk by a random 0..jitter of the side per dimension, placed "
        "randomly inside the box; [0, 1] (DeepFill v1: 32 of 256 = 0.125)",
        allow_zero=True,
    )
    margin: float = _fraction(
        0.0,
        "the rectangle's box stays this far from the image edges, fraction of the side; [0, 0.5)",
        allow_zero=True,
    )
    strokes: tuple[int, int] = attrs.field(
        default=(1, 3),
        converter=tuple,
        validator=_ordered_pair(int, 1),
        metadata={"doc": "[min, max] number of strokes per mask (DeepFill v2: 1-3)"},
    )
    vertices: tuple[int, int] = attrs.field(
        default=(4, 12),
        converter=tuple,
        validator=_ordered_pair(int, 2),
        metadata={"doc": "[min, max] vertices per stroke, >= 2 (DeepFill v2: 4-12)"},
    )
    stroke_width: tuple[float, float] = attrs.field(
        default=(12 / 256, 40 / 256),
        converter=_float_pair,
        validator=_ordered_pair(float, 0.0),
        metadata={
            "doc": "[min, max] brush width, fraction of the side (DeepFill v2: 12-40 px at 256 px)"
        },
    )
    stroke_length: tuple[float, float] = attrs.field(
        default=(0.04, 0.4),
        converter=_float_pair,
        validator=_ordered_pair(float, 0.0),
        metadata={
            "doc": "[min, max] length of one stroke segment, fraction of the side (gancore's "
            "choice: 10-100 px at 256 px)"
        },
    )
    folder: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={
            "doc": "kind 'folder' only: a folder of mask images (white = hole, threshold 128), "
            "one picked at random per image and resized (nearest) to the image size"
        },
    )

    def __attrs_post_init__(self) -> None:
        if self.margin >= 0.5:
            raise ValueError(f"'margin' must be < 0.5 (got {self.margin})")
        if self.kind == "folder" and self.folder is None:
            raise ValueError("kind 'folder' needs 'folder', a folder of mask images")
        if self.kind != "folder" and self.folder is not None:
            raise ValueError(f"'folder' applies only to kind 'folder' (got kind {self.kind!r})")

    def describe(self) -> dict[str, Any]:
        """The settings that matter for ``kind``, for metric protocols."""
        keys = {
            "rectangle": ("rectangle_size", "rectangle_jitter", "margin"),
            "center": ("rectangle_size",),
            "strokes": ("strokes", "vertices", "stroke_width", "stroke_length"),
            "both": (
                "rectangle_size",
                "rectangle_jitter",
                "margin",
                "strokes",
                "vertices",
                "stroke_width",
                "stroke_length",
            ),
            "folder": ("folder",),
        }[self.kind]
        return {"kind": self.kind} | {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in ((k, getattr(self, k)) for k in keys)
        }


# -------------------------------------------------------------------------------------------------
# Drawing
# -------------------------------------------------------------------------------------------------


def _randint(low: int, high: int, num: int, generator: torch.Generator | None) -> torch.Tensor:
    """``num`` integers uniform in ``[low, high]`` (inclusive)."""
    return torch.randint(low, high + 1, (num,), generator=generator)


def _uniform(
    low: float, high: float, shape: tuple[int, ...], generator: torch.Generator | None
) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def _box_masks(
    top: torch.Tensor, left: torch.Tensor, height: torch.Tensor, width: torch.Tensor, size: tuple
) -> torch.Tensor:
    """Masks ``[N, 1, H, W]`` with 1 on rows ``top .. top+height-1`` and the matching columns."""
    rows = torch.arange(size[0])[None, :]
    cols = torch.arange(size[1])[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])  # [N, H]
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])  # [N, W]
    return (in_rows[:, :, None] & in_cols[:, None, :]).float()[:, None]


def rectangle_masks(
    options: MaskOptions,
    num: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DeepFill v1 rectangles: a box of ``rectangle_size`` at a random position inside the
    margins, shrunk by ``0 .. rectangle_jitter`` of the side per dimension at a random offset."""
    box_h = max(1, round(options.rectangle_size * height))
    box_w = max(1, round(options.rectangle_size * width))
    margin_h = min(round(options.margin * height), (height - box_h) // 2)
    margin_w = min(round(options.margin * width), (width - box_w) // 2)
    top = _randint(margin_h, height - margin_h - box_h, num, generator)
    left = _randint(margin_w, width - margin_w - box_w, num, generator)
    # Shrink by dh in [0, jitter * side] (never to nothing), at an offset in [0, dh].
    shrink_h = _randint(0, min(round(options.rectangle_jitter * height), box_h - 1), num, generator)
    shrink_w = _randint(0, min(round(options.rectangle_jitter * width), box_w - 1), num, generator)
    off_h = (torch.rand(num, generator=generator) * (shrink_h + 1)).long()
    off_w = (torch.rand(num, generator=generator) * (shrink_w + 1)).long()
    return _box_masks(
        top + off_h, left + off_w, box_h - shrink_h, box_w - shrink_w, (height, width)
    )


def center_masks(options: MaskOptions, num: int, height: int, width: int) -> torch.Tensor:
    """The centred square hole of ``rectangle_size`` of the side (Context Encoders)."""
    box_h = max(1, round(options.rectangle_size * height))
    box_w = max(1, round(options.rectangle_size * width))
    top = torch.full((num,), (height - box_h) // 2)
    left = torch.full((num,), (width - box_w) // 2)
    return _box_masks(
        top, left, torch.full((num,), box_h), torch.full((num,), box_w), (height, width)
    )


def stroke_masks(
    options: MaskOptions,
    num: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Free-form masks: random polylines drawn with a round brush (DeepFill v2, Alg. 1).

    A stroke starts at a uniform point; each next vertex is a step of uniform direction and a
    length in ``stroke_length``, clamped into the image. A pixel centre within ``width / 2`` of a
    segment is hole. Strokes beyond a mask's drawn count, and segments beyond a stroke's vertex
    count, are disabled, so the whole batch is rasterised at once.
    """
    side = float(min(height, width))
    most_strokes, most_vertices = options.strokes[1], options.vertices[1]
    count = _randint(*options.strokes, num, generator)  # strokes per mask
    verts = _randint(*options.vertices, num * most_strokes, generator).view(num, most_strokes)
    brush = _uniform(*options.stroke_width, (num, most_strokes), generator) * side
    angle = _uniform(0.0, 2 * math.pi, (num, most_strokes, most_vertices - 1), generator)
    length = _uniform(*options.stroke_length, (num, most_strokes, most_vertices - 1), generator)
    start_y = _uniform(0.0, height - 1.0, (num, most_strokes), generator)
    start_x = _uniform(0.0, width - 1.0, (num, most_strokes), generator)
    ys, xs = [start_y], [start_x]
    for v in range(most_vertices - 1):  # a random walk, clamped into the image
        ys.append((ys[-1] + length[..., v] * side * torch.sin(angle[..., v])).clamp(0, height - 1))
        xs.append((xs[-1] + length[..., v] * side * torch.cos(angle[..., v])).clamp(0, width - 1))
    y, x = torch.stack(ys, -1), torch.stack(xs, -1)  # [N, S, V]
    a_y, a_x, b_y, b_x = y[..., :-1], x[..., :-1], y[..., 1:], x[..., 1:]  # segments [N, S, V-1]
    seg = torch.arange(most_vertices - 1)
    active = (seg[None, None, :] < (verts - 1)[..., None]) & (
        torch.arange(most_strokes)[None, :, None] < count[:, None, None]
    )
    # Distance of every pixel centre to every segment: project onto the segment, clamp to it.
    # One stroke slot at a time keeps memory at N * (V-1) * H * W.
    py = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width).reshape(-1)
    px = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width).reshape(-1)
    hole = torch.zeros(num, height * width, dtype=torch.bool)
    for s in range(most_strokes):
        ay, ax = a_y[:, s, :, None].float(), a_x[:, s, :, None].float()  # [N, V-1, 1]
        dy, dx = (b_y - a_y)[:, s, :, None].float(), (b_x - a_x)[:, s, :, None].float()
        t = ((py - ay) * dy + (px - ax) * dx) / (dy.square() + dx.square()).clamp_min(1e-12)
        t = t.clamp(0.0, 1.0)
        dist2 = (py - ay - t * dy).square() + (px - ax - t * dx).square()  # [N, V-1, H*W]
        radius2 = (brush[:, s] / 2).square().float()[:, None, None]
        inside = (dist2 <= radius2) & active[:, s, :, None]
        hole |= inside.any(dim=1)
    return hole.view(num, 1, height, width).float()


def load_mask(path: Path, height: int | None = None, width: int | None = None) -> torch.Tensor:
    """A mask file as ``[1, H, W]`` float32, 1 where the image is >= 128 (white = hole), resized
    with nearest-neighbour interpolation to ``height x width`` when given."""
    with Image.open(path) as image:
        gray = image.convert("L")
        if height is not None and width is not None and gray.size != (width, height):
            gray = gray.resize((width, height), Image.Resampling.NEAREST)
        pixels = np.asarray(gray, dtype=np.uint8)
    return torch.from_numpy((pixels >= 128).astype(np.float32))[None]


def _mask_files(folder: str) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"mask folder {folder!r} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in MASK_EXTENSIONS)
    if not files:
        raise FileNotFoundError(
            f"mask folder {folder!r} holds no image file ({', '.join(MASK_EXTENSIONS)})"
        )
    return files


_FOLDER_CACHE: dict[tuple[str, int, int], torch.Tensor] = {}


def folder_masks(
    options: MaskOptions,
    num: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``num`` masks picked uniformly from the files of ``options.folder``."""
    assert options.folder is not None
    key = (str(Path(options.folder).resolve()), height, width)
    if key not in _FOLDER_CACHE:
        files = _mask_files(options.folder)
        _FOLDER_CACHE[key] = torch.stack([load_mask(p, height, width) for p in files])
    bank = _FOLDER_CACHE[key]
    pick = torch.randint(len(bank), (num,), generator=generator)
    return bank[pick].clone()


def draw_masks(
    options: MaskOptions,
    num: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``num`` masks ``[num, 1, height, width]`` (1 = hole) of ``options.kind``, on the CPU."""
    if options.kind == "rectangle":
        return rectangle_masks(options, num, height, width, generator)
    if options.kind == "center":
        return center_masks(options, num, height, width)
    if options.kind == "strokes":
        return stroke_masks(options, num, height, width, generator)
    if options.kind == "both":
        boxes = rectangle_masks(options, num, height, width, generator)
        return torch.maximum(boxes, stroke_masks(options, num, height, width, generator))
    return folder_masks(options, num, height, width, generator)


# -------------------------------------------------------------------------------------------------
# The local critic's window
# -------------------------------------------------------------------------------------------------


def local_boxes(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Top-left corners ``[N, 2]`` (long) of the ``size`` window centred on each hole's bounding
    box, clamped into the image (the image centre for a mask without a hole)."""
    _n, _, height, width = mask.shape
    hole = mask[:, 0] > 0.5
    rows, cols = hole.any(dim=2), hole.any(dim=1)  # [N, H], [N, W]

    def centre(any_: torch.Tensor, extent: int) -> torch.Tensor:
        index = torch.arange(extent, device=any_.device)
        first = torch.where(any_, index, extent).amin(dim=1)
        last = torch.where(any_, index, -1).amax(dim=1)
        empty = first > last
        mid = (first + last + 1).float() / 2
        return torch.where(empty, torch.full_like(mid, extent / 2), mid)

    top = (centre(rows, height) - size[0] / 2).round().long().clamp(0, height - size[0])
    left = (centre(cols, width) - size[1] / 2).round().long().clamp(0, width - size[1])
    return torch.stack([top, left], dim=1)


def crop(images: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``images`` ``[N, C, H, W]`` cropped to ``size`` at each image's ``boxes`` ``[N, 2]``
    (top, left); differentiable, one gather for the whole batch."""
    n = images.shape[0]
    rows = boxes[:, 0:1].to(images.device) + torch.arange(size[0], device=images.device)  # [N, h]
    cols = boxes[:, 1:2].to(images.device) + torch.arange(size[1], device=images.device)  # [N, w]
    batch = torch.arange(n, device=images.device)[:, None, None]
    patches = images.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [N,h,w,C]
    return patches.permute(0, 3, 1, 2).contiguous()


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A mask resized to ``height x width``: a cell is hole if any pixel in it is (max pooling
    for exact divisors, nearest otherwise)."""
    h, w = mask.shape[-2:]
    if (h, w) == (height, width):
        return mask
    if h % height == 0 and w % width == 0:
        return F.max_pool2d(mask, (h // height, w // width))
    return F.interpolate(mask, size=(height, width), mode="nearest")
