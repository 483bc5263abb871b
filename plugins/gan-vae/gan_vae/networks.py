"""Networks of gan-vae: VAE decoders (generators) with their encoders, and BEGAN's networks.

- ``vae-mlp`` and ``vae-conv`` are generators: the decoder ``p(x|z)``, ``[N, latent_dim] ->
  [N, C, H, W]`` in ``[-1, 1]``. Each also builds its matching encoder ``q(z|x)``
  (:meth:`VAEDecoder.build_encoder`): ``[N, C, H, W] -> (mu, logvar)``, two ``[N, latent_dim]``
  tensors. The tasks ``vae`` and ``vae-gan`` call it; this is the seam through which a generator
  registered by any plugin can serve as a VAE decoder.
- ``began`` (generator) and ``began-autoencoder`` (critic) follow Berthelot et al. 2017
  ("BEGAN: Boundary Equilibrium Generative Adversarial Networks", Sec. 3.5, Fig. 1): 3x3
  convolutions with ELU, two per resolution, stride-2 convolutions down and nearest-neighbour
  upsampling up, fully connected layers to and from an ``hidden``-dimensional code.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import attrs
import torch
from einops import rearrange
from torch import nn

__all__ = [
    "BEGANAutoencoder",
    "BEGANAutoencoderOptions",
    "BEGANDecoder",
    "BEGANGeneratorOptions",
    "ConvDecoder",
    "ConvEncoder",
    "MLPDecoder",
    "MLPEncoder",
    "VAEConvOptions",
    "VAEDecoder",
    "VAEMLPOptions",
    "build_began_autoencoder",
    "build_began_generator",
    "build_vae_conv",
    "build_vae_mlp",
]

INIT_STD = 0.02  # DCGAN's N(0, 0.02) init of conv weights (Radford et al. 2016, Sec. 4)
LEAKY_SLOPE = 0.2
NORMS = ("batch", "none")
BASE = 8  # BEGAN's coarsest resolution (8x8 maps, Berthelot et al. 2017, Fig. 1)


class BuildContextLike(Protocol):
    @property
    def data_shape(self) -> tuple[int, ...]: ...


class VAEDecoder(Protocol):
    """What the ``vae`` and ``vae-gan`` tasks need of their generator."""

    latent_dim: int

    def build_encoder(self) -> nn.Module:
        """A fresh encoder ``x [N, C, H, W] -> (mu, logvar)``, each ``[N, latent_dim]``."""
        ...

    def __call__(self, z: torch.Tensor, /) -> torch.Tensor: ...


def _image_shape(component: str, data_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(channels, size)`` of square power-of-two images of side >= 8; else a ValueError."""
    if len(data_shape) != 3:
        raise ValueError(
            f"{component}: expected image data of shape (C, H, W) (got "
            f"{'x'.join(map(str, data_shape)) or 'no shape'})"
        )
    channels, height, width = data_shape
    if channels < 1 or height != width or height < BASE or height & (height - 1):
        raise ValueError(
            f"{component}: image size must be a square power of two >= {BASE} (got "
            f"{channels}x{height}x{width})"
        )
    return channels, height


def _no_inputs(component: str, context: Any) -> None:
    input_shape = getattr(context, "input_shape", None)
    if input_shape is not None:
        raise ValueError(f"{component}: takes latents, not inputs (got input shape {input_shape})")


def _check_latents(component: str, z: torch.Tensor, latent_dim: int) -> None:
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"{component}: expected latents [N, {latent_dim}] (got {list(z.shape)})")


def _check_images(component: str, x: torch.Tensor, shape: tuple[int, ...]) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(
            f"{component}: expected images [N, {', '.join(map(str, shape))}] (got {list(x.shape)})"
        )


def _init(module: nn.Module) -> None:
    """Conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0 (DCGAN)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, INIT_STD)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, INIT_STD)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def _norm(norm: str, features: int) -> nn.Module:
    return nn.BatchNorm2d(features) if norm == "batch" else nn.Identity()


def _split(stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, 2 * latent_dim]`` -> ``(mu, logvar)``."""
    mu, logvar = stats.chunk(2, dim=1)
    return mu, logvar


