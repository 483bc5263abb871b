"""DeepFill v1's two-stage generator and a plain convolutional critic (Yu et al. 2018).

Generator (``deepfill``): ``[N, C + 1, H, W]`` (the image with its hole zeroed, then the mask, 1
in the hole) -> ``[N, C, H, W]`` in ``[-1, 1]``.

- **Coarse network**, the paper's layer spec with ``channels = 32`` and ``downsamples = 2``:
  K5S1C32 - K3S2C64 - K3S1C64 - K3S2C128 - K3S1C128 - K3S1C128 - dilated K3 D2/D4/D8/D16 C128 -
  K3S1C128 - K3S1C128 - up x2 - K3S1C64 - K3S1C64 - up x2 - K3S1C32 - K3S1C16 - K3S1C3 - clip.
  ``channels`` scales every width (32 -> c, 64 -> 2c, 128 -> 4c, 16 -> c/2); ``downsamples`` and
  ``dilations`` shrink the network for small images.
- **Refinement network**: its input is the coarse result composited into the known pixels. Two
  streams with the coarse encoder's layout: one with the dilated convolutions, one with
  contextual attention (:mod:`gan_inpaint.attention`) followed by two convolutions; the streams
  are concatenated before the last convolutions and the decoder.
- As in the paper: mirror (reflection) padding, no normalization, ELU activations, the output
  clipped to ``[-1, 1]`` instead of a tanh (``output = "tanh"`` puts a tanh there: a clipped pixel
  beyond the bound gets no gradient, and a stage can stall there). Each stage also sees a constant channel of ones, so
  that it can tell the image border from the hole.

``forward(inputs, return_coarse=True)`` returns ``(coarse, refined)``: the inpaint task puts its
reconstruction losses on both stages.

Critic (``deepfill``): stride-2 5x5 convolutions with LeakyReLU 0.2, widths doubling from
``channels`` up to ``max_channels``, then a linear layer to one score (the global and local critics
of DeepFill v1: 64, 128, 256, 256/512). No normalization, so it suits gradient penalties.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gan_inpaint.attention import IMPLEMENTATIONS, ContextualAttention

__all__ = [
    "DeepFillCritic",
    "DeepFillCriticOptions",
    "DeepFillGenerator",
    "DeepFillGeneratorOptions",
    "build_deepfill_critic",
    "build_deepfill_generator",
]


def _dilations(value: object) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list | tuple) else value  # type: ignore[return-value]


def _check_dilations(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    ok = isinstance(value, tuple) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value
    )
    if not ok:
        raise ValueError(f"'dilations' must be a list of integers >= 1 (got {value!r})")


@attrs.frozen(kw_only=True)
class DeepFillGeneratorOptions:
    """Options of the ``deepfill`` generator (Yu et al. 2018, DeepFill v1)."""

    channels: int = attrs.field(
        default=32,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(2)],
        metadata={"doc": "width of the first layer; every width scales with it (paper: 32); >= 2"},
    )
    downsamples: int = attrs.field(
        default=2,
        validator=[attrs.validators.instance_of(int), attrs.validators.in_((1, 2, 3))],
        metadata={"doc": "stride-2 stages of each encoder: 1, 2 (paper) or 3"},
    )
    dilations: tuple[int, ...] = attrs.field(
        default=(2, 4, 8, 16),
        converter=_dilations,
        validator=_check_dilations,
        metadata={
            "doc": "dilation rates of the middle convolutions, each below the feature map's side "
            "(paper: [2, 4, 8, 16] at 64x64 features); [] = none"
        },
    )
    attention: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "refinement with the contextual-attention stream (false = ablation)"},
    )
    attention_rate: int = attrs.field(
        default=2,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "contextual attention matches at 1/rate of its features (paper: 2)"},
    )
    softmax_scale: float = attrs.field(
        default=10.0,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={"doc": "scale of the cosine similarities in the softmax (paper: 10); > 0"},
    )
    propagation: int = attrs.field(
        default=3,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "attention propagation kernel, odd; 1 = off (paper: 3)"},
    )
    attention_implementation: str = attrs.field(
        default="auto",
        validator=attrs.validators.in_(IMPLEMENTATIONS),
        metadata={
            "doc": "how contextual attention is computed, the same function each way: 'auto' "
            "(the fastest measured: 'matmul'), 'matmul', 'grouped' or 'loop'"
        },
    )
    output: str = attrs.field(
        default="clip",
        validator=attrs.validators.in_(("clip", "tanh")),
        metadata={
            "doc": "how each stage's output is bounded to [-1, 1]: 'clip' (the paper's; no "
            "gradient where a pixel is beyond the bound) or 'tanh' (a gradient everywhere)"
        },
    )


class _Conv(nn.Sequential):
    """Reflection-padded convolution, ELU unless ``activation`` is false."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, act: bool = True
    ) -> None:
        pad = dilation * (kernel - 1) // 2
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(pad),
            nn.Conv2d(cin, cout, kernel, stride=stride, dilation=dilation),
        ]
        if act:
            layers.append(nn.ELU())
        super().__init__(*layers)


