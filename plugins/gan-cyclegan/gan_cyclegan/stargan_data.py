"""Multi-domain data for StarGAN: images with binary attributes, and synthetic digits in k styles.

- ``attribute-images``: a folder of images and a CSV of binary attributes (header
  ``file,attr1,attr2,...``; values 0/1 or -1/1), as CelebA's attribute file (Choi et al. 2018,
  Sec. 4.2). Items are ``{"x": [C, R, R], "labels": float [K]}`` with ``labels`` multi-hot (0 or 1).
- ``digits-domains``: scikit-learn's bundled digits rendered in ``k`` known styles (the
  ``domains``), offline. Items are ``{"x": [C, R, R], "label": int64 []}`` with ``classes`` the
  domain names, like gancore's ``image-folder`` with class subfolders. Every training digit is in
  exactly one domain (disjoint subsets: unpaired); ``split = "held-out"`` gives each held-out digit
  in every domain, so the error of a translation to its ground truth can be measured for every
  domain pair (:func:`gan_cyclegan.stargan.held_out_errors`).

Both are deterministic functions of the item index (gancore's exact resume): images are kept as
the 8-bit values a file holds or computed once at construction, never rounded on a later read.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange

import gancore
from gan_cyclegan.datasets import (
    crop_and_flip,
    from_uint8,
    mix_seed,
    read_image,
    resize_image,
    to_uint8,
    transform_digits,
)

__all__ = [
    "DOMAIN_STYLES",
    "AttributeImages",
    "AttributeImagesOptions",
    "DigitsDomains",
    "DigitsDomainsOptions",
    "build_attribute_images",
    "build_digits_domains",
    "read_attributes",
    "render_domain",
]

DOMAIN_STYLES = ("original", "inverted", "recolored", "thick", "transposed")
DIGITS = 1797  # images in scikit-learn's load_digits


# -------------------------------------------------------------------------------------------------
# attribute-images
# -------------------------------------------------------------------------------------------------


def read_attributes(
    path: Path, wanted: Sequence[str] | None
) -> tuple[list[str], tuple[str, ...], torch.Tensor]:
    """``(files, attribute names, labels [N, K] float 0/1)`` from a CSV ``file,attr1,...``.

    Values are 0/1 or -1/1 (CelebA's convention; -1 reads as 0). ``wanted`` selects and orders
    columns (None = every column after ``file``). Problems are one-line ``ValueError`` s naming the
    file, the row and the column.
    """
    if not path.is_file():
        raise FileNotFoundError(f"attribute-images: attributes file '{path}' does not exist")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or [h.strip() for h in rows[0]][:1] != ["file"]:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise ValueError(
            f"attribute-images: '{path}' must start with a header 'file,attr1,attr2,...' "
            f"(got {got!r})"
        )
    header = [h.strip() for h in rows[0]]
    columns = header[1:]
    if not columns or len(set(columns)) != len(columns) or not all(columns):
        raise ValueError(
            f"attribute-images: '{path}': the header needs distinct, non-empty attribute names "
            f"after 'file' (got {','.join(header)!r})"
        )
    names = tuple(wanted) if wanted is not None else tuple(columns)
    missing = [n for n in names if n not in columns]
    if missing:
        raise ValueError(
            f"attribute-images: '{path}' has no column {missing[0]!r} (columns: "
            f"{', '.join(columns)})"
        )
    positions = [columns.index(n) + 1 for n in names]
    files: list[str] = []
    values: list[list[float]] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise ValueError(
                f"attribute-images: '{path}' line {number}: expected {len(header)} values "
                f"(got {len(row)})"
            )
        labels = []
        for position in positions:
            cell = row[position].strip()
            if cell not in ("0", "1", "-1"):
                raise ValueError(
                    f"attribute-images: '{path}' line {number}, column {header[position]!r}: "
                    f"expected 0/1 or -1/1 (got {cell!r})"
                )
            labels.append(1.0 if cell == "1" else 0.0)
        files.append(row[0].strip())
        values.append(labels)
    if not files:
        raise ValueError(f"attribute-images: '{path}' lists no images")
    if len(set(files)) != len(files):
        twice = sorted({f for f in files if files.count(f) > 1})
        raise ValueError(f"attribute-images: '{path}' lists {twice[0]!r} more than once")
    return files, names, torch.tensor(values, dtype=torch.float32).reshape(len(files), len(names))


def _int_at_least(default: int, minimum: int, doc: str) -> Any:
    return attrs.field(
        default=default,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(minimum)],
        metadata={"doc": doc},
    )


def _names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen(kw_only=True)
class AttributeImagesOptions:
    """Options of ``attribute-images``: a folder of images and a CSV of binary attributes."""

    path: str = attrs.field(
        validator=attrs.validators.instance_of(str),
        metadata={"doc": "folder holding the images named in the CSV's 'file' column; required"},
    )
    attributes_file: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={
            "doc": "CSV with a header 'file,attr1,attr2,...' and one row per image, values 0/1 "
            "or -1/1; None = 'attributes.csv' inside 'path'"
        },
    )
    attributes: tuple[str, ...] | None = attrs.field(
        default=None,
        converter=_names,
        metadata={
            "doc": "the attribute columns to use, in this order (the paper's CelebA run: 5 of "
            "40); None = every column"
        },
    )
    resolution: int = _int_at_least(128, 4, "side of the square images, pixels (paper: 128)")
    channels: Literal[1, 3] = attrs.field(
        default=3,
        validator=attrs.validators.in_((1, 3)),
        metadata={"doc": "channels read: 1 = grayscale, 3 = RGB"},
    )
    crop: Literal["center", "none"] = attrs.field(
        default="center",
        validator=attrs.validators.in_(("center", "none")),
        metadata={
            "doc": "'center' = the largest centred square before resizing; 'none' = resize "
            "the whole image (aspect changes)"
        },
    )
    flip: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "mirror each item left-right with probability 1/2 (the paper: yes)"},
    )
    seed: int = _int_at_least(0, 0, "seed of the flips")
    cache: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "keep resized images in memory (as uint8) after their first read"},
    )


def _center_square(image: torch.Tensor) -> torch.Tensor:
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[:, top : top + side, left : left + side]


class AttributeImages:
    """``{"x": [C, R, R], "labels": float [K]}``; ``attributes`` names the K labels."""

    def __init__(self, options: AttributeImagesOptions) -> None:
        self.options = options
        root = Path(options.path)
        if not root.is_dir():
            raise FileNotFoundError(f"attribute-images: folder '{options.path}' does not exist")
        table = Path(options.attributes_file or root / "attributes.csv")
        names, self.attributes, self.labels = read_attributes(table, options.attributes)
        self.files = [root / name for name in names]
        absent = [p.name for p in self.files if not p.is_file()]
        if absent:
            raise FileNotFoundError(
                f"attribute-images: {len(absent)} image(s) listed in '{table}' are not in "
                f"'{options.path}' (first: {absent[0]!r})"
            )
        self._cache: dict[int, torch.Tensor] = {}
        r = options.resolution
        self.shapes: Mapping[str, tuple[int, ...]] = {
            "x": (options.channels, r, r),
            "labels": (len(self.attributes),),
        }

    def __len__(self) -> int:
        return len(self.files)

    def _image(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 ``[C, R, R]``: the same 8-bit values cached or not."""
        cached = self._cache.get(index)
        if cached is None:
            image = read_image(self.files[index], self.options.channels)
            if self.options.crop == "center":
                image = _center_square(image)
            cached = to_uint8(resize_image(image, self.options.resolution))
            if self.options.cache:
                self._cache[index] = cached
        return cached

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = int(index) + (len(self) if int(index) < 0 else 0)
        if not 0 <= position < len(self):
            raise IndexError(f"attribute-images: index {index} out of range for {len(self)} items")
        opts = self.options
        (image,) = crop_and_flip(
            [from_uint8(self._image(position))],
            opts.resolution,
            opts.flip,
            mix_seed(opts.seed, position),
        )
        return {"x": image, "labels": self.labels[position].clone()}


def build_attribute_images(options: AttributeImagesOptions, context: object) -> AttributeImages:
    """Build ``attribute-images``; ``context`` is unused."""
    del context
    return AttributeImages(options)


# -------------------------------------------------------------------------------------------------
# digits-domains
# -------------------------------------------------------------------------------------------------


def render_domain(images: torch.Tensor, style: str, channels: int) -> torch.Tensor:
    """Digits ``[N, 1, R, R]`` in ``[-1, 1]`` (white ink on black) drawn in ``style``, with
    ``channels`` channels (1, or 3 when some domain is recoloured: gray repeated).

    - ``original``: unchanged; ``inverted``: ``-x`` (black ink on white);
    - ``recolored``: yellow-orange ink on blue (the ``digits-translation`` map);
    - ``thick``: strokes dilated by one pixel, a 3x3 max-pool at stride 1;
    - ``transposed``: mirrored about the main diagonal.
    """
    if style == "original":
        out = images
    elif style == "inverted":
        out = transform_digits(images, "invert")
    elif style == "recolored":
        out = transform_digits(images, "recolor")
    elif style == "thick":
        out = F.max_pool2d(images, kernel_size=3, stride=1, padding=1)
    elif style == "transposed":
        out = transform_digits(images, "transpose")
    else:
        raise ValueError(
            f"unknown domain style {style!r}; expected one of {', '.join(DOMAIN_STYLES)}"
        )
    if out.shape[1] != channels:
        out = out.expand(-1, channels, -1, -1)
    return out.contiguous()


def _power_of_two(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and 8 <= value <= 64 and value & (value - 1) == 0):
        raise ValueError(f"'{attribute.name}' must be a power of two in [8, 64] (got {value!r})")


def _validate_domains(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    unknown = [v for v in value if v not in DOMAIN_STYLES]
    if unknown:
        raise ValueError(
            f"'{attribute.name}': unknown style {unknown[0]!r}; expected some of "
            f"{', '.join(DOMAIN_STYLES)}"
        )
    if len(value) < 2 or len(set(value)) != len(value):
        raise ValueError(f"'{attribute.name}' must list at least 2 distinct styles (got {value!r})")


@attrs.frozen(kw_only=True)
class DigitsDomainsOptions:
    """Options of ``digits-domains``: the digits in ``k`` known styles, one per domain."""

    domains: tuple[str, ...] = attrs.field(
        default=("original", "inverted", "thick"),
        converter=tuple,
        validator=_validate_domains,
        metadata={
            "doc": "the domains, in label order, each a style: 'original', 'inverted', "
            "'recolored' (3 channels; the others become gray RGB), 'thick' or 'transposed'"
        },
    )
    resolution: int = attrs.field(
        default=16,
        validator=_power_of_two,
        metadata={"doc": "side of the images, a power of two in [8, 64] (bilinear resize of 8x8)"},
    )
    split: Literal["train", "held-out"] = attrs.field(
        default="train",
        validator=attrs.validators.in_(("train", "held-out")),
        metadata={
            "doc": "'train': each training digit in one domain (digit i of the shuffle in domain "
            "i mod k); 'held-out': every held-out digit in every domain (item i*k + j is digit i "
            "in domain j)"
        },
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
    only: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={
            "doc": "keep only the items of this domain (labels and classes unchanged), e.g. one "
            "side of a per-pair model such as CycleGAN through 'unpaired'; None = all"
        },
    )
    seed: int = _int_at_least(0, 0, "seed of the shuffle that splits and assigns the digits")

    def __attrs_post_init__(self) -> None:
        if self.only is not None and self.only not in self.domains:
            raise ValueError(
                f"'only' must be one of the domains {', '.join(self.domains)} (got {self.only!r})"
            )


class DigitsDomains:
    """``{"x": [C, R, R], "label": int64 []}``: digits drawn in the style of domain ``label``.

    ``classes`` are the domain names, ``labels`` every item's domain, ``digit_index`` every
    item's digit (its index in scikit-learn's order). For the held-out split, ``ground_truth``
    ``[k, n, C, R, R]`` holds every held-out digit in every domain.
    """

    def __init__(self, options: DigitsDomainsOptions, digits: gancore.protocols.Dataset) -> None:
        """``digits``: gancore's ``digits`` dataset at ``options.resolution``, every class."""
        self.options = options
        self.classes: tuple[str, ...] = tuple(options.domains)
        k = len(self.classes)
        self.channels = 3 if "recolored" in self.classes else 1
        images = torch.stack([digits[i]["x"] for i in range(len(digits))])  # [1797, 1, R, R]
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(options.seed))
        held, train = order[: options.held_out], order[options.held_out :]
        if options.limit is not None:
            train = train[: options.limit]
        if options.split == "held-out":
            self.ground_truth = torch.stack(
                [render_domain(images[held], s, self.channels) for s in self.classes]
            )  # [k, n, C, R, R]
            self.images = rearrange_domains(self.ground_truth)
            self.labels = torch.arange(k).repeat(len(held))
            self.digit_index = held.repeat_interleave(k)
        else:
            self.labels = torch.arange(len(train)) % k  # disjoint: one domain per digit
            r = options.resolution
            self.images = torch.empty(len(train), self.channels, r, r)
            for j, style in enumerate(self.classes):
                self.images[j::k] = render_domain(images[train[j::k]], style, self.channels)
            self.digit_index = train.clone()
        if options.only is not None:
            keep = self.labels == self.classes.index(options.only)
            self.images, self.labels = self.images[keep].contiguous(), self.labels[keep]
            self.digit_index = self.digit_index[keep]
        r = options.resolution
        self.shapes: Mapping[str, tuple[int, ...]] = {"x": (self.channels, r, r), "label": ()}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position = int(index) + (len(self) if int(index) < 0 else 0)
        if not 0 <= position < len(self):
            raise IndexError(f"digits-domains: index {index} out of range for {len(self)} items")
        return {"x": self.images[position].clone(), "label": self.labels[position].clone()}

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The items at ``indices``, stacked, in one gather."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return {"x": self.images[index], "label": self.labels[index]}


def rearrange_domains(ground_truth: torch.Tensor) -> torch.Tensor:
    """``[k, n, C, R, R]`` -> ``[n * k, C, R, R]``, item ``i * k + j`` = digit ``i`` in domain
    ``j``."""
    return rearrange(ground_truth, "k n c h w -> (n k) c h w").contiguous()


def build_digits_domains(
    options: DigitsDomainsOptions, context: gancore.BuildContext
) -> DigitsDomains:
    """Build ``digits-domains`` from gancore's ``digits``, resolved through ``context``."""
    table = {"name": "gancore:digits", "resolution": options.resolution}
    return DigitsDomains(options, context.resolve("dataset", table))
