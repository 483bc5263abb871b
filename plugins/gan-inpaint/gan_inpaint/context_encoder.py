"""The Context Encoder generator (Pathak et al. 2016, "Context Encoders: Feature Learning by
Inpainting", Sec. 3.1).

Generator (``context-encoder``): ``[N, C + 1, H, W]`` (the image, then the mask, 1 in the hole, as
the ``inpaint`` task's ``complete`` passes them) -> ``[N, C, H, W]`` in ``[-1, 1]``.

- **Input**: the image with its hole filled with 0, the middle grey of the ``[-1, 1]`` range (the
  paper fills the hole with the mean pixel value of its data). The mask channel only says where
  the hole is; the network sees the filled image, as in the paper.
- **Encoder**: ``depth`` stride-2 4x4 convolutions, widths ``channels * 2^i`` capped at
  ``max_channels``, batch norm (not on the first layer) and LeakyReLU 0.2: a DCGAN-style stand-in
  for the paper's AlexNet encoder, adapted to the input size. It ends at ``m`` maps of ``n x n``.
- **Channel-wise fully connected layer** (:class:`ChannelWiseLinear`): each of the ``m`` maps gets
  its own fully connected layer from its ``n^2`` values to ``n^2`` values, so information moves
  across the whole map but not across maps: ``m n^4`` weights (plus ``m n^2`` biases) where a full
  fully connected layer would need ``m^2 n^4``. Then optional dropout and a 1x1 convolution
  (stride 1) that mixes the channels, batch norm, ReLU.
- **Decoder**: up-convolutions (transposed 4x4 convolutions of stride 2, 3x3 where the target side
  is odd, batch norm, ReLU), halving the width, to the side the generator is built for, with a
  tanh at the end. When that side is not the bottleneck's side times a power of two, one stride-1
  transposed convolution first grows the ``n x n`` maps to the size the doublings start from.

The generator predicts what ``data_shape`` of its build context asks for: the **centred region**
``(C, r, r)`` (the ``context-encoder`` task asks for the hole grown by its overlap) or the **whole
image** ``(C, H, W)``. ``forward(inputs)`` returns a whole image either way (the region pasted into
the filled input), so the ``inpaint`` task's ``complete``, the ``inpaint-quality`` metric and ``gan
inpaint`` work with it; ``forward(inputs, return_region=True)`` returns the raw prediction.
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = [
    "ChannelWiseLinear",
    "ContextEncoderGenerator",
    "ContextEncoderGeneratorOptions",
    "build_context_encoder_generator",
    "centred_box",
    "decoder_sides",
]

BOTTLENECK_SIDE = 4  # depth = None halves the image down to features of at most this side


def centred_box(side: int, size: int) -> int:
    """Offset of a centred ``size`` segment in ``side`` pixels (the ``center`` masks' rule)."""
    return (side - size) // 2


def decoder_sides(target: int, bottleneck: int) -> tuple[int, list[int]]:
    """Where the decoder's doublings start and the sides they produce for ``target`` pixels.

    Each up-convolution maps ``ceil(t / 2)`` to ``t`` exactly, so the chain ``target, ceil(target
    / 2), ...`` is followed down to the last side still ``>= bottleneck``; returns that start side
    and the sides of the up-convolutions, smallest first. ``decoder_sides(20, 4) == (5, [10,
    20])``; ``decoder_sides(32, 4) == (4, [8, 16, 32])``; a target below the bottleneck gives
    ``(target, [])``.
    """
    chain = [target]
    while math.ceil(chain[-1] / 2) >= bottleneck and chain[-1] > 1:
        chain.append(math.ceil(chain[-1] / 2))
    return chain[-1], chain[-2::-1]


def _optional_depth(
    instance: object, attribute: attrs.Attribute[int | None], value: object
) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"'depth' must be an integer >= 1 or omitted (got {value!r})")


