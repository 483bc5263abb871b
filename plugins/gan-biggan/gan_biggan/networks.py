"""The generators and critics ``sagan`` (Zhang et al. 2019) and ``biggan`` (Brock et al. 2019).

Both are ResNet GANs with spectral normalization in the generator and the critic and a
self-attention block at one resolution; their widths are ``channels`` (BigGAN's ``ch``) times a
per-block multiplier, from a preset for the data's resolution (32, 64, 128, 256 px) unless
``block_multipliers`` is given.

- generator ``sagan``: ``G(z)``, batch norm in every block. Class-conditional through
  gan-conditional's ``conditional-batchnorm`` wrapper, which replaces the blocks' norms (named by
  :meth:`SAGANGenerator.conditional_norm_layers`) with per-class gains and biases.
- generator ``biggan``: ``G(z, y)``: a shared class embedding, and a hierarchical latent: ``z``
  split into one chunk for the first linear layer and one per block, each block's chunk
  concatenated with the embedding to condition its batch norms (:class:`HierarchicalBatchNorm`).
  Class-conditional by itself (inside the ``conditional`` task); unconditional without classes.
- critics ``sagan`` and ``biggan``: the same ResNet critic (a
  :class:`gancore.protocols.FeatureCritic`: sum-pooled features, a linear score), class-conditional
  through gan-conditional's ``projection`` wrapper.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from gan_biggan.layers import (
    CriticBlock,
    DeepCriticBlock,
    DeepGeneratorBlock,
    GeneratorBlock,
    HierarchicalBatchNorm,
    SelfAttention,
    conv,
    linear,
)
from gan_biggan.truncation import truncate_latents

__all__ = [
    "BigGANDeepCritic",
    "BigGANDeepCriticOptions",
    "BigGANDeepGenerator",
    "BigGANDeepGeneratorOptions",
    "BigGANGenerator",
    "BigGANGeneratorOptions",
    "CriticOptions",
    "ResNetCritic",
    "SAGANCriticOptions",
    "SAGANGenerator",
    "SAGANGeneratorOptions",
    "build_biggan_critic",
    "build_biggan_deep_critic",
    "build_biggan_deep_generator",
    "build_biggan_generator",
    "build_sagan_critic",
    "build_sagan_generator",
    "critic_plan",
    "generator_plan",
]

# Width multipliers per resolution (Brock et al. 2019, Tables 4-6 and their official code): the
# generator's entry 0 is the 4x4 input of the first block, entry k the output of block k; the
# critic's entry k the output of block k.
GENERATOR_PRESETS: dict[int, tuple[int, ...]] = {
    32: (4, 4, 4, 4),
    64: (16, 16, 8, 4, 2),
    128: (16, 16, 8, 4, 2, 1),
    256: (16, 16, 8, 8, 4, 2, 1),
}
CRITIC_PRESETS: dict[int, tuple[int, ...]] = {
    32: (4, 4, 4, 4),
    64: (1, 2, 4, 8, 16),
    128: (1, 2, 4, 8, 16, 16),
    256: (1, 2, 4, 8, 8, 16, 16),
}


def _square_resolution(component: str, data_shape: Any) -> tuple[int, int]:
    """``(channels, resolution)`` of image data ``(C, R, R)``, R a power of two >= 8."""
    shape = tuple(data_shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 8 or shape[1] & (shape[1] - 1):
        raise ValueError(
            f"{component}: expected square images (C, R, R) with R a power of two >= 8 "
            f"(got {shape})"
        )
    return int(shape[0]), int(shape[1])


def generator_plan(
    component: str, resolution: int, multipliers: tuple[int, ...] | None
) -> tuple[int, ...]:
    """The generator's width multipliers: one more than its blocks (4x4 up to ``resolution``)."""
    blocks = int(math.log2(resolution)) - 2
    if multipliers is None:
        multipliers = GENERATOR_PRESETS.get(resolution, (4,) * (blocks + 1))
    if len(multipliers) != blocks + 1:
        raise ValueError(
            f"{component}: block_multipliers needs {blocks + 1} entries for {resolution} px "
            f"(the 4x4 input and {blocks} up-sampling blocks; got {len(multipliers)})"
        )
    return tuple(multipliers)


