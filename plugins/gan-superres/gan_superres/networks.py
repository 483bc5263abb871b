"""SRResNet, the generator of SRGAN, and the SRGAN critic (Ledig et al. 2017, Fig. 4).

**Generator** ``srresnet`` (LR ``[N, C, h, w]`` -> SR ``[N, C, r h, r w]``, both in ``[-1, 1]``):

- a 9x9 convolution to ``channels`` (64) and PReLU;
- ``blocks`` (16) residual blocks, each ``conv3x3 - BN - PReLU - conv3x3 - BN`` plus its input;
- a 3x3 convolution and BN, plus the output of the first convolution (the long skip);
- ``log2(r)`` sub-pixel blocks, each a 3x3 convolution to ``4 * channels``, a ``PixelShuffle(2)``
  (Shi et al. 2016) and PReLU, doubling the sides;
- a 9x9 convolution to ``C``, linear (no squashing: the MSE stage regresses pixel values, and
  samples are clamped to ``[-1, 1]`` when shown or saved).

``residual = "bicubic"`` (not the paper's; VDSR's global residual learning, Kim et al. 2016) adds
the output to the bicubic upscaling of the input (unclamped, the kernel of
:func:`gan_superres.degrade.bicubic_upscale`) and zero-initialises the last convolution, so
training starts from the bicubic baseline and learns only the missing detail: far fewer steps to
beat bicubic, which is what a CPU budget needs.

Every PReLU has one slope shared by its channels (He et al. 2015's channel-shared variant), 19
in all; with them the x4 RGB network has 1,549,462 parameters.

``PixelShuffle(2)`` moves channel ``4 c + 2 i + j`` of pixel ``(y, x)`` to channel ``c`` of pixel
``(2 y + i, 2 x + j)``; the tests check that layout. The network is fully convolutional: any input
size works, which ``gan upscale`` uses.

**Critic** ``srgan`` (HR ``[N, C, H, W]`` -> one score per image): eight 3x3 convolutions with
``channels`` x (1, 1, 2, 2, 4, 4, 8, 8) filters (64 to 512) and strides alternating 1 and 2, each
followed by BN (not the first) and LeakyReLU 0.2; then a dense layer of ``dense`` (1024) units,
LeakyReLU 0.2 and a dense layer to one logit. The paper's sigmoid is the loss's business
(``[loss] name = "non-saturating"`` applies it). The dense layer fixes the input size to the
training crops (the paper's 96 x 96).
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gan_superres.degrade import SCALES

__all__ = [
    "ResidualBlock",
    "SRGANCritic",
    "SRGANCriticOptions",
    "SRResNet",
    "SRResNetOptions",
    "build_srgan_critic",
    "build_srresnet",
]


def _positive(doc: str, default: int) -> int:
    return attrs.field(
        default=default,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": doc},
    )


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


@attrs.frozen(kw_only=True)
class SRResNetOptions:
    """Options of the ``srresnet`` generator."""

    blocks: int = _positive("residual blocks (paper: 16); >= 1", 16)
    channels: int = _positive("feature channels of the trunk (paper: 64); >= 1", 64)
    norm: str = attrs.field(
        default="batch",
        validator=attrs.validators.in_(("batch", "none")),
        metadata={
            "doc": "'batch' (the paper's BN after every trunk convolution) or 'none' (EDSR's "
            "choice, Lim et al. 2017)"
        },
    )
    residual: str = attrs.field(
        default="none",
        validator=attrs.validators.in_(("none", "bicubic")),
        metadata={
            "doc": "'none' (the paper: the network outputs the image) or 'bicubic' (it adds "
            "its output to the bicubic upscaling of its input, VDSR's global residual, Kim et "
            "al. 2016, with the last convolution zero-initialised: training starts at bicubic)"
        },
    )


class ResidualBlock(nn.Module):
    """``x + BN(conv(PReLU(BN(conv(x)))))`` with 3x3 convolutions."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            _norm(norm, channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            _norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet for ``scale`` 2 or 4 on ``in_channels``-channel images."""

    def __init__(self, in_channels: int, scale: int, options: SRResNetOptions) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"srresnet: scale factor must be 2 or 4 (got {scale})")
        c = options.channels
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, c, 9, padding=4), nn.PReLU())
        self.trunk = nn.Sequential(*(ResidualBlock(c, options.norm) for _ in range(options.blocks)))
        self.trunk_end = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), _norm(options.norm, c))
        self.upsample = nn.Sequential(
            *(
                nn.Sequential(nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.PReLU())
                for _ in range(int(math.log2(scale)))
            )
        )
        self.tail = nn.Conv2d(c, in_channels, 9, padding=4)
        self.residual = options.residual
        if self.residual == "bicubic":
            with torch.no_grad():
                self.tail.weight.zero_()
                self.tail.bias.zero_()  # type: ignore[union-attr]

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        head = self.head(lr)
        features = head + self.trunk_end(self.trunk(head))
        out = self.tail(self.upsample(features))
        if self.residual == "bicubic":
            h, w = lr.shape[-2:]
            out = out + F.interpolate(
                lr,
                size=(h * self.scale, w * self.scale),
                mode="bicubic",
                antialias=True,
                align_corners=False,
            )
        return out


