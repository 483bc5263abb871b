"""Datasets for image-to-image translation: unpaired and paired images, and a synthetic pair.

Every item is ``{"a": [C_a, R, R], "x": [C_b, R, R]}`` in ``[-1, 1]``: ``"a"`` is domain A (the
input of ``a_to_b``) and ``"x"`` is domain B, under gancore's usual key so that image metrics compare
translations A -> B with real B images.

- ``unpaired``: two folders of images, or two registered datasets, of any sizes (CycleGAN's
  setting, Zhu et al. 2017). An epoch is the larger domain: item ``i`` holds image ``i mod n_A`` of A
  and image ``perm(i mod n_B)`` of B, under a fixed seeded permutation so that folders that happen to
  be sorted alike are not paired.
- ``paired``: side-by-side images (A left, B right: the layout of the pix2pix datasets) or two
  folders whose files match by name (Isola et al. 2017).
- ``digits-translation``: scikit-learn's bundled digits (domain A) and a known transform of them
  (domain B: recoloured, inverted or transposed), offline, with a held-out split whose items are
  always paired, so the error of a translation to the ground truth can be measured.

Resize, random crop and flip (Zhu et al. 2017, App. 7.1: resize to 286, random crop 256, mirror):
images are resized to ``load_size`` and a ``resolution`` crop is taken at an offset, and mirrored
with probability 1/2, both drawn from a generator seeded by ``(seed, index)``. gancore requires
items to be deterministic functions of their index (exact resume), so an item keeps its crop for
the whole run; ``repeats = k`` lists every image ``k`` times with ``k`` different crops and flips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image

import gancore

__all__ = [
    "BACKGROUND",
    "IMAGE_EXTENSIONS",
    "INK",
    "DigitsTranslation",
    "DigitsTranslationOptions",
    "PairedImages",
    "PairedOptions",
    "UnpairedImages",
    "UnpairedOptions",
    "build_digits_translation",
    "build_paired",
    "build_unpaired",
    "held_out_error",
    "list_images",
    "read_image",
    "transform_digits",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
TRANSFORMS = ("recolor", "invert", "transpose")
# Colours of the "recolor" transform, in [-1, 1] RGB: a blue background and yellow-orange ink.
BACKGROUND = (-1.0, -0.6, 0.2)
INK = (1.0, 0.6, -0.8)


# -------------------------------------------------------------------------------------------------
# Shared pieces
# -------------------------------------------------------------------------------------------------


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 over the parts)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x & 0x7FFFFFFFFFFFFFFF


def _index(name: str, index: int, length: int) -> int:
    position = int(index)
    if position < 0:
        position += length
    if not 0 <= position < length:
        raise IndexError(f"{name}: index {index} out of range for {length} items")
    return position


def list_images(folder: str, what: str) -> list[Path]:
    """Image files directly under ``folder`` (sorted by name), or a clear error."""
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{what}: folder '{folder}' does not exist")
    if not root.is_dir():
        raise ValueError(f"{what}: '{folder}' is not a folder")
    files = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )
    if not files:
        raise ValueError(
            f"{what}: no images in '{folder}' (looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    return files


def read_image(path: Path, channels: int) -> torch.Tensor:
    """An image file as uint8 ``[channels, H, W]`` (1 = grayscale, 3 = RGB; alpha dropped)."""
    try:
        with Image.open(path) as opened:
            picture = opened.convert("L" if channels == 1 else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image '{path}': {error}") from error
    pixels = torch.from_numpy(np.array(picture, dtype=np.uint8))
    if pixels.ndim == 2:
        return rearrange(pixels, "h w -> 1 h w").contiguous()
    return rearrange(pixels, "h w c -> c h w").contiguous()


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 or float ``[C, H, W]`` -> float ``[C, size, size]`` in [-1, 1] (bicubic, antialiased)."""
    x = image.float() / 127.5 - 1.0 if image.dtype == torch.uint8 else image.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x[None], size=(size, size), mode="bicubic", align_corners=False, antialias=True
        )[0]
    return x.clamp(-1.0, 1.0)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Float ``[-1, 1]`` -> uint8 ``[0, 255]`` (rounded): the 8-bit values an image file holds."""
    return ((image + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def from_uint8(image: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float ``[-1, 1]``, the inverse of :func:`to_uint8` on its values."""
    return image.float() / 127.5 - 1.0


