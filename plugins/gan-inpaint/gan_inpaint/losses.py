"""Reconstruction losses and compositing for inpainting (Yu et al. 2018, DeepFill v1, Sec. 4.1).

- **Spatially discounted L1** in the hole: hole pixels far from the known region are ambiguous,
  so each pixel's error is weighted by ``gamma ** l``, ``l`` the (Euclidean) distance to the
  nearest known pixel. The paper sets ``gamma = 0.99``; the authors' released configuration uses
  0.9 (and weights by distances to the edges of the hole's bounding box).
- **L1 on known pixels**: the raw output must reproduce the known pixels too.
- **Compositing**: the completed image keeps the known pixels bit-exact, ``where(hole, out, x)``.

Masks are ``[N, 1, H, W]`` with 1 in the hole.
"""

from __future__ import annotations

import torch

__all__ = [
    "composite",
    "discount_weights",
    "discounted_hole_l1",
    "distance_to_known",
    "known_l1",
]

_FAR = 1.0e6  # "no known pixel in this row/image": larger than any distance on an image


def _row_distances(known: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]`` distance along each row to the nearest known pixel of the row (``_FAR`` if
    the row has none); two cumulative maxima, one per direction."""
    width = known.shape[-1]
    index = torch.arange(width, device=known.device).expand_as(known)
    left = torch.where(known, index, -(10**9)).cummax(dim=-1).values  # last known at or before j
    right = torch.where(known, -index, -(10**9)).flip(-1).cummax(dim=-1).values.flip(-1).neg()
    dist = torch.minimum(index - left, right - index).float()
    return torch.where(dist > width, torch.full_like(dist, _FAR), dist)


def distance_to_known(mask: torch.Tensor, chunk: int = 1 << 24) -> torch.Tensor:
    """Euclidean distance ``[N, 1, H, W]`` from every pixel to the nearest known pixel (0 on known
    pixels; ``inf`` on an image with no known pixel).

    Exact and separable: first along rows, ``g(k, j)``; then ``d(i, j)^2 = min_k (i - k)^2 +
    g(k, j)^2`` over each column. The column step works on ``[n, H, H, W]`` blocks of at most
    ``chunk`` elements.
    """
    known = mask[:, 0] < 0.5  # [N, H, W]
    n, height, width = known.shape
    g2 = _row_distances(known).square()  # [N, H, W]
    offsets = torch.arange(height, device=mask.device, dtype=torch.float32)
    gap2 = (offsets[:, None] - offsets[None, :]).square()[None, :, :, None]  # [1, H(i), H(k), 1]
    per_image = height * height * width
    step = max(1, chunk // per_image)
    out = torch.cat(
        [(gap2 + g2[s : s + step, None]).amin(dim=2) for s in range(0, n, step)]
    )  # [N, H, W]
    dist = out.sqrt()
    dist = torch.where(dist >= _FAR / 2, torch.full_like(dist, float("inf")), dist)
    return dist[:, None]


@torch.no_grad()
def discount_weights(mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """``gamma ** l`` in the hole, ``l`` the distance to the nearest known pixel; 0 on known
    pixels (and everywhere in an image without known pixels)."""
    dist = distance_to_known(mask.float())
    weights = torch.where(torch.isinf(dist), torch.zeros_like(dist), gamma**dist)
    return weights * (mask > 0.5)


def discounted_hole_l1(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``sum(weights * |output - target|) / (C * number of hole pixels)``: the mean over the hole
    of the discounted absolute error (0 for a batch without a hole)."""
    channels = output.shape[1]
    holes = mask.sum().clamp_min(1.0) * channels
    return (weights * (output - target).abs()).sum() / holes


def known_l1(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the known pixels, ``sum((1 - mask) |output - target|) / (C *
    number of known pixels)``."""
    known = 1.0 - mask
    channels = output.shape[1]
    return (known * (output - target).abs()).sum() / (known.sum().clamp_min(1.0) * channels)


def composite(output: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The completed image: ``output`` in the hole, ``image`` elsewhere, bit for bit (a select, not
    a blend, so no rounding touches known pixels). Gradients reach ``output`` in the hole."""
    return torch.where(mask > 0.5, output, image)
