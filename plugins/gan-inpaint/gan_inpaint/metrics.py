"""``inpaint-quality``: L1, L2, PSNR and SSIM of completed images, in the hole and on the whole
image, next to two baselines that need no training.

Images are compared in ``[0, 1]`` (``(x + 1) / 2``), in float64, per image, then averaged over
images:

- **L1** mean absolute error, **L2** mean squared error, over the hole's pixels and channels (or
  the whole image's), as fractions of the data range (Pathak et al. 2016 report them in %).
- **PSNR** ``10 log10(1 / MSE)`` dB per image (MSE floored at 1e-10, i.e. at most 100 dB).
- **SSIM** (Wang et al. 2004): Gaussian window sigma 1.5 (11 taps), ``K1 = 0.01``, ``K2 = 0.03``,
  data range 1, reflection padding, per channel; the SSIM map is averaged over the hole (hole
  SSIM) or over the image (image SSIM).

Baselines, on the same images and masks:

- **mean fill**: every hole pixel gets the mean of the image's known pixels (per channel).
- **nearest-patch fill**: exemplar filling from the image's own known region, one ring of the
  hole at a time from the outside in (onion peel). Each hole pixel on the current front takes the
  centre pixel of the fully known ``patch_size`` patch of the original image that is nearest (sum
  of squared differences) to the known part of its own neighbourhood; the front is then known and
  the next ring follows. A within-image version of nearest-neighbour inpainting (Hays & Efros
  2007, the NN-inpainting row of Pathak et al. 2016's Table 1, which searches a photo collection).

The metric needs the run's task and generators: it reads ``task``, ``generators``, ``dataset`` and
``device`` from the metric context (gancore's loop and ``gan eval`` provide them), draws images
from the context's dataset and masks from ``masks`` (default: the task's own), and completes them
with ``task.sample``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
import torch
import torch.nn.functional as F

from gan_inpaint.masks import MaskOptions, draw_masks
from gan_inpaint.task import complete

__all__ = [
    "InpaintQuality",
    "mean_fill",
    "nearest_patch_fill",
    "quality",
    "ssim_map",
]

BASELINES = ("mean-fill", "nearest-patch")
SSIM_SIGMA = 1.5  # Wang et al. 2004
SSIM_TAPS = 11
SSIM_K1, SSIM_K2 = 0.01, 0.03


# -------------------------------------------------------------------------------------------------
# Baselines
# -------------------------------------------------------------------------------------------------


def mean_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hole pixels set to the mean of the image's known pixels, per channel (0 without any)."""
    known = 1.0 - mask
    count = known.sum(dim=(2, 3), keepdim=True)
    mean = (image * known).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1.0)
    return torch.where(mask > 0.5, mean.expand_as(image), image)


def _nearest_patch_one(image: torch.Tensor, hole: torch.Tensor, k: int) -> torch.Tensor:
    """Onion-peel exemplar fill of one image ``[C, H, W]`` with hole ``[H, W]`` (bool)."""
    c, _h, w = image.shape
    pad = k // 2
    # Candidate patches: windows of the original image that hold no hole pixel.
    windows = F.unfold(image[None], k)[0].T  # [M, C*k*k]
    clean = F.unfold((~hole).float()[None, None], k)[0].amin(dim=0) > 0.5
    candidates = windows[clean]
    filled = torch.where(hole, torch.zeros_like(image), image)
    if len(candidates) == 0:  # no fully known patch: fall back to the mean
        return mean_fill(image[None], hole.float()[None, None])[0]
    centre = torch.arange(c) * k * k + (k * k) // 2  # the centre pixel of each channel
    cand_sq = candidates.square()
    known = ~hole
    while not bool(known.all()):
        # The front: hole pixels with a known 8-neighbour.
        grown = F.max_pool2d(known.float()[None, None], 3, 1, 1)[0, 0] > 0.5
        front = grown & ~known
        if not bool(front.any()):  # hole pixels with no known pixel anywhere near: stop
            break
        ys, xs = front.nonzero(as_tuple=True)
        values = F.unfold(F.pad(filled[None], (pad,) * 4), k)[0]  # [C*k*k, H*W]
        weights = F.unfold(F.pad(known.float()[None, None], (pad,) * 4), k)[0]  # [k*k, H*W]
        at = ys * w + xs
        query = values[:, at].T  # [B, C*k*k]
        seen = weights[:, at].T.repeat(1, c)  # [B, C*k*k], 1 where the neighbour is known
        # sum over seen entries of (q - p)^2 = sum seen*q^2 - 2 (seen*q).p + seen.p^2
        dist = (seen * query.square()).sum(1, keepdim=True)
        dist = dist - 2 * (seen * query) @ candidates.T + seen @ cand_sq.T
        best = dist.argmin(dim=1)
        filled[:, ys, xs] = candidates[best][:, centre].T
        known = known | front
    return filled