def crop_and_flip(
    images: Sequence[torch.Tensor], resolution: int, flip: bool, seed: int
) -> list[torch.Tensor]:
    """The same random ``resolution`` crop and flip of each image ``[C, L, L]``, drawn from
    ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    side = images[0].shape[-1]
    top = int(torch.randint(side - resolution + 1, (), generator=gen))
    left = int(torch.randint(side - resolution + 1, (), generator=gen))
    mirror = flip and bool(torch.rand((), generator=gen) < 0.5)
    out = []
    for image in images:
        crop = image[:, top : top + resolution, left : left + resolution]
        out.append(crop.flip(-1) if mirror else crop.clone())  # never a view of a cached image
    return out


def _optional_size(doc: str) -> Any:
    return attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1)]
        ),
        metadata={"doc": doc},
    )


def _int_at_least(default: int, minimum: int, doc: str) -> Any:
    return attrs.field(
        default=default,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(minimum)],
        metadata={"doc": doc},
    )


def _check_sizes(options: Any) -> None:
    if options.load_size is not None and options.load_size < options.resolution:
        raise ValueError(
            f"'load_size' must be >= 'resolution' (got load_size = {options.load_size}, "
            f"resolution = {options.resolution})"
        )


# -------------------------------------------------------------------------------------------------
# Domains: a folder of images or a registered dataset
# -------------------------------------------------------------------------------------------------


def _validate_domain(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A folder or a dataset table; the table is structured when the dataset is built, against
    the registry the run was parsed with (see :meth:`gancore.BuildContext.resolve`)."""
    if isinstance(value, str):
        if not value:
            raise ValueError(f"'{attribute.name}' must be a folder or a dataset table (got '')")
        return
    if isinstance(value, dict):
        if value.get("name") in ("unpaired", "paired"):
            raise ValueError(f"a domain cannot itself be a {value['name']!r} dataset")
        return
    raise ValueError(
        f"'{attribute.name}' must be a folder or a dataset table such as "
        f'{{name = "digits"}} (got {value!r})'
    )


class _Domain:
    """One domain's images as float ``[C, L, L]`` at ``load_size``, from a folder or a dataset
    (a table resolved through ``context`` under the option ``key``)."""

    def __init__(
        self,
        what: str,
        source: str | Mapping[str, Any],
        channels: int,
        size: int,
        cache: bool,
        context: gancore.BuildContext | None,
        key: str,
    ) -> None:
        self.size, self.cache = size, cache
        self._cache: dict[int, torch.Tensor] = {}
        self.dataset: Any = None
        self.files: list[Path] = []
        if isinstance(source, str):
            self.files = list_images(source, what)
            self.channels = channels
        else:
            if context is None:
                raise ValueError(
                    f"{what}: a dataset table needs the run's registry; build 'unpaired' from a "
                    "run config (config.data.build(None)), not directly"
                )
            self.dataset = context.resolve("dataset", source, key=key)
            shape = tuple(self.dataset.shapes.get("x", ()))
            if len(shape) != 3:
                raise ValueError(f"{what}: the dataset must give images 'x' of shape (C, H, W)")
            self.channels = shape[0]

    def __len__(self) -> int:
        return len(self.files) if self.dataset is None else len(self.dataset)

    def get(self, index: int) -> torch.Tensor:
        """Image ``index``, the same values whether or not it was cached (exact resume: a resumed
        process starts with an empty cache and must see what the straight run saw)."""
        cached = self._cache.get(index)
        if cached is None:
            if self.dataset is not None:
                cached = resize_image(self.dataset[index]["x"], self.size)
            else:  # files are 8-bit: keep the resized image as uint8 (a quarter of the memory)
                cached = to_uint8(
                    resize_image(read_image(self.files[index], self.channels), self.size)
                )
            if self.cache:
                self._cache[index] = cached
        return from_uint8(cached) if cached.dtype == torch.uint8 else cached.clone()


