"""Built-in generators and critics: an MLP for vector data and DCGAN for images.

Each network has an options class (TOML-representable, documented on the fields) and a factory
``build_xxx(options, context)`` that reads the shape of one real sample from ``context.data_shape``,
checks it once and returns the module.
"""

from __future__ import annotations

from typing import Protocol

import attrs
import torch
from einops import rearrange
from torch import nn

__all__ = [
    "BuildContextLike",
    "DCGANCritic",
    "DCGANCriticOptions",
    "DCGANGenerator",
    "DCGANGeneratorOptions",
    "MLPCritic",
    "MLPCriticOptions",
    "MLPGenerator",
    "MLPGeneratorOptions",
    "build_dcgan_critic",
    "build_dcgan_generator",
    "build_mlp_critic",
    "build_mlp_generator",
]

ACTIVATIONS = ("relu", "leaky-relu")
NORMS = ("batch", "layer", "instance", "none")
MLP_NORMS = ("none", "batch", "layer")
LEAKY_SLOPE = 0.2  # negative slope of every LeakyReLU (Radford et al. 2016, Sec. 3)
INIT_STD = 0.02  # std of the N(0, 0.02) weight init (Radford et al. 2016, Sec. 4)
MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 128


class BuildContextLike(Protocol):
    """What a factory reads from the build context."""

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of one real sample: ``(C, H, W)`` for images, ``(D,)`` for vector data."""
        ...


# --------------------------------------------------------------------------------------------------
# Shape checks and shared helpers
# --------------------------------------------------------------------------------------------------


def _shape_text(shape: tuple[int, ...] | torch.Size) -> str:
    """``(3, 20, 20)`` -> ``"3x20x20"``."""
    return "x".join(str(size) for size in shape)


def _vector_dim(component: str, data_shape: tuple[int, ...]) -> int:
    """The dimension ``D`` of vector data ``(D,)``, or a ``ValueError`` naming ``component``."""
    if len(data_shape) != 1 or data_shape[0] < 1:
        raise ValueError(
            f"{component}: expected vector data of shape (D,) (got {_shape_text(data_shape)})"
        )
    return data_shape[0]


def _image_shape(component: str, data_shape: tuple[int, ...]) -> tuple[int, tuple[int, int]]:
    """``(channels, (height, width))`` of images whose sides are powers of two in
    [MIN_IMAGE_SIZE, MAX_IMAGE_SIZE] (square or not); else a ``ValueError`` naming the
    component."""
    if len(data_shape) != 3:
        raise ValueError(
            f"{component}: expected image data of shape (C, H, W) (got {_shape_text(data_shape)})"
        )
    channels, height, width = data_shape
    if channels < 1 or not all(
        side & (side - 1) == 0 and MIN_IMAGE_SIZE <= side <= MAX_IMAGE_SIZE
        for side in (height, width)
    ):
        raise ValueError(
            f"{component}: image height and width must each be a power of two from "
            f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} (got {_shape_text(data_shape)})"
        )
    return channels, (height, width)


def _base_shape(height: int, width: int) -> tuple[int, int]:
    """The coarsest feature map of a DCGAN for ``height x width`` images: 4 on the shorter side,
    the aspect ratio kept (4x4 for square images, 4x8 for 32x64)."""
    shorter = min(height, width)
    return 4 * height // shorter, 4 * width // shorter


def _check_unconditional(component: str, context: BuildContextLike) -> None:
    """Refuse image-to-image use: these generators take latents and choose ``latent_dim``."""
    input_shape = getattr(context, "input_shape", None)
    if input_shape is not None:
        raise ValueError(
            f"{component}: takes latents, not inputs (got input shape {_shape_text(input_shape)})"
        )


def _activation(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else nn.LeakyReLU(LEAKY_SLOPE)


def _check_no_extra(component: str, extra: tuple[torch.Tensor, ...]) -> None:
    if extra:
        raise ValueError(
            f"{component}: is unconditional and takes no conditioning inputs (got {len(extra)})"
        )


def _dcgan_init(module: nn.Module) -> None:
    """DCGAN init: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, INIT_STD)
        elif isinstance(layer, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d):
            if layer.weight is not None:
                nn.init.normal_(layer.weight, 1.0, INIT_STD)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def _dcgan_width(channels: int, max_channels: int, image_size: int, resolution: int) -> int:
    """Feature maps at ``resolution``: ``channels`` at half the image size, doubling per halving of
    the resolution, capped at ``max_channels``."""
    return min(channels * (image_size // 2) // resolution, max_channels)


# --------------------------------------------------------------------------------------------------
# MLP for vector data
# --------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MLPGeneratorOptions:
    """Options of :class:`MLPGenerator`; defaults follow the WGAN-GP toy generator (2-D noise,
    3 hidden layers of 512, ReLU)."""

    latent_dim: int = attrs.field(
        default=2,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the latent vector z ~ N(0, I); >= 1"},
    )
    hidden: int = attrs.field(
        default=512,
        validator=attrs.validators.ge(1),
        metadata={"doc": "units in each hidden layer; >= 1"},
    )
    depth: int = attrs.field(
        default=3,
        validator=attrs.validators.ge(1),
        metadata={"doc": "number of hidden layers; >= 1"},
    )
    activation: str = attrs.field(
        default="relu",
        validator=attrs.validators.in_(ACTIVATIONS),
        metadata={"doc": "hidden nonlinearity: 'relu' or 'leaky-relu' (slope 0.2)"},
    )
    norm: str = attrs.field(
        default="none",
        validator=attrs.validators.in_(MLP_NORMS),
        metadata={
            "doc": "normalization between each hidden layer's Linear and its nonlinearity: "
            "'none', 'batch' (BatchNorm1d, the generator of VEEGAN's and PacGAN's 2-D "
            "experiments) or 'layer' (LayerNorm over each sample's units: no batch statistics)"
        },
    )


@attrs.frozen(kw_only=True)
class MLPCriticOptions:
    """Options of :class:`MLPCritic`; defaults follow the WGAN-GP toy critic (3 hidden layers of
    512, ReLU)."""

    hidden: int = attrs.field(
        default=512,
        validator=attrs.validators.ge(1),
        metadata={"doc": "units in each hidden layer; >= 1"},
    )
    depth: int = attrs.field(
        default=3,
        validator=attrs.validators.ge(1),
        metadata={"doc": "number of hidden layers; >= 1"},
    )
    activation: str = attrs.field(
        default="relu",
        validator=attrs.validators.in_(ACTIVATIONS),
        metadata={"doc": "hidden nonlinearity: 'relu' or 'leaky-relu' (slope 0.2)"},
    )


def _mlp(
    in_features: int,
    out_features: int,
    hidden: int,
    depth: int,
    activation: str,
    norm: str = "none",
) -> nn.Sequential:
    """``depth`` hidden Linear (+ BatchNorm1d when ``norm`` is 'batch', LayerNorm when 'layer') +
    activation layers, then a linear output layer."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers.append(nn.Linear(width, hidden))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(hidden))
        elif norm == "layer":
            layers.append(nn.LayerNorm(hidden))
        layers.append(_activation(activation))
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """Fully connected generator for vector data: ``[N, latent_dim]`` -> ``[N, D]``, linear output.

    The toy-data generator of Gulrajani et al. 2017 ("Improved Training of Wasserstein GANs").
    """

    def __init__(
        self,
        latent_dim: int,  # size of the latent vector z
        data_dim: int,  # D, size of one output point
        hidden: int,  # units per hidden layer
        depth: int,  # number of hidden layers
        activation: str,  # "relu" or "leaky-relu"
        norm: str = "none",  # "none", "batch" or "layer"
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.data_dim = data_dim
        self.net: nn.Sequential = _mlp(latent_dim, data_dim, hidden, depth, activation, norm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"mlp generator: expected latents [N, {self.latent_dim}] (got {list(z.shape)})"
            )
        out: torch.Tensor = self.net(z)
        return out


class MLPCritic(nn.Module):
    """Fully connected critic for vector data: ``[N, D]`` -> scores ``[N]``.

    The toy-data critic of Gulrajani et al. 2017 ("Improved Training of Wasserstein GANs").
    """

    def __init__(
        self,
        data_dim: int,  # D, size of one input point
        hidden: int,  # units per hidden layer
        depth: int,  # number of hidden layers
        activation: str,  # "relu" or "leaky-relu"
    ) -> None:
        super().__init__()
        self.data_dim = data_dim
        self.net: nn.Sequential = _mlp(data_dim, 1, hidden, depth, activation)
        self.feature_dim = hidden if depth > 0 else data_dim

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        _check_no_extra("mlp critic", extra)
        if x.ndim != 2 or x.shape[1] != self.data_dim:
            raise ValueError(
                f"mlp critic: expected points [N, {self.data_dim}] (got {list(x.shape)})"
            )
        scores: torch.Tensor = rearrange(self.net(x), "n 1 -> n")
        return scores

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations ``[N, feature_dim]`` (``FeatureCritic``)."""
        _check_no_extra("mlp critic", extra)
        if x.ndim != 2 or x.shape[1] != self.data_dim:
            raise ValueError(
                f"mlp critic: expected points [N, {self.data_dim}] (got {list(x.shape)})"
            )
        hidden: torch.Tensor = self.net[:-1](x)
        return hidden

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """The last (linear) layer on ``features`` ``[N, feature_dim]``: scores ``[N]``."""
        scores: torch.Tensor = rearrange(self.net[-1](features), "n 1 -> n")
        return scores


def build_mlp_generator(options: MLPGeneratorOptions, context: BuildContextLike) -> MLPGenerator:
    """MLP generator for vector data of shape ``(D,)``."""
    data_dim = _vector_dim("mlp generator", context.data_shape)
    _check_unconditional("mlp generator", context)
    return MLPGenerator(
        latent_dim=options.latent_dim,
        data_dim=data_dim,
        hidden=options.hidden,
        depth=options.depth,
        activation=options.activation,
        norm=options.norm,
    )


def build_mlp_critic(options: MLPCriticOptions, context: BuildContextLike) -> MLPCritic:
    """MLP critic for vector data of shape ``(D,)``."""
    data_dim = _vector_dim("mlp critic", context.data_shape)
    return MLPCritic(
        data_dim=data_dim,
        hidden=options.hidden,
        depth=options.depth,
        activation=options.activation,
    )


# --------------------------------------------------------------------------------------------------
# DCGAN for images
# --------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DCGANGeneratorOptions:
    """Options of :class:`DCGANGenerator` (defaults from Radford et al. 2016)."""

    latent_dim: int = attrs.field(
        default=100,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the latent vector z ~ N(0, I); >= 1"},
    )
    channels: int = attrs.field(
        default=64,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "feature maps of the last hidden layer (half the image size); each coarser "
            "layer has twice as many, up to max_channels; >= 1"
        },
    )
    max_channels: int = attrs.field(
        default=512,
        validator=attrs.validators.ge(1),
        metadata={"doc": "cap on the feature maps of any layer; >= 1"},
    )


@attrs.frozen(kw_only=True)
class DCGANCriticOptions:
    """Options of :class:`DCGANCritic` (defaults from Radford et al. 2016)."""

    channels: int = attrs.field(
        default=64,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "feature maps of the first layer (half the image size); each coarser layer "
            "has twice as many, up to max_channels; >= 1"
        },
    )
    max_channels: int = attrs.field(
        default=512,
        validator=attrs.validators.ge(1),
        metadata={"doc": "cap on the feature maps of any layer; >= 1"},
    )
    norm: str = attrs.field(
        default="batch",
        validator=attrs.validators.in_(NORMS),
        metadata={
            "doc": "normalization after every conv but the first and the last: 'batch' (DCGAN), "
            "'layer' (GroupNorm with one group), 'instance' or 'none'; gradient penalties "
            "(WGAN-GP) need 'layer' or 'none'"
        },
    )


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks").

    ``[N, latent_dim]`` -> ``[N, C, S, S]`` in ``[-1, 1]``: a 4x4 transposed conv projects z to
    4x4 feature maps, then stride-2 transposed convs (kernel 4, padding 1) double the resolution up
    to ``S``; BatchNorm + ReLU on hidden layers, tanh on the output. Rectangular images
    ``[N, C, H, W]`` (``image_size = (H, W)``, both powers of two) start from a map with 4 on the
    shorter side and the images' aspect ratio (4x8 for 32x64); widths follow the shorter side.
    """

    def __init__(
        self,
        latent_dim: int,  # size of the latent vector z
        image_channels: int,  # C of the output images
        image_size: int | tuple[int, int],  # S (square) or (H, W), powers of two in [8, 128]
        channels: int,  # feature maps at resolution S/2, doubling per halving of the resolution
        max_channels: int,  # cap on the feature maps of any layer
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.image_channels = image_channels
        self.image_size = image_size
        height, width_px = image_size if isinstance(image_size, tuple) else (image_size,) * 2
        shorter = min(height, width_px)
        base = _base_shape(height, width_px)

        def width(resolution: int) -> int:
            return _dcgan_width(channels, max_channels, shorter, resolution)

        # z as a 1x1 map -> 4x4 (or the base map); conv biases are dropped where BatchNorm follows
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(
                latent_dim, width(4), kernel_size=base, stride=1, padding=0, bias=False
            ),
            nn.BatchNorm2d(width(4)),
            nn.ReLU(),
        ]
        resolution = 4  # of the shorter side
        while resolution * 2 < shorter:
            layers += [
                nn.ConvTranspose2d(
                    width(resolution), width(resolution * 2), 4, stride=2, padding=1, bias=False
                ),
                nn.BatchNorm2d(width(resolution * 2)),
                nn.ReLU(),
            ]
            resolution *= 2
        layers += [
            nn.ConvTranspose2d(width(resolution), image_channels, 4, stride=2, padding=1),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)
        _dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"dcgan generator: expected latents [N, {self.latent_dim}] (got {list(z.shape)})"
            )
        out: torch.Tensor = self.net(rearrange(z, "n latent -> n latent 1 1"))
        return out


def _critic_norm(norm: str, features: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(features)
    if norm == "layer":  # normalises over C, H, W of each sample, with per-channel affine
        return nn.GroupNorm(1, features)
    if norm == "instance":
        return nn.InstanceNorm2d(features, affine=True)
    return nn.Identity()


class DCGANCritic(nn.Module):
    """DCGAN critic (Radford et al. 2016, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks").

    ``[N, C, S, S]`` -> scores ``[N]``: stride-2 convs (kernel 4, padding 1) with LeakyReLU(0.2)
    halve the resolution down to 4x4 (no normalization on the first), then a 4x4 conv gives one
    raw score per image. Rectangular images ``[N, C, H, W]`` (``image_size = (H, W)``) are halved
    until the shorter side is 4, and the scoring conv covers the whole map (4x8 for 32x64).
    """

    def __init__(
        self,
        image_channels: int,  # C of the input images
        image_size: int | tuple[int, int],  # S (square) or (H, W), powers of two in [8, 128]
        channels: int,  # feature maps at resolution S/2, doubling per halving of the resolution
        max_channels: int,  # cap on the feature maps of any layer
        norm: str,  # "batch", "layer", "instance" or "none"
    ) -> None:
        super().__init__()
        self.image_channels = image_channels
        self.image_size = image_size
        self._image_hw = image_size if isinstance(image_size, tuple) else (image_size,) * 2
        shorter = min(self._image_hw)
        self._base = _base_shape(*self._image_hw)

        def width(resolution: int) -> int:
            return _dcgan_width(channels, max_channels, shorter, resolution)

        resolution = shorter // 2  # of the shorter side
        layers: list[nn.Module] = [
            nn.Conv2d(image_channels, width(resolution), 4, stride=2, padding=1),
            nn.LeakyReLU(LEAKY_SLOPE),
        ]
        while resolution > 4:
            layers += [
                # a bias would be cancelled by the normalization's mean subtraction
                nn.Conv2d(
                    width(resolution),
                    width(resolution // 2),
                    4,
                    stride=2,
                    padding=1,
                    bias=norm == "none",
                ),
                _critic_norm(norm, width(resolution // 2)),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
            resolution //= 2
        layers.append(nn.Conv2d(width(4), 1, kernel_size=self._base, stride=1, padding=0))
        self.net = nn.Sequential(*layers)
        self._feature_channels = width(4)
        self.feature_dim = width(4) * self._base[0] * self._base[1]
        _dcgan_init(self)

    def _check_input(self, x: torch.Tensor, extra: tuple[torch.Tensor, ...]) -> None:
        _check_no_extra("dcgan critic", extra)
        expected = [self.image_channels, *self._image_hw]
        if x.ndim != 4 or list(x.shape[1:]) != expected:
            raise ValueError(
                f"dcgan critic: expected images [N, {', '.join(map(str, expected))}] "
                f"(got {list(x.shape)})"
            )

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        self._check_input(x, extra)
        scores: torch.Tensor = rearrange(self.net(x), "n 1 1 1 -> n")
        return scores

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """The 4x4 (base) feature maps before the scoring conv, flattened: ``[N, feature_dim]``
        (``FeatureCritic``)."""
        self._check_input(x, extra)
        maps: torch.Tensor = self.net[:-1](x)
        return rearrange(maps, "n c h w -> n (c h w)")

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """The 4x4 scoring conv on flattened ``features`` ``[N, feature_dim]``: scores ``[N]``."""
        height, width = self._base
        maps = rearrange(
            features, "n (c h w) -> n c h w", c=self._feature_channels, h=height, w=width
        )
        scores: torch.Tensor = rearrange(self.net[-1](maps), "n 1 1 1 -> n")
        return scores

    @property
    def blocks(self) -> list[nn.Module]:
        """The critic's blocks from input to score, each a conv with its normalization and
        activation (the last is the 4x4 scoring conv). Views of ``net``'s layers, so freezing a
        block's parameters freezes them in the critic (Freeze-D, Mo et al. 2020)."""
        groups: list[list[nn.Module]] = []
        for layer in self.net:
            if isinstance(layer, nn.Conv2d):
                groups.append([])
            groups[-1].append(layer)
        return [nn.Sequential(*group) for group in groups]


def build_dcgan_generator(
    options: DCGANGeneratorOptions, context: BuildContextLike
) -> DCGANGenerator:
    """DCGAN generator for images of shape ``(C, H, W)``, ``H`` and ``W`` powers of two in
    [8, 128]."""
    image_channels, (height, width) = _image_shape("dcgan generator", context.data_shape)
    _check_unconditional("dcgan generator", context)
    return DCGANGenerator(
        latent_dim=options.latent_dim,
        image_channels=image_channels,
        image_size=height if height == width else (height, width),
        channels=options.channels,
        max_channels=options.max_channels,
    )


def build_dcgan_critic(options: DCGANCriticOptions, context: BuildContextLike) -> DCGANCritic:
    """DCGAN critic for images of shape ``(C, H, W)``, ``H`` and ``W`` powers of two in
    [8, 128]."""
    image_channels, (height, width) = _image_shape("dcgan critic", context.data_shape)
    return DCGANCritic(
        image_channels=image_channels,
        image_size=height if height == width else (height, width),
        channels=options.channels,
        max_channels=options.max_channels,
        norm=options.norm,
    )
