"""The ``pggan`` generator and critic (Karras et al. 2018, "Progressive Growing of GANs for
Improved Quality, Stability, and Variation", Table 2).

Both start at 4x4 and grow by one resolution at a time (:meth:`PGGANGenerator.grow`,
:meth:`PGGANCritic.grow`), as the ``progressive`` task's ``begin_stage`` asks. The newest block
fades in (Sec. 3, Fig. 2) with the blend factor ``alpha`` held in a buffer that the task sets
before each step (so the EMA copy and checkpoints carry it):

- generator: ``(1 - alpha) * up(toRGB_old(h)) + alpha * toRGB_new(block(h))``;
- critic: ``(1 - alpha) * fromRGB_old(down(x)) + alpha * block(fromRGB_new(x))``.

Every conv and dense layer has the equalized learning rate; the generator normalizes every
feature vector after each conv (pixel norm) and the critic appends the minibatch standard
deviation before its last block.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gan_progressive.layers import EqualizedConv2d, EqualizedLinear, MinibatchStddev, pixel_norm

__all__ = [
    "LEAKY_SLOPE",
    "START_RESOLUTION",
    "PGGANCritic",
    "PGGANCriticOptions",
    "PGGANGenerator",
    "PGGANGeneratorOptions",
    "build_pggan_critic",
    "build_pggan_generator",
    "fade",
]

LEAKY_SLOPE = 0.2  # LeakyReLU slope everywhere (Sec. A.1)
START_RESOLUTION = 4  # the first stage's resolution


def fade(old: torch.Tensor, new: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """``(1 - alpha) * old + alpha * new``: the fade-in of a new block (Sec. 3)."""
    return old + (new - old) * alpha


def _channels_field(default: int, what: str) -> Any:
    return attrs.field(
        default=default,
        validator=attrs.validators.ge(1),
        metadata={"doc": what},
    )


@attrs.frozen(kw_only=True)
class PGGANGeneratorOptions:
    """Options of the ``pggan`` generator."""

    latent_dim: int = attrs.field(
        default=512,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the noise z ~ N(0, I), >= 1 (the paper's 512)"},
    )
    channel_base: int = _channels_field(
        8192, "channels at resolution R are min(channel_base / R, max_channels), >= 1 (8192)"
    )
    max_channels: int = _channels_field(512, "the most channels of any block, >= 1 (512)")
    pixel_norm: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "pixelwise feature normalization after every conv (epsilon 1e-8)"},
    )


@attrs.frozen(kw_only=True)
class PGGANCriticOptions:
    """Options of the ``pggan`` critic."""

    channel_base: int = _channels_field(
        8192, "channels at resolution R are min(channel_base / R, max_channels), >= 1 (8192)"
    )
    max_channels: int = _channels_field(512, "the most channels of any block, >= 1 (512)")
    group_size: int = attrs.field(
        default=4,
        validator=attrs.validators.ge(0),
        metadata={
            "doc": "minibatch standard deviation group (the paper's 4); the batch must divide "
            "into groups; 0 = no minibatch stddev layer"
        },
    )


def _widths(channel_base: int, max_channels: int) -> Any:
    def width(resolution: int) -> int:
        return max(1, min(channel_base // resolution, max_channels))

    return width


def _image_shape(component: str, data_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(C, R, R)`` with ``R`` a power of two >= 4: ``(C, R)``; else a one-line error."""
    given = "x".join(map(str, data_shape)) or "unknown"
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise ValueError(f"{component}: expected square images (C, R, R) (got {given})")
    resolution = data_shape[1]
    if resolution < START_RESOLUTION or resolution & (resolution - 1):
        raise ValueError(
            f"{component}: the image side must be a power of two >= {START_RESOLUTION} "
            f"(got {given})"
        )
    return data_shape[0], resolution


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


class PGGANGenerator(nn.Module):
    """``[N, latent_dim] -> [N, C, R, R]``, ``R`` the current resolution (4 at first)."""

    alpha: torch.Tensor

    def __init__(
        self,
        latent_dim: int,
        image_channels: int,
        final_resolution: int,
        channel_base: int = 8192,
        max_channels: int = 512,
        use_pixel_norm: bool = True,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim  # size of z
        self.image_channels = image_channels  # channels of the output images
        self.final_resolution = final_resolution  # the side it may grow to (the data's)
        self.use_pixel_norm = use_pixel_norm  # pixel norm after the latent and every conv
        self.width = _widths(channel_base, max_channels)
        # blend factor of the newest block; the task sets it before each step (Sec. 3)
        self.register_buffer("alpha", torch.ones(()))
        c = self.width(START_RESOLUTION)
        # latent -> 4x4 maps: a dense layer (the paper's 4x4 conv on a 1x1 input), gain sqrt(2)/4
        # as in the authors' code, then a 3x3 conv
        self.stem = EqualizedLinear(latent_dim, c * 16, gain=math.sqrt(2.0) / 4)
        self.stem_conv = EqualizedConv2d(c, c, 3, padding=1)
        self.blocks = nn.ModuleList()  # one per doubling: upsample, two 3x3 convs
        self.to_rgb = nn.ModuleList([EqualizedConv2d(c, image_channels, 1, gain=1.0)])

    @property
    def resolution(self) -> int:
        """The side of the images it makes now."""
        return START_RESOLUTION * 2 ** len(self.blocks)

    def grow(self) -> None:
        """Add the block and toRGB layer of the next resolution (initialised from torch's
        random stream; the task calls this under the stage's seeded stream)."""
        if self.resolution >= self.final_resolution:
            raise ValueError(
                f"pggan generator: cannot grow past the data's {self.final_resolution}x"
                f"{self.final_resolution}"
            )
        old, new = self.width(self.resolution), self.width(self.resolution * 2)
        device = _device_of(self)
        block = nn.ModuleList(
            [EqualizedConv2d(old, new, 3, padding=1), EqualizedConv2d(new, new, 3, padding=1)]
        )
        self.blocks.append(block.to(device))
        self.to_rgb.append(EqualizedConv2d(new, self.image_channels, 1, gain=1.0).to(device))

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x) if self.use_pixel_norm else x

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return self._norm(F.leaky_relu(x, LEAKY_SLOPE))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"pggan generator: expected latents [N, {self.latent_dim}] (got {list(z.shape)})"
            )
        h = self._act(self.stem(self._norm(z)).view(z.shape[0], -1, 4, 4))
        h = self._act(self.stem_conv(h))
        previous = h
        for block in self.blocks:
            previous = h
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            for conv in block.children():
                h = self._act(conv(h))
        image: torch.Tensor = self.to_rgb[-1](h)
        if len(self.blocks) and float(self.alpha) < 1.0:
            old = F.interpolate(self.to_rgb[-2](previous), scale_factor=2.0, mode="nearest")
            image = fade(old, image, self.alpha)
        return image


