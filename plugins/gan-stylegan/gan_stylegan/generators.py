"""Style-based generators: StyleGAN (v1, AdaIN) and StyleGAN2 (modulated convolutions, skip
architecture), sharing the mapping network, truncation and style mixing.

A generator maps latents ``z`` ``[N, latent_dim]`` to images ``[N, C, R, R]`` in two stages:

- :meth:`StyleGenerator.mapping`: ``z`` -> ``ws`` ``[N, num_ws, style_dim]``, one ``w`` per style
  input (every layer that takes a style), with truncation applied;
- :meth:`StyleGenerator.synthesis`: ``ws`` -> images.

In training mode the mapping network updates its running mean of ``w`` (``w_avg``, a buffer, so
checkpoints and the EMA generator carry it) and :meth:`StyleGenerator.forward` applies style
mixing. In eval mode the per-layer noise is a fixed pattern (a buffer drawn from a fixed seed), so
sample grids and style-mixing grids are reproducible.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal, cast

import attrs
import torch
import torch.distributed as dist
from einops import repeat
from torch import nn

from gan_stylegan.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    GroupedConv,
    ModulatedConv2d,
    NoiseMode,
    activate,
    adain,
    pixel_norm,
    upsample2d,
)

__all__ = [
    "MappingNetwork",
    "StyleGAN2Generator",
    "StyleGAN2GeneratorOptions",
    "StyleGANGenerator",
    "StyleGANGeneratorOptions",
    "StyleGenerator",
    "build_stylegan2_generator",
    "build_stylegan_generator",
    "channel_widths",
    "check_image_shape",
]

MIN_RESOLUTION = 8
MAX_RESOLUTION = 1024
CONST_NOISE_SEED = 0x5EED  # seed of the fixed noise used in eval mode (plus the layer index)


# -------------------------------------------------------------------------------------------------
# Shape checks and widths
# -------------------------------------------------------------------------------------------------


def check_image_shape(component: str, data_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(channels, resolution)`` of square images ``(C, R, R)`` with ``C`` in {1, 3} and ``R`` a
    power of two from 8 to 1024; else a one-line ``ValueError`` naming ``component``."""
    shape_text = "x".join(str(s) for s in data_shape)
    if len(data_shape) != 3:
        raise ValueError(f"{component}: expected image data of shape (C, H, W) (got {shape_text})")
    channels, height, width = data_shape
    if (
        height != width
        or height < 1
        or height & (height - 1)
        or not (MIN_RESOLUTION <= height <= MAX_RESOLUTION)
    ):
        raise ValueError(
            f"{component}: image size must be a square power of two from {MIN_RESOLUTION} to "
            f"{MAX_RESOLUTION} (got {shape_text})"
        )
    if channels not in (1, 3):
        raise ValueError(f"{component}: images must have 1 or 3 channels (got {shape_text})")
    return channels, height


def channel_widths(
    component: str, resolution: int, channel_base: int, channel_max: int
) -> dict[int, int]:
    """Feature maps at every resolution 4..R: ``min(channel_base // r, channel_max)``."""
    widths = {4 * 2**i: 0 for i in range(int(math.log2(resolution)) - 1)}
    for r in widths:
        widths[r] = min(channel_base // r, channel_max)
    if widths[resolution] < 1:
        raise ValueError(
            f"{component}: channel_base // resolution must be >= 1 (got channel_base "
            f"{channel_base} for {resolution}x{resolution} images)"
        )
    return widths


def _check_unconditional(component: str, context: Any) -> None:
    input_shape = getattr(context, "input_shape", None)
    if input_shape is not None:
        shape_text = "x".join(str(s) for s in input_shape)
        raise ValueError(f"{component}: takes latents, not inputs (got input shape {shape_text})")


# -------------------------------------------------------------------------------------------------
# Options
# -------------------------------------------------------------------------------------------------

_positive = [attrs.validators.instance_of(int), attrs.validators.ge(1)]


def _int(default: int, text: str) -> Any:
    return attrs.field(default=default, validator=_positive, metadata={"doc": text})


def _fraction(default: float, text: str, *, open_zero: bool = False) -> Any:
    low = attrs.validators.gt(0.0) if open_zero else attrs.validators.ge(0.0)
    return attrs.field(
        default=default,
        converter=float,
        validator=[low, attrs.validators.le(1.0)],
        metadata={"doc": text},
    )


@attrs.frozen(kw_only=True)
class _StyleOptions:
    """Options both style-based generators share: the mapping network and style mixing."""

    latent_dim: int = _int(512, "size of the latent z ~ N(0, I); >= 1 (the papers' 512)")
    style_dim: int = _int(512, "size of the intermediate latent w; >= 1 (the papers' 512)")
    mapping_depth: int = _int(
        8, "fully connected layers of the mapping network; >= 1 (the papers' 8)"
    )
    mapping_width: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_positive),
        metadata={"doc": "hidden units of the mapping network; None = style_dim"},
    )
    mapping_lr_multiplier: float = attrs.field(
        default=0.01,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={
            "doc": "learning-rate multiplier of the mapping network (equalized lr); > 0 "
            "(the papers' 0.01)"
        },
    )
    w_avg_beta: float = _fraction(
        0.995,
        "decay of the running mean of w that truncation pulls towards: w_avg <- "
        "beta * w_avg + (1 - beta) * mean(w) at every training forward; in (0, 1] "
        "(the papers' 0.995)",
        open_zero=True,
    )
    style_mixing_prob: float = _fraction(
        0.9,
        "probability that a training batch mixes two latents' styles at a random crossover "
        "layer; in [0, 1] (the papers' 0.9; 0 = off)",
    )


