"""Built-in datasets: 2-D Gaussian mixtures, scikit-learn's digits, a folder of images, a ``.npz``.

Each dataset has an options class (``attrs``, TOML-representable, every field documented) and a
factory ``build_<name>(options, context)``; the build context is accepted and ignored. Items are
dicts with the unconditional sample under ``"x"``: images ``[C, H, W]`` float32 in ``[-1, 1]``,
vector data ``[D]`` float32. Every item is a deterministic function of its index (no global random
state is touched after construction), so a resumed run sees exactly the data it would have seen.

Datasets with known mixture components expose ``modes`` (``[M, D]`` float64), ``mode_std`` and
``mode_weights`` (``[M]`` float64, the mixture weights, summing to 1) for the mode-coverage metric
(``gancore.builtin.mode_coverage``); the others set all three to ``None``.

Datasets with classes (``digits``; ``image-folder`` with ``labels = "subfolders"``; ``npz`` with a
``labels`` array) add ``"label"``
to every item, an int64 scalar that indexes ``classes``, the tuple of class names, and keep every
item's label in ``labels`` (int64 ``[len]``) so that per-class selection reads no images.
"""

from __future__ import annotations

import logging
import math
import operator
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image, ImageOps

from gancore.builtin.mode_coverage import mode_weights_or_uniform

__all__ = [
    "IMAGE_EXTENSIONS",
    "MIXTURES",
    "DigitsDataset",
    "DigitsOptions",
    "ImageFolderDataset",
    "ImageFolderOptions",
    "NpzDataset",
    "NpzOptions",
    "Toy2dDataset",
    "Toy2dOptions",
    "build_digits",
    "build_image_folder",
    "build_npz",
    "build_toy2d",
    "limited_indices",
]

MIXTURES = ("ring", "grid", "8gaussians", "25gaussians", "swissroll")

logger = logging.getLogger("gancore.data")

# File suffixes image-folder reads, compared case-insensitively.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")

# WGAN-GP's toy code divides its 8- and 25-Gaussian sets by these literals (not sqrt(2), 2*sqrt(2)).
_WGAN_GP_8GAUSSIANS_DIVISOR = 1.414
_WGAN_GP_25GAUSSIANS_DIVISOR = 2.828
_SWISSROLL_DIVISOR = 7.5


# -- shared helpers -------------------------------------------------------------------------------


def _power_of_two(minimum: int, maximum: int) -> Callable[[Any, attrs.Attribute[int], int], None]:
    """An attrs validator: an int power of two in ``[minimum, maximum]``."""

    def validate(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if not (is_int and minimum <= value <= maximum and value & (value - 1) == 0):
            raise ValueError(
                f"'{attribute.name}' must be a power of two in [{minimum}, {maximum}] "
                f"(got {value!r})"
            )

    return validate


def _int_field(default: int, minimum: int, doc: str) -> Any:
    return attrs.field(
        default=default,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(minimum)],
        metadata={"doc": doc},
    )


def _optional_positive_float(doc: str) -> Any:
    return attrs.field(
        default=None,
        converter=attrs.converters.optional(float),
        validator=attrs.validators.optional(attrs.validators.gt(0.0)),
        metadata={"doc": doc},
    )


def _number_tuple(value: Any) -> Any:
    """TOML arrays arrive as lists: numbers become a tuple of floats (anything else is left for
    the validator to reject with the value given)."""
    if isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return tuple(float(v) for v in value)
    return value


def _validate_weights(
    instance: Any, attribute: attrs.Attribute[tuple[float, ...] | None], value: Any
) -> None:
    if value is None:
        return
    valid = (
        isinstance(value, tuple)
        and len(value) > 0
        and all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in value)
    )
    if not valid:
        raise ValueError(
            f"'{attribute.name}' must be a non-empty list of finite numbers > 0, one per mode "
            f"(got {list(value) if isinstance(value, tuple) else value!r})"
        )


def _weights_field(doc: str) -> Any:
    return attrs.field(
        default=None,
        converter=_number_tuple,
        validator=_validate_weights,
        metadata={"doc": doc},
    )


