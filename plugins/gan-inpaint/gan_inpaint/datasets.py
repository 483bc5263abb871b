"""``skimage-patches``: scikit-image's bundled sample photos, cut into square patches.

Offline data for inpainting: the photos ship inside scikit-image (``skimage.data``), nothing is
downloaded. Each photo is resized by ``scale`` (bilinear, antialiased), then cut into ``size x
size`` patches every ``stride`` pixels. A **held-out split** keeps train and test apart: the bottom
``test_fraction`` of every (scaled) photo is the test region and the rest the train region, and a
patch belongs to a split only if it lies entirely inside its region, so no pixel is in both.
``limit`` keeps the first ``limit`` patches of a shuffle seeded ``seed`` of the split (in their
original order), ``rest`` the others: a limited-data training set and its held-out complement,
as the core's ``digits`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

import gancore

__all__ = ["PHOTOS", "SkimagePatches", "SkimagePatchesOptions", "build_skimage_patches"]

# Photos bundled with scikit-image (no download needed), by their skimage.data function name.
PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "rocket",
)


def _photo_names(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _check_photos(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"'images' must be a non-empty list of photo names (got {value!r})")
    unknown = [v for v in value if v not in PHOTOS]
    if unknown:
        raise ValueError(
            f"'images' must name scikit-image's bundled photos ({', '.join(PHOTOS)}) "
            f"(got {', '.join(map(repr, unknown))})"
        )


@attrs.frozen(kw_only=True)
class SkimagePatchesOptions:
    """Options of ``skimage-patches``."""

    images: tuple[str, ...] = attrs.field(
        default=("astronaut", "brick", "camera", "chelsea", "coffee", "grass", "gravel", "rocket"),
        converter=_photo_names,
        validator=_check_photos,
        metadata={"doc": f"photos of skimage.data to cut, any of: {', '.join(PHOTOS)}"},
    )
    size: int = attrs.field(
        default=32,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(8)],
        metadata={"doc": "side of the square patches in pixels; >= 8"},
    )
    scale: float = attrs.field(
        default=0.5,
        converter=float,
        validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)],
        metadata={"doc": "photos are resized by this factor before cutting; (0, 1]"},
    )
    stride: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1)]
        ),
        metadata={"doc": "pixels between neighbouring patches; None = size / 2"},
    )
    channels: int = attrs.field(
        default=3,
        validator=attrs.validators.in_((1, 3)),
        metadata={"doc": "3 = RGB (grey photos repeated), 1 = grey (colour photos to luminance)"},
    )
    split: Literal["train", "test", "all"] = attrs.field(
        default="train",
        validator=attrs.validators.in_(("train", "test", "all")),
        metadata={
            "doc": "'train' (patches above the test region), 'test' (patches inside it) or 'all'"
        },
    )
    test_fraction: float = attrs.field(
        default=0.25,
        converter=float,
        validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)],
        metadata={"doc": "bottom fraction of every photo's height that is the test region; [0, 1)"},
    )
    limit: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1)]
        ),
        metadata={
            "doc": "keep only this many patches of the split, the first ones of a shuffle seeded "
            "by 'seed' (for limited-data experiments; kept in their original order); None = all"
        },
    )
    seed: int = attrs.field(
        default=0,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)],
        metadata={"doc": "seed of the shuffle that 'limit' takes from; >= 0"},
    )
    rest: bool = attrs.field(
        default=False,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "with 'limit': keep the patches 'limit' leaves out instead (the held-out rest)"
        },
    )


def _load_photo(name: str, channels: int) -> torch.Tensor:
    """A bundled photo as ``[channels, H, W]`` float32 in ``[0, 1]``."""
    import skimage.data  # lazy: scikit-image is slow to import

    pixels = np.asarray(getattr(skimage.data, name)())
    image = torch.from_numpy(pixels.astype(np.float32) / 255.0)
    if image.ndim == 2:
        image = image[None].expand(3, -1, -1)
    else:
        image = rearrange(image[..., :3], "h w c -> c h w")
    if channels == 1:  # ITU-R BT.601 luma
        weights = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
        image = (image * weights).sum(0, keepdim=True)
    return image.contiguous()


class SkimagePatches:
    """``{"x": [C, size, size]}`` patches in ``[-1, 1]`` of scikit-image's sample photos.

    ``patches`` holds every patch ``[n, C, size, size]``; ``sources`` the photo name of each.
    """

    def __init__(self, options: SkimagePatchesOptions) -> None:
        self.options = options
        size = options.size
        stride = options.stride or max(1, size // 2)
        chunks: list[torch.Tensor] = []
        self.sources: list[str] = []
        for name in options.images:
            photo = _load_photo(name, options.channels)
            h = max(1, round(photo.shape[1] * options.scale))
            w = max(1, round(photo.shape[2] * options.scale))
            if (h, w) != tuple(photo.shape[1:]):
                photo = F.interpolate(
                    photo[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True
                )[0].clamp(0.0, 1.0)
            test_top = h - round(options.test_fraction * h)  # first row of the test region
            lo, hi = {"train": (0, test_top), "test": (test_top, h), "all": (0, h)}[options.split]
            tops = list(range(lo, hi - size + 1, stride))
            lefts = list(range(0, w - size + 1, stride))
            for top in tops:
                for left in lefts:
                    chunks.append(photo[:, top : top + size, left : left + size])
                    self.sources.append(name)
        if not chunks:
            raise ValueError(
                f"skimage-patches: no {size}x{size} patch fits the {options.split!r} split at "
                f"scale {options.scale} (make 'size' smaller or 'scale' larger)"
            )
        keep = gancore.limited_indices(
            range(len(chunks)),
            options.limit,
            options.seed,
            options.rest,
            who="skimage-patches",
            items="patches",
            where=f" in the {options.split!r} split",
        )
        chunks = [chunks[i] for i in keep]
        self.sources = [self.sources[i] for i in keep]
        self.patches = (torch.stack(chunks) * 2.0 - 1.0).contiguous()
        self.shapes: Mapping[str, tuple[int, ...]] = {"x": (options.channels, size, size)}

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"skimage-patches: index {index} out of range for {len(self)} items")
        return {"x": self.patches[index].clone()}

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """``{"x": [B, C, size, size]}`` in one gather."""
        return {"x": self.patches[torch.as_tensor(list(indices), dtype=torch.long)]}


def build_skimage_patches(options: SkimagePatchesOptions, context: object) -> SkimagePatches:
    return SkimagePatches(options)
