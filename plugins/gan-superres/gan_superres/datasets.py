"""``sr-images``: high-resolution crops of photos, for super-resolution; optionally paired.

Sources are scikit-image's bundled photos (``"skimage:NAME"``, offline) and the user's files or
folders of images. Every photo is cut into ``size x size`` crops every ``stride`` pixels (crops
that would cross the border are left out). A held-out set is a different list of photos: the
crops of one photo are all in one split, so a test photo is never seen in training.

Without ``lr``, items are ``{"x": HR crop}`` and the task makes the low-resolution input by its
degradation (:mod:`gan_superres.degrade`). With ``lr`` (a folder holding a low-resolution image
of the same file stem for every high-resolution file, ``scale`` times smaller), items are
``{"x": HR crop, "lr": the matching LR crop}``: real degradations (camera pairs, JPEG, noise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from einops import rearrange
from PIL import Image

__all__ = [
    "IMAGE_EXTENSIONS",
    "SKIMAGE_PHOTOS",
    "SRImages",
    "SRImagesOptions",
    "build_sr_images",
    "load_source",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# scikit-image's bundled photos that need no download (skimage.data), colour and grey.
SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)
# The default training photos; the example and the benchmark hold out chelsea, rocket, camera
# and coins (none of them is here).
TRAIN_PHOTOS = (
    "skimage:astronaut",
    "skimage:coffee",
    "skimage:immunohistochemistry",
    "skimage:hubble_deep_field",
    "skimage:retina",
    "skimage:brick",
    "skimage:grass",
    "skimage:gravel",
    "skimage:moon",
    "skimage:clock",
    "skimage:cell",
    "skimage:text",
)


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _check_sources(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(
            f"'images' must be a non-empty list of 'skimage:NAME' or paths (got {value!r})"
        )
    for source in value:
        if source.startswith("skimage:") and source[8:] not in SKIMAGE_PHOTOS:
            raise ValueError(
                f"'images': {source!r} is not one of scikit-image's bundled photos "
                f"({', '.join(SKIMAGE_PHOTOS)})"
            )


@attrs.frozen(kw_only=True)
class SRImagesOptions:
    """Options of ``sr-images``."""

    images: tuple[str, ...] = attrs.field(
        default=TRAIN_PHOTOS,
        converter=_as_tuple,
        validator=_check_sources,
        metadata={
            "doc": "photos to cut: 'skimage:NAME' (bundled: "
            + ", ".join(SKIMAGE_PHOTOS)
            + "), image files, or folders of them"
        },
    )
    size: int = attrs.field(
        default=96,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(16)],
        metadata={"doc": "side of the high-resolution crops (paper: 96); >= 16"},
    )
    stride: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1)]
        ),
        metadata={"doc": "pixels between neighbouring crops; None = size (no overlap)"},
    )
    channels: int = attrs.field(
        default=3,
        validator=attrs.validators.in_((1, 3)),
        metadata={"doc": "3 = RGB (grey photos repeated), 1 = grey (colour photos to luma)"},
    )
    lr: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={
            "doc": "folder of low-resolution images, one per high-resolution file with the same "
            "stem and 1/scale its size (paired data); None = the task degrades 'x' itself"
        },
    )
    scale: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.in_((2, 4))),
        metadata={"doc": "size ratio of the 'lr' images (2 or 4); needed with 'lr' only"},
    )

    def __attrs_post_init__(self) -> None:
        if self.lr is not None and self.scale is None:
            raise ValueError("'scale' must be set (2 or 4) when 'lr' names a folder of pairs")
        if self.lr is not None and self.size % (self.scale or 1):
            raise ValueError(f"'size' {self.size} must be a multiple of 'scale' {self.scale}")


def _to_tensor(pixels: np.ndarray, channels: int) -> torch.Tensor:
    """``[channels, H, W]`` float32 in ``[0, 1]`` from an 8-bit (or float, or bool) array."""
    if pixels.dtype == np.uint8:
        array = pixels.astype(np.float32) / 255.0
    else:
        array = pixels.astype(np.float32)
    image = torch.from_numpy(array)
    if image.ndim == 2:
        image = image[None].expand(3, -1, -1)
    else:
        image = rearrange(image[..., :3], "h w c -> c h w")
    if channels == 1:  # ITU-R BT.601 luma
        weights = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
        image = (image * weights).sum(0, keepdim=True)
    return image.contiguous()


def read_image(path: Path, channels: int) -> torch.Tensor:
    """An image file as ``[channels, H, W]`` float32 in ``[0, 1]``."""
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read image {str(path)!r}: {error}") from None
    return _to_tensor(pixels, channels)


def load_source(source: str, channels: int) -> list[tuple[str, torch.Tensor]]:
    """``[(name, [channels, H, W] in [0, 1])]`` for one source: a bundled photo, a file, or
    every image file of a folder (sorted by name)."""
    if source.startswith("skimage:"):
        import skimage.data  # lazy: scikit-image is slow to import

        name = source[8:]
        return [(name, _to_tensor(np.asarray(getattr(skimage.data, name)()), channels))]
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"'images': folder {source!r} holds no image file")
        return [(p.stem, read_image(p, channels)) for p in files]
    if not path.is_file():
        raise FileNotFoundError(f"'images': {source!r} is neither 'skimage:NAME' nor a file")
    return [(path.stem, read_image(path, channels))]


def _lr_file(folder: Path, stem: str) -> Path:
    for suffix in IMAGE_EXTENSIONS:
        for candidate in (folder / (stem + suffix), folder / (stem + suffix.upper())):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"'lr': no low-resolution image named {stem!r} in {str(folder)!r}")


class SRImages:
    """``{"x": [C, size, size]}`` (and ``"lr"``) crops in ``[-1, 1]``; ``sources[i]`` names the
    photo of crop ``i``."""

    def __init__(self, options: SRImagesOptions) -> None:
        self.options = options
        size = options.size
        stride = options.stride or size
        scale = options.scale or 1
        crops: list[torch.Tensor] = []
        small: list[torch.Tensor] = []
        self.sources: list[str] = []
        lr_folder = Path(options.lr).expanduser() if options.lr is not None else None
        if lr_folder is not None and not lr_folder.is_dir():
            raise FileNotFoundError(f"'lr': {options.lr!r} is not a folder")
        for source in options.images:
            if lr_folder is not None and source.startswith("skimage:"):
                raise ValueError(
                    f"'images': {source!r} has no low-resolution pair; with 'lr' give files"
                )
            for name, photo in load_source(source, options.channels):
                _, h, w = photo.shape
                low = None
                if lr_folder is not None:
                    low = read_image(_lr_file(lr_folder, name), options.channels)
                    if tuple(low.shape[1:]) != (h // scale, w // scale):
                        raise ValueError(
                            f"'lr': {name!r} is {low.shape[2]}x{low.shape[1]} but its "
                            f"high-resolution image {w}x{h} / scale {scale} is "
                            f"{w // scale}x{h // scale}"
                        )
                # crops on the LR grid too: positions are multiples of the scale
                step = max(scale, stride - stride % scale)
                for top in range(0, h - size + 1, step):
                    for left in range(0, w - size + 1, step):
                        crops.append(photo[:, top : top + size, left : left + size])
                        self.sources.append(name)
                        if low is not None:
                            t, s, k = top // scale, left // scale, size // scale
                            small.append(low[:, t : t + k, s : s + k])
        if not crops:
            raise ValueError(
                f"sr-images: no {size}x{size} crop fits in any image (make 'size' smaller)"
            )
        self.images = (torch.stack(crops) * 2.0 - 1.0).contiguous()
        self.low = (torch.stack(small) * 2.0 - 1.0).contiguous() if small else None
        shapes: dict[str, tuple[int, ...]] = {"x": (options.channels, size, size)}
        if self.low is not None:
            shapes["lr"] = tuple(self.low.shape[1:])
        self.shapes: Mapping[str, tuple[int, ...]] = shapes

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sr-images: index {index} out of range for {len(self)} items")
        item = {"x": self.images[index].clone()}
        if self.low is not None:
            item["lr"] = self.low[index].clone()
        return item

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The items ``indices`` stacked, in one gather."""
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        batch = {"x": self.images[rows]}
        if self.low is not None:
            batch["lr"] = self.low[rows]
        return batch


def build_sr_images(options: SRImagesOptions, context: object) -> SRImages:
    return SRImages(options)
