"""PGGAN's layers (Karras et al. 2018, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation", Sec. 3 and 4): pixelwise feature normalization, minibatch standard
deviation and the equalized learning rate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import nn

__all__ = [
    "PIXEL_NORM_EPSILON",
    "EqualizedConv2d",
    "EqualizedLinear",
    "MinibatchStddev",
    "PixelNorm",
    "he_constant",
    "minibatch_stddev",
    "pixel_norm",
]

PIXEL_NORM_EPSILON = 1e-8  # the paper's epsilon (Sec. 4.2)


def pixel_norm(x: torch.Tensor, epsilon: float = PIXEL_NORM_EPSILON) -> torch.Tensor:
    """Pixelwise feature vector normalization (Sec. 4.2, Eq. 2):
    ``b_xy = a_xy / sqrt(mean_j (a_xy^j)^2 + epsilon)`` over the ``C`` channels of each pixel.

    ``x``: ``[N, C, H, W]`` feature maps or ``[N, C]`` vectors (the latent).
    """
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + epsilon)


class PixelNorm(nn.Module):
    """:func:`pixel_norm` as a layer."""

    def __init__(self, epsilon: float = PIXEL_NORM_EPSILON) -> None:
        super().__init__()
        self.epsilon = epsilon  # added to the mean square before the square root

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x, self.epsilon)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, epsilon: float = 1e-8) -> torch.Tensor:
    """Minibatch standard deviation (Sec. 3), with groups as in the paper's released code.

    The batch ``[N, C, H, W]`` is split into groups of ``G = min(group_size, N)`` samples (sample
    ``i`` is in group ``i mod (N / G)``); in each group the standard deviation of every feature
    over the ``G`` samples, ``sqrt(mean_g (x - mean_g x)^2 + epsilon)``, is averaged over
    features and pixels into one number, appended as a constant extra channel to the group's
    samples: ``[N, C + 1, H, W]``. Where ``N`` is not divisible by ``G``, ``G`` is the largest
    group size below it that divides ``N`` (the authors' code requires divisibility instead).
    """
    n, _, h, w = x.shape
    group = max(1, min(group_size, n))
    while n % group:
        group -= 1
    grouped = rearrange(x, "(g m) c h w -> g m c h w", g=group).float()
    deviation = grouped - grouped.mean(dim=0, keepdim=True)
    std = torch.sqrt(deviation.square().mean(dim=0) + epsilon)  # [M, C, H, W]
    statistic = reduce(std, "m c h w -> m", "mean")
    channel = repeat(statistic, "m -> (g m) 1 h w", g=group, h=h, w=w).to(x.dtype)
    return torch.cat([x, channel], dim=1)


class MinibatchStddev(nn.Module):
    """:func:`minibatch_stddev` as a layer: ``[N, C, H, W] -> [N, C + 1, H, W]``."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size  # samples per group (the paper's 4); min(group, N) is used

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, self.group_size)


def he_constant(fan_in: int, gain: float = math.sqrt(2.0)) -> float:
    """He's initializer constant ``gain / sqrt(fan_in)`` (He et al. 2015); gain sqrt(2) for
    layers followed by a (leaky) ReLU, 1 for the linear toRGB layers."""
    return gain / math.sqrt(fan_in)


class EqualizedConv2d(nn.Module):
    """A conv whose weights are stored as ``N(0, 1)`` and scaled at run time by the He constant
    ``gain / sqrt(fan_in)``, ``fan_in = in_channels * k * k`` (equalized learning rate, Sec. 4.1):
    Adam's step is then the same relative size for every layer. Biases start at zero."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        gain: float = math.sqrt(2.0),
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = he_constant(in_channels * kernel_size * kernel_size, gain)
        self.padding = padding  # zero padding on each side, in pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A dense layer with the equalized learning rate of :class:`EqualizedConv2d`."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2.0)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = he_constant(in_features, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)