def _normalized_weights(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Validated mixture weights as float64 summing to 1, normalized as the metric does (equal
    weights exactly 1/M)."""
    return mode_weights_or_uniform(np.asarray(weights, dtype=np.float64), len(weights)).numpy()


def _index(dataset: str, index: int, length: int) -> int:
    """``index`` as a non-negative int below ``length`` (negative counts from the end)."""
    position = operator.index(index)
    if position < 0:
        position += length
    if not 0 <= position < length:
        raise IndexError(f"{dataset}: index {index} out of range for {length} items")
    return position


# -- toy2d ----------------------------------------------------------------------------------------


def _validate_center(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    valid = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, float) and math.isfinite(v) for v in value)
    )
    if not valid:
        raise ValueError(
            f"'{attribute.name}' must be two finite numbers [x, y] "
            f"(got {list(value) if isinstance(value, tuple) else value!r})"
        )


@attrs.frozen(kw_only=True)
class Toy2dOptions:
    """Options of ``toy2d``: a 2-D mixture for mode-collapse experiments."""

    mixture: str = attrs.field(
        default="ring",
        validator=attrs.validators.in_(MIXTURES),
        metadata={
            "doc": "which mixture: 'ring' (8 Gaussians on the unit circle, std 0.01) and 'grid' "
            "(25 Gaussians at {-4,-2,0,2,4}^2, std 0.05) follow PacGAN/VEEGAN; '8gaussians' "
            "(radius 2, std 0.02, divided by 1.414), '25gaussians' (spacing 2, std 0.05, divided "
            "by 2.828) and 'swissroll' (noise 0.25, divided by 7.5) follow WGAN-GP's toy code"
        },
    )
    size: int = _int_field(
        100_000, 1, "number of points, drawn once at construction from 'seed'; >= 1"
    )
    seed: int = _int_field(0, 0, "seed of the numpy Generator that draws the points; >= 0")
    std: float | None = _optional_positive_float(
        "standard deviation of each Gaussian, > 0, in the mixture's units before WGAN-GP's "
        "division (for 'swissroll': std of the noise added to the roll); None = the protocol's "
        "value (ring 0.01, grid 0.05, 8gaussians 0.02, 25gaussians 0.05, swissroll 0.25)"
    )
    radius: float | None = _optional_positive_float(
        "'ring' only: radius of the circle the centres lie on, > 0; None = 1"
    )
    ring_modes: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1)]
        ),
        metadata={
            "doc": "'ring' only: number of Gaussians, centred at angles 2*pi*i/ring_modes; None = 8"
        },
    )
    grid_side: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1)]
        ),
        metadata={
            "doc": "'grid' only: Gaussians per side of the square grid, centred on the origin; "
            "None = 5 (25 modes)"
        },
    )
    spacing: float | None = _optional_positive_float(
        "'grid' only: distance between neighbouring centres, > 0; None = 2"
    )
    center: tuple[float, float] | None = attrs.field(
        default=None,
        converter=_number_tuple,
        validator=attrs.validators.optional(_validate_center),
        metadata={
            "doc": "'ring' and 'grid' only: [x, y] added to every centre (the ring's centre, the "
            "grid's middle), finite; None = [0, 0], the origin"
        },
    )
    weights: tuple[float, ...] | None = _weights_field(
        "mixture weights, one number > 0 per mode in the order of the dataset's 'modes' (ring: "
        "by angle; grid: x-major, then y), divided by their sum for you (so [1, 2, 1, 1] is "
        "fine); not for 'swissroll'. None = equal weights, drawn exactly as before weights "
        "existed (an explicit list of equal weights is the same mixture but another draw)"
    )

    def __attrs_post_init__(self) -> None:
        applies_to = {
            "radius": ("ring",),
            "ring_modes": ("ring",),
            "grid_side": ("grid",),
            "spacing": ("grid",),
            "center": ("ring", "grid"),
        }
        for name, mixtures in applies_to.items():
            if getattr(self, name) is not None and self.mixture not in mixtures:
                which = " and ".join(f"'{m}'" for m in mixtures)
                noun = "mixture" if len(mixtures) == 1 else "mixtures"
                raise ValueError(
                    f"toy2d: '{name}' applies only to {noun} {which} (got mixture '{self.mixture}')"
                )
        if self.weights is not None:
            if self.mixture == "swissroll":
                raise ValueError(
                    "toy2d: 'weights' does not apply to mixture 'swissroll' (no modes)"
                )
            if len(self.weights) != self.num_modes:
                raise ValueError(
                    f"toy2d: 'weights' must have one number per mode: {self.num_modes} for "
                    f"mixture '{self.mixture}' (got {len(self.weights)})"
                )

    @property
    def num_modes(self) -> int | None:
        """The number of Gaussians of the mixture (``None`` for 'swissroll')."""
        if self.mixture == "ring":
            return self.ring_modes or 8
        if self.mixture == "grid":
            return (self.grid_side or 5) ** 2
        return {"8gaussians": 8, "25gaussians": 25}.get(self.mixture)


def _ring_centres(count: int, radius: float) -> np.ndarray:
    angles = 2.0 * math.pi * np.arange(count) / count
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _grid_centres(side: int, spacing: float) -> np.ndarray:
    coordinates = (np.arange(side) - (side - 1) / 2.0) * spacing
    x, y = np.meshgrid(coordinates, coordinates, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], axis=1)


class Toy2dDataset:
    """``size`` points ``{"x": [2]}`` of a 2-D mixture, drawn once from ``seed``.

    ``points`` is ``[size, 2]`` float32. ``modes`` (``[M, 2]`` float64), ``mode_std`` and
    ``mode_weights`` (``[M]`` float64, summing to 1) are the centres, per-coordinate standard
    deviation and weights of the final (rescaled) mixture; all are ``None`` for 'swissroll'. Each
    point picks its Gaussian at random: uniformly (``rng.integers``, the draw of every run before
    weights existed) without ``weights``, else with probabilities ``mode_weights``
    (``rng.choice``).
    """

    def __init__(self, options: Toy2dOptions) -> None:
        self.options = options
        rng = np.random.default_rng(options.seed)
        mixture = options.mixture
        modes: np.ndarray | None
        mode_std: float | None
        weights: np.ndarray | None = None
        if mixture == "swissroll":
            # Lazy import: scikit-learn is slow to import and only needed here and for digits.
            from sklearn.datasets import make_swiss_roll

            roll_noise = 0.25 if options.std is None else options.std
            # scikit-learn wants a seed below 2**32; derive one from the Generator.
            roll, _ = make_swiss_roll(
                n_samples=options.size, noise=roll_noise, random_state=int(rng.integers(2**32))
            )
            # The roll's (x, z) columns form the planar spiral; y is its (discarded) height.
            points = roll[:, [0, 2]] / _SWISSROLL_DIVISOR
            modes, mode_std = None, None
        else:
            if mixture == "ring":
                centres = _ring_centres(options.ring_modes or 8, options.radius or 1.0)
                std, divisor = options.std or 0.01, 1.0
            elif mixture == "grid":
                centres = _grid_centres(options.grid_side or 5, options.spacing or 2.0)
                std, divisor = options.std or 0.05, 1.0
            elif mixture == "8gaussians":
                centres = _ring_centres(8, 2.0)
                std, divisor = options.std or 0.02, _WGAN_GP_8GAUSSIANS_DIVISOR
            else:  # 25gaussians
                centres = _grid_centres(5, 2.0)
                std, divisor = options.std or 0.05, _WGAN_GP_25GAUSSIANS_DIVISOR
            if options.center is not None:  # ring and grid only (divisor 1)
                centres = centres + np.asarray(options.center, dtype=np.float64)
            if options.weights is None:
                # Uniform: the draw every earlier run (and published figure) used; keep it.
                which = rng.integers(len(centres), size=options.size)
                weights = np.full(len(centres), 1.0 / len(centres))
            else:
                weights = _normalized_weights(options.weights)
                which = rng.choice(len(centres), size=options.size, p=weights)
            noise = rng.standard_normal((options.size, 2)) * std
            points = (centres[which] + noise) / divisor
            modes, mode_std = centres / divisor, std / divisor
        self.points = torch.from_numpy(points.astype(np.float32))
        self.modes: torch.Tensor | None = None if modes is None else torch.from_numpy(modes)
        self.mode_std: float | None = mode_std
        self.mode_weights: torch.Tensor | None = (
            None if weights is None else torch.from_numpy(weights)
        )
        self.shapes: Mapping[str, tuple[int, ...]] = {"x": (2,)}

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.points[_index("toy2d", index, len(self.points))].clone()}

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """``{"x": [B, 2]}`` in one gather (the loop's fast path for in-memory data)."""
        return {"x": self.points[torch.as_tensor(indices, dtype=torch.long)]}


def build_toy2d(options: Toy2dOptions, context: object) -> Toy2dDataset:
    """Build ``toy2d``; ``context`` is unused."""
    del context
    return Toy2dDataset(options)


# -- digits ---------------------------------------------------------------------------------------


def _digit_classes(value: Any) -> Any:
    """TOML arrays arrive as lists; keep the options hashable."""
    return tuple(value) if isinstance(value, list) else value


def _validate_classes(
    instance: Any, attribute: attrs.Attribute[tuple[int, ...] | None], value: Any
) -> None:
    if value is None:
        return
    valid = (
        isinstance(value, tuple)
        and len(value) > 0
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 9 for c in value)
        and len(set(value)) == len(value)
    )
    if not valid:
        raise ValueError(
            f"'{attribute.name}' must be a non-empty tuple of distinct digits 0..9 (got {value!r})"
        )


@attrs.frozen(kw_only=True)
class DigitsOptions:
    """Options of ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images)."""

    resolution: int = attrs.field(
        default=16,
        validator=_power_of_two(8, 256),
        metadata={
            "doc": "side of the square output images in pixels, a power of two in [8, 256]; the "
            "8x8 originals are resized by bilinear interpolation (half-pixel centres, "
            "antialias on) via torch.nn.functional.interpolate"
        },
    )
    classes: tuple[int, ...] | None = attrs.field(
        default=None,
        converter=_digit_classes,
        validator=_validate_classes,
        metadata={
            "doc": "digits to keep, e.g. (0, 7); None = all ten. Labels are positions in the "
            "sorted selection (with (0, 7): digit 0 is label 0, digit 7 is label 1) and the "
            "dataset's class names are the kept digits ('0', '7')"
        },
    )
    limit: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1)]
        ),
        metadata={
            "doc": "keep only this many images, the first ones of a shuffle seeded by 'seed' "
            "(for limited-data experiments; kept in their original order); None = all"
        },
    )
    seed: int = _int_field(0, 0, "seed of the shuffle that 'limit' takes from; >= 0")
    rest: bool = attrs.field(
        default=False,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "with 'limit': keep the images 'limit' leaves out instead (the held-out rest, "
            "e.g. to score a limited-data run on digits it never saw)"
        },
    )
    xflip: bool = attrs.field(
        default=False,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "double the dataset with horizontal mirrors: index i >= n is image i - n "
            "flipped left-right (StyleGAN's --mirror)"
        },
    )