def critic_plan(
    component: str, resolution: int, multipliers: tuple[int, ...] | None
) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """The critic's width multipliers and which blocks halve the resolution: down to 8x8 for
    images up to 32 px (BigGAN's CIFAR critic), to 4x4 from 64 px on; then blocks at that size."""
    final = 4 if resolution >= 64 else max(4, min(8, resolution // 2))
    downs = int(math.log2(resolution // final))
    if multipliers is None:
        multipliers = CRITIC_PRESETS.get(resolution, (4,) * (downs + 2))
    if len(multipliers) < downs:
        raise ValueError(
            f"{component}: block_multipliers needs at least {downs} entries for {resolution} px "
            f"(blocks down to {final}x{final}; got {len(multipliers)})"
        )
    return tuple(multipliers), tuple(k < downs for k in range(len(multipliers)))


def _attention_after(component: str, requested: int, resolutions: list[int]) -> int | None:
    """The index of the block whose output has ``requested`` resolution (0 = no attention)."""
    if requested == 0:
        return None
    if requested not in resolutions:
        choices = ", ".join(str(r) for r in sorted(set(resolutions)))
        raise ValueError(
            f"{component}: attention_resolution = {requested} is not a block resolution of "
            f"this network ({choices}); choose one of them, or 0 for no self-attention"
        )
    return resolutions.index(requested)


# -------------------------------------------------------------------------------------------------
# Options
# -------------------------------------------------------------------------------------------------


def _multipliers(value: Any) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(v) for v in value)


def _positive_entries(instance: Any, attribute: Any, value: tuple[int, ...] | None) -> None:
    if value is not None and (not value or any(v < 1 for v in value)):
        raise ValueError(f"'{attribute.name}' must be a non-empty list of ints >= 1 (got {value})")


def _multipliers_field() -> Any:
    return attrs.field(
        default=None,
        converter=_multipliers,
        validator=_positive_entries,
        metadata={
            "doc": "width of each block as a multiple of 'channels'; None = the preset for the "
            "data's resolution (32, 64, 128 or 256 px; BigGAN's architectures)"
        },
    )


def _sn_field(network: str) -> Any:
    return attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": f"spectral normalization on every layer of the {network} (the papers')"},
    )


def _attention_field(default: int, paper: str) -> Any:
    return attrs.field(
        default=default,
        validator=attrs.validators.ge(0),
        metadata={
            "doc": "feature-map side (px) after which the self-attention block sits; it must be "
            f"a block resolution of the network; 0 = none ({paper})"
        },
    )


def _channels_field(default: int, paper: str) -> Any:
    return attrs.field(
        default=default,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": f"base width ('ch'), >= 1; block k has ch * multiplier_k channels ({paper})"
        },
    )


@attrs.frozen(kw_only=True)
class SAGANGeneratorOptions:
    """Options of the ``sagan`` generator (Zhang et al. 2019)."""

    latent_dim: int = attrs.field(
        default=128,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the noise z ~ N(0, I), >= 1 (the paper's 128)"},
    )
    channels: int = _channels_field(64, "the paper's 64 at 128 px")
    block_multipliers: tuple[int, ...] | None = _multipliers_field()
    attention_resolution: int = _attention_field(32, "the paper's best: 32 at 128 px")
    spectral_norm: bool = _sn_field("generator")


@attrs.frozen(kw_only=True)
class BigGANGeneratorOptions:
    """Options of the ``biggan`` generator (Brock et al. 2019)."""

    latent_dim: int = attrs.field(
        default=120,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "size of z ~ N(0, I), >= 1; with 'hierarchical' it must split into equal "
            "chunks, one per block plus one (the paper's 120 = 6 x 20 at 128 px)"
        },
    )
    channels: int = _channels_field(96, "the paper's 96 at 128 px")
    block_multipliers: tuple[int, ...] | None = _multipliers_field()
    attention_resolution: int = _attention_field(64, "the paper's 64")
    embed_dim: int = attrs.field(
        default=128,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the shared class embedding, >= 1 (the paper's 128)"},
    )
    hierarchical: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "split z over the first layer and the blocks (hierarchical latent); false = "
            "all of z to the first layer, the norms conditioned on the embedding alone"
        },
    )
    spectral_norm: bool = _sn_field("generator")
    classes: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.ge(2)),
        metadata={
            "doc": "number of classes, >= 2; None = the dataset's inside a conditional task, "
            "else unconditional (no embedding)"
        },
    )