@attrs.frozen(kw_only=True)
class StyleGANGeneratorOptions(_StyleOptions):
    """Options of the ``stylegan`` generator; defaults follow StyleGAN (Karras et al. 2019). The
    image size and channels come from the data."""

    channel_base: int = _int(
        16384,
        "feature maps at resolution r are min(channel_base // r, channel_max); >= 1 "
        "(StyleGAN: 16384, i.e. 16 maps at 1024 px)",
    )
    channel_max: int = _int(
        512, "cap on the feature maps at any resolution; >= 1 (the papers' 512)"
    )


@attrs.frozen(kw_only=True)
class StyleGAN2GeneratorOptions(_StyleOptions):
    """Options of the ``stylegan2`` generator; defaults follow StyleGAN2 config F (Karras et al.
    2020). The image size and channels come from the data."""

    channel_base: int = _int(
        32768,
        "feature maps at resolution r are min(channel_base // r, channel_max); >= 1 "
        "(StyleGAN2: 32768, i.e. 32 maps at 1024 px)",
    )
    channel_max: int = _int(
        512, "cap on the feature maps at any resolution; >= 1 (the papers' 512)"
    )
    grouped_conv: bool | Literal["auto"] = attrs.field(
        default="auto",
        validator=attrs.validators.in_((True, False, "auto")),
        metadata={
            "doc": "how the modulated convolution is computed (the same function either way): "
            "true = one grouped convolution with one group per sample (the paper's form); "
            "false = activations scaled around one shared convolution; 'auto' = grouped only "
            "on CUDA outside training, as the reference code (the activation form trained "
            "1.06-1.56x faster per CPU-second here)"
        },
    )