def limited_indices(
    indices: Sequence[int] | np.ndarray,
    limit: int | None,
    seed: int = 0,
    rest: bool = False,
    *,
    who: str,
    items: str = "images",
    where: str = "",
) -> np.ndarray:
    """The ``limit`` of ``indices`` a dataset keeps for a limited-data experiment, or (``rest``)
    the others: the first ``limit`` of a permutation seeded ``seed`` (numpy's default generator),
    returned in their original order (sorted). ``limit = None`` keeps them all.

    Every dataset with ``limit``/``seed``/``rest`` options (``digits``, gan-inpaint's
    ``skimage-patches``) selects with this, so the same options mean the same subset. Errors are
    one line, ``ValueError``, starting with ``who`` and naming the ``items`` (``where``, e.g.
    ``" in the 'train' split"``, follows the count): a limit above the number available, an empty
    rest, and ``rest`` without ``limit``.
    """
    keep = np.asarray(indices)
    if limit is None:
        if rest:
            raise ValueError(f"{who}: 'rest' needs 'limit' (the {items} it leaves out)")
        return keep
    if limit > len(keep):
        raise ValueError(
            f"{who}: 'limit' is {limit} but only {len(keep)} {items} are available{where}"
        )
    if rest and limit == len(keep):
        raise ValueError(f"{who}: 'rest' is empty: 'limit' keeps all {len(keep)} {items}")
    shuffled = np.random.default_rng(seed).permutation(keep)
    return np.sort(shuffled[limit:] if rest else shuffled[:limit])