# -------------------------------------------------------------------------------------------------
# unpaired
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UnpairedOptions:
    """Options of ``unpaired``: two domains of any sizes, for CycleGAN."""

    a: str | dict[str, Any] = attrs.field(
        validator=_validate_domain,
        metadata={
            "doc": "domain A: a folder of images, or a dataset table such as "
            '{name = "digits", resolution = 32}; required'
        },
    )
    b: str | dict[str, Any] = attrs.field(
        validator=_validate_domain,
        metadata={"doc": "domain B (the key 'x' of items): a folder or a dataset table; required"},
    )
    resolution: int = _int_at_least(256, 4, "side of the square crops the networks see, pixels")
    load_size: int | None = _optional_size(
        "side images are resized to before the random crop (CycleGAN: 286 for 256 crops); "
        "None = resolution (no crop)"
    )
    flip: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "mirror each item left-right with probability 1/2"},
    )
    channels: Literal[1, 3] = attrs.field(
        default=3,
        validator=attrs.validators.in_((1, 3)),
        metadata={
            "doc": "channels read from folders: 1 = grayscale, 3 = RGB; datasets keep theirs"
        },
    )
    repeats: int = _int_at_least(
        1, 1, "copies of the data per epoch, each with its own crops and flips"
    )
    seed: int = _int_at_least(0, 0, "seed of the crops, the flips and the order of domain B")
    cache: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "keep resized images in memory after their first read"},
    )

    def __attrs_post_init__(self) -> None:
        _check_sizes(self)


class UnpairedImages:
    """``{"a": [C_a, R, R], "x": [C_b, R, R]}``; ``len`` = the larger domain times ``repeats``."""

    def __init__(
        self, options: UnpairedOptions, context: gancore.BuildContext | None = None
    ) -> None:
        self.options = options
        size, channels, cache = (
            options.load_size or options.resolution,
            options.channels,
            options.cache,
        )
        self.domain_a = _Domain("unpaired: a", options.a, channels, size, cache, context, "a")
        self.domain_b = _Domain("unpaired: b", options.b, channels, size, cache, context, "b")
        gen = torch.Generator().manual_seed(options.seed)
        self.order_b = torch.randperm(len(self.domain_b), generator=gen)
        self.epoch = max(len(self.domain_a), len(self.domain_b))
        r = options.resolution
        self.shapes: Mapping[str, tuple[int, ...]] = {
            "a": (self.domain_a.channels, r, r),
            "x": (self.domain_b.channels, r, r),
        }

    def __len__(self) -> int:
        return self.epoch * self.options.repeats

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = _index("unpaired", index, len(self))
        i = position % self.epoch
        a = self.domain_a.get(i % len(self.domain_a))
        b = self.domain_b.get(int(self.order_b[i % len(self.domain_b)]))
        seed, r, flip = self.options.seed, self.options.resolution, self.options.flip
        (a,) = crop_and_flip([a], r, flip, mix_seed(seed, position, 0xA))
        (b,) = crop_and_flip([b], r, flip, mix_seed(seed, position, 0xB))
        return {"a": a, "x": b}


def build_unpaired(options: UnpairedOptions, context: gancore.BuildContext) -> UnpairedImages:
    """Build ``unpaired``; domains given as dataset tables are resolved through ``context``."""
    return UnpairedImages(options, context)


# -------------------------------------------------------------------------------------------------
# paired
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PairedOptions:
    """Options of ``paired``: aligned pairs, for pix2pix. Give ``path``, or ``a`` and ``b``."""

    path: str | None = attrs.field(
        default=None,
        metadata={"doc": "folder of side-by-side images, A on the left half and B on the right"},
    )
    a: str | None = attrs.field(
        default=None, metadata={"doc": "folder of domain A images (with 'b', instead of 'path')"}
    )
    b: str | None = attrs.field(
        default=None,
        metadata={"doc": "folder of domain B images whose file names (stems) match those in 'a'"},
    )
    direction: Literal["a-to-b", "b-to-a"] = attrs.field(
        default="a-to-b",
        validator=attrs.validators.in_(("a-to-b", "b-to-a")),
        metadata={"doc": "'b-to-a' swaps the domains: the right half / folder b becomes 'a'"},
    )
    resolution: int = _int_at_least(256, 4, "side of the square crops the networks see, pixels")
    load_size: int | None = _optional_size(
        "side images are resized to before the random crop (pix2pix: 286 for 256 crops); "
        "None = resolution (no crop)"
    )
    flip: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "mirror each pair left-right (both images alike) with probability 1/2"},
    )
    channels: Literal[1, 3] = attrs.field(
        default=3,
        validator=attrs.validators.in_((1, 3)),
        metadata={"doc": "channels read: 1 = grayscale, 3 = RGB"},
    )
    repeats: int = _int_at_least(
        1, 1, "copies of the data per epoch, each with its own crops and flips"
    )
    seed: int = _int_at_least(0, 0, "seed of the crops and flips")
    cache: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "keep resized images in memory after their first read"},
    )

    def __attrs_post_init__(self) -> None:
        folders = self.a is not None or self.b is not None
        if (self.path is None) == (not folders) or (folders and (self.a is None or self.b is None)):
            raise ValueError("give either 'path' (side-by-side images) or both 'a' and 'b'")
        _check_sizes(self)


