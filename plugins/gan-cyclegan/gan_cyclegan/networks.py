"""Image-to-image networks: the ResNet and U-Net generators and the PatchGAN critic.

- ``resnet`` generator: Johnson et al. 2016 ("Perceptual Losses for Real-Time Style Transfer and
  Super-Resolution") as used by Zhu et al. 2017 (CycleGAN, Appendix 7.2): ``c7s1-64, d128, d256,
  R256 x blocks, u128, u64, c7s1-C``, reflection padding, instance norm. 9 blocks for 256x256
  images, 6 for 128x128.
- ``unet`` generator: Isola et al. 2017 (pix2pix, Sec. 3.2.1 and Appendix 6.1.1): an encoder of
  4x4 stride-2 convolutions down to 1x1 (``C64-C128-C256-C512-C512-C512-C512-C512`` at 256x256),
  a mirrored decoder with dropout in its first three layers, and skip connections that concatenate
  encoder layer ``i`` to decoder layer ``n - i``.
- ``patchgan`` critic: Isola et al. 2017 (Sec. 3.2.2): a fully convolutional critic that scores each
  overlapping patch; three stride-2 layers give the 70x70 receptive field (``C64-C128-C256-C512``).

Every weight is initialised from N(0, 0.02) (Zhu et al. 2017, Sec. 4; Isola et al. 2017, Sec. 3.3);
batch-norm scales from N(1, 0.02); biases zero. Each factory reads the shapes from the build
context, checks them once and returns the module.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

import attrs
import torch
from torch import nn

__all__ = [
    "INIT_STD",
    "PatchGANCritic",
    "PatchGANCriticOptions",
    "ResnetGenerator",
    "ResnetGeneratorOptions",
    "UNetGenerator",
    "UNetGeneratorOptions",
    "build_patchgan_critic",
    "build_resnet_generator",
    "build_unet_generator",
    "init_weights",
    "patchgan_receptive_field",
]

INIT_STD = 0.02  # std of the N(0, 0.02) init (Zhu et al. 2017, Sec. 4)
LEAKY_SLOPE = 0.2  # LeakyReLU slope of the U-Net encoder and the PatchGAN (Isola et al. 2017)
Norm = Literal["instance", "batch", "none"]
NORMS = ("instance", "batch", "none")


class BuildContextLike(Protocol):
    """What a factory reads from :class:`gancore.BuildContext`."""

    @property
    def data_shape(self) -> tuple[int, ...]: ...

    @property
    def input_shape(self) -> tuple[int, ...] | None: ...


# --------------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------------


def init_weights(module: nn.Module) -> None:
    """Conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), every bias 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, INIT_STD)
        elif isinstance(layer, nn.BatchNorm2d | nn.InstanceNorm2d) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, INIT_STD)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Instance norm without affine parameters (as CycleGAN's), batch norm, or nothing."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape)


def image_shape(component: str, what: str, shape: tuple[int, ...] | None) -> tuple[int, int, int]:
    """``(C, H, W)`` or a ``ValueError`` naming the component."""
    if shape is None:
        raise ValueError(
            f"{component}: is an image-to-image generator; the task must give it an input shape "
            "(the 'unconditional' task gives latents: use task 'cyclegan' or 'pix2pix')"
        )
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"{component}: expected {what} of shape (C, H, W) (got {_shape_text(shape)})"
        )
    return shape[0], shape[1], shape[2]


def check_input(component: str, x: torch.Tensor, channels: int) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(
            f"{component}: expected images [N, {channels}, H, W] (got {list(x.shape)})"
        )


def _positive(default: int, doc: str) -> int:
    return attrs.field(
        default=default,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": doc},
    )


def _probability(default: float, doc: str) -> float:
    return attrs.field(
        default=default,
        converter=float,
        validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)],
        metadata={"doc": doc},
    )


# --------------------------------------------------------------------------------------------------
# ResNet generator
# --------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ResnetGeneratorOptions:
    """Options of :class:`ResnetGenerator` (CycleGAN's generator, Zhu et al. 2017, App. 7.2)."""

    blocks: int = _positive(
        9, "residual blocks at the lowest resolution: 9 for 256x256 images, 6 for 128x128; >= 1"
    )
    channels: int = _positive(
        64, "feature maps of the first 7x7 convolution (64 in the paper), doubled per downsampling"
    )
    downsamplings: int = _positive(
        2, "stride-2 convolutions before the blocks, and transposed ones after (2 in the paper)"
    )
    norm: Norm = attrs.field(
        default="instance",
        validator=attrs.validators.in_(NORMS),
        metadata={"doc": "normalization after each convolution: 'instance', 'batch' or 'none'"},
    )
    dropout: float = _probability(
        0.0, "dropout between the two convolutions of each residual block; 0 = none (the paper)"
    )