class DigitsDataset:
    """Images ``{"x": [1, R, R]}`` in ``[-1, 1]`` from scikit-learn's ``load_digits``.

    Pixel values 0..16 map linearly to ``[-1, 1]``. ``classes`` names the kept digits in
    increasing order (``("0", ..., "9")`` by default); ``labels`` (int64, one per index, mirrors
    included) holds each item's class index, which is its digit unless ``options.classes`` selects
    a subset. ``images`` holds the ``n`` unflipped images ``[n, 1, R, R]``.
    """

    modes: torch.Tensor | None = None
    mode_std: float | None = None
    mode_weights: torch.Tensor | None = None

    def __init__(self, options: DigitsOptions) -> None:
        # Lazy import: scikit-learn is slow to import. load_digits reads a file bundled with it.
        from sklearn.datasets import load_digits

        self.options = options
        bunch = load_digits()
        images = np.asarray(bunch.images, dtype=np.float64)  # [1797, 8, 8], values 0..16
        targets = np.asarray(bunch.target, dtype=np.int64)
        keep = np.arange(len(images))
        if options.classes is not None:
            keep = keep[np.isin(targets[keep], options.classes)]
        keep = limited_indices(keep, options.limit, options.seed, options.rest, who="digits")
        pixels = torch.from_numpy(images[keep] / 8.0 - 1.0).float()
        pixels = rearrange(pixels, "n h w -> n 1 h w")
        if options.resolution != 8:
            pixels = F.interpolate(
                pixels,
                size=(options.resolution, options.resolution),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            ).clamp_(-1.0, 1.0)
        self.images = pixels.contiguous()
        digits = sorted(options.classes) if options.classes is not None else list(range(10))
        self.classes: tuple[str, ...] = tuple(str(d) for d in digits)
        # A digit's label is its position among the kept digits: labels always index `classes`.
        positions = np.full(10, -1, dtype=np.int64)
        positions[digits] = np.arange(len(digits))
        labels = torch.from_numpy(positions[targets[keep]])
        self.labels = torch.cat([labels, labels]) if options.xflip else labels
        self.shapes: Mapping[str, tuple[int, ...]] = {
            "x": (1, options.resolution, options.resolution),
            "label": (),
        }

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = _index("digits", index, len(self))
        count = len(self.images)
        image = self.images[position % count]
        return {
            "x": image.flip(-1) if position >= count else image.clone(),
            "label": self.labels[position].clone(),
        }

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """``{"x": [B, 1, R, R]}`` in one gather, mirrored where an index is in the second half."""
        index = torch.as_tensor(indices, dtype=torch.long)
        count = len(self.images)
        images = self.images[index % count]
        mirrored = (index >= count).view(-1, 1, 1, 1)
        return {"x": torch.where(mirrored, images.flip(-1), images), "label": self.labels[index]}


def build_digits(options: DigitsOptions, context: object) -> DigitsDataset:
    """Build ``digits``; ``context`` is unused."""
    del context
    return DigitsDataset(options)


# -- image-folder ---------------------------------------------------------------------------------


FITS = ("crop", "pad", "stretch")
PAD_FILLS = ("black", "white", "edge")
ALPHA_POLICIES = ("drop", "white", "black", "error")


def _resolution(value: Any) -> Any:
    """TOML arrays arrive as lists: ``[height, width]`` becomes a tuple (anything else is left
    for the validator to reject with the value given)."""
    return tuple(value) if isinstance(value, list) else value


def _validate_resolution(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    def power_of_two(side: Any) -> bool:
        is_int = isinstance(side, int) and not isinstance(side, bool)
        return is_int and 8 <= side <= 1024 and side & (side - 1) == 0

    if isinstance(value, tuple):
        if len(value) == 2 and all(power_of_two(side) for side in value):
            return
    elif power_of_two(value):
        return
    given = list(value) if isinstance(value, tuple) else value
    raise ValueError(
        f"'{attribute.name}' must be a power of two in [8, 1024], or [height, width] with each a "
        f"power of two in [8, 1024] (got {given!r})"
    )


def _has_alpha(picture: Image.Image) -> bool:
    return "A" in picture.getbands() or "transparency" in picture.info


def _fit(picture: Image.Image, size: tuple[int, int], fit: str, fill: str) -> np.ndarray:
    """``picture`` brought to ``size = (height, width)`` as ``fit`` says; uint8 ``[H, W(, C)]``."""
    height, width = size
    if fit == "crop":
        # The largest centred box of the output's aspect ratio (for a square output, the
        # largest centred square, with the same rounding as before 'fit' existed).
        w, h = picture.size
        if height == width:
            box_w = box_h = min(w, h)
        elif w * height > h * width:  # wider than the output: cut the sides
            box_w, box_h = max(1, round(h * width / height)), h
        else:
            box_w, box_h = w, max(1, round(w * height / width))
        left, top = (w - box_w) // 2, (h - box_h) // 2
        picture = picture.crop((left, top, left + box_w, top + box_h))
    if fit in ("crop", "stretch"):
        if picture.size != (width, height):
            picture = picture.resize((width, height), Image.Resampling.LANCZOS)
        return np.array(picture, dtype=np.uint8)
    # pad: the whole image inside the output, centred (an odd leftover goes below and right)
    w, h = picture.size
    scale = min(width / w, height / h)
    inner = (max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale))))
    if picture.size != inner:
        picture = picture.resize(inner, Image.Resampling.LANCZOS)
    pixels = np.array(picture, dtype=np.uint8)
    top, left = (height - inner[1]) // 2, (width - inner[0]) // 2
    pads = [(top, height - inner[1] - top), (left, width - inner[0] - left)]
    pads += [(0, 0)] * (pixels.ndim - 2)
    if fill == "edge":
        return np.pad(pixels, pads, mode="edge")
    return np.pad(pixels, pads, mode="constant", constant_values=255 if fill == "white" else 0)