def nearest_patch_fill(
    image: torch.Tensor, mask: torch.Tensor, patch_size: int = 5
) -> torch.Tensor:
    """Exemplar fill from each image's own known patches, outside in (see the module doc)."""
    out = image.clone()
    for i in range(image.shape[0]):
        hole = mask[i, 0] > 0.5
        if bool(hole.any()):
            out[i] = torch.where(hole, _nearest_patch_one(image[i], hole, patch_size), image[i])
    return out


# -------------------------------------------------------------------------------------------------
# Measures
# -------------------------------------------------------------------------------------------------


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(SSIM_TAPS, dtype=dtype, device=device) - SSIM_TAPS // 2
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM map ``[N, C, H, W]`` of images in ``[0, 1]`` (Wang et al. 2004; Gaussian window sigma
    1.5, 11 taps, reflection padding, ``K1 = 0.01``, ``K2 = 0.03``, data range 1)."""
    c = a.shape[1]
    window = _gaussian_window(a.dtype, a.device)[None, None].expand(c, 1, -1, -1)
    pad = SSIM_TAPS // 2
    mode = "reflect" if min(a.shape[-2:]) > pad else "replicate"

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (pad,) * 4, mode=mode), window, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.square()
    var_b = blur(b * b) - mu_b.square()
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2)
    )


def quality(
    completed: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-image ``hole_l1``, ``hole_l2``, ``hole_psnr``, ``hole_ssim`` and the same over the whole
    image (``image_*``), each ``[N]`` float64. Images in ``[-1, 1]``, measured in ``[0, 1]``."""
    a = (completed.double() + 1.0) / 2.0
    b = (target.double() + 1.0) / 2.0
    m = (mask.double() > 0.5).double().expand_as(a)
    ones = torch.ones_like(m)
    diff = a - b
    ssim = ssim_map(a, b)
    out: dict[str, torch.Tensor] = {}
    for region, weight in (("hole", m), ("image", ones)):
        count = weight.sum(dim=(1, 2, 3)).clamp_min(1.0)
        l1 = (weight * diff.abs()).sum(dim=(1, 2, 3)) / count
        l2 = (weight * diff.square()).sum(dim=(1, 2, 3)) / count
        out[f"{region}_l1"] = l1
        out[f"{region}_l2"] = l2
        out[f"{region}_psnr"] = 10.0 * torch.log10(1.0 / l2.clamp_min(1e-10))
        out[f"{region}_ssim"] = (weight * ssim).sum(dim=(1, 2, 3)) / count
    return out


# -------------------------------------------------------------------------------------------------
# The metric
# -------------------------------------------------------------------------------------------------


def _check_baselines(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple) or any(v not in BASELINES for v in value):
        raise ValueError(
            f"'baselines' must be a list of {', '.join(map(repr, BASELINES))} (got {value!r})"
        )


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _mix(seed: int, index: int) -> int:
    """A per-block seed (the same on every process)."""
    return (seed * 1_000_003 + index * 7_919 + 12_345) % (2**63)


# Masks are drawn this many at a time, each block from its own seed, so that image k's mask does
# not depend on the batch size (the default batch size: its results are those of per-batch seeds).
MASK_BLOCK = 64


