"""The StyleGAN2 critic: residual architecture with minibatch standard deviation."""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from einops import rearrange
from torch import nn

from gan_stylegan.generators import channel_widths, check_image_shape
from gan_stylegan.layers import EqualizedConv2d, EqualizedLinear, MinibatchStddev

__all__ = ["StyleGAN2Critic", "StyleGAN2CriticOptions", "build_stylegan2_critic"]

_positive = [attrs.validators.instance_of(int), attrs.validators.ge(1)]


@attrs.frozen(kw_only=True)
class StyleGAN2CriticOptions:
    """Options of the ``stylegan2`` critic; defaults follow StyleGAN2 config F (Karras et al.
    2020). The image size and channels come from the data."""

    channel_base: int = attrs.field(
        default=32768,
        validator=_positive,
        metadata={
            "doc": "feature maps at resolution r are min(channel_base // r, channel_max); >= 1 "
            "(StyleGAN2: 32768)"
        },
    )
    channel_max: int = attrs.field(
        default=512,
        validator=_positive,
        metadata={"doc": "cap on the feature maps at any resolution; >= 1 (the paper's 512)"},
    )
    mbstd_group_size: int = attrs.field(
        default=4,
        validator=_positive,
        metadata={
            "doc": "samples per minibatch-stddev group; >= 1 (the paper's 4; batches that are not "
            "a multiple use the largest smaller size that divides them)"
        },
    )
    mbstd_channels: int = attrs.field(
        default=1,
        validator=_positive,
        metadata={"doc": "feature maps the minibatch stddev appends; >= 1 (the paper's 1)"},
    )


class CriticBlock(nn.Module):
    """Residual down-sampling block (Karras et al. 2020, Fig. 7c): two 3x3 convolutions, the
    second filtered and strided, plus a filtered-down-sampled 1x1 skip; the sum is scaled by
    ``sqrt(1/2)`` to keep the variance."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, activation="lrelu")
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, activation="lrelu", down=True)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


class StyleGAN2Critic(nn.Module):
    """The StyleGAN2 critic (Karras et al. 2020, "Analyzing and Improving the Image Quality of
    StyleGAN", residual "D" of config E/F): a 1x1 ``fromRGB`` at the input resolution, one
    residual block per halving down to 4x4, then minibatch standard deviation (group 4, 1
    channel), a 3x3 convolution, a fully connected layer and a linear output. Equalized learning
    rate everywhere. ``critic(x)`` with ``x`` ``[N, C, R, R]`` returns scores ``[N]``."""

    def __init__(self, channels: int, resolution: int, options: StyleGAN2CriticOptions) -> None:
        super().__init__()
        self.channels, self.resolution = channels, resolution
        widths = channel_widths(
            "critic 'stylegan2'", resolution, options.channel_base, options.channel_max
        )
        self.from_rgb = EqualizedConv2d(channels, widths[resolution], 1, activation="lrelu")
        self.blocks = nn.Sequential(
            *[CriticBlock(widths[r], widths[r // 2]) for r in sorted(widths, reverse=True)[:-1]]
        )
        final = widths[4]
        if final % options.mbstd_channels:
            raise ValueError(
                f"critic 'stylegan2': mbstd_channels must divide the {final} feature maps at 4x4 "
                f"(got {options.mbstd_channels})"
            )
        self.mbstd = MinibatchStddev(options.mbstd_group_size, options.mbstd_channels)
        self.conv = EqualizedConv2d(final + options.mbstd_channels, final, 3, activation="lrelu")
        self.fc = EqualizedLinear(final * 16, final, activation="lrelu")
        self.out = EqualizedLinear(final, 1)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.resolution, self.resolution)
        if extra:
            raise ValueError(
                f"critic 'stylegan2': is unconditional and takes no conditioning inputs "
                f"(got {len(extra)})"
            )
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"critic 'stylegan2': expected images [N, {', '.join(map(str, expected))}] "
                f"(got {list(x.shape)})"
            )
        x = self.blocks(self.from_rgb(x))
        x = self.conv(self.mbstd(x))
        x = self.fc(rearrange(x, "n c h w -> n (c h w)"))
        scores: torch.Tensor = self.out(x)
        return scores.squeeze(1)


def build_stylegan2_critic(options: StyleGAN2CriticOptions, context: Any) -> StyleGAN2Critic:
    """The ``stylegan2`` critic for the data's image shape ``(C, R, R)``."""
    channels, resolution = check_image_shape("critic 'stylegan2'", tuple(context.data_shape))
    return StyleGAN2Critic(channels, resolution, options)