@attrs.frozen(kw_only=True)
class ImageFolderOptions:
    """Options of ``image-folder``: every image file under a folder, read with Pillow."""

    path: str = attrs.field(
        validator=attrs.validators.instance_of(str),
        metadata={
            "doc": "folder holding the images, relative to the working directory; required "
            "(the run directory's config.toml holds it as an absolute path)",
            "path": True,
        },
    )
    resolution: int | tuple[int, int] = attrs.field(
        default=64,
        converter=_resolution,
        validator=_validate_resolution,
        metadata={
            "doc": "size of the output images in pixels: one power of two in [8, 1024] for "
            "square images, or [height, width], each a power of two in [8, 1024], for "
            "rectangular ones (for networks that take them: the built-in dcgan does); images "
            "are resized with Pillow's Lanczos filter, after 'fit' decides the aspect ratio"
        },
    )
    channels: int = attrs.field(
        default=3,
        validator=attrs.validators.in_((1, 3)),
        metadata={
            "doc": "1 = grayscale (Pillow mode 'L', ITU-R 601-2 luma) or 3 = RGB; palette images "
            "go through their RGB(A) colours, 16-bit grayscale is scaled to 8 bits (value / "
            "257, rounded)"
        },
    )
    fit: str = attrs.field(
        default="crop",
        validator=attrs.validators.in_(FITS),
        metadata={
            "doc": "how an image whose aspect ratio differs from the output's is fitted: "
            "'crop' = cut the largest centred box of the output's aspect ratio, then resize; "
            "'pad' = resize the whole image to fit inside, then fill the borders as 'pad_fill' "
            "says (letterbox); 'stretch' = resize the whole image to the output size, changing "
            "its aspect ratio"
        },
    )
    pad_fill: str = attrs.field(
        default="black",
        validator=attrs.validators.in_(PAD_FILLS),
        metadata={
            "doc": "fit = 'pad' only: the borders are 'black' (0), 'white' (255) or 'edge' (the "
            "image's outermost row or column, repeated)"
        },
    )
    alpha: str = attrs.field(
        default="drop",
        validator=attrs.validators.in_(ALPHA_POLICIES),
        metadata={
            "doc": "images with transparency (RGBA, LA, palette or colour-key transparency): "
            "'drop' = keep the colours, ignore the alpha (what transparent pixels hold shows); "
            "'white' or 'black' = composite over that background; 'error' = refuse the file. "
            "The first such file is reported in one log line"
        },
    )
    crop: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.in_(("center", "none"))),
        metadata={
            "doc": "the older spelling of 'fit', kept so that earlier run files read the same: "
            "'center' = fit 'crop', 'none' = fit 'stretch'; when set it decides, and 'fit' "
            "must be left at its default or agree; None = use 'fit'"
        },
    )
    xflip: bool = attrs.field(
        default=False,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "double the dataset with horizontal mirrors: index i >= n is image i - n "
            "flipped left-right (StyleGAN's --mirror)"
        },
    )
    recursive: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "also read images in subfolders (hidden files and folders are skipped)"},
    )
    labels: str = attrs.field(
        default="none",
        validator=attrs.validators.in_(("none", "subfolders")),
        metadata={
            "doc": "'none' = unlabelled images; 'subfolders' = one class per immediate subfolder "
            "of 'path' (hidden ones skipped), classes in sorted name order, each item carrying "
            "its class index as 'label' (int64); images are searched inside each class folder "
            "as 'recursive' says, and images directly in 'path' are an error"
        },
    )
    cache: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "keep each image in memory after its first read, resized, as uint8 "
            "(channels * height * width bytes each, per data-loader worker)"
        },
    )

    def __attrs_post_init__(self) -> None:
        if self.crop is not None:
            implied = {"center": "crop", "none": "stretch"}[self.crop]
            if self.fit not in ("crop", implied):
                raise ValueError(
                    f"image-folder: 'crop' = {self.crop!r} (fit {implied!r}) disagrees with "
                    f"'fit' = {self.fit!r}; give 'fit' only"
                )
            object.__setattr__(self, "fit", implied)  # frozen: normalised once, at construction
        if self.fit != "pad" and self.pad_fill != "black":
            raise ValueError(
                f"image-folder: 'pad_fill' applies only to fit = 'pad' (got fit {self.fit!r})"
            )

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the output images."""
        if isinstance(self.resolution, int):
            return self.resolution, self.resolution
        return self.resolution


def _class_folders(root: Path, options: ImageFolderOptions) -> list[tuple[str, list[Path]]]:
    """``labels = "subfolders"``: ``(class name, its sorted image files)`` per immediate subfolder
    of ``root``, in sorted name order."""
    where = f"image-folder: labels = 'subfolders' but '{options.path}'"
    entries = sorted(
        (p for p in root.iterdir() if not p.name.startswith(".")), key=lambda p: p.name
    )
    loose = [p.name for p in entries if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    folders = [p for p in entries if p.is_dir()]
    if not folders:
        raise ValueError(f"{where} has no subfolders (expected one folder of images per class)")
    if loose:
        raise ValueError(
            f"{where} also holds {len(loose)} image(s) outside the class folders (first: "
            f"'{loose[0]}'); move them into a class folder"
        )
    classes = []
    for folder in folders:
        files = _list_images(folder, options.recursive)
        if not files:
            where_not = "" if options.recursive else " (subfolders not searched)"
            raise ValueError(
                f"image-folder: class folder '{folder.name}' in '{options.path}' has no "
                f"images{where_not} (looked for {', '.join(IMAGE_EXTENSIONS)})"
            )
        classes.append((folder.name, files))
    return classes


def _list_images(root: Path, recursive: bool) -> list[Path]:
    candidates = root.rglob("*") if recursive else root.iterdir()
    found = []
    for path in candidates:
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


class ImageFolderDataset:
    """Images ``{"x": [channels, H, W]}`` in ``[-1, 1]``, one per file, files in sorted order.

    Files (``files``) are listed at construction, sorted by their path relative to the folder, and
    decoded lazily on first access: turned upright by their EXIF orientation tag, multi-frame
    files (GIF, TIFF) give their first frame, palette images their colours, 16-bit grayscale is
    mapped to 8 bits (value / 257, rounded), transparency is handled as ``alpha`` says, 32-bit
    float images are rejected; then ``fit`` brings them to ``(H, W)`` (``options.size``). A file
    that cannot be read is a ``ValueError`` naming it. ``alpha_files`` counts the files with
    transparency decoded so far (the first one is logged once).

    With ``labels = "subfolders"`` items are ``{"x": ..., "label": int64 []}``: ``classes`` holds
    the class folders' names (sorted), ``files`` lists the first class's files (sorted by path
    relative to its folder), then the second's, and ``labels`` (int64, one per index, mirrors
    included) each item's class index. Without labels ``classes`` is ``None``.
    """

    modes: torch.Tensor | None = None
    mode_std: float | None = None
    mode_weights: torch.Tensor | None = None

    def __init__(self, options: ImageFolderOptions) -> None:
        self.options = options
        if not options.path:
            raise ValueError("image-folder: 'path' is empty; set it to a folder of images")
        root = Path(options.path)
        if not root.exists():
            raise FileNotFoundError(f"image-folder: folder '{options.path}' does not exist")
        if not root.is_dir():
            raise ValueError(f"image-folder: '{options.path}' is not a folder")
        self.classes: tuple[str, ...] | None = None
        self.labels: torch.Tensor | None = None
        shapes: dict[str, tuple[int, ...]] = {"x": (options.channels, *options.size)}
        if options.labels == "subfolders":
            folders = _class_folders(root, options)
            self.classes = tuple(name for name, _ in folders)
            self.files = tuple(path for _, files in folders for path in files)
            labels = torch.cat(
                [
                    torch.full((len(files),), c, dtype=torch.int64)
                    for c, (_, files) in enumerate(folders)
                ]
            )
            self.labels = torch.cat([labels, labels]) if options.xflip else labels
            shapes["label"] = ()
        else:
            self.files = tuple(_list_images(root, options.recursive))
        if not self.files:
            where = "" if options.recursive else " (subfolders not searched)"
            raise ValueError(
                f"image-folder: no images found in '{options.path}'{where} "
                f"(looked for {', '.join(IMAGE_EXTENSIONS)})"
            )
        self._cache: dict[int, torch.Tensor] = {}
        self.alpha_files = 0
        self.shapes: Mapping[str, tuple[int, ...]] = shapes

    def __len__(self) -> int:
        return len(self.files) * (2 if self.options.xflip else 1)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = _index("image-folder", index, len(self))
        count = len(self.files)
        image = self._load(position % count)  # uint8 [C, H, W]
        if position >= count:
            image = image.flip(-1)
        if self.labels is None:
            return {"x": image.float() / 127.5 - 1.0}
        return {"x": image.float() / 127.5 - 1.0, "label": self.labels[position].clone()}

    def _load(self, file_index: int) -> torch.Tensor:
        cached = self._cache.get(file_index)
        if cached is not None:
            return cached
        image = self._decode(self.files[file_index])
        if self.options.cache:
            self._cache[file_index] = image
        return image

    def _decode(self, path: Path) -> torch.Tensor:
        options = self.options
        try:
            with Image.open(path) as opened:
                # Cameras store pictures sideways with an EXIF Orientation tag; viewers apply it.
                picture: Image.Image = ImageOps.exif_transpose(opened)
                if picture.mode == "F":
                    raise ValueError("float images (Pillow mode 'F') are not supported")
                if picture.mode == "I" or picture.mode.startswith("I;16"):
                    # Pillow would clip 16-bit values to 255; map [0, 65535] to [0, 255] instead.
                    wide = np.clip(np.asarray(picture, dtype=np.int64), 0, 65535)
                    picture = Image.fromarray(((wide + 128) // 257).astype(np.uint8))
                if _has_alpha(picture):
                    picture = self._without_alpha(picture, path)
                picture = picture.convert("L" if options.channels == 1 else "RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            if str(error).startswith("image-folder: "):
                raise
            raise ValueError(f"image-folder: cannot read '{path}': {error}") from error
        pixels = torch.from_numpy(_fit(picture, options.size, options.fit, options.pad_fill))
        if pixels.ndim == 2:
            return rearrange(pixels, "h w -> 1 h w").contiguous()
        return rearrange(pixels, "h w c -> c h w").contiguous()

    def _without_alpha(self, picture: Image.Image, path: Path) -> Image.Image:
        """``picture`` (which has an alpha band or palette/colour-key transparency) as RGB(A)
        whose alpha ``options.alpha`` has dealt with; the first such file is logged."""
        policy = self.options.alpha
        if policy == "error":
            raise ValueError(
                f"image-folder: '{path}' has transparency (mode {picture.mode}) and alpha = "
                "'error'; set alpha = 'drop', 'white' or 'black'"
            )
        self.alpha_files += 1
        if self.alpha_files == 1:
            what = {
                "drop": "its alpha is ignored (the colours under transparent pixels show)",
                "white": "it is composited over white",
                "black": "it is composited over black",
            }[policy]
            logger.warning(
                "image-folder: '%s' has transparency (mode %s): %s (alpha = '%s'); other files "
                "with transparency are handled alike and not reported",
                path,
                picture.mode,
                what,
                policy,
            )
        # Palette or colour-key transparency must go through RGBA, or Pillow warns on conversion.
        rgba = picture.convert("RGBA")
        if policy == "drop":
            return rgba.convert("RGB")
        background = Image.new(
            "RGBA", rgba.size, (255,) * 4 if policy == "white" else (0, 0, 0, 255)
        )
        return Image.alpha_composite(background, rgba).convert("RGB")


def build_image_folder(options: ImageFolderOptions, context: object) -> ImageFolderDataset:
    """Build ``image-folder``; ``context`` is unused."""
    del context
    return ImageFolderDataset(options)


# -- npz ------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class NpzOptions:
    """Options of ``npz``: one array of a numpy ``.npz`` archive, loaded into memory."""

    path: str = attrs.field(
        validator=attrs.validators.instance_of(str),
        metadata={
            "doc": "the .npz file, relative to the working directory; required (the run "
            "directory's config.toml holds it as an absolute path)",
            "path": True,
        },
    )
    key: str = attrs.field(
        default="x",
        validator=attrs.validators.instance_of(str),
        metadata={
            "doc": "name of the array in the archive: [N, C, H, W] or [N, H, W] images (a channel "
            "axis is added) or [N, D] vectors; uint8 is mapped from [0, 255] to [-1, 1], floating "
            "point is used as is (float images must already lie in [-1, 1]). Optional arrays "
            "'modes' [M, D] and 'mode_std' (scalar) enable the mode-coverage metric, and "
            "'mode_weights' [M] gives the mixture's weights (as the option 'weights' does). An "
            "optional integer array 'labels' [N] (values 0..K-1) gives every item a class, "
            "named by an optional string array 'class_names' [K] (else '0'..'K-1')"
        },
    )
    weights: tuple[float, ...] | None = _weights_field(
        "mixture weights of the archive's 'modes', one number > 0 per mode in their order, "
        "divided by their sum for you; only with 'modes', and not when the archive holds "
        "'mode_weights' too. None = the archive's 'mode_weights', else equal weights. Only the "
        "mode-coverage metric reads them (the data is what the archive holds)"
    )


class NpzDataset:
    """Items ``{"x": [C, H, W]}`` or ``{"x": [D]}`` from one array of a ``.npz`` archive.

    ``data`` holds all ``N`` items as float32. ``modes`` (``[M, D]`` float64) and ``mode_std`` come
    from the archive's ``modes`` and ``mode_std`` arrays when present, else ``None``;
    ``mode_weights`` (``[M]`` float64, summing to 1) from the option ``weights`` or the archive's
    ``mode_weights``, equal weights when neither is given, ``None`` without modes.

    With a ``labels`` array (integers ``[N]``, values ``0 .. K-1``) items are ``{"x": ...,
    "label": int64 []}``: ``labels`` holds every item's class (int64 ``[N]``) and ``classes`` the
    ``K`` class names, the archive's ``class_names`` (strings ``[K]``) or ``"0" .. "K-1"`` with
    ``K = max(labels) + 1``. Without it ``classes`` and ``labels`` are ``None``.
    """

    def __init__(self, options: NpzOptions) -> None:
        self.options = options
        name = options.path
        if not name:
            raise ValueError("npz: 'path' is empty; set it to a .npz file")
        if not Path(name).is_file():
            raise FileNotFoundError(f"npz: file '{name}' does not exist")
        # The file is opened here, not by numpy, so that a damaged archive leaves no file open.
        with open(name, "rb") as fh:
            head = fh.read(6)
            # numpy reads anything else as a pickle it then refuses, with a message about trust.
            if not head.startswith((b"PK", b"\x93NUMPY")):
                raise ValueError(
                    f"npz: cannot read '{name}': not a .npz archive (it does not start with a "
                    f"zip header; first bytes {head!r})"
                )
            fh.seek(0)
            try:
                loaded = np.load(fh, allow_pickle=False)
                if not isinstance(loaded, np.lib.npyio.NpzFile):
                    raise ValueError(f"npz: '{name}' holds a single .npy array, not a .npz archive")
                with loaded as archive:
                    arrays = {key: archive[key] for key in archive.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
                if str(error).startswith("npz: "):
                    raise
                raise ValueError(f"npz: cannot read '{name}': {error}") from error
        if options.key not in arrays:
            available = ", ".join(repr(k) for k in sorted(arrays)) or "none"
            raise ValueError(f"npz: no array '{options.key}' in '{name}' (available: {available})")
        self.data = self._prepare(arrays[options.key])
        self.modes: torch.Tensor | None = None
        self.mode_std: float | None = None
        self.mode_weights: torch.Tensor | None = None
        if "modes" in arrays or "mode_std" in arrays:
            self.modes, self.mode_std = self._mode_arrays(arrays)
            self.mode_weights = self._mode_weights(arrays, len(self.modes))
        elif options.weights is not None or "mode_weights" in arrays:
            given = "option 'weights'" if options.weights is not None else "array 'mode_weights'"
            raise ValueError(
                f"npz: {given} needs the archive's 'modes' and 'mode_std', which '{name}' lacks"
            )
        self.classes: tuple[str, ...] | None = None
        self.labels: torch.Tensor | None = None
        if "labels" in arrays:
            self.labels, self.classes = self._label_arrays(arrays)
        elif "class_names" in arrays:
            raise ValueError(
                f"npz: '{name}' holds 'class_names' but no 'labels'; add the labels [N] or drop "
                "the names"
            )
        self.shapes: Mapping[str, tuple[int, ...]] = {"x": tuple(self.data.shape[1:])}
        if self.labels is not None:
            self.shapes = {**self.shapes, "label": ()}

    def _label_arrays(self, arrays: dict[str, np.ndarray]) -> tuple[torch.Tensor, tuple[str, ...]]:
        """``labels`` (int64 ``[N]``) and the class names from the archive's ``labels`` and
        ``class_names``."""
        name = self.options.path
        labels = arrays["labels"]
        count = len(self.data)
        if labels.shape != (count,):
            raise ValueError(
                f"npz: 'labels' in '{name}' must have shape [N] = [{count}], one label per item of "
                f"'{self.options.key}' (got shape {tuple(labels.shape)})"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"npz: 'labels' in '{name}' must be integers 0..K-1 (got dtype {labels.dtype})"
            )
        low, high = int(labels.min()), int(labels.max())
        if low < 0:
            raise ValueError(f"npz: 'labels' in '{name}' must be >= 0 (got minimum {low})")
        names = arrays.get("class_names")
        if names is None:
            classes = tuple(str(k) for k in range(high + 1))
        else:
            if names.ndim != 1 or names.dtype.kind not in "US" or len(names) == 0:
                raise ValueError(
                    f"npz: 'class_names' in '{name}' must be a 1-D array of strings [K] (got "
                    f"dtype {names.dtype}, shape {tuple(names.shape)})"
                )
            classes = tuple(v.decode() if isinstance(v, bytes) else str(v) for v in names.tolist())
            repeated = sorted({c for c in classes if classes.count(c) > 1})
            if repeated or "" in classes:
                problem = f"repeats {repeated}" if repeated else "holds an empty name"
                raise ValueError(
                    f"npz: 'class_names' in '{name}' must hold K distinct, non-empty names "
                    f"({problem})"
                )
            if high >= len(classes):
                raise ValueError(
                    f"npz: 'labels' in '{name}' must be < {len(classes)}, the number of "
                    f"'class_names' (got maximum {high})"
                )
        return torch.from_numpy(labels.astype(np.int64)), classes

    def _prepare(self, array: np.ndarray) -> torch.Tensor:
        where = f"array '{self.options.key}' in '{self.options.path}'"
        if array.ndim not in (2, 3, 4) or array.shape[0] == 0:
            raise ValueError(
                f"npz: {where} must have shape [N, C, H, W], [N, H, W] or [N, D] with N >= 1 "
                f"(got shape {tuple(array.shape)})"
            )
        if array.dtype == np.uint8:
            data = torch.from_numpy(array.astype(np.float32) / 127.5 - 1.0)
        elif np.issubdtype(array.dtype, np.floating):
            data = torch.from_numpy(array.astype(np.float32))
            # NaN or inf would train (every loss non-finite) and fail much later, in a plot.
            bad = int((~torch.isfinite(data)).sum())
            if bad:
                raise ValueError(
                    f"npz: {where} holds {bad} non-finite values (NaN or inf) of {data.numel()}; "
                    "every value must be a finite number"
                )
            is_image = array.ndim > 2
            low, high = float(data.min()), float(data.max())
            if is_image and not (low >= -1.0 and high <= 1.0):
                raise ValueError(
                    f"npz: float images in {where} must lie in [-1, 1] (got [{low:g}, {high:g}]); "
                    "store uint8 for [0, 255] images"
                )
        else:
            raise ValueError(f"npz: {where} must be uint8 or floating point (got {array.dtype})")
        if data.ndim == 3:
            data = rearrange(data, "n h w -> n 1 h w")
        return data.contiguous()

    def _mode_arrays(self, arrays: dict[str, np.ndarray]) -> tuple[torch.Tensor, float]:
        name = self.options.path
        if "modes" not in arrays or "mode_std" not in arrays:
            raise ValueError(f"npz: '{name}' must hold both 'modes' and 'mode_std', or neither")
        modes, std = arrays["modes"], arrays["mode_std"]
        if self.data.ndim != 2 or modes.ndim != 2 or modes.shape[1] != self.data.shape[1]:
            raise ValueError(
                f"npz: 'modes' in '{name}' must have shape [M, D] matching vector data [N, D] "
                f"(got modes {tuple(modes.shape)}, data {tuple(self.data.shape)})"
            )
        if std.size != 1 or not float(std.reshape(())) > 0:
            raise ValueError(
                f"npz: 'mode_std' in '{name}' must be one positive number (got {std.tolist()!r})"
            )
        return torch.from_numpy(modes.astype(np.float64)), float(std.reshape(()))

    def _mode_weights(self, arrays: dict[str, np.ndarray], num_modes: int) -> torch.Tensor:
        name = self.options.path
        stored = arrays.get("mode_weights")
        if stored is not None and self.options.weights is not None:
            raise ValueError(
                f"npz: '{name}' holds 'mode_weights' and the option 'weights' is set too; give "
                "the weights once"
            )
        if stored is None and self.options.weights is None:
            return torch.full((num_modes,), 1.0 / num_modes, dtype=torch.float64)
        where = "option 'weights'" if stored is None else f"'mode_weights' in '{name}'"
        values = np.asarray(self.options.weights if stored is None else stored)
        if values.shape != (num_modes,):
            raise ValueError(
                f"npz: {where} must have one number per mode: {num_modes}, as 'modes' has "
                f"(got shape {tuple(values.shape)})"
            )
        real = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
        if not (real and np.all(np.isfinite(values)) and np.all(values > 0)):
            raise ValueError(f"npz: {where} must be finite numbers > 0 (got {values.tolist()!r})")
        return torch.from_numpy(_normalized_weights(values))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = _index("npz", index, len(self.data))
        if self.labels is None:
            return {"x": self.data[position].clone()}
        return {"x": self.data[position].clone(), "label": self.labels[position].clone()}

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """``{"x": [B, ...]}`` (and ``"label"`` ``[B]``) in one gather."""
        index = torch.as_tensor(indices, dtype=torch.long)
        if self.labels is None:
            return {"x": self.data[index]}
        return {"x": self.data[index], "label": self.labels[index]}


def build_npz(options: NpzOptions, context: object) -> NpzDataset:
    """Build ``npz``; ``context`` is unused."""
    del context
    return NpzDataset(options)
