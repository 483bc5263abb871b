"""Contextual attention: fill a hole's features with patches borrowed from the known region.

Yu et al. 2018, "Generative Image Inpainting with Contextual Attention" (DeepFill v1), Sec. 4.1:

1. **Match.** Every ``3 x 3`` patch of the background (the known region), L2-normalised, is
   compared with every foreground location's ``3 x 3`` patch: the cosine similarity
   ``s[x, y, x', y'] = <f_{x,y} / ||f_{x,y}||, b_{x',y'} / ||b_{x',y'}||>``. Matching runs at a
   lower resolution (``rate``, the paper's 2) to save memory and compute.
2. **Propagate.** Attention propagation ("fuse"): each score is summed with its neighbours along
   the diagonal, first left-right, then top-down, ``s'[x, y, x', y'] = sum_i s[x + i, y, x' + i,
   y']`` for ``i`` in ``-k//2 .. k//2`` (an identity ``k x k`` kernel, ``k = 3``), so coherent
   neighbourhoods win.
3. **Attend.** ``softmax(scale * s')`` over the background patches (``scale = 10``). Patches
   that overlap the hole are excluded: their weight is exactly zero.
4. **Paste.** The raw (un-normalised) background patches at full resolution, weighted by the
   attention, are pasted back (a transposed convolution); overlapping contributions are averaged.

Three formulations compute the same function (``implementation``); they differ only in speed:

- ``"matmul"``: batched matrix products on the ``rate x rate`` cells. The dot product of two
  ``k x k`` patches is the sum of the dot products of their cells, so every patch dot product is a
  diagonal sum (the shifted adds of the propagation, with size ``k``) of the cell Gram matrix
  ``[N, L, C] x [N, C, h w]``: a product ``k * k`` times smaller than with unfolded patches. The
  paste is likewise one product of the background's cells ``[N, C r r, L]`` with the
  diagonal-summed weights ``[N, L, h w]``, ``k * k`` times smaller than unfolding the
  ``3 r x 3 r`` footprints and folding them back. The propagation is shifted in-place adds with a
  hand-written backward (the sums are their own adjoint).
- ``"grouped"``: the background patches are convolution kernels, one group per image: a grouped
  convolution over the batch (``groups = N``) and a grouped transposed convolution.
- ``"loop"``: the same convolutions called once per image (the formulation of the widely used
  PyTorch port of the authors' code), the propagation as convolutions with an identity kernel.

``"auto"`` (the default) picks ``"matmul"``, the fastest at every size measured (16-128 px
feature maps, forward + backward: docs/benchmarks.md). It needs the ``[N, L, h w]`` score map like
the others (``L = h w``: it grows with the fourth power of the side), and no ``[N, C k k, L]``
unfolded copy of the features.

Attention weights below :data:`SMALLEST_WEIGHT` are set to exactly zero, in every formulation: a
weight that small is far below rounding, and the denormal numbers it would otherwise produce made
CPU matrix products and convolutions 5-10x slower.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = ["IMPLEMENTATIONS", "ContextualAttention", "ContextualAttentionOptions", "propagate"]

EPS = 1e-4  # floor of a patch's norm in the cosine similarity
# Attention weights below this are set to exactly 0 (like the excluded patches): the square root
# of the smallest normal number (1.1e-19 in float32), far below rounding next to the weights'
# sum of 1, so products of a kept weight with features or gradients stay normal numbers. Denormal
# numbers slow CPU matrix products and convolutions: with random features a fifth of the float32
# weights were denormal, and forward + backward at 32 px, batch 8, 128 channels took 5.5x (matmul),
# 9x (grouped) and 6x (loop) the CPU time it takes with the cutoff. float16 keeps its smallest
# normal number: its square root (0.008) would be above rounding.
SMALLEST_WEIGHT = {
    dtype: torch.finfo(dtype).tiny ** (1.0 if dtype == torch.float16 else 0.5)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
}
IMPLEMENTATIONS = ("auto", "matmul", "grouped", "loop")


def _diagonal_sums(scores: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
    """The propagation sums of :func:`propagate`, without autograd: shifted in-place adds of
    strided views of a copy, one pass over (background column, foreground column), one over
    (background row, foreground row)."""
    n = scores.shape[0]
    s = scores.reshape(n, height, width, height, width)  # n bh bw fh fw
    for dims in ((2, 4), (1, 3)):  # left-right: (bw, fw); top-down: (bh, fh)
        out = s.clone()
        for i in range(1, size // 2 + 1):
            ahead, behind = [slice(None)] * 5, [slice(None)] * 5
            for d in dims:
                ahead[d], behind[d] = slice(None, -i), slice(i, None)
            out[tuple(ahead)] += s[tuple(behind)]  # s'[j] += s[j + i] (both indices)
            out[tuple(behind)] += s[tuple(ahead)]  # s'[j] += s[j - i]
        s = out
    return s.reshape(scores.shape)


class _Propagate(torch.autograd.Function):
    """:func:`_diagonal_sums` with its gradient. The sums run over offsets ``-r .. r``, a
    symmetric set, so the operator is its own adjoint: the backward pass is the same sums of the
    incoming gradient, and nothing is saved for it."""

    @staticmethod
    def forward(scores: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
        return _diagonal_sums(scores, size, height, width)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.shape = inputs[1:]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return _Propagate.apply(grad, *ctx.shape), None, None, None


def propagate(scores: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
    """Attention propagation: ``scores`` ``[N, L, h, w]`` (or ``[N, L, h * w]``) with
    ``L = height * width`` background patches (row-major) and ``h, w = height, width`` foreground
    locations.

    Left-right, then top-down, each score becomes the sum of ``size`` scores along the diagonal:
    ``s'[b=(bh, bw), fh, fw] = sum_i s[(bh, bw + i), fh, fw + i]`` (zero outside the map), then the
    same over ``(bh, fh)``. Returns a tensor of the same shape.
    """
    if size <= 1:
        return scores
    return _Propagate.apply(scores, size, height, width)


def _propagate_identity_conv(
    scores: torch.Tensor, size: int, height: int, width: int
) -> torch.Tensor:
    """:func:`propagate` of one image ``[1, L, h, w]`` as two convolutions with an identity
    ``size x size`` kernel over the score map seen as one single-channel image (the formulation of
    the PyTorch port of the authors' code): rows ``(bh, bw)``, columns ``(fh, fw)`` for the
    left-right pass, ``(bw, bh)`` and ``(fw, fh)`` for the top-down one. The columns ``bw`` and
    ``fw`` (then ``bh``, ``fh``) are padded with ``size // 2`` zeros so a shift never wraps into
    the next row (the port's does)."""
    if size <= 1:
        return scores
    r = size // 2
    eye = torch.eye(size, dtype=scores.dtype, device=scores.device)[None, None]

    def one_pass(s: torch.Tensor) -> torch.Tensor:  # [a, b, a', b']: sum_i s[a, b + i, a', b' + i]
        a, b = s.shape[:2]
        image = F.pad(s, (r, r, 0, 0, r, r)).reshape(1, 1, a * (b + 2 * r), a * (b + 2 * r))
        image = F.conv2d(image, eye, padding=r)
        return image.reshape(a, b + 2 * r, a, b + 2 * r)[:, r : b + r, :, r : b + r]

    s = one_pass(rearrange(scores, "1 (bh bw) fh fw -> bh bw fh fw", bh=height, bw=width))
    s = one_pass(rearrange(s, "bh bw fh fw -> bw bh fw fh"))
    return rearrange(s, "bw bh fw fh -> 1 (bh bw) fh fw")


def _softmax(scores: torch.Tensor, valid: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(scale * scores)`` over dim 1 (the patches) with the invalid ones, and those
    below :data:`SMALLEST_WEIGHT`, at exactly 0.

    ``valid`` broadcasts against ``scores``. The patches to drop are found first (without
    gradient), then the softmax runs again without them, so their gradient is exactly 0 as well
    (zeroing after one softmax would leave denormal gradients). Multiplying by ``keep`` keeps a
    location with no valid patch at all at 0 (where the softmax would be uniform)."""
    lowest = torch.finfo(scores.dtype).min
    logits = (scores * scale).masked_fill(~valid, lowest)
    with torch.no_grad():
        weights = torch.softmax(logits, dim=1)  # float32 under autocast: its cutoff
        keep = valid & (weights >= SMALLEST_WEIGHT[weights.dtype])
    return torch.softmax(logits.masked_fill(~keep, lowest), dim=1) * keep


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
    implementation: str = attrs.field(
        default="auto",
        validator=attrs.validators.in_(IMPLEMENTATIONS),
        metadata={
            "doc": "how it is computed, the same function each time: 'matmul' (batched matrix "
            "products), 'grouped' (one grouped convolution over the batch), 'loop' (convolutions "
            "image by image) or 'auto' (the fastest measured: 'matmul')"
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

    def __init__(
        self,
        rate: int = 2,
        softmax_scale: float = 10.0,
        propagation: int = 3,
        implementation: str = "auto",
    ) -> None:
        super().__init__()
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"contextual attention: 'implementation' must be one of {list(IMPLEMENTATIONS)} "
                f"(got {implementation!r})"
            )
        self.rate = rate  # matching resolution divisor
        self.softmax_scale = softmax_scale  # multiplies cosine scores inside the softmax
        self.propagation = propagation  # attention propagation kernel size (1 = off)
        self.implementation = implementation  # formulation; "auto" resolves in `chosen`

    @classmethod
    def from_options(cls, options: ContextualAttentionOptions) -> ContextualAttention:
        return cls(options.rate, options.softmax_scale, options.propagation, options.implementation)

    def chosen(self, background: torch.Tensor) -> str:
        """The formulation used for ``background``: ``implementation`` unless it is ``"auto"``,
        which is ``"matmul"`` whatever the size (the fastest forward + backward at 16, 32, 64 and
        128 px on CPU, ``benchmarks/inpaint.py --attention-only``); ``background`` is where a
        size- or device-dependent choice would look."""
        return "matmul" if self.implementation == "auto" else self.implementation

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

    def _pooled(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Foreground and background average-pooled to the matching resolution, and the valid
        background patches ``[N, L]``: no hole cell inside the k x k window (outside the map
        counts as known; a cell with any hole pixel is hole)."""
        self._check(foreground, background, mask)
        k, r = self.patch_size, self.rate
        f = F.avg_pool2d(foreground, r) if r > 1 else foreground
        b = F.avg_pool2d(background, r) if r > 1 else background
        hole = F.max_pool2d(mask, r) if r > 1 else mask
        valid = F.unfold(hole, k, padding=k // 2).amax(dim=1) < 0.5  # [N, L]
        return f, b, valid

    def _unit_kernels(self, b: torch.Tensor) -> torch.Tensor:
        """Background patches ``[N, C*k*k, L]``, each divided by its L2 norm (floored at EPS)."""
        k = self.patch_size
        patches = F.unfold(b, k, padding=k // 2)
        # clamp before the square root: no infinite gradient for an all-zero patch
        norms = patches.square().sum(1, keepdim=True).clamp_min(EPS**2).sqrt()
        return patches / norms

    def _patch_norms(self, f: torch.Tensor) -> torch.Tensor:
        """L2 norm of the k x k patch around each location of ``f`` ``[N, 1, h, w]`` (zero
        outside the map), floored at EPS."""
        k = self.patch_size
        sums = F.avg_pool2d(f.square().sum(1, keepdim=True), k, 1, k // 2) * k * k
        return sums.clamp_min(EPS**2).sqrt()

    def _raw_patches(self, background: torch.Tensor) -> torch.Tensor:
        """The full-resolution footprint (``k * rate`` pixels) of every matching patch:
        ``[N, C * (k r)^2, L]``."""
        k, r = self.patch_size, self.rate
        return F.unfold(background, k * r, stride=r, padding=r * (k // 2))

    def _cover(self, like: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """How many footprints cover each full-resolution pixel (up to k*k, fewer at borders)."""
        k, r = self.patch_size, self.rate
        ones = like.new_ones(1, k * k * r * r, (height // r) * (width // r))
        return F.fold(ones, (height, width), k * r, stride=r, padding=r * (k // 2))

    # ---- matmul: batched matrix products on the cells ----------------------------------------

    def _weights_matmul(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        f, b, valid = self._pooled(foreground, background, mask)
        k = self.patch_size
        h, w = b.shape[-2:]
        # The dot product of two k x k patches is the sum of the dot products of their cells, so
        # all patch dot products are diagonal sums (propagate with size k) of the cell Gram
        # matrix: one [L, C] x [C, h w] product per image instead of [L, C k k] x [C k k, h w].
        cells = torch.bmm(b.flatten(2).transpose(1, 2), f.flatten(2))  # [N, L, h w]
        dots = propagate(cells, k, h, w)
        norms = self._patch_norms(b).flatten(2).transpose(1, 2) * self._patch_norms(f).flatten(2)
        scores = propagate(dots / norms, self.propagation, h, w)  # cosines [N, L, h w], fused
        return _softmax(scores, valid[:, :, None], self.softmax_scale)

    def _forward_matmul(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        weights = self._weights_matmul(foreground, background, mask)  # [N, L, h w]
        k, r = self.patch_size, self.rate
        height, width = background.shape[-2:]
        h, w = height // r, width // r
        # Pasting footprint l (k x k cells of r x r pixels) at location p puts its cell l + d at
        # p + d: output cell q gets sum_l cell(l) * sum_d weights[l - d, q - d], the same diagonal
        # sums of the weights. One [C r r, L] x [L, h w] product per image.
        cells = F.pixel_unshuffle(background, r).flatten(2)  # [N, C r r, L]
        pasted = torch.bmm(cells, propagate(weights, k, h, w))  # [N, C r r, h w]
        pasted = F.pixel_shuffle(pasted.unflatten(2, (h, w)), r)
        return pasted / self._cover(background, height, width)

    # ---- grouped: one grouped convolution over the batch ------------------------------------

    def _weights_grouped(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        f, b, valid = self._pooled(foreground, background, mask)
        n, c, h, w = b.shape
        k = self.patch_size
        kernels = rearrange(self._unit_kernels(b), "n (c kh kw) l -> (n l) c kh kw", c=c, kh=k)
        dots = F.conv2d(rearrange(f, "n c h w -> 1 (n c) h w"), kernels, padding=k // 2, groups=n)
        dots = rearrange(dots, "1 (n l) h w -> n l h w", n=n)
        scores = propagate(dots / self._patch_norms(f), self.propagation, h, w)
        return _softmax(scores, valid[:, :, None, None], self.softmax_scale)  # [N, L, h, w]

    def _forward_grouped(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        weights = self._weights_grouped(foreground, background, mask)
        n, c, height, width = background.shape
        k, r = self.patch_size, self.rate
        raw = rearrange(
            self._raw_patches(background), "n (c kh kw) l -> (n l) c kh kw", c=c, kh=k * r
        )
        pasted = F.conv_transpose2d(
            rearrange(weights, "n l h w -> 1 (n l) h w"),
            raw,
            stride=r,
            padding=r * (k // 2),
            groups=n,
        )
        pasted = rearrange(pasted, "1 (n c) h w -> n c h w", n=n)
        return pasted / self._cover(background, height, width)

    # ---- loop: convolutions image by image -------------------------------------------------

    def _weights_loop(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        f, b, valid = self._pooled(foreground, background, mask)
        n, c, h, w = b.shape
        k = self.patch_size
        kernels = rearrange(self._unit_kernels(b), "n (c kh kw) l -> n l c kh kw", c=c, kh=k)
        f_norms = self._patch_norms(f)
        weights = []
        for i in range(n):
            dots = F.conv2d(f[i : i + 1], kernels[i], padding=k // 2)  # [1, L, h, w]
            scores = _propagate_identity_conv(dots / f_norms[i : i + 1], self.propagation, h, w)
            weights.append(_softmax(scores, valid[i, None, :, None, None], self.softmax_scale))
        return torch.cat(weights)

    def _forward_loop(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        weights = self._weights_loop(foreground, background, mask)
        n, c, height, width = background.shape
        k, r = self.patch_size, self.rate
        raw = rearrange(
            self._raw_patches(background), "n (c kh kw) l -> n l c kh kw", c=c, kh=k * r
        )
        pasted = torch.cat(
            [
                F.conv_transpose2d(weights[i : i + 1], raw[i], stride=r, padding=r * (k // 2))
                for i in range(n)
            ]
        )
        return pasted / self._cover(background, height, width)

    # ---- public ------------------------------------------------------------------------------

    def attention(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Attention weights ``[N, L, h, w]``: for each foreground location ``(h, w)`` at the
        matching resolution, a distribution over the ``L = h * w`` background patches (row-major);
        exactly zero on patches that touch the hole, all zero where no patch is known."""
        weights_of: Callable[..., torch.Tensor] = getattr(
            self, f"_weights_{self.chosen(background)}"
        )
        weights = weights_of(foreground, background, mask)
        h, w = background.shape[-2] // self.rate, background.shape[-1] // self.rate
        return weights.reshape(weights.shape[0], h * w, h, w)

    def forward(
        self, foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        forward: Callable[..., torch.Tensor] = getattr(self, f"_forward_{self.chosen(background)}")
        return forward(foreground, background, mask)
