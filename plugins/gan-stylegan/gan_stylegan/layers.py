"""Building blocks of the style-based networks, in plain PyTorch (no custom CUDA kernels).

Equalized learning rate (Karras et al. 2018, "Progressive Growing of GANs", Sec. 4.1) is used by
every layer here: a weight is stored as ``N(0, 1) / lr_multiplier`` and scaled at run time by
``lr_multiplier / sqrt(fan_in)``, so every weight learns at the same speed whatever its fan-in,
and ``lr_multiplier`` (0.01 in the mapping network) slows a whole layer down.

Resampling uses the separable ``[1, 3, 3, 1]`` filter of StyleGAN ("bilinear" up/down-sampling,
Karras et al. 2019, Sec. 2): up-sampling is ``torch.nn.functional.interpolate(mode="bilinear")``,
whose 2x weights are exactly that filter; down-sampling is the filter as a depthwise convolution.
Both are differentiable to any order, which the R1 and path-length penalties need.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from torch import nn

__all__ = [
    "LEAKY_SLOPE",
    "Activation",
    "EqualizedConv2d",
    "EqualizedLinear",
    "MinibatchStddev",
    "ModulatedConv2d",
    "NoiseMode",
    "activate",
    "adain",
    "blur",
    "downsample2d",
    "modulated_conv2d",
    "pixel_norm",
    "upsample2d",
]

LEAKY_SLOPE = 0.2  # negative slope of every leaky ReLU (Karras et al. 2019, Appendix C)
ACTIVATION_GAIN = math.sqrt(2.0)  # He gain of a leaky ReLU, applied after it (StyleGAN2)
DEMODULATION_EPS = 1e-8  # epsilon of w'' = w' / sqrt(sum w'^2 + eps) (Karras et al. 2020, Eq. 3)
NORM_EPS = 1e-8  # epsilon of pixel norm and instance norm (Karras et al. 2018, 2019)

Activation = Literal["linear", "lrelu"]
NoiseMode = Literal["random", "const", "none"]


def activate(x: torch.Tensor, activation: Activation) -> torch.Tensor:
    """``sqrt(2) * leaky_relu(x, 0.2)`` for ``"lrelu"`` (keeps the signal's magnitude), else ``x``."""
    if activation == "lrelu":
        return F.leaky_relu(x, LEAKY_SLOPE) * ACTIVATION_GAIN
    return x


def pixel_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """``x / sqrt(mean_i x_i^2 + eps)`` over dimension 1 (Karras et al. 2018, Eq. 2)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def adain(
    x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = NORM_EPS
) -> torch.Tensor:
    """Adaptive instance normalization (Karras et al. 2019, Eq. 1):
    ``y_s * (x - mu(x)) / sigma(x) + y_b`` per sample and feature map.

    ``x`` is ``[N, C, H, W]``; ``scale`` (``y_s``) and ``bias`` (``y_b``) are ``[N, C]``. ``mu`` and
    ``sigma`` are the mean and (biased) standard deviation over ``H, W``, ``eps`` inside the root.
    """
    centred = x - x.mean(dim=(2, 3), keepdim=True)
    normalized = centred * (centred.square().mean(dim=(2, 3), keepdim=True) + eps).rsqrt()
    return normalized * scale[:, :, None, None] + bias[:, :, None, None]


# -------------------------------------------------------------------------------------------------
# Resampling with the [1, 3, 3, 1] filter
# -------------------------------------------------------------------------------------------------


def _filter_2d(channels: int, like: torch.Tensor) -> torch.Tensor:
    """The normalised 4x4 filter ``outer([1,3,3,1], [1,3,3,1]) / 64`` per channel, ``[C, 1, 4, 4]``."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], device=like.device, dtype=like.dtype)
    kernel = torch.outer(taps, taps)
    kernel = kernel / kernel.sum()
    return repeat(kernel, "h w -> c 1 h w", c=channels)


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, C, 2H, 2W]`` by bilinear interpolation (half-pixel centres)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def downsample2d(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, C, H/2, W/2]``: the ``[1, 3, 3, 1]`` filter, zero padding 1,
    stride 2."""
    return F.conv2d(x, _filter_2d(x.shape[1], x), stride=2, padding=1, groups=x.shape[1])


def blur(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, C, H + 1, W + 1]``: zero padding 2, then the ``[1, 3, 3, 1]``
    filter; a following 3x3 convolution with stride 2 and no padding gives ``H/2`` (the filtered
    strided convolution of StyleGAN2's critic)."""
    return F.conv2d(F.pad(x, [2, 2, 2, 2]), _filter_2d(x.shape[1], x), groups=x.shape[1])