class ResidualBlock(nn.Module):
    """x + conv3x3(relu(norm(conv3x3(x)))) with reflection padding (He et al. 2016)."""

    def __init__(self, channels: int, norm: str, dropout: float, bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias)]
        layers.append(norm_layer(norm, channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.body(x)
        return out


class ResnetGenerator(nn.Module):
    """``[N, C_in, H, W]`` -> ``[N, C_out, H, W]`` in ``[-1, 1]``; H and W divisible by
    ``2 ** downsamplings``."""

    def __init__(
        self,
        in_channels: int,  # channels of the input domain
        out_channels: int,  # channels of the output domain
        options: ResnetGeneratorOptions,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        width, norm = options.channels, options.norm
        bias = norm != "batch"  # a conv followed by batch norm needs no bias
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7, bias=bias),  # c7s1-64
            norm_layer(norm, width),
            nn.ReLU(),
        ]
        for _ in range(options.downsamplings):  # d128, d256
            layers += [
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, 2 * width),
                nn.ReLU(),
            ]
            width *= 2
        layers += [ResidualBlock(width, norm, options.dropout, bias) for _ in range(options.blocks)]
        for _ in range(options.downsamplings):  # u128, u64: fractionally strided convolutions
            layers += [
                nn.ConvTranspose2d(
                    width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                norm_layer(norm, width // 2),
                nn.ReLU(),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]  # c7s1-C
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("resnet generator", x, self.in_channels)
        out: torch.Tensor = self.net(x)
        return out


def build_resnet_generator(
    options: ResnetGeneratorOptions, context: BuildContextLike
) -> ResnetGenerator:
    """The ResNet generator from ``context.input_shape`` to ``context.data_shape``."""
    name = "resnet generator"
    c_in, h, w = image_shape(name, "input images", context.input_shape)
    c_out, h_out, w_out = image_shape(name, "output images", context.data_shape)
    factor = 2**options.downsamplings
    if (h, w) != (h_out, w_out):
        raise ValueError(
            f"{name}: input and output images must have the same size "
            f"(got {_shape_text((c_in, h, w))} -> {_shape_text((c_out, h_out, w_out))})"
        )
    if h % factor or w % factor or min(h, w) // factor < 2:
        raise ValueError(
            f"{name}: image height and width must be multiples of 2 ** downsamplings = {factor} "
            f"and at least {2 * factor} (got {h}x{w}, downsamplings = {options.downsamplings})"
        )
    return ResnetGenerator(c_in, c_out, options)


# --------------------------------------------------------------------------------------------------
# U-Net generator
# --------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UNetGeneratorOptions:
    """Options of :class:`UNetGenerator` (pix2pix's generator, Isola et al. 2017, App. 6.1.1)."""

    depth: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            [attrs.validators.instance_of(int), attrs.validators.ge(1)]
        ),
        metadata={
            "doc": "stride-2 encoder layers; None = log2(image size), down to 1x1 as in the "
            "paper (8 at 256x256, 7 at 128x128)"
        },
    )
    channels: int = _positive(64, "feature maps of the first encoder layer (64 in the paper)")
    max_channels: int = _positive(512, "cap on the doubling feature maps (512 in the paper)")
    norm: Norm = attrs.field(
        default="batch",
        validator=attrs.validators.in_(NORMS),
        metadata={
            "doc": "normalization: 'batch' (the paper), 'instance' or 'none'; never on the first "
            "encoder layer nor at the 1x1 bottleneck"
        },
    )
    dropout: float = _probability(
        0.5, "dropout in the first `dropout_layers` decoder layers, the paper's noise z; 0 = none"
    )
    dropout_layers: int = attrs.field(
        default=3,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)],
        metadata={
            "doc": "decoder layers, from the bottleneck up, that use dropout (3 in the paper)"
        },
    )


class UNetGenerator(nn.Module):
    """``[N, C_in, H, W]`` -> ``[N, C_out, H, W]`` in ``[-1, 1]`` through ``depth`` halvings, with
    skip connections; H and W divisible by ``2 ** depth``."""

    def __init__(
        self,
        in_channels: int,  # channels of the input domain
        out_channels: int,  # channels of the output domain
        depth: int,  # stride-2 encoder layers
        options: UNetGeneratorOptions,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        norm = options.norm
        bias = norm != "batch"
        widths = [min(options.channels * 2**i, options.max_channels) for i in range(depth)]
        self.encoder = nn.ModuleList()
        for i in range(depth):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(LEAKY_SLOPE)]
            c_in = in_channels if i == 0 else widths[i - 1]
            layers.append(nn.Conv2d(c_in, widths[i], 4, stride=2, padding=1, bias=bias))
            if 0 < i < depth - 1:  # no norm on C64 (the paper) nor at the bottleneck
                layers.append(norm_layer(norm, widths[i]))
            self.encoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList()
        for j, i in enumerate(reversed(range(depth))):  # j = 0 is the layer after the bottleneck
            c_in = widths[i] if i == depth - 1 else 2 * widths[i]  # skip concatenated below it
            last = i == 0
            c_out = out_channels if last else widths[i - 1]
            layers = [nn.ReLU()]
            layers.append(
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias or last)
            )
            if last:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(norm, c_out))
                if j < options.dropout_layers and options.dropout > 0:
                    layers.append(nn.Dropout(options.dropout))
            self.decoder.append(nn.Sequential(*layers))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("unet generator", x, self.in_channels)
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the decoder directly
        for layer in self.decoder:
            x = layer(x)
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
        return x