# -------------------------------------------------------------------------------------------------
# Mapping network
# -------------------------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """``z`` -> ``w``: pixel norm of ``z``, then ``depth`` equalized fully connected layers with
    leaky ReLU at learning-rate multiplier ``lr_multiplier`` (Karras et al. 2019, Sec. 2).

    ``w_avg`` (buffer ``[style_dim]``) is the running mean of ``w`` that truncation pulls towards:
    ``w_avg <- beta * w_avg + (1 - beta) * mean_n(w_n)`` whenever ``update_w_avg`` is true (the
    generator's training-mode forwards). In distributed training the batch mean is averaged over
    the processes, so every process keeps the same ``w_avg``; every process must then make the
    same training-mode forwards, as gancore's loop does.
    """

    def __init__(
        self,
        latent_dim: int,
        style_dim: int,
        *,
        depth: int = 8,
        width: int | None = None,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        width = width or style_dim
        sizes = [latent_dim] + [width] * (depth - 1) + [style_dim]
        self.layers = nn.Sequential(
            *[
                EqualizedLinear(a, b, lr_multiplier=lr_multiplier, activation="lrelu")
                for a, b in itertools.pairwise(sizes)
            ]
        )
        self.w_avg_beta = w_avg_beta
        self.w_avg: torch.Tensor
        self.register_buffer("w_avg", torch.zeros(style_dim))

    def forward(self, z: torch.Tensor, *, update_w_avg: bool = False) -> torch.Tensor:
        w = self.layers(pixel_norm(z))
        if update_w_avg:
            with torch.no_grad():  # a statistic, never differentiated
                mean = w.detach().mean(dim=0).to(self.w_avg.dtype)
                if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                    # The mean over every process's batch: all processes keep the same w_avg.
                    dist.all_reduce(mean)
                    mean = mean / dist.get_world_size()
                self.w_avg.copy_(mean.lerp(self.w_avg, self.w_avg_beta))
        return w


# -------------------------------------------------------------------------------------------------
# Noise inputs
# -------------------------------------------------------------------------------------------------


class NoiseInput(nn.Module):
    """Per-pixel Gaussian noise ``[N, 1, H, W]`` added to every feature map, scaled by a learned
    factor (zero at initialization): one per channel (StyleGAN) or one per layer (StyleGAN2).

    ``mode``: ``"random"`` draws fresh noise (training), ``"const"`` adds a fixed pattern (a
    buffer drawn once from a fixed seed; eval mode), ``"none"`` adds nothing.
    """

    def __init__(self, resolution: int, channels: int, seed: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        const = torch.randn(
            1, 1, resolution, resolution, generator=torch.Generator().manual_seed(seed)
        )
        # Not persistent: a deterministic function of the seed, so checkpoints need not store it.
        self.const: torch.Tensor
        self.register_buffer("const", const, persistent=False)

    def forward(self, x: torch.Tensor, mode: NoiseMode) -> torch.Tensor:
        if mode == "none":
            return x
        if mode == "const":
            noise = self.const.to(x.dtype)
        else:
            noise = torch.randn(
                x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype
            )
        return x + noise * self.strength.to(x.dtype)[None, :, None, None]


# -------------------------------------------------------------------------------------------------
# The shared generator: mapping, truncation, style mixing
# -------------------------------------------------------------------------------------------------


class StyleGenerator(nn.Module):
    """What both style-based generators share. Subclasses build ``synthesis_network`` (a module
    whose ``forward(ws, noise_mode)`` makes images) for ``num_ws`` style inputs.

    Attributes the ``gan`` CLI and the ``path-length`` regularizer use:

    - ``latent_dim``, ``style_dim``, ``num_ws``, ``resolution``, ``channels``;
    - ``truncation_psi`` (1.0 = off) and ``truncation_cutoff`` (``None`` = every layer, else only
      style inputs ``< cutoff``): truncation ``w' = w_avg + psi * (w - w_avg)`` (Karras et al.
      2019, Sec. 3.1) is applied by :meth:`mapping`, so by every forward, whenever ``psi != 1``;
    - ``style_mixing_prob``: in training mode, the probability that a batch uses a second latent's
      ``w`` from a random crossover layer on (Karras et al. 2019, Sec. 3.1);
    - ``noise_mode``: ``None`` = random noise in training mode, the fixed pattern in eval mode.
    """

    num_ws: int
    synthesis_network: nn.Module
    mapping_network: MappingNetwork

    def __init__(self, channels: int, resolution: int, options: _StyleOptions) -> None:
        super().__init__()
        self.channels, self.resolution = channels, resolution
        self.latent_dim, self.style_dim = options.latent_dim, options.style_dim
        self.num_ws = 2 * int(math.log2(resolution)) - 2  # two style inputs per resolution, 4x4 one
        self.style_mixing_prob = options.style_mixing_prob
        self.truncation_psi: float = 1.0
        self.truncation_cutoff: int | None = None
        self.noise_mode: NoiseMode | None = None
        self.mapping_network = MappingNetwork(
            options.latent_dim,
            options.style_dim,
            depth=options.mapping_depth,
            width=options.mapping_width,
            lr_multiplier=options.mapping_lr_multiplier,
            w_avg_beta=options.w_avg_beta,
        )

    # -- the two stages ---------------------------------------------------------------------------

    def _check_latents(self, z: torch.Tensor) -> None:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"{type(self).__name__}: expected latents [N, {self.latent_dim}] "
                f"(got {list(z.shape)})"
            )

    def mapping(
        self,
        z: torch.Tensor,
        *,
        truncation_psi: float | None = None,
        truncation_cutoff: int | None = None,
        update_w_avg: bool | None = None,
    ) -> torch.Tensor:
        """``z`` ``[N, latent_dim]`` -> ``ws`` ``[N, num_ws, style_dim]`` (one copy of ``w`` per
        style input), truncated with ``truncation_psi`` / ``truncation_cutoff`` (default: the
        generator's attributes). ``update_w_avg`` (default: in training mode) updates ``w_avg``
        from the untruncated ``w``."""
        self._check_latents(z)
        update = self.training if update_w_avg is None else update_w_avg
        w = self.mapping_network(z, update_w_avg=update)
        ws = repeat(w, "n d -> n l d", l=self.num_ws)
        psi = self.truncation_psi if truncation_psi is None else truncation_psi
        cutoff = self.truncation_cutoff if truncation_psi is None else truncation_cutoff
        return self.truncate(ws, psi, cutoff)

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """``w_avg + psi * (ws - w_avg)`` for style inputs ``< cutoff`` (all if ``None``)."""
        if psi == 1.0:
            return ws
        w_avg = self.mapping_network.w_avg.to(ws.dtype)
        truncated = w_avg.lerp(ws, psi)
        if cutoff is None or cutoff >= self.num_ws:
            return truncated
        return torch.cat([truncated[:, :cutoff], ws[:, cutoff:]], dim=1)

    def synthesis(self, ws: torch.Tensor, *, noise_mode: NoiseMode | None = None) -> torch.Tensor:
        """``ws`` ``[N, num_ws, style_dim]`` -> images ``[N, C, R, R]`` (not clamped)."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.style_dim):
            raise ValueError(
                f"{type(self).__name__}: expected ws [N, {self.num_ws}, {self.style_dim}] "
                f"(got {list(ws.shape)})"
            )
        mode = noise_mode or self.noise_mode or ("random" if self.training else "const")
        images: torch.Tensor = self.synthesis_network(ws, mode)
        return images

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ws = self.mapping(z)
        if self.training and self.style_mixing_prob > 0:
            ws = self.mix_random(z, ws)
        return self.synthesis(ws)

    # -- style mixing -----------------------------------------------------------------------------

    def mix_random(self, z: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        """Style mixing regularization: with probability ``style_mixing_prob``, style inputs from
        a crossover ``k ~ U{1, ..., num_ws - 1}`` on take ``w`` of a second latent ``z2 ~ N(0, I)``
        (one draw per batch, from torch's global random stream)."""
        if self.num_ws < 2 or torch.rand(()).item() >= self.style_mixing_prob:
            return ws
        crossover = int(torch.randint(1, self.num_ws, ()).item())
        other = self.mapping(torch.randn_like(z), update_w_avg=False)
        return torch.cat([ws[:, :crossover], other[:, crossover:]], dim=1)

    def mix_styles(self, rows: torch.Tensor, columns: torch.Tensor, crossover: int) -> torch.Tensor:
        """A style-mixing grid ``[R, C, channels, H, W]``: image ``[i, j]`` takes ``w`` of
        ``rows[i]`` for style inputs ``< crossover`` and ``w`` of ``columns[j]`` from
        ``crossover`` on. Truncation as configured; fixed noise; ``w_avg`` is not updated."""
        if not 0 <= crossover <= self.num_ws:
            raise ValueError(
                f"{type(self).__name__}: crossover must be in [0, {self.num_ws}] (got {crossover})"
            )
        row_ws = self.mapping(rows, update_w_avg=False)
        col_ws = self.mapping(columns, update_w_avg=False)
        num_rows, num_cols = row_ws.shape[0], col_ws.shape[0]
        mixed = torch.cat(
            [
                repeat(row_ws[:, :crossover], "r l d -> (r c) l d", c=num_cols),
                repeat(col_ws[:, crossover:], "c l d -> (r c) l d", r=num_rows),
            ],
            dim=1,
        )
        images = self.synthesis(mixed, noise_mode=self.noise_mode or "const")
        return images.reshape(num_rows, num_cols, *images.shape[1:])


# -------------------------------------------------------------------------------------------------
# StyleGAN (v1): learned constant, AdaIN, per-channel noise, bilinear up-sampling
# -------------------------------------------------------------------------------------------------


class AdaINLayer(nn.Module):
    """One StyleGAN layer: [bilinear 2x up-sampling], [3x3 conv], noise, bias, leaky ReLU, AdaIN
    with ``(y_s, y_b) = A(w)`` (an affine map whose ``y_s`` half starts at 1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        style_dim: int,
        resolution: int,
        w_index: int,
        *,
        conv: bool = True,
        up: bool = False,
    ) -> None:
        super().__init__()
        self.w_index, self.up = w_index, up
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False) if conv else None
        self.noise = NoiseInput(resolution, out_channels, CONST_NOISE_SEED + w_index)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bias_init = torch.cat([torch.ones(out_channels), torch.zeros(out_channels)])
        self.affine = EqualizedLinear(style_dim, 2 * out_channels, bias_init=bias_init)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode) -> torch.Tensor:
        if self.up:
            x = upsample2d(x)
        if self.conv is not None:
            x = self.conv(x)
        x = self.noise(x, noise_mode)
        x = activate(x + self.bias.to(x.dtype)[None, :, None, None], "lrelu")
        scale, bias = self.affine(w).chunk(2, dim=1)
        return adain(x, scale.to(x.dtype), bias.to(x.dtype))


class StyleGANSynthesis(nn.Module):
    """Learned constant 4x4 input, two AdaIN layers per resolution (the first of each resolution
    above 4 up-samples), a 1x1 ``toRGB`` at the output resolution (no progressive growing)."""

    def __init__(self, channels: int, resolution: int, style_dim: int, widths: dict[int, int]):
        super().__init__()
        self.const = nn.Parameter(torch.ones(widths[4], 4, 4))
        layers = [
            AdaINLayer(widths[4], widths[4], style_dim, 4, 0, conv=False),
            AdaINLayer(widths[4], widths[4], style_dim, 4, 1),
        ]
        for r in list(widths)[1:]:
            layers.append(AdaINLayer(widths[r // 2], widths[r], style_dim, r, len(layers), up=True))
            layers.append(AdaINLayer(widths[r], widths[r], style_dim, r, len(layers)))
        self.layers = nn.ModuleList(layers)
        self.to_rgb = EqualizedConv2d(widths[resolution], channels, 1)

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode) -> torch.Tensor:
        x = repeat(self.const, "c h w -> n c h w", n=ws.shape[0]).to(ws.dtype)
        for layer in cast(list[AdaINLayer], self.layers):
            x = layer(x, ws[:, layer.w_index], noise_mode)
        out: torch.Tensor = self.to_rgb(x)
        return out


class StyleGANGenerator(StyleGenerator):
    """The StyleGAN generator (Karras, Laine & Aila 2019, "A Style-Based Generator Architecture
    for Generative Adversarial Networks", Fig. 1b): mapping network, learned constant, AdaIN
    after every convolution with styles from affine maps of ``w``, per-layer noise with learned
    per-channel scales, bilinear up-sampling. ``num_ws = 2 * log2(R) - 2``."""

    def __init__(self, channels: int, resolution: int, options: StyleGANGeneratorOptions) -> None:
        super().__init__(channels, resolution, options)
        widths = channel_widths(
            "generator 'stylegan'", resolution, options.channel_base, options.channel_max
        )
        self.synthesis_network = StyleGANSynthesis(channels, resolution, options.style_dim, widths)


# -------------------------------------------------------------------------------------------------
# StyleGAN2: modulated convolutions, skip architecture
# -------------------------------------------------------------------------------------------------


class ModulatedLayer(nn.Module):
    """One StyleGAN2 layer: modulated + demodulated 3x3 conv ([bilinear 2x up-sampling first]),
    noise (one learned scale per layer), bias, leaky ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        style_dim: int,
        resolution: int,
        w_index: int,
        *,
        up: bool = False,
        grouped: GroupedConv = True,
    ) -> None:
        super().__init__()
        self.w_index = w_index
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, up=up, grouped=grouped)
        self.noise = NoiseInput(resolution, 1, CONST_NOISE_SEED + w_index)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode) -> torch.Tensor:
        x = self.noise(self.conv(x, w), noise_mode)
        return activate(x + self.bias.to(x.dtype)[None, :, None, None], "lrelu")


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to image channels without demodulation, plus bias; linear."""

    def __init__(
        self, in_channels: int, channels: int, style_dim: int, w_index: int, grouped: GroupedConv
    ) -> None:
        super().__init__()
        self.w_index = w_index
        self.conv = ModulatedConv2d(
            in_channels, channels, 1, style_dim, demodulate=False, grouped=grouped
        )
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        return x + self.bias.to(x.dtype)[None, :, None, None]


class StyleGAN2Block(nn.Module):
    """One resolution of the skip generator: (up-sampling layer,) layer, toRGB. The block at 4x4
    has one layer on the learned constant. Its toRGB shares its ``w`` with the next block's first
    layer, as in the reference, so ``num_ws = 2 * log2(R) - 2``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int,
        style_dim: int,
        resolution: int,
        first_w: int,
        grouped: GroupedConv,
    ) -> None:
        super().__init__()
        layers = []
        if resolution > 4:
            layers.append(
                ModulatedLayer(
                    in_channels,
                    out_channels,
                    style_dim,
                    resolution,
                    first_w,
                    up=True,
                    grouped=grouped,
                )
            )
        layers.append(
            ModulatedLayer(
                out_channels,
                out_channels,
                style_dim,
                resolution,
                first_w + len(layers),
                grouped=grouped,
            )
        )
        self.layers = nn.ModuleList(layers)
        self.to_rgb = ToRGB(out_channels, channels, style_dim, first_w + len(layers), grouped)


