"""Contextual attention: fill a hole's features with patches borrowed from the known region.

Yu et al. 2018, "Generative Image Inpainting with Contextual Attention" (DeepFill v1), Sec. 4.1:

1. **Match.** Every ``3 x 3`` patch of the background (the known region), L2-normalised, is a
   convolution kernel; convolving the foreground with them gives the cosine similarity
   ``s[x, y, x', y'] = <f_{x,y} / ||f_{x,y}||, b_{x',y'} / ||b_{x',y'}||>`` of every foreground
   location with every background patch. Matching runs at a lower resolution (``rate``, the paper's
   2) to save memory and compute.
2. **Propagate.** Attention propagation ("fuse"): each score is summed with its neighbours along
   the diagonal, first left-right, then top-down, ``s'[x, y, x', y'] = sum_i s[x + i, y, x' + i,
   y']`` for ``i`` in ``-k//2 .. k//2`` (an identity ``k x k`` kernel, ``k = 3``), so coherent
   neighbourhoods win.
3. **Attend.** ``softmax(scale * s')`` over the background patches (``scale = 10``). Patches
   that overlap the hole are excluded: their weight is exactly zero.
4. **Paste.** A transposed convolution with the raw (un-normalised) background patches at full
   resolution pastes the weighted patches back; overlapping contributions are averaged.

All of it is batched: the per-image kernels become one grouped convolution over the batch
(``groups = N``), so there is no Python loop over images.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = ["ContextualAttention", "ContextualAttentionOptions", "propagate"]

EPS = 1e-4  # floor of a patch's norm in the cosine similarity


def propagate(scores: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
    """Attention propagation: ``scores`` ``[N, L, h, w]`` with ``L = height * width`` background
    patches (row-major) and ``h, w = height, width`` foreground locations.

    Left-right, then top-down, each score becomes the sum of ``size`` scores along the diagonal:
    ``s'[b=(bh, bw), fh, fw] = sum_i s[(bh, bw + i), fh, fw + i]`` (zero outside the map), then the
    same over ``(bh, fh)``. Returns a tensor of the same shape.
    """
    if size <= 1:
        return scores
    r = size // 2
    s = rearrange(scores, "n (bh bw) fh fw -> n bh bw fh fw", bh=height, bw=width)
    # left-right: shift the background column and the foreground column together
    padded = F.pad(s, (r, r, 0, 0, r, r))  # pads fw (last), fh (none), bw
    s = torch.stack(
        [padded[:, :, r + i : r + i + width, :, r + i : r + i + width] for i in range(-r, r + 1)]
    ).sum(0)
    # top-down: shift the background row and the foreground row together
    padded = F.pad(s, (0, 0, r, r, 0, 0, r, r))  # pads fh and bh
    s = torch.stack(
        [padded[:, r + i : r + i + height, :, r + i : r + i + height, :] for i in range(-r, r + 1)]
    ).sum(0)
    return rearrange(s, "n bh bw fh fw -> n (bh bw) fh fw")


@attrs.frozen(kw_only=True)
class ContextualAttentionOptions:
    """Settings of :class:`ContextualAttention` (Yu et al. 2018, Sec. 4.1)."""

    rate: int = attrs.field(
        default=2,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "matching at 1/rate of the feature resolution (the paper's 2); pasting is at "
            "full resolution with patches of 3*rate pixels; >= 1"
        },
    )
    softmax_scale: float = attrs.field(
        default=10.0,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={"doc": "scale of the cosine similarities inside the softmax; > 0 (paper: 10)"},
    )
    propagation: int = attrs.field(
        default=3,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "attention propagation kernel size k (an identity k x k 'fuse'); odd, "
            "1 = no propagation (paper: 3)"
        },
    )

    def __attrs_post_init__(self) -> None:
        if self.propagation % 2 == 0:
            raise ValueError(f"'propagation' must be odd (got {self.propagation})")


class ContextualAttention(nn.Module):
    """Contextual attention of DeepFill v1 (Yu et al. 2018): ``(foreground, background, mask) ->
    features`` where hole locations are rebuilt from the known background's patches.

    ``foreground`` and ``background`` are ``[N, C, H, W]`` feature maps (in DeepFill both are the
    same tensor); ``mask`` is ``[N, 1, H, W]``, 1 in the hole. ``H`` and ``W`` must be multiples
    of ``rate``. The module has no parameters.
    """

    patch_size = 3  # the paper's 3 x 3 background patches

    def __init__(self, rate: int = 2, softmax_scale: float = 10.0, propagation: int = 3) -> None:
        super().__init__()
        self.rate = rate  # matching resolution divisor
        self.softmax_scale = softmax_scale  # multiplies cosine scores inside the softmax
        self.propagation = propagation  # attention propagation kernel size (1 = off)

    def _check(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> None:
        n, _, h, w = background.shape
        if foreground.shape != background.shape or background.ndim != 4:
            raise ValueError(
                "contextual attention: foreground and background must be [N, C, H, W] of the same "
                f"shape (got {list(foreground.shape)} and {list(background.shape)})"
            )
        if mask.shape != (n, 1, h, w):
            raise ValueError(
                f"contextual attention: expected a mask [{n}, 1, {h}, {w}] (got {list(mask.shape)})"
            )
        if h % self.rate or w % self.rate:
            raise ValueError(
                f"contextual attention: feature size {h}x{w} must be a multiple of rate {self.rate}"
            )

    def attention(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Attention weights ``[N, L, h, w]``: for each foreground location ``(h, w)`` at the
        matching resolution, a distribution over the ``L = h * w`` background patches (row-major);
        exactly zero on patches that touch the hole, all zero where no patch is known."""
        self._check(foreground, background, mask)
        n, c, _, _ = background.shape
        k, r = self.patch_size, self.rate
        f = F.avg_pool2d(foreground, r) if r > 1 else foreground
        b = F.avg_pool2d(background, r) if r > 1 else background
        hole = F.max_pool2d(mask, r) if r > 1 else mask  # a cell with any hole pixel is hole
        h, w = b.shape[-2:]
        # Background patches as kernels, one group of L kernels per image: [N*L, C, k, k].
        patches = rearrange(
            F.unfold(b, k, padding=k // 2), "n (c kh kw) l -> n l c kh kw", c=c, kh=k, kw=k
        )
        norms = patches.flatten(2).norm(dim=2).clamp_min(EPS)  # [N, L]
        kernels = rearrange(patches / norms[..., None, None, None], "n l c kh kw -> (n l) c kh kw")
        # Cosine similarity: a grouped convolution of each image with its own kernels.
        dots = F.conv2d(rearrange(f, "n c h w -> 1 (n c) h w"), kernels, padding=k // 2, groups=n)
        dots = rearrange(dots, "1 (n l) h w -> n l h w", n=n)
        f_norm = (F.avg_pool2d(f.square().sum(1, keepdim=True), k, 1, k // 2) * k * k).sqrt()
        scores = dots / f_norm.clamp_min(EPS)  # [N, L, h, w]
        scores = propagate(scores, self.propagation, h, w)
        # Valid background patches: no hole cell inside the k x k window (outside the map = known).
        valid = F.unfold(hole, k, padding=k // 2).amax(dim=1) < 0.5  # [N, L]
        valid = valid[:, :, None, None]
        logits = (scores * self.softmax_scale).masked_fill(~valid, torch.finfo(scores.dtype).min)
        # Multiplying by `valid` keeps excluded patches at exactly 0, also for a map with no valid
        # patch at all (where the softmax would be uniform).
        return torch.softmax(logits, dim=1) * valid

    def forward(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        weights = self.attention(foreground, background, mask)  # [N, L, h, w]
        n, c, _height, _width = background.shape
        k, r = self.patch_size, self.rate
        # Raw patches at full resolution: the footprint (k*r pixels) of each k x k matching patch.
        raw = F.unfold(background, k * r, stride=r, padding=r * (k // 2))  # [N, C*(kr)^2, L]
        raw = rearrange(raw, "n (c kh kw) l -> (n l) c kh kw", c=c, kh=k * r, kw=k * r)
        h, w = weights.shape[-2:]
        pasted = F.conv_transpose2d(
            rearrange(weights, "n l h w -> 1 (n l) h w"),
            raw,
            stride=r,
            padding=r * (k // 2),
            groups=n,
        )
        pasted = rearrange(pasted, "1 (n c) h w -> n c h w", n=n)
        # Each pixel is covered by up to k*k footprints (fewer at the border): average them.
        ones = weights.new_ones(1, 1, h, w)
        cover = F.conv_transpose2d(
            ones, weights.new_ones(1, 1, k * r, k * r), stride=r, padding=r * (k // 2)
        )
        return pasted / cover