class PairedImages:
    """``{"a": [C, R, R], "x": [C, R, R]}``, aligned, cropped and flipped alike."""

    def __init__(self, options: PairedOptions) -> None:
        self.options = options
        self.size = options.load_size or options.resolution
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if options.path is not None:
            self.files: list[tuple[Path, Path | None]] = [
                (p, None) for p in list_images(options.path, "paired: path")
            ]
        else:
            assert options.a is not None
            assert options.b is not None
            files_a = list_images(options.a, "paired: a")
            files_b = {p.stem: p for p in list_images(options.b, "paired: b")}
            missing = [p.name for p in files_a if p.stem not in files_b]
            extra = sorted(set(files_b) - {p.stem for p in files_a})
            if missing or extra:
                problem = (
                    f"{len(missing)} image(s) of 'a' have no partner in 'b' (first: {missing[0]})"
                    if missing
                    else f"{len(extra)} image(s) of 'b' have no partner in 'a' (first: {extra[0]})"
                )
                raise ValueError(f"paired: {problem}; files are matched by name without suffix")
            self.files = [(p, files_b[p.stem]) for p in files_a]
        r, c = options.resolution, options.channels
        self.shapes: Mapping[str, tuple[int, ...]] = {"a": (c, r, r), "x": (c, r, r)}

    def __len__(self) -> int:
        return len(self.files) * self.options.repeats

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        first, second = self.files[index]
        if second is None:  # side by side: A | B
            both = read_image(first, self.options.channels)
            half = both.shape[-1] // 2
            if half < 1:
                raise ValueError(f"paired: '{first}' is too narrow to hold two images")
            a, b = both[..., :half], both[..., half : 2 * half]
        else:
            a = read_image(first, self.options.channels)
            b = read_image(second, self.options.channels)
        # resized and rounded to 8 bits again, so that a cached pair and a fresh read agree
        pair = (to_uint8(resize_image(a, self.size)), to_uint8(resize_image(b, self.size)))
        if self.options.direction == "b-to-a":
            pair = (pair[1], pair[0])
        if self.options.cache:
            self._cache[index] = pair
        return pair

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = _index("paired", index, len(self))
        a, b = (from_uint8(image) for image in self._load(position % len(self.files)))
        opts = self.options
        a, b = crop_and_flip([a, b], opts.resolution, opts.flip, mix_seed(opts.seed, position))
        return {"a": a, "x": b}


def build_paired(options: PairedOptions, context: object) -> PairedImages:
    """Build ``paired``; ``context`` is unused."""
    del context
    return PairedImages(options)


# -------------------------------------------------------------------------------------------------
# digits-translation: a synthetic pair with a known ground truth
# -------------------------------------------------------------------------------------------------


def transform_digits(a: torch.Tensor, transform: str) -> torch.Tensor:
    """Domain B of ``digits-translation``: the ground-truth translation of digits ``[N, 1, H, W]``.

    - ``recolor``: ``t = (a + 1) / 2`` blends a blue background into yellow-orange ink, ``[N, 3, H, W]``;
    - ``invert``: ``-a`` (white digits on black become black on white);
    - ``transpose``: the image mirrored about its main diagonal.
    """
    if transform == "recolor":
        t = (a + 1.0) / 2.0
        background = torch.tensor(BACKGROUND, dtype=a.dtype, device=a.device).view(1, 3, 1, 1)
        ink = torch.tensor(INK, dtype=a.dtype, device=a.device).view(1, 3, 1, 1)
        return background + t * (ink - background)
    if transform == "invert":
        return -a
    if transform == "transpose":
        return a.transpose(-1, -2).contiguous()
    raise ValueError(f"unknown transform {transform!r}; expected one of {', '.join(TRANSFORMS)}")


def _power_of_two(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and 8 <= value <= 64 and value & (value - 1) == 0):
        raise ValueError(f"'{attribute.name}' must be a power of two in [8, 64] (got {value!r})")


DIGITS = 1797  # images in scikit-learn's load_digits