@attrs.frozen(kw_only=True)
class InpaintQuality:
    """L1, L2, PSNR and SSIM of completed images over the hole and the whole image, with the
    mean-fill and nearest-patch baselines on the same images and masks."""

    num_images: int = attrs.field(
        default=256,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "images scored (a seeded draw from the dataset); >= 1"},
    )
    batch_size: int = attrs.field(
        default=64,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "images completed per generator call; >= 1 (memory, not result: masks are "
            "drawn in fixed blocks of 64)"
        },
    )
    seed: int = attrs.field(
        default=0,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)],
        metadata={"doc": "seed of the image draw and the masks; >= 0"},
    )
    masks: MaskOptions | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(MaskOptions)),
        metadata={
            "doc": "masks to score with (a table like [task.masks], e.g. {kind = 'center'}); "
            "None = the task's training masks"
        },
    )
    baselines: tuple[str, ...] = attrs.field(
        default=BASELINES,
        converter=_as_tuple,
        validator=_check_baselines,
        metadata={"doc": "baselines scored alongside: 'mean-fill', 'nearest-patch'; [] = none"},
    )
    patch_size: int = attrs.field(
        default=5,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "side of the nearest-patch baseline's patches, odd; >= 1"},
    )

    def __attrs_post_init__(self) -> None:
        if self.patch_size % 2 == 0:
            raise ValueError(f"'patch_size' must be odd (got {self.patch_size})")

    def _context_parts(self, context: Any) -> tuple[Any, Mapping[str, Any], Any, torch.device]:
        task = getattr(context, "task", None)
        generators = getattr(context, "generators", None)
        if task is None or generators is None or "generator" not in generators:
            raise ValueError(
                "inpaint-quality: the metric context must provide the run's 'task' and "
                "'generators' (gancore's training loop and `gan eval` do)"
            )
        masks = self.masks if self.masks is not None else getattr(task, "masks", None)
        if not isinstance(masks, MaskOptions):
            raise ValueError(
                "inpaint-quality: set the metric's 'masks', or use it with task 'inpaint' "
                f"(the run's task {type(task).__name__} has no masks)"
            )
        return task, generators, masks, context.device

    def _block_masks(
        self,
        masks: MaskOptions,
        blocks: dict[int, torch.Tensor],
        start: int,
        n: int,
        size: tuple[int, int],
    ) -> torch.Tensor:
        """Masks of images ``start:start + n``, cut from their blocks of :data:`MASK_BLOCK` (block
        ``j`` from seed ``_mix(seed, j)``; ``blocks`` keeps the one a later batch may reuse)."""
        first, last = start // MASK_BLOCK, (start + n - 1) // MASK_BLOCK
        for block in range(first, last + 1):
            if block not in blocks:
                gen = torch.Generator().manual_seed(_mix(self.seed, block))
                blocks[block] = draw_masks(masks, MASK_BLOCK, *size, gen)
        drawn = torch.cat([blocks[b] for b in range(first, last + 1)])
        for block in [b for b in blocks if b < last]:
            del blocks[block]
        lo = start - first * MASK_BLOCK
        return drawn[lo : lo + n]

    @torch.no_grad()
    def evaluate(self, context: Any) -> dict[str, Any]:
        _task, generators, masks, device = self._context_parts(context)
        dataset = context.dataset
        gen = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(dataset), generator=gen)
        if self.num_images > len(order):
            order = order.repeat(math.ceil(self.num_images / len(order)))
        order = order[: self.num_images]
        methods = ("model", *self.baselines)
        sums: dict[str, dict[str, float]] = {m: {} for m in methods}
        hole_fraction = 0.0
        size: tuple[int, ...] = ()
        blocks: dict[int, torch.Tensor] = {}
        for start in range(0, self.num_images, self.batch_size):
            rows = order[start : start + self.batch_size].tolist()
            get_batch = getattr(dataset, "get_batch", None)
            if callable(get_batch):
                image = get_batch(rows)["x"].float().cpu()
            else:
                image = torch.stack([dataset[i]["x"] for i in rows]).float().cpu()
            n, _, h, w = image.shape
            size = (h, w)
            mask = self._block_masks(masks, blocks, start, n, (h, w))
            hole_fraction += float(mask.sum()) / (h * w)
            done = complete(generators["generator"], image.to(device), mask.to(device))
            filled = {"model": done.float().cpu()}
            if "mean-fill" in self.baselines:
                filled["mean-fill"] = mean_fill(image, mask)
            if "nearest-patch" in self.baselines:
                filled["nearest-patch"] = nearest_patch_fill(image, mask, self.patch_size)
            for method, completed in filled.items():
                for key, values in quality(completed, image, mask).items():
                    sums[method][key] = sums[method].get(key, 0.0) + float(values.sum())
        result: dict[str, Any] = {}
        for method in methods:
            prefix = "" if method == "model" else method.replace("-", "_") + "_"
            for key, total in sums[method].items():
                result[f"{prefix}{key}"] = total / self.num_images
        result["hole_fraction"] = hole_fraction / self.num_images
        result["num_images"] = self.num_images
        result["protocol"] = {
            "metric": "inpaint-quality",
            "num_images": self.num_images,
            "seed": self.seed,
            "masks": masks.describe(),
            "image_size": list(size),
            "range": "[0, 1]",
            "ssim": f"gaussian sigma {SSIM_SIGMA}, {SSIM_TAPS} taps, K1 {SSIM_K1}, K2 {SSIM_K2}",
            "baselines": list(self.baselines),
            "patch_size": self.patch_size,
        }
        return result