# -------------------------------------------------------------------------------------------------
# Equalized-learning-rate layers
# -------------------------------------------------------------------------------------------------


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate: ``act(x @ (W * g).T + b * lr_mul)``,
    ``g = lr_multiplier / sqrt(in_features)``, ``W`` stored as ``N(0, 1) / lr_multiplier``.

    ``bias_init`` is the effective initial bias (the stored bias is ``bias_init / lr_multiplier``);
    a float, or a tensor ``[out_features]`` (the affine maps that produce styles start at 1).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        bias_init: float | torch.Tensor = 0.0,
        lr_multiplier: float = 1.0,
        activation: Activation = "linear",
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation: Activation = activation
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias: nn.Parameter | None = None
        if bias:
            initial = torch.zeros(out_features) + torch.as_tensor(bias_init, dtype=torch.float32)
            self.bias = nn.Parameter(initial / lr_multiplier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_multiplier
        return activate(F.linear(x, self.weight * self.weight_gain, bias), self.activation)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"lr_multiplier={self.lr_multiplier}, activation={self.activation}"
        )


class EqualizedConv2d(nn.Module):
    """Convolution with equalized learning rate: weight ``[O, I, k, k] ~ N(0, 1)`` scaled by
    ``1 / sqrt(I * k * k)`` at run time, then bias and activation.

    ``down = True`` makes it a down-sampling convolution for the critic: the input is blurred with
    the ``[1, 3, 3, 1]`` filter (:func:`blur`) and convolved with stride 2 (``k = 3``), or, for a 1x1
    convolution, filtered-down-sampled (:func:`downsample2d`) first.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        activation: Activation = "linear",
        down: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.down = kernel_size, down
        self.activation: Activation = activation
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight * self.weight_gain
        if self.down and self.kernel_size > 1:
            x = F.conv2d(blur(x), weight, self.bias, stride=2)
        else:
            if self.down:
                x = downsample2d(x)
            x = F.conv2d(x, weight, self.bias, padding=self.kernel_size // 2)
        return activate(x, self.activation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"down={self.down}, activation={self.activation}"
        )


# -------------------------------------------------------------------------------------------------
# Modulated convolution (StyleGAN2)
# -------------------------------------------------------------------------------------------------


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    grouped: bool = True,
) -> torch.Tensor:
    """Modulated convolution (Karras et al. 2020, Sec. 2.2, Eqs. 1-3), "same" padding.

    ``x`` is ``[N, I, H, W]``, ``weight`` ``[O, I, k, k]`` (already scaled), ``styles`` ``[N, I]``.
    Each sample ``n`` is convolved with its own weights ``w'_{oik} = s_{n,i} * w_{oik}``, divided by
    ``sqrt(sum_{i,k} w'^2 + 1e-8)`` per output channel when ``demodulate``.

    ``grouped = True`` computes it as the paper describes: the per-sample weights stacked into one
    grouped convolution with one group per sample. ``grouped = False`` computes the same thing by
    scaling the activations instead: ``conv(x * s, w) * d`` with one shared weight (the form the
    reference code uses for training; usually faster for large batches on CPUs).
    """
    batch, in_channels = x.shape[0], x.shape[1]
    padding = weight.shape[-1] // 2
    if styles.shape != (batch, in_channels):
        raise ValueError(
            f"modulated conv: expected styles of shape [{batch}, {in_channels}] "
            f"(got {list(styles.shape)})"
        )
    if not grouped:
        out = F.conv2d(
            x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=padding
        )
        if demodulate:
            out = out * _demodulation(weight, styles)[:, :, None, None].to(out.dtype)
        return out
    weights = modulated_weights(weight, styles, demodulate=demodulate)
    out = F.conv2d(
        rearrange(x, "n i h w -> 1 (n i) h w"),
        rearrange(weights, "n o i kh kw -> (n o) i kh kw").to(x.dtype),
        padding=padding,
        groups=batch,
    )
    return rearrange(out, "1 (n o) h w -> n o h w", n=batch)


def _demodulation(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """``1 / sqrt(sum_{i,k} (s_i w_{oik})^2 + eps)`` per sample and output channel, ``[N, O]``,
    without building the per-sample weights: ``sum_i s_i^2 sum_k w_{oik}^2``."""
    per_input = reduce(weight.square(), "o i kh kw -> o i", "sum")
    return (styles.square() @ per_input.T + DEMODULATION_EPS).rsqrt()


def modulated_weights(
    weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool = True
) -> torch.Tensor:
    """Per-sample weights ``[N, O, I, k, k]``: ``w' = s_i * w`` (modulation, Eq. 1), then
    ``w'' = w' / sqrt(sum_{i,k} w'^2 + 1e-8)`` (demodulation, Eq. 3)."""
    weights = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        norm = reduce(weights.square(), "n o i kh kw -> n o 1 1 1", "sum")
        weights = weights * (norm + DEMODULATION_EPS).rsqrt()
    return weights


GroupedConv = bool | Literal["auto"]


def use_grouped_conv(grouped: GroupedConv, x: torch.Tensor, training: bool) -> bool:
    """Resolve ``grouped_conv``: a bool is kept; ``"auto"`` picks the grouped form only on a CUDA
    device outside training (the reference code's choice: it fuses the modulated convolution
    into one grouped convolution for inference and scales activations in training) and the
    activation form everywhere else (measured faster on CPUs for every width and batch size:
    ``benchmarks/stylegan_modconv.py``)."""
    if isinstance(grouped, bool):
        return grouped
    return x.device.type == "cuda" and not training


class ModulatedConv2d(nn.Module):
    """A StyleGAN2 convolution: ``styles = A(w)`` (an affine map, bias 1), modulated (and
    demodulated) convolution, optional 2x bilinear up-sampling before it.

    The affine map is an :class:`EqualizedLinear` from ``style_dim`` to ``in_channels``; for
    ``toRGB`` layers (no demodulation) the styles are scaled by ``1 / sqrt(in_channels)``, the
    equalized-lr gain of a 1x1 convolution, as in the reference.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        *,
        demodulate: bool = True,
        up: bool = False,
        grouped: GroupedConv = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.up = kernel_size, up
        self.demodulate, self.grouped = demodulate, grouped
        self.affine = EqualizedLinear(style_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def styles(self, w: torch.Tensor) -> torch.Tensor:
        """``s = A(w)`` ``[N, in_channels]`` (times the 1x1 gain without demodulation)."""
        styles = self.affine(w)
        return styles if self.demodulate else styles * self.weight_gain

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = upsample2d(x)
        # With demodulation the weight's scale cancels; without it (toRGB) the gain is in styles.
        weight = self.weight * self.weight_gain if self.demodulate else self.weight
        grouped = use_grouped_conv(self.grouped, x, self.training)
        return modulated_conv2d(
            x, weight, self.styles(w), demodulate=self.demodulate, grouped=grouped
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"up={self.up}, demodulate={self.demodulate}, grouped={self.grouped}"
        )


# -------------------------------------------------------------------------------------------------
# Minibatch standard deviation (critic)
# -------------------------------------------------------------------------------------------------


def _group_size(batch: int, group_size: int) -> int:
    """The largest group size ``<= min(group_size, batch)`` that divides ``batch``."""
    size = min(group_size, batch)
    while batch % size:
        size -= 1
    return size


class MinibatchStddev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, Sec. 3; StyleGAN2 variant).

    The batch is split into groups of ``group_size`` samples (sample ``n`` joins group
    ``n mod (N / G)``); for each group and each of ``num_channels`` slices of the feature maps, the
    standard deviation over the group of every feature, averaged over features and pixels, is
    appended as a constant feature map to each sample of the group: ``[N, C, H, W]`` ->
    ``[N, C + num_channels, H, W]``. If ``N`` is not a multiple of the group size, the largest
    smaller group size that divides ``N`` is used.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _channels, height, width = x.shape
        size = _group_size(batch, self.group_size)
        y = rearrange(x.float(), "(g m) (f c) h w -> g m f c h w", g=size, f=self.num_channels)
        y = y - y.mean(dim=0)
        std = (y.square().mean(dim=0) + NORM_EPS).sqrt()  # [M, F, c, H, W]
        std = reduce(std, "m f c h w -> m f", "mean")
        maps = repeat(std, "m f -> (g m) f h w", g=size, h=height, w=width).to(x.dtype)
        return torch.cat([x, maps], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