class StyleGAN2Synthesis(nn.Module):
    """Learned constant 4x4 input (``N(0, 1)``), one block per resolution; the output is the sum
    of every block's toRGB output, each bilinearly up-sampled to the next resolution (Karras et
    al. 2020, Fig. 7b, "skip" generator)."""

    def __init__(
        self,
        channels: int,
        resolution: int,
        style_dim: int,
        widths: dict[int, int],
        grouped: GroupedConv,
    ) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.randn(widths[4], 4, 4))
        blocks = []
        first_w = 0
        for r in widths:
            in_channels = widths[r // 2] if r > 4 else widths[4]
            blocks.append(
                StyleGAN2Block(in_channels, widths[r], channels, style_dim, r, first_w, grouped)
            )
            first_w += 1 if r == 4 else 2
        self.blocks = nn.ModuleList(blocks)

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode) -> torch.Tensor:
        x = repeat(self.const, "c h w -> n c h w", n=ws.shape[0]).to(ws.dtype)
        image: torch.Tensor | None = None
        for block in cast(list[StyleGAN2Block], self.blocks):
            for layer in cast(list[ModulatedLayer], block.layers):
                x = layer(x, ws[:, layer.w_index], noise_mode)
            rgb = block.to_rgb(x, ws[:, block.to_rgb.w_index])
            image = rgb if image is None else upsample2d(image) + rgb
        assert image is not None  # there is always a 4x4 block
        return image