def build_unet_generator(options: UNetGeneratorOptions, context: BuildContextLike) -> UNetGenerator:
    """The U-Net generator from ``context.input_shape`` to ``context.data_shape``."""
    name = "unet generator"
    c_in, h, w = image_shape(name, "input images", context.input_shape)
    c_out, h_out, w_out = image_shape(name, "output images", context.data_shape)
    if (h, w) != (h_out, w_out):
        raise ValueError(
            f"{name}: input and output images must have the same size "
            f"(got {_shape_text((c_in, h, w))} -> {_shape_text((c_out, h_out, w_out))})"
        )
    depth = options.depth if options.depth is not None else int(math.log2(min(h, w)))
    if h % 2**depth or w % 2**depth or depth < 2:
        raise ValueError(
            f"{name}: image height and width must be multiples of 2 ** depth = {2**depth} with "
            f"depth >= 2 (got {h}x{w}, depth = {depth})"
        )
    return UNetGenerator(c_in, c_out, depth, options)


# --------------------------------------------------------------------------------------------------
# PatchGAN critic
# --------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PatchGANCriticOptions:
    """Options of :class:`PatchGANCritic` (Isola et al. 2017, Sec. 3.2.2 and App. 6.1.2)."""

    layers: int = _positive(
        3,
        "stride-2 convolutions; 3 gives the paper's 70x70 receptive field (1: 16x16, 2: 34x34, "
        "4: 142x142); images need a side of at least 3 * 2 ** layers",
    )
    channels: int = _positive(64, "feature maps of the first layer (64), doubled per layer")
    max_channels: int = _positive(512, "cap on the doubling feature maps (512 in the paper)")
    norm: Norm = attrs.field(
        default="instance",
        validator=attrs.validators.in_(NORMS),
        metadata={
            "doc": "normalization after every convolution but the first and the last: 'instance' "
            "(CycleGAN), 'batch' (pix2pix) or 'none'"
        },
    )


def patchgan_receptive_field(layers: int) -> int:
    """Side of the input patch one score sees: 4x4 kernels, ``layers`` at stride 2, two at 1."""
    field = 1
    for stride in [1, 1] + [2] * layers:  # from one output score back to the input
        field = (field - 1) * stride + 4
    return field


class PatchGANCritic(nn.Module):
    """``[N, C, H, W]`` -> patch scores ``[N, 1, H / 2**layers - 2, W / 2**layers - 2]``."""

    def __init__(self, in_channels: int, options: PatchGANCriticOptions) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.receptive_field = patchgan_receptive_field(options.layers)
        norm = options.norm
        bias = norm != "batch"
        widths = [
            min(options.channels * 2**i, options.max_channels) for i in range(options.layers + 1)
        ]
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, widths[0], 4, stride=2, padding=1),  # C64: no norm
            nn.LeakyReLU(LEAKY_SLOPE),
        ]
        for i in range(1, options.layers + 1):
            stride = 2 if i < options.layers else 1  # the last hidden layer keeps the resolution
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1, bias=bias),
                norm_layer(norm, widths[i]),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))  # one score per patch
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if extra:
            raise ValueError(
                f"patchgan critic: takes no conditioning inputs (got {len(extra)}); pix2pix "
                "concatenates its input to the image instead"
            )
        check_input("patchgan critic", x, self.in_channels)
        out: torch.Tensor = self.net(x)
        return out


def build_patchgan_critic(
    options: PatchGANCriticOptions, context: BuildContextLike
) -> PatchGANCritic:
    """The PatchGAN critic for images of ``context.data_shape``."""
    name = "patchgan critic"
    channels, h, w = image_shape(name, "images", context.data_shape)
    smallest = 3 * 2**options.layers
    if min(h, w) < smallest:
        raise ValueError(
            f"{name}: images of {h}x{w} are too small for layers = {options.layers} (needs a "
            f"side of at least {smallest}; use fewer layers)"
        )
    return PatchGANCritic(channels, options)