def build_srresnet(options: SRResNetOptions, context: object) -> nn.Module:
    """``srresnet`` for HR ``context.data_shape`` ``(C, H, W)`` and LR ``context.input_shape``
    ``(C, H / r, W / r)``; the scale factor ``r`` is their ratio."""
    shape = tuple(getattr(context, "data_shape", ()))
    small = getattr(context, "input_shape", None)
    if len(shape) != 3:
        raise ValueError(f"srresnet: expected images (C, H, W) (got shape {shape})")
    if small is None or len(small) != 3 or small[0] != shape[0]:
        raise ValueError(
            f"srresnet: takes low-resolution images (C, H / r, W / r) (got input shape {small} "
            f"for images {shape}); use it with task 'srgan'"
        )
    scale = shape[1] // small[1]
    if (small[1] * scale, small[2] * scale) != (shape[1], shape[2]):
        raise ValueError(
            f"srresnet: input {small[2]}x{small[1]} is not the images {shape[2]}x{shape[1]} "
            "divided by a whole factor"
        )
    return SRResNet(shape[0], scale, options)


@attrs.frozen(kw_only=True)
class SRGANCriticOptions:
    """Options of the ``srgan`` critic."""

    channels: int = _positive("filters of the first two convolutions (paper: 64); >= 1", 64)
    dense: int = _positive("units of the hidden dense layer (paper: 1024); >= 1", 1024)
    norm: str = attrs.field(
        default="batch",
        validator=attrs.validators.in_(("batch", "none")),
        metadata={"doc": "'batch' (the paper's BN after convolutions 2-8) or 'none'"},
    )


class SRGANCritic(nn.Module):
    """Eight 3x3 convolutions (stride 1, 2, 1, 2, ...), a dense layer and a logit."""

    def __init__(self, shape: tuple[int, int, int], options: SRGANCriticOptions) -> None:
        super().__init__()
        c, h, w = shape
        if h < 16 or w < 16:
            raise ValueError(f"srgan critic: images must be at least 16x16 (got {w}x{h})")
        widths = [options.channels * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        layers: list[nn.Module] = []
        previous = c
        for index, width in enumerate(widths):
            stride = 1 if index % 2 == 0 else 2
            layers.append(nn.Conv2d(previous, width, 3, stride=stride, padding=1))
            if index > 0:
                layers.append(_norm(options.norm, width))
            layers.append(nn.LeakyReLU(0.2))
            previous = width
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, c, h, w)).numel()
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, options.dense),
            nn.LeakyReLU(0.2),
            nn.Linear(options.dense, 1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image)).squeeze(1)


def build_srgan_critic(options: SRGANCriticOptions, context: object) -> nn.Module:
    """The ``srgan`` critic for ``context.data_shape`` ``(C, H, W)``."""
    shape = tuple(getattr(context, "data_shape", ()))
    if len(shape) != 3:
        raise ValueError(f"srgan critic: expected images (C, H, W) (got shape {shape})")
    return SRGANCritic((shape[0], shape[1], shape[2]), options)