def _classes_field() -> Any:
    return attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.ge(2)),
        metadata={
            "doc": "number of classes, >= 2; None = the dataset's inside a conditional task, "
            "else unconditional (no embedding)"
        },
    )


@attrs.frozen(kw_only=True)
class BigGANDeepGeneratorOptions:
    """Options of the ``biggan-deep`` generator (Brock et al. 2019, Appendix B)."""

    latent_dim: int = attrs.field(
        default=128,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "size of z ~ N(0, I), >= 1; all of it reaches every block (the paper's 128)"
        },
    )
    channels: int = _channels_field(128, "the paper's 128")
    block_multipliers: tuple[int, ...] | None = _multipliers_field()
    attention_resolution: int = _attention_field(64, "the paper's 64")
    embed_dim: int = attrs.field(
        default=128,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the shared class embedding, >= 1 (the paper's 128)"},
    )
    spectral_norm: bool = _sn_field("generator")
    classes: int | None = _classes_field()


@attrs.frozen(kw_only=True)
class BigGANDeepCriticOptions:
    """Options of the ``biggan-deep`` critic (Brock et al. 2019, Appendix B)."""

    channels: int = _channels_field(128, "the paper's 128")
    block_multipliers: tuple[int, ...] | None = _multipliers_field()
    attention_resolution: int = _attention_field(64, "the paper's 64")
    spectral_norm: bool = _sn_field("critic")


@attrs.frozen(kw_only=True)
class CriticOptions:
    """Options of the ``biggan`` critic (Brock et al. 2019)."""

    channels: int = _channels_field(96, "the paper's 96 at 128 px")
    block_multipliers: tuple[int, ...] | None = _multipliers_field()
    attention_resolution: int = _attention_field(64, "the paper's 64")
    spectral_norm: bool = _sn_field("critic")


@attrs.frozen(kw_only=True)
class SAGANCriticOptions:
    """Options of the ``sagan`` critic (Zhang et al. 2019)."""

    channels: int = _channels_field(64, "the paper's 64 at 128 px")
    block_multipliers: tuple[int, ...] | None = _multipliers_field()
    attention_resolution: int = _attention_field(32, "the paper's 32 at 128 px")
    spectral_norm: bool = _sn_field("critic")


# -------------------------------------------------------------------------------------------------
# Generators
# -------------------------------------------------------------------------------------------------


class _ResNetGenerator(nn.Module):
    """What ``sagan``, ``biggan`` and ``biggan-deep`` share: ``z0 -> linear -> [4x4] -> blocks
    (attention after one) -> BN -> ReLU -> conv3x3 -> tanh``, and the truncation of the latents."""

    def __init__(
        self,
        first_dim: int,  # size of the vector that enters the first linear layer
        out_channels: int,  # channels of the images
        input_width: int,  # channels of the 4x4 input of the first block
        blocks: Sequence[nn.Module],  # the residual blocks, called as block(h, condition)
        block_widths: Sequence[int],  # each block's output channels
        attention_after: int | None,  # index of the block followed by self-attention
        sn: bool,
    ) -> None:
        super().__init__()
        self.truncation_threshold: float | None = None  # gan sample --truncation-threshold
        self.linear = linear(first_dim, input_width * 16, sn)
        self.blocks = nn.ModuleList(blocks)
        self.attention_after = attention_after
        self.attention = (
            SelfAttention(block_widths[attention_after], sn)
            if attention_after is not None
            else None
        )
        self.out_norm = nn.BatchNorm2d(block_widths[-1])  # unconditional, as in both papers
        self.out_conv = conv(block_widths[-1], out_channels, 3, sn)

    def _truncated(self, z: torch.Tensor) -> torch.Tensor:
        if self.truncation_threshold is None:
            return z
        return truncate_latents(z, self.truncation_threshold)

    def _synthesize(self, z0: torch.Tensor, conditions: list[torch.Tensor | None]) -> torch.Tensor:
        h = rearrange(self.linear(z0), "n (c h w) -> n c h w", h=4, w=4)
        for k, block in enumerate(self.blocks):
            h = block(h, conditions[k])
            if k == self.attention_after and self.attention is not None:
                h = self.attention(h)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


class SAGANGenerator(_ResNetGenerator):
    """The SAGAN generator ``G(z)``, ``z`` ``[N, latent_dim]`` -> images ``[N, C, R, R]`` in
    ``[-1, 1]`` (Zhang et al. 2019, Sec. 4-5: a ResNet generator with spectral norm, batch norm and
    self-attention). Wrap it in gan-conditional's ``conditional-batchnorm`` for classes."""

    def __init__(
        self,
        latent_dim: int,  # size of z
        out_channels: int,  # channels of the images
        widths: list[int],  # 4x4 input channels, then each block's output channels
        attention_after: int | None,  # block followed by self-attention; None = none
        sn: bool,  # spectral normalization everywhere
    ) -> None:
        blocks = [
            GeneratorBlock(a, b, nn.BatchNorm2d(a), nn.BatchNorm2d(b), sn)
            for a, b in itertools.pairwise(widths)
        ]
        super().__init__(
            latent_dim, out_channels, widths[0], blocks, widths[1:], attention_after, sn
        )
        self.widths = widths
        self.latent_dim = latent_dim

    def conditional_norm_layers(self) -> list[str]:
        """gan-conditional's hook: the blocks' norms take class conditioning (not the last)."""
        return [f"blocks.{k}.{n}" for k in range(len(self.blocks)) for n in ("norm1", "norm2")]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"generator 'sagan': expected latents [N, {self.latent_dim}] (got {list(z.shape)})"
            )
        return self._synthesize(self._truncated(z), [None] * len(self.blocks))