@attrs.frozen(kw_only=True)
class DigitsTranslationOptions:
    """Options of ``digits-translation``: digits (A) and a known transform of digits (B)."""

    resolution: int = attrs.field(
        default=16,
        validator=_power_of_two,
        metadata={"doc": "side of the images, a power of two in [8, 64] (bilinear resize of 8x8)"},
    )
    transform: Literal["recolor", "invert", "transpose"] = attrs.field(
        default="recolor",
        validator=attrs.validators.in_(TRANSFORMS),
        metadata={
            "doc": "domain B: 'recolor' (yellow-orange on blue, 3 channels), 'invert' (-a) or "
            "'transpose' (mirrored about the diagonal)"
        },
    )
    paired: bool = attrs.field(
        default=False,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "false: A and B come from disjoint halves of the training digits (unpaired, "
            "for CycleGAN); true: item i is (a_i, T(a_i)) (for pix2pix)"
        },
    )
    split: Literal["train", "held-out"] = attrs.field(
        default="train",
        validator=attrs.validators.in_(("train", "held-out")),
        metadata={"doc": "'held-out': the held-out digits, always paired, to measure the error"},
    )
    held_out: int = attrs.field(
        default=297,
        validator=[
            attrs.validators.instance_of(int),
            attrs.validators.ge(1),
            attrs.validators.le(DIGITS - 2),
        ],
        metadata={"doc": "digits set aside for the held-out split (of 1,797)"},
    )
    limit: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(2)]
        ),
        metadata={"doc": "keep only this many training digits (for tiny tests); None = all"},
    )
    seed: int = _int_at_least(0, 0, "seed of the shuffle that splits training and held-out digits")


class DigitsTranslation:
    """``{"a": [1, R, R], "x": [C_b, R, R]}`` with ``x = T(a')``: ``a' = a`` when paired (and in the
    held-out split), another digit otherwise. ``target(a)`` is the ground truth ``T(a)``."""

    def __init__(
        self, options: DigitsTranslationOptions, digits: gancore.protocols.Dataset
    ) -> None:
        """``digits``: gancore's ``digits`` dataset at ``options.resolution``, every class."""
        self.options = options
        images = torch.stack([digits[i]["x"] for i in range(len(digits))])  # [1797, 1, R, R]
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(options.seed))
        held, train = order[: options.held_out], order[options.held_out :]
        if options.limit is not None:
            train = train[: options.limit]
        if options.split == "held-out":
            a = images[held]
            b = self.target(a)
        elif options.paired:
            a = images[train]
            b = self.target(a)
        else:  # disjoint halves: no B image is the transform of an A image
            a = images[train[0::2]]
            b = self.target(images[train[1::2]])
        self.images_a, self.images_b = a.contiguous(), b.contiguous()
        r = options.resolution
        self.shapes: Mapping[str, tuple[int, ...]] = {"a": (1, r, r), "x": (b.shape[1], r, r)}

    def target(self, a: torch.Tensor) -> torch.Tensor:
        """The ground-truth translation of digits ``a`` ``[N, 1, R, R]``."""
        return transform_digits(a, self.options.transform)

    def __len__(self) -> int:
        return max(len(self.images_a), len(self.images_b))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = _index("digits-translation", index, len(self))
        return {
            "a": self.images_a[position % len(self.images_a)].clone(),
            "x": self.images_b[position % len(self.images_b)].clone(),
        }

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The items at ``indices``, stacked, in one gather."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return {
            "a": self.images_a[index % len(self.images_a)],
            "x": self.images_b[index % len(self.images_b)],
        }


def build_digits_translation(
    options: DigitsTranslationOptions, context: gancore.BuildContext
) -> DigitsTranslation:
    """Build ``digits-translation`` from gancore's ``digits``, resolved through ``context``."""
    table = {"name": "gancore:digits", "resolution": options.resolution}
    return DigitsTranslation(options, context.resolve("dataset", table))


@torch.no_grad()
def held_out_error(
    generator: torch.nn.Module, dataset: DigitsTranslation, batch_size: int = 256
) -> float:
    """Mean absolute error ``|G(a) - T(a)|`` over every pixel of ``dataset`` (a paired split, such
    as ``split = "held-out"``), in the ``[-1, 1]`` units of the images."""
    if not (dataset.options.paired or dataset.options.split == "held-out"):
        raise ValueError(
            "held_out_error: needs a paired split (paired = true or split = 'held-out')"
        )
    device = next(generator.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(dataset.images_a), batch_size):
        a = dataset.images_a[start : start + batch_size].to(device)
        target = dataset.images_b[start : start + batch_size].to(device)
        total += float((generator(a) - target).abs().sum())
        count += target.numel()
    return total / count