class _Up(nn.Sequential):
    """Nearest-neighbour upsampling x2, then a 3x3 convolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), _Conv(cin, cout, 3))


def _widths(channels: int, downsamples: int) -> list[int]:
    """Widths per resolution level: c, 2c, 4c, ... (the paper's 32, 64, 128)."""
    return [channels * 2**i for i in range(downsamples + 1)]


def _encoder(cin: int, widths: list[int]) -> nn.Sequential:
    """K5S1 w0, then per level K3S2 w_i - K3S1 w_i, then one more K3S1 at the bottom."""
    layers: list[nn.Module] = [_Conv(cin, widths[0], 5)]
    for prev, width in itertools.pairwise(widths):
        layers += [_Conv(prev, width, 3, stride=2), _Conv(width, width, 3)]
    layers.append(_Conv(widths[-1], widths[-1], 3))
    return nn.Sequential(*layers)


def _decoder(widths: list[int], cout: int) -> nn.Sequential:
    """Up x2 - K3S1 w_i - K3S1 w_i per level, the top level ending K3S1 w0/2 - K3S1 C (linear)."""
    layers: list[nn.Module] = []
    for level in range(len(widths) - 1, 0, -1):
        up_to = widths[level - 1]
        layers.append(_Up(widths[level], up_to))
        if level > 1:
            layers.append(_Conv(up_to, up_to, 3))
    layers += [
        _Conv(widths[0], max(1, widths[0] // 2), 3),
        _Conv(max(1, widths[0] // 2), cout, 3, act=False),
    ]
    return nn.Sequential(*layers)


class DeepFillGenerator(nn.Module):
    """Coarse-to-fine inpainting generator with contextual attention (Yu et al. 2018).

    ``inputs`` ``[N, C + 1, H, W]``: the image (hole pixels are ignored), then the mask.
    """

    two_stage = True  # forward(..., return_coarse=True) gives both stages

    def __init__(
        self,
        channels: int,  # image channels C
        size: tuple[int, int],  # (H, W) the network is built for (checked at build time)
        options: DeepFillGeneratorOptions,
    ) -> None:
        super().__init__()
        self.image_channels = channels
        self.options = options
        widths = _widths(options.channels, options.downsamples)
        bottom = widths[-1]
        cin = channels + 2  # image, ones, mask
        self.scale = 2**options.downsamples  # feature map = image / scale
        self.size_multiple = self.scale * (options.attention_rate if options.attention else 1)
        # -- stage 1: coarse -------------------------------------------------------------------
        self.coarse = nn.Sequential(
            _encoder(cin, widths),
            *[_Conv(bottom, bottom, 3, dilation=d) for d in options.dilations],
            _Conv(bottom, bottom, 3),
            _Conv(bottom, bottom, 3),
            _decoder(widths, channels),
        )
        # -- stage 2: refinement, two streams ---------------------------------------------------
        self.refine_conv = nn.Sequential(
            _encoder(cin, widths),
            *[_Conv(bottom, bottom, 3, dilation=d) for d in options.dilations],
        )
        self.attention: ContextualAttention | None = None
        if options.attention:
            self.refine_attention_encoder = _encoder(cin, widths)
            self.attention = ContextualAttention(
                options.attention_rate,
                options.softmax_scale,
                options.propagation,
                implementation=options.attention_implementation,
            )
            self.refine_attention_out = nn.Sequential(
                _Conv(bottom, bottom, 3), _Conv(bottom, bottom, 3)
            )
        streams = 2 if options.attention else 1
        self.refine_out = nn.Sequential(
            _Conv(streams * bottom, bottom, 3),
            _Conv(bottom, bottom, 3),
            _decoder(widths, channels),
        )
        self.check_size(*size)

    def check_size(self, height: int, width: int) -> None:
        """Refuse image sizes the network cannot process, with the reason."""
        m = self.size_multiple
        if height % m or width % m:
            raise ValueError(
                f"deepfill generator: image size {height}x{width} must be a multiple of {m} "
                f"(2**downsamples * attention_rate)"
            )
        side = min(height, width) // self.scale
        too_big = [d for d in self.options.dilations if d >= side]
        if too_big:
            raise ValueError(
                f"deepfill generator: dilations {too_big} need features larger than {side}x{side} "
                f"(images {height}x{width} / {self.scale}); use smaller 'dilations' or fewer "
                "'downsamples'"
            )

    def _bound(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) if self.options.output == "tanh" else x.clamp(-1.0, 1.0)

    def _stage_input(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([image, torch.ones_like(mask), mask], dim=1)

    def forward(
        self, inputs: torch.Tensor, return_coarse: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        c = self.image_channels
        if inputs.ndim != 4 or inputs.shape[1] != c + 1:
            raise ValueError(
                f"deepfill generator: expected inputs [N, {c + 1}, H, W] (image and mask) "
                f"(got {list(inputs.shape)})"
            )
        mask = inputs[:, c:]
        known = inputs[:, :c] * (1.0 - mask)  # whatever the hole held is never seen
        coarse = self._bound(self.coarse(self._stage_input(known, mask)))
        # Stage 2 starts from the coarse result pasted into the hole.
        merged = self._stage_input(coarse * mask + known, mask)
        features = self.refine_conv(merged)
        if self.attention is not None:
            context = self.refine_attention_encoder(merged).relu()
            small_mask = F.max_pool2d(mask, self.scale)  # a cell is hole if any pixel is
            attended = self.attention(context, context, small_mask)
            features = torch.cat([features, self.refine_attention_out(attended)], dim=1)
        refined = self._bound(self.refine_out(features))
        return (coarse, refined) if return_coarse else refined


def build_deepfill_generator(options: DeepFillGeneratorOptions, context: object) -> nn.Module:
    """The ``deepfill`` generator for ``context.data_shape`` ``(C, H, W)`` with
    ``context.input_shape`` ``(C + 1, H, W)``."""
    shape = tuple(getattr(context, "data_shape", ()))
    input_shape = getattr(context, "input_shape", None)
    if len(shape) != 3:
        raise ValueError(f"deepfill generator: expected images (C, H, W) (got shape {shape})")
    c, h, w = shape
    if input_shape is None or tuple(input_shape) != (c + 1, h, w):
        raise ValueError(
            f"deepfill generator: takes the image and its mask, input shape ({c + 1}, {h}, {w}) "
            f"(got {input_shape}); use it with task 'inpaint'"
        )
    return DeepFillGenerator(c, (h, w), options)


# -------------------------------------------------------------------------------------------------
# Critic
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DeepFillCriticOptions:
    """Options of the ``deepfill`` critic (DeepFill v1's global and local critics)."""

    channels: int = attrs.field(
        default=64,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "width of the first convolution, doubling per layer (paper: 64); >= 1"},
    )
    max_channels: int = attrs.field(
        default=256,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "cap on the width (paper: 256 global, 512 local); >= 1"},
    )
    depth: int = attrs.field(
        default=4,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "stride-2 5x5 convolutions (paper: 4); fewer for inputs too small to halve "
            "that often (down to 2x2 features); >= 1"
        },
    )


class DeepFillCritic(nn.Module):
    """``[N, C, H, W]`` -> scores ``[N]``: stride-2 5x5 convolutions, LeakyReLU 0.2, a linear
    layer. No normalization."""

    def __init__(self, shape: tuple[int, int, int], options: DeepFillCriticOptions) -> None:
        super().__init__()
        c, h, w = shape
        self.shape = shape
        layers: list[nn.Module] = []
        width, cin, side = options.channels, c, min(h, w)
        for _ in range(options.depth):
            if side < 4 and layers:  # keep at least 2x2 features
                break
            width_here = min(width, options.max_channels)
            layers += [nn.Conv2d(cin, width_here, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
            cin, width, side = width_here, width * 2, (side + 1) // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, c, h, w)).shape[1]
        self.score = nn.Linear(flat, 1)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if extra:
            raise ValueError(f"deepfill critic: takes no conditioning inputs (got {len(extra)})")
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"deepfill critic: expected inputs [N, {', '.join(map(str, self.shape))}] "
                f"(got {list(x.shape)})"
            )
        scores: torch.Tensor = self.score(self.features(x)).squeeze(1)
        return scores


def build_deepfill_critic(options: DeepFillCriticOptions, context: object) -> nn.Module:
    """The ``deepfill`` critic for ``context.data_shape`` ``(C, H, W)``."""
    shape = tuple(getattr(context, "data_shape", ()))
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"deepfill critic: expected images (C, H, W) (got shape {shape})")
    return DeepFillCritic((shape[0], shape[1], shape[2]), options)