# -------------------------------------------------------------------------------------------------
# vae-mlp
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class VAEMLPOptions:
    """Options of ``vae-mlp`` (Kingma & Welling 2014, App. C: one hidden layer of 500 on MNIST)."""

    latent_dim: int = attrs.field(
        default=16,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the latent z (the prior is N(0, I)); >= 1"},
    )
    hidden: int = attrs.field(
        default=256,
        validator=attrs.validators.ge(1),
        metadata={"doc": "units of each hidden layer, in the encoder and the decoder; >= 1"},
    )
    depth: int = attrs.field(
        default=2,
        validator=attrs.validators.ge(1),
        metadata={"doc": "hidden layers of the encoder and of the decoder (ReLU); >= 1"},
    )


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return layers


class MLPEncoder(nn.Module):
    """``[N, C, H, W] -> (mu, logvar)``: flatten, ``depth`` ReLU layers, a linear layer to
    ``2 * latent_dim``."""

    def __init__(self, shape: tuple[int, int, int], latent_dim: int, hidden: int, depth: int):
        super().__init__()
        self.shape, self.latent_dim = shape, latent_dim
        size = shape[0] * shape[1] * shape[2]
        self.net = nn.Sequential(*_mlp([size] + [hidden] * depth + [2 * latent_dim]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images("vae-mlp encoder", x, self.shape)
        return _split(self.net(rearrange(x, "n c h w -> n (c h w)")))


class MLPDecoder(nn.Module):
    """``[N, latent_dim] -> [N, C, H, W]`` in ``[-1, 1]``: ``depth`` ReLU layers, a linear layer,
    tanh."""

    def __init__(self, shape: tuple[int, int, int], latent_dim: int, hidden: int, depth: int):
        super().__init__()
        self.shape, self.latent_dim = shape, latent_dim
        self.hidden, self.depth = hidden, depth
        size = shape[0] * shape[1] * shape[2]
        self.net = nn.Sequential(*_mlp([latent_dim] + [hidden] * depth + [size]), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latents("vae-mlp", z, self.latent_dim)
        c, h, w = self.shape
        out: torch.Tensor = rearrange(self.net(z), "n (c h w) -> n c h w", c=c, h=h, w=w)
        return out

    def build_encoder(self) -> nn.Module:
        return MLPEncoder(self.shape, self.latent_dim, self.hidden, self.depth)


def build_vae_mlp(options: VAEMLPOptions, context: BuildContextLike) -> MLPDecoder:
    """``vae-mlp`` decoder for images ``(C, H, W)``; its encoder mirrors it."""
    shape = tuple(context.data_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"vae-mlp: expected image data of shape (C, H, W) (got {shape})")
    _no_inputs("vae-mlp", context)
    c, h, w = shape
    return MLPDecoder((c, h, w), options.latent_dim, options.hidden, options.depth)


# -------------------------------------------------------------------------------------------------
# vae-conv: DCGAN-shaped encoder and decoder
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class VAEConvOptions:
    """Options of ``vae-conv``: a DCGAN generator as decoder, a DCGAN critic as encoder (Radford
    et al. 2016) whose last 4x4 convolution gives ``2 * latent_dim`` values instead of a score."""

    latent_dim: int = attrs.field(
        default=32,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the latent z (the prior is N(0, I)); >= 1"},
    )
    channels: int = attrs.field(
        default=32,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "feature maps at half the image size; twice as many per halving, up to "
            "max_channels; >= 1"
        },
    )
    max_channels: int = attrs.field(
        default=256,
        validator=attrs.validators.ge(1),
        metadata={"doc": "cap on the feature maps of any layer; >= 1"},
    )
    norm: str = attrs.field(
        default="batch",
        validator=attrs.validators.in_(NORMS),
        metadata={"doc": "'batch' (BatchNorm after hidden convs, as DCGAN) or 'none'"},
    )


def _width(channels: int, max_channels: int, size: int, resolution: int) -> int:
    return min(channels * (size // 2) // resolution, max_channels)


class ConvEncoder(nn.Module):
    """``[N, C, S, S] -> (mu, logvar)``: stride-2 4x4 convs with LeakyReLU(0.2) down to 4x4
    (normalization after all but the first), then a 4x4 conv to ``2 * latent_dim``."""

    def __init__(
        self, shape: tuple[int, int, int], latent_dim: int, channels: int, top: int, norm: str
    ) -> None:
        super().__init__()
        self.shape, self.latent_dim = shape, latent_dim
        size = shape[1]
        resolution = size // 2
        layers: list[nn.Module] = [
            nn.Conv2d(shape[0], _width(channels, top, size, resolution), 4, 2, 1),
            nn.LeakyReLU(LEAKY_SLOPE),
        ]
        while resolution > 4:
            a = _width(channels, top, size, resolution)
            b = _width(channels, top, size, resolution // 2)
            layers += [
                nn.Conv2d(a, b, 4, 2, 1, bias=norm == "none"),
                _norm(norm, b),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
            resolution //= 2
        layers.append(nn.Conv2d(_width(channels, top, size, 4), 2 * latent_dim, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_images("vae-conv encoder", x, self.shape)
        return _split(rearrange(self.net(x), "n d 1 1 -> n d"))


class ConvDecoder(nn.Module):
    """``[N, latent_dim] -> [N, C, S, S]`` in ``[-1, 1]``: DCGAN's generator (a 4x4 transposed
    conv from z, stride-2 transposed convs with normalization and ReLU, tanh)."""

    def __init__(
        self, shape: tuple[int, int, int], latent_dim: int, channels: int, top: int, norm: str
    ) -> None:
        super().__init__()
        self.shape, self.latent_dim = shape, latent_dim
        self._settings = (channels, top, norm)
        size = shape[1]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, _width(channels, top, size, 4), 4, 1, 0, bias=False),
            _norm(norm, _width(channels, top, size, 4)),
            nn.ReLU(),
        ]
        resolution = 4
        while resolution * 2 < size:
            a = _width(channels, top, size, resolution)
            b = _width(channels, top, size, resolution * 2)
            layers += [
                nn.ConvTranspose2d(a, b, 4, 2, 1, bias=norm == "none"),
                _norm(norm, b),
                nn.ReLU(),
            ]
            resolution *= 2
        layers += [
            nn.ConvTranspose2d(_width(channels, top, size, resolution), shape[0], 4, 2, 1),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latents("vae-conv", z, self.latent_dim)
        out: torch.Tensor = self.net(rearrange(z, "n d -> n d 1 1"))
        return out

    def build_encoder(self) -> nn.Module:
        channels, top, norm = self._settings
        return ConvEncoder(self.shape, self.latent_dim, channels, top, norm)


def build_vae_conv(options: VAEConvOptions, context: BuildContextLike) -> ConvDecoder:
    """``vae-conv`` decoder for images ``(C, S, S)``, ``S`` a power of two >= 8."""
    channels, size = _image_shape("vae-conv", tuple(context.data_shape))
    _no_inputs("vae-conv", context)
    return ConvDecoder(
        (channels, size, size),
        options.latent_dim,
        options.channels,
        options.max_channels,
        options.norm,
    )


# -------------------------------------------------------------------------------------------------
# BEGAN
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class BEGANGeneratorOptions:
    """Options of the ``began`` generator: the decoder of BEGAN's autoencoder (Berthelot et al.
    2017, Fig. 1), with tanh on the output so that samples lie in ``[-1, 1]``."""

    latent_dim: int = attrs.field(
        default=32,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of z ~ N(0, I) (the paper: uniform, N_z = 64); >= 1"},
    )
    channels: int = attrs.field(
        default=32,
        validator=attrs.validators.ge(1),
        metadata={"doc": "n, the feature maps of every 3x3 conv (the paper: 64 or 128); >= 1"},
    )


@attrs.frozen(kw_only=True)
class BEGANAutoencoderOptions:
    """Options of the ``began-autoencoder`` critic (Berthelot et al. 2017, Fig. 1)."""

    hidden: int = attrs.field(
        default=32,
        validator=attrs.validators.ge(1),
        metadata={"doc": "N_h, size of the autoencoder's code (the paper: 64); >= 1"},
    )
    channels: int = attrs.field(
        default=32,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "n: feature maps of the first level; level l has l * n in the encoder and n "
            "in the decoder (the paper: 64 or 128); >= 1"
        },
    )
    eta: float = attrs.field(
        default=1.0,
        validator=[attrs.validators.instance_of(float), attrs.validators.in_((1.0, 2.0))],
        metadata={"doc": "eta in L(v) = |v - D(v)|^eta: 1.0 (L1, the paper's) or 2.0 (L2)"},
    )


def _elu_pair(a: int, b: int) -> list[nn.Module]:
    return [nn.Conv2d(a, b, 3, 1, 1), nn.ELU(), nn.Conv2d(b, b, 3, 1, 1), nn.ELU()]


class BEGANDecoder(nn.Module):
    """``[N, latent_dim] -> [N, C, S, S]``: a linear layer to ``n`` maps of 8x8 (the image size
    when smaller), then per resolution two 3x3 conv + ELU and a nearest x2 upsampling, and a 3x3
    conv to C; ``tanh`` on the output when ``bounded`` (the generator), none in the critic."""

    def __init__(
        self, shape: tuple[int, int, int], latent_dim: int, channels: int, bounded: bool
    ) -> None:
        super().__init__()
        self.shape, self.latent_dim, self.channels = shape, latent_dim, channels
        self.base = min(BASE, shape[1])
        self.fc = nn.Linear(latent_dim, channels * self.base * self.base)
        layers: list[nn.Module] = []
        resolution = self.base
        while True:
            layers += _elu_pair(channels, channels)
            if resolution == shape[1]:
                break
            layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
            resolution *= 2
        layers.append(nn.Conv2d(channels, shape[0], 3, 1, 1))
        if bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_latents("began", z, self.latent_dim)
        maps = rearrange(self.fc(z), "n (c h w) -> n c h w", c=self.channels, h=self.base)
        out: torch.Tensor = self.net(maps)
        return out


class BEGANAutoencoder(nn.Module):
    """BEGAN's critic, an autoencoder ``D``; as a gancore critic it returns the score
    ``-L(v) = -mean over C, H, W of |v - D(v)|^eta`` ``[N]`` (higher = better reconstructed =
    more "real"). :meth:`reconstruct` gives ``D(v)``.

    Encoder: a 3x3 conv to ``n`` maps, then per level ``l = 1, 2, ...`` two 3x3 conv + ELU with
    ``l * n`` maps and a stride-2 3x3 conv to ``(l + 1) * n`` maps, down to 8x8; a linear layer to
    the code ``h``. Decoder: :class:`BEGANDecoder` without tanh.
    """

    def __init__(self, shape: tuple[int, int, int], hidden: int, channels: int, eta: float):
        super().__init__()
        self.shape, self.eta = shape, eta
        base = min(BASE, shape[1])
        layers: list[nn.Module] = [nn.Conv2d(shape[0], channels, 3, 1, 1), nn.ELU()]
        level, resolution = 1, shape[1]
        while True:
            layers += _elu_pair(level * channels, level * channels)
            if resolution == base:
                break
            layers += [nn.Conv2d(level * channels, (level + 1) * channels, 3, 2, 1), nn.ELU()]
            level, resolution = level + 1, resolution // 2
        self.encoder = nn.Sequential(
            *layers, nn.Flatten(), nn.Linear(level * channels * base**2, hidden)
        )
        self.decoder = BEGANDecoder(shape, hidden, channels, bounded=False)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``D(x)`` ``[N, C, H, W]``."""
        _check_images("began-autoencoder", x, self.shape)
        out: torch.Tensor = self.decoder(self.encoder(x))
        return out

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if extra:
            raise ValueError(f"began-autoencoder: takes no conditioning inputs (got {len(extra)})")
        error = (x - self.reconstruct(x)).abs()
        if self.eta != 1.0:
            error = error.pow(self.eta)
        return -error.flatten(1).mean(dim=1)


def build_began_generator(
    options: BEGANGeneratorOptions, context: BuildContextLike
) -> BEGANDecoder:
    """``began`` generator for images ``(C, S, S)``."""
    channels, size = _image_shape("began generator", tuple(context.data_shape))
    _no_inputs("began generator", context)
    return BEGANDecoder((channels, size, size), options.latent_dim, options.channels, True)


def build_began_autoencoder(
    options: BEGANAutoencoderOptions, context: BuildContextLike
) -> BEGANAutoencoder:
    """``began-autoencoder`` critic for images ``(C, S, S)``."""
    channels, size = _image_shape("began-autoencoder", tuple(context.data_shape))
    return BEGANAutoencoder((channels, size, size), options.hidden, options.channels, options.eta)