def _check_inputs(
    name: str, z: torch.Tensor, labels: torch.Tensor | None, latent_dim: int, classes: int | None
) -> None:
    """Latents ``[N, latent_dim]`` and, with classes, int64 labels ``[N]`` enter here."""
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(
            f"generator {name!r}: expected latents [N, {latent_dim}] (got {list(z.shape)})"
        )
    if classes is not None:
        if labels is None or labels.shape != (z.shape[0],) or labels.dtype != torch.int64:
            got = "none" if labels is None else f"{labels.dtype} {list(labels.shape)}"
            raise ValueError(
                f"generator {name!r}: expected int64 labels [{z.shape[0]}] (got {got})"
            )
    elif labels is not None:
        raise ValueError(f"generator {name!r}: built without classes, called with labels")


def _class_count(component: str, options: Any, context: Any) -> int | None:
    """The task's class count (context), else the ``classes`` option; None = unconditional."""
    given = getattr(context, "num_classes", None)
    if given is not None and options.classes is not None and given != options.classes:
        raise ValueError(
            f"{component}: classes = {options.classes} but the dataset has {given} classes; "
            "leave 'classes' unset inside a conditional task"
        )
    count: int | None = given if given is not None else options.classes
    return count


class BigGANGenerator(_ResNetGenerator):
    """The BigGAN generator ``G(z, y)`` (Brock et al. 2019, Sec. 3 and Appendix B, Fig. 15).

    ``z`` ``[N, latent_dim]`` is split into ``len(blocks) + 1`` equal chunks (hierarchical
    latent): chunk 0 enters the first linear layer; chunk ``k + 1`` is concatenated with the
    shared class embedding ``e(y)`` (one embedding for every block) into the condition ``c_k`` of
    block ``k``'s two conditional batch norms. Without hierarchy, all of ``z`` enters the linear
    layer and ``c_k = e(y)``. Without classes (``num_classes`` None), ``G(z)`` and ``c_k`` is the
    chunk alone. Labels: int64 ``[N]``.
    """

    def __init__(
        self,
        latent_dim: int,  # size of z
        out_channels: int,  # channels of the images
        widths: list[int],  # 4x4 input channels, then each block's output channels
        attention_after: int | None,  # block followed by self-attention; None = none
        num_classes: int | None,  # K, labels 0..K-1; None = unconditional
        embed_dim: int,  # size of the shared embedding
        hierarchical: bool,  # split z over the first layer and the blocks
        sn: bool,  # spectral normalization everywhere (not on the embedding)
    ) -> None:
        chunk = latent_dim // len(widths) if hierarchical else 0  # first layer + each block
        condition_dim = chunk + (embed_dim if num_classes is not None else 0)
        blocks = [
            GeneratorBlock(
                a,
                b,
                HierarchicalBatchNorm(a, condition_dim, sn),
                HierarchicalBatchNorm(b, condition_dim, sn),
                sn,
            )
            for a, b in itertools.pairwise(widths)
        ]
        first = chunk if hierarchical else latent_dim
        super().__init__(first, out_channels, widths[0], blocks, widths[1:], attention_after, sn)
        self.widths = widths
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.chunk = chunk  # size of each latent chunk; 0 = not hierarchical
        self.shared = nn.Embedding(num_classes, embed_dim) if num_classes is not None else None

    def conditions(
        self, z: torch.Tensor, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(z0, [c_0, ..., c_{B-1}])``: the first layer's latent and each block's condition."""
        embedding = self.shared(labels).to(z.dtype) if self.shared is not None else None
        if self.chunk:
            z0, *chunks = z.split(self.chunk, dim=1)
        else:
            z0, chunks = z, [z[:, :0]] * len(self.blocks)
        if embedding is None:
            return z0, list(chunks)
        return z0, [torch.cat([c, embedding], dim=1) for c in chunks]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_inputs("biggan", z, labels, self.latent_dim, self.num_classes)
        z0, conditions = self.conditions(self._truncated(z), labels)
        return self._synthesize(z0, list(conditions))


def _generator_layout(
    component: str, options: Any, context: Any
) -> tuple[int, list[int], int | None]:
    channels, resolution = _square_resolution(component, context.data_shape)
    plan = generator_plan(component, resolution, options.block_multipliers)
    widths = [options.channels * m for m in plan]
    resolutions = [8 * 2**k for k in range(len(plan) - 1)]
    after = _attention_after(component, options.attention_resolution, resolutions)
    return channels, widths, after


def build_sagan_generator(options: SAGANGeneratorOptions, context: Any) -> SAGANGenerator:
    """The ``sagan`` generator for the context's image shape."""
    channels, widths, after = _generator_layout("generator 'sagan'", options, context)
    return SAGANGenerator(options.latent_dim, channels, widths, after, options.spectral_norm)


def build_biggan_generator(options: BigGANGeneratorOptions, context: Any) -> BigGANGenerator:
    """The ``biggan`` generator; its classes come from the conditional task or ``classes``."""
    component = "generator 'biggan'"
    channels, widths, after = _generator_layout(component, options, context)
    classes = _class_count(component, options, context)
    parts = len(widths)  # the first layer and each block
    if options.hierarchical and options.latent_dim % parts:
        raise ValueError(
            f"{component}: latent_dim = {options.latent_dim} does not split into {parts} equal "
            f"chunks (the first layer and {parts - 1} blocks); use a multiple of {parts}"
        )
    if classes is None and not options.hierarchical:
        raise ValueError(
            f"{component}: without classes and without 'hierarchical' the norms have no "
            "condition; set hierarchical = true or use a conditional task"
        )
    return BigGANGenerator(
        options.latent_dim,
        channels,
        widths,
        after,
        classes,
        options.embed_dim,
        options.hierarchical,
        options.spectral_norm,
    )


class BigGANDeepGenerator(_ResNetGenerator):
    """The BigGAN-deep generator ``G(z, y)`` (Brock et al. 2019, Appendix B, Fig. 16(a)).

    Two bottleneck blocks (:class:`DeepGeneratorBlock`) per resolution, the second up-sampling;
    no latent splitting: ``c = [z, e(y)]`` (the whole ``z`` and the shared embedding) enters the
    first linear layer and conditions every block's batch norms. Without classes, ``G(z)`` and
    ``c = z``.
    """

    def __init__(
        self,
        latent_dim: int,  # size of z
        out_channels: int,  # channels of the images
        widths: list[int],  # 4x4 input channels, then each resolution's output channels
        attention_after: int | None,  # block followed by self-attention; None = none
        num_classes: int | None,  # K, labels 0..K-1; None = unconditional
        embed_dim: int,  # size of the shared embedding
        sn: bool,  # spectral normalization everywhere (not on the embedding)
    ) -> None:
        condition_dim = latent_dim + (embed_dim if num_classes is not None else 0)
        blocks: list[nn.Module] = []
        block_widths: list[int] = []
        for a, b in itertools.pairwise(widths):
            blocks += [
                DeepGeneratorBlock(a, a, condition_dim, False, sn),
                DeepGeneratorBlock(a, b, condition_dim, True, sn),
            ]
            block_widths += [a, b]
        super().__init__(
            condition_dim, out_channels, widths[0], blocks, block_widths, attention_after, sn
        )
        self.widths = widths
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.shared = nn.Embedding(num_classes, embed_dim) if num_classes is not None else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_inputs("biggan-deep", z, labels, self.latent_dim, self.num_classes)
        z = self._truncated(z)
        if self.shared is not None and labels is not None:
            z = torch.cat([z, self.shared(labels).to(z.dtype)], dim=1)
        return self._synthesize(z, [z] * len(self.blocks))


def build_biggan_deep_generator(
    options: BigGANDeepGeneratorOptions, context: Any
) -> BigGANDeepGenerator:
    """The ``biggan-deep`` generator; its classes come from the conditional task or ``classes``."""
    component = "generator 'biggan-deep'"
    channels, resolution = _square_resolution(component, context.data_shape)
    plan = generator_plan(component, resolution, options.block_multipliers)
    if any(b > a for a, b in itertools.pairwise(plan)):
        raise ValueError(
            f"{component}: block_multipliers must not increase (got {list(plan)}): a block's "
            "skip keeps the first channels of its input"
        )
    widths = [options.channels * m for m in plan]
    # two blocks per resolution: the first at the input's size, the second doubles it
    resolutions = [r for k in range(len(plan) - 1) for r in (4 * 2**k, 8 * 2**k)]
    after = _attention_after(component, options.attention_resolution, resolutions)
    return BigGANDeepGenerator(
        options.latent_dim,
        channels,
        widths,
        after,
        _class_count(component, options, context),
        options.embed_dim,
        options.spectral_norm,
    )


# -------------------------------------------------------------------------------------------------
# Critic
# -------------------------------------------------------------------------------------------------


class ResNetCritic(nn.Module):
    """The SAGAN / BigGAN critic: residual blocks (average pooling), self-attention after one,
    then ``phi(x) = sum over positions of relu(h)`` ``[N, feature_dim]`` and ``psi = linear``
    (Miyato & Koyama 2018, Fig. 14; Brock et al. 2019, Fig. 15). ``critic(x) = psi(phi(x))``
    ``[N]``; gan-conditional's ``projection`` adds ``embed(y)^T phi(x)``."""

    def __init__(
        self,
        in_channels: int,  # channels of the images
        widths: list[int],  # each block's output channels
        downsample: tuple[bool, ...],  # which blocks halve the resolution
        attention_after: int | None,  # block followed by self-attention; None = none
        sn: bool,  # spectral normalization everywhere
    ) -> None:
        super().__init__()
        inputs = [in_channels, *widths[:-1]]
        self.blocks = nn.ModuleList(
            CriticBlock(a, b, down, k > 0, sn)
            for k, (a, b, down) in enumerate(zip(inputs, widths, downsample, strict=True))
        )
        self.attention_after = attention_after
        self.attention = (
            SelfAttention(widths[attention_after], sn) if attention_after is not None else None
        )
        self.feature_dim = widths[-1]
        self.head = linear(widths[-1], 1, sn)

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        h = x
        for k, block in enumerate(self.blocks):
            h = block(h)
            if k == self.attention_after and self.attention is not None:
                h = self.attention(h)
        return F.relu(h).sum(dim=(2, 3))

    def score(self, features: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.head(features)
        return scores[:, 0]

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x, *extra))