class StyleGAN2Generator(StyleGenerator):
    """The StyleGAN2 generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of
    StyleGAN", config E/F without the larger networks' extras): mapping network, learned constant,
    modulated convolutions with weight demodulation (grouped convolution, one group per sample),
    noise inputs, skip (toRGB) architecture, no progressive growing. ``num_ws = 2 * log2(R) - 2``."""

    def __init__(self, channels: int, resolution: int, options: StyleGAN2GeneratorOptions) -> None:
        super().__init__(channels, resolution, options)
        widths = channel_widths(
            "generator 'stylegan2'", resolution, options.channel_base, options.channel_max
        )
        self.synthesis_network = StyleGAN2Synthesis(
            channels, resolution, options.style_dim, widths, options.grouped_conv
        )


# -------------------------------------------------------------------------------------------------
# Factories
# -------------------------------------------------------------------------------------------------


def build_stylegan_generator(options: StyleGANGeneratorOptions, context: Any) -> StyleGANGenerator:
    """The ``stylegan`` generator for the data's image shape ``(C, R, R)``."""
    _check_unconditional("generator 'stylegan'", context)
    channels, resolution = check_image_shape("generator 'stylegan'", tuple(context.data_shape))
    return StyleGANGenerator(channels, resolution, options)


def build_stylegan2_generator(
    options: StyleGAN2GeneratorOptions, context: Any
) -> StyleGAN2Generator:
    """The ``stylegan2`` generator for the data's image shape ``(C, R, R)``."""
    _check_unconditional("generator 'stylegan2'", context)
    channels, resolution = check_image_shape("generator 'stylegan2'", tuple(context.data_shape))
    return StyleGAN2Generator(channels, resolution, options)