@attrs.frozen(kw_only=True)
class ContextEncoderGeneratorOptions:
    """Options of the ``context-encoder`` generator (Pathak et al. 2016)."""

    channels: int = attrs.field(
        default=64,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "width of the first encoder convolution, doubling per layer; also the "
            "narrowest decoder layer; >= 1 (the paper's DCGAN-style variant: 64)"
        },
    )
    max_channels: int = attrs.field(
        default=512,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "cap on the encoder's width, i.e. m, the maps of the bottleneck; >= 1"},
    )
    depth: int | None = attrs.field(
        default=None,
        validator=_optional_depth,
        metadata={
            "doc": "stride-2 convolutions of the encoder; the image side must be a multiple of "
            f"2**depth; None = as many as leave features of at least {BOTTLENECK_SIDE} px "
            f"(e.g. 3 for 32 px: {BOTTLENECK_SIDE}x{BOTTLENECK_SIDE} maps)"
        },
    )
    dropout: float = attrs.field(
        default=0.0,
        converter=float,
        validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)],
        metadata={"doc": "dropout after the channel-wise fully connected layer; [0, 1); 0 = none"},
    )


class ChannelWiseLinear(nn.Module):
    """``[N, m, n, n] -> [N, m, n, n]``: one fully connected layer per map, none across maps.

    Map ``k``'s output is ``W_k @ vec(x_k) + b_k`` with ``W_k`` of ``n^2 x n^2``: ``m n^4`` weights
    and ``m n^2`` biases (Pathak et al. 2016, Sec. 3.1). Initialised like ``nn.Linear`` with
    ``n^2`` inputs.
    """

    def __init__(self, maps: int, side: int) -> None:
        super().__init__()
        self.maps, self.side = maps, side
        cells = side * side
        bound = 1.0 / math.sqrt(cells)
        self.weight = nn.Parameter(torch.empty(maps, cells, cells).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(maps, cells).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != (self.maps, self.side, self.side):
            raise ValueError(
                f"channel-wise linear: expected [N, {self.maps}, {self.side}, {self.side}] "
                f"(got {list(x.shape)})"
            )
        flat = rearrange(x, "b m h w -> b m (h w)")
        # out[b, m, j] = sum_i W[m, j, i] x[b, m, i] + bias[m, j]: no sum over maps.
        out = torch.einsum("bmi,mji->bmj", flat, self.weight) + self.bias
        return rearrange(out, "b m (h w) -> b m h w", h=self.side)


def _up(cin: int, cout: int, target: int) -> nn.ConvTranspose2d:
    """Transposed convolution, stride 2, from ``ceil(target / 2)`` to exactly ``target``: kernel 4
    for an even target (``2 t``), 3 for an odd one (``2 t - 1``), padding 1."""
    return nn.ConvTranspose2d(cin, cout, 4 if target % 2 == 0 else 3, stride=2, padding=1)


class ContextEncoderGenerator(nn.Module):
    """Encoder, channel-wise fully connected bottleneck, decoder (Pathak et al. 2016).

    ``inputs`` ``[N, C + 1, H, W]``: the image (hole pixels are ignored), then the mask.
    """

    two_stage = False
    size_multiple = 1  # `gan inpaint` pads to this; check_size then refuses any other size

    def __init__(
        self,
        channels: int,  # image channels C
        size: int,  # side of the (square) input images, pixels
        output_side: int,  # side of the prediction: the centred region, or `size` (whole image)
        options: ContextEncoderGeneratorOptions,
    ) -> None:
        super().__init__()
        self.image_channels, self.size, self.output_side = channels, size, output_side
        self.offset = centred_box(size, output_side)  # where the region sits in the image
        depth = options.depth
        if depth is None:
            depth = max(1, (size // BOTTLENECK_SIDE).bit_length() - 1)  # floor(log2(size / 4))
        if size % 2**depth:
            raise ValueError(
                f"context-encoder generator: image side {size} must be a multiple of 2**depth = "
                f"{2**depth} (depth {depth}); change the image size or 'depth'"
            )
        side = size // 2**depth  # n
        widths = [min(options.channels * 2**i, options.max_channels) for i in range(depth)]
        maps = widths[-1]  # m
        self.depth, self.bottleneck = depth, (maps, side)
        # -- encoder: stride-2 4x4 convolutions, no batch norm on the first (DCGAN) ------------
        layers: list[nn.Module] = []
        cin = channels
        for index, width in enumerate(widths):
            layers.append(nn.Conv2d(cin, width, 4, stride=2, padding=1, bias=index == 0))
            if index > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            cin = width
        self.encoder = nn.Sequential(*layers)
        # -- bottleneck: channel-wise FC, (dropout), 1x1 conv across channels -------------------
        self.channel_wise = ChannelWiseLinear(maps, side)
        self.dropout = nn.Dropout(options.dropout) if options.dropout > 0 else nn.Identity()
        self.mix = nn.Sequential(nn.Conv2d(maps, maps, 1, bias=False), nn.BatchNorm2d(maps))
        # -- decoder: an optional stride-1 bridge, then exact stride-2 up-convolutions ----------
        start, sides = decoder_sides(output_side, side)
        steps: list[tuple[str, int]] = []  # (kind, target side)
        if start != side:
            steps.append(("bridge", start))
        steps += [("up", t) for t in sides]
        decoder: list[nn.Module] = []
        cin = maps
        for index, (kind, target) in enumerate(steps):
            last = index == len(steps) - 1
            cout = channels if last else max(options.channels, maps // 2 ** (index + 1))
            if kind == "bridge" and target >= side:  # grow n -> start: kernel start - n + 1
                decoder.append(nn.ConvTranspose2d(cin, cout, target - side + 1, bias=last))
            elif kind == "bridge":  # shrink n -> start (a region smaller than the features)
                decoder.append(nn.Conv2d(cin, cout, side - target + 1, bias=last))
            else:
                up = _up(cin, cout, target)
                if not last:
                    up.bias = None
                decoder.append(up)
            decoder += [nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        if not steps:  # the region is the bottleneck's size: a 1x1 convolution to C
            decoder += [nn.Conv2d(maps, channels, 1), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)

    def check_size(self, height: int, width: int) -> None:
        """Refuse images of another size than the one the fully connected layer was built for."""
        if (height, width) != (self.size, self.size):
            raise ValueError(
                f"context-encoder generator: built for {self.size}x{self.size} images (got "
                f"{width}x{height}); its channel-wise fully connected layer fixes the size"
            )

    def forward(self, inputs: torch.Tensor, return_region: bool = False) -> torch.Tensor:
        c, s = self.image_channels, self.size
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != (c + 1, s, s):
            raise ValueError(
                f"context-encoder generator: expected inputs [N, {c + 1}, {s}, {s}] (image and "
                f"mask) (got {list(inputs.shape)})"
            )
        mask = inputs[:, c:]
        context = inputs[:, :c] * (1.0 - mask)  # the hole filled with 0, the middle grey
        features = self.mix(self.dropout(self.channel_wise(self.encoder(context)))).relu()
        prediction: torch.Tensor = self.decoder(features)
        if return_region or self.output_side == s:
            return prediction
        return paste(prediction, context, self.offset)


def paste(region: torch.Tensor, image: torch.Tensor, offset: int) -> torch.Tensor:
    """``image`` with ``region`` (``[N, C, r, r]``) at rows and columns ``offset .. offset + r``;
    gradients reach ``region``."""
    r, side = region.shape[-1], image.shape[-1]
    after = side - offset - r
    placed = F.pad(region, (offset, after, offset, after))
    inside = F.pad(torch.ones_like(region[:1, :1]), (offset, after, offset, after))
    return placed + image * (1.0 - inside)


def build_context_encoder_generator(
    options: ContextEncoderGeneratorOptions, context: object
) -> nn.Module:
    """The ``context-encoder`` generator for ``context.input_shape`` ``(C + 1, H, H)``, predicting
    ``context.data_shape``: ``(C, r, r)`` for the centred region, ``(C, H, H)`` for the image."""
    shape = tuple(getattr(context, "data_shape", ()))
    input_shape = tuple(getattr(context, "input_shape", None) or ())
    if len(shape) != 3 or len(input_shape) != 3:
        raise ValueError(
            "context-encoder generator: takes the image and its mask and predicts an image "
            f"region (got input shape {input_shape or None}, output shape {shape}); use it with "
            "task 'context-encoder' or 'inpaint'"
        )
    c, rh, rw = shape
    cin, h, w = input_shape
    if cin != c + 1:
        raise ValueError(
            f"context-encoder generator: input shape must be ({c + 1}, H, W), the image and its "
            f"mask (got {input_shape})"
        )
    if h != w or rh != rw:
        raise ValueError(
            f"context-encoder generator: needs square images and regions (got images {h}x{w}, "
            f"region {rh}x{rw})"
        )
    if rh > h:
        raise ValueError(
            f"context-encoder generator: the predicted region ({rh}x{rw}) is larger than the "
            f"image ({h}x{w})"
        )
    return ContextEncoderGenerator(c, h, rh, options)