class PGGANCritic(nn.Module):
    """``[N, C, R, R] -> [N]`` scores, ``R`` the current resolution (4 at first)."""

    alpha: torch.Tensor

    def __init__(
        self,
        image_channels: int,
        final_resolution: int,
        channel_base: int = 8192,
        max_channels: int = 512,
        group_size: int = 4,
    ) -> None:
        super().__init__()
        self.image_channels = image_channels  # channels of the images it scores
        self.final_resolution = final_resolution  # the side it may grow to (the data's)
        self.width = _widths(channel_base, max_channels)
        self.register_buffer("alpha", torch.ones(()))  # blend factor of the newest block
        c = self.width(START_RESOLUTION)
        self.from_rgb = nn.ModuleList([EqualizedConv2d(image_channels, c, 1)])
        self.blocks = nn.ModuleList()  # blocks[k - 1] takes resolution 4 * 2^k down to half
        # the 4x4 head: minibatch stddev, 3x3 conv, 4x4 conv (a dense layer), dense to a score
        self.stddev = MinibatchStddev(group_size) if group_size else None
        self.head_conv = EqualizedConv2d(c + (1 if group_size else 0), c, 3, padding=1)
        self.head_dense = EqualizedLinear(c * 16, c)
        self.head_score = EqualizedLinear(c, 1, gain=1.0)

    @property
    def resolution(self) -> int:
        """The side of the images it scores now."""
        return START_RESOLUTION * 2 ** len(self.blocks)

    def grow(self) -> None:
        """Add the fromRGB layer and block of the next resolution, in front of the others."""
        if self.resolution >= self.final_resolution:
            raise ValueError(
                f"pggan critic: cannot grow past the data's {self.final_resolution}x"
                f"{self.final_resolution}"
            )
        new, old = self.width(self.resolution * 2), self.width(self.resolution)
        device = _device_of(self)
        block = nn.ModuleList(
            [EqualizedConv2d(new, new, 3, padding=1), EqualizedConv2d(new, old, 3, padding=1)]
        )
        self.blocks.append(block.to(device))
        self.from_rgb.append(EqualizedConv2d(self.image_channels, new, 1).to(device))

    @staticmethod
    def _block(block: nn.Module, h: torch.Tensor) -> torch.Tensor:
        for conv in block.children():
            h = F.leaky_relu(conv(h), LEAKY_SLOPE)
        return F.avg_pool2d(h, 2)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        expected = [self.image_channels, self.resolution, self.resolution]
        if extra or x.ndim != 4 or list(x.shape[1:]) != expected:
            raise ValueError(
                f"pggan critic: expected images [N, {', '.join(map(str, expected))}] and no "
                f"conditioning (got {list(x.shape)}"
                + (f" and {len(extra)} extra inputs)" if extra else ")")
            )
        h = F.leaky_relu(self.from_rgb[-1](x), LEAKY_SLOPE)
        blocks = list(self.blocks)
        if blocks:
            h = self._block(blocks.pop(), h)
            if float(self.alpha) < 1.0:
                old = F.leaky_relu(self.from_rgb[-2](F.avg_pool2d(x, 2)), LEAKY_SLOPE)
                h = fade(old, h, self.alpha)
        for block in reversed(blocks):
            h = self._block(block, h)
        if self.stddev is not None:
            h = self.stddev(h)
        h = F.leaky_relu(self.head_conv(h), LEAKY_SLOPE)
        h = F.leaky_relu(self.head_dense(h.flatten(1)), LEAKY_SLOPE)
        scores: torch.Tensor = self.head_score(h).squeeze(1)
        return scores


def build_pggan_generator(options: PGGANGeneratorOptions, context: Any) -> PGGANGenerator:
    """The ``pggan`` generator at 4x4, able to grow to the context's image side."""
    if getattr(context, "input_shape", None) is not None:
        raise ValueError("pggan generator: takes latents only (an unconditional generator)")
    channels, resolution = _image_shape("pggan generator", tuple(context.data_shape))
    return PGGANGenerator(
        options.latent_dim,
        channels,
        resolution,
        options.channel_base,
        options.max_channels,
        options.pixel_norm,
    )


def build_pggan_critic(options: PGGANCriticOptions, context: Any) -> PGGANCritic:
    """The ``pggan`` critic at 4x4, able to grow to the context's image side."""
    channels, resolution = _image_shape("pggan critic", tuple(context.data_shape))
    return PGGANCritic(
        channels, resolution, options.channel_base, options.max_channels, options.group_size
    )