def _build_critic(component: str, options: Any, context: Any) -> ResNetCritic:
    channels, resolution = _square_resolution(component, context.data_shape)
    plan, downsample = critic_plan(component, resolution, options.block_multipliers)
    resolutions, side = [], resolution
    for down in downsample:
        side = side // 2 if down else side
        resolutions.append(side)
    after = _attention_after(component, options.attention_resolution, resolutions)
    widths = [options.channels * m for m in plan]
    return ResNetCritic(channels, widths, downsample, after, options.spectral_norm)


def build_sagan_critic(options: SAGANCriticOptions, context: Any) -> ResNetCritic:
    """The ``sagan`` critic for the context's image shape."""
    return _build_critic("critic 'sagan'", options, context)


def build_biggan_critic(options: CriticOptions, context: Any) -> ResNetCritic:
    """The ``biggan`` critic for the context's image shape."""
    return _build_critic("critic 'biggan'", options, context)


class BigGANDeepCritic(ResNetCritic):
    """The BigGAN-deep critic (Brock et al. 2019, Appendix B, Fig. 16(c)): a 3x3 input
    convolution, then two bottleneck blocks (:class:`DeepCriticBlock`) per stage, the first
    halving the resolution where the plan says, self-attention after one block, and the same
    ``phi`` (sum-pooled ReLU features) and linear ``psi`` as :class:`ResNetCritic`."""

    def __init__(
        self,
        in_channels: int,  # channels of the images
        widths: list[int],  # each stage's output channels (non-decreasing)
        downsample: tuple[bool, ...],  # which stages halve the resolution
        attention_after: int | None,  # block followed by self-attention; None = none
        sn: bool,  # spectral normalization everywhere
    ) -> None:
        nn.Module.__init__(self)
        self.input_conv = conv(in_channels, widths[0], 3, sn)
        blocks: list[nn.Module] = []
        previous = widths[0]
        for width, down in zip(widths, downsample, strict=True):
            blocks += [
                DeepCriticBlock(previous, width, down, sn),
                DeepCriticBlock(width, width, False, sn),
            ]
            previous = width
        self.blocks = nn.ModuleList(blocks)
        self.attention_after = attention_after
        self.attention = (
            SelfAttention(widths[attention_after // 2], sn) if attention_after is not None else None
        )
        self.feature_dim = widths[-1]
        self.head = linear(widths[-1], 1, sn)

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return super().features(self.input_conv(x), *extra)


def build_biggan_deep_critic(options: BigGANDeepCriticOptions, context: Any) -> BigGANDeepCritic:
    """The ``biggan-deep`` critic for the context's image shape."""
    component = "critic 'biggan-deep'"
    channels, resolution = _square_resolution(component, context.data_shape)
    plan, downsample = critic_plan(component, resolution, options.block_multipliers)
    if any(b < a for a, b in itertools.pairwise(plan)):
        raise ValueError(
            f"{component}: block_multipliers must not decrease (got {list(plan)}): a block's "
            "skip keeps every input channel"
        )
    resolutions, side = [], resolution
    for down in downsample:
        side = side // 2 if down else side
        resolutions += [side, side]
    after = _attention_after(component, options.attention_resolution, resolutions)
    widths = [options.channels * m for m in plan]
    return BigGANDeepCritic(channels, widths, downsample, after, options.spectral_norm)
