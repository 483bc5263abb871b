"""Feature extractors of gan-example."""

from __future__ import annotations

import hashlib

import attrs
import torch
import torch.nn.functional as F
from torch import nn

# A weightless extractor states the hash of no weights at all: the sha256 of zero bytes.
NO_WEIGHTS_SHA256 = hashlib.sha256(b"").hexdigest()


@attrs.frozen(kw_only=True)
class PixelsOptions:
    size: int = attrs.field(
        default=8,
        validator=attrs.validators.ge(1),
        metadata={"doc": "side the images are area-downsampled to; features = C * size^2; >= 1"},
    )


class Pixels(nn.Module):
    """Images ``[N, C, H, W]`` area-downsampled to ``size x size`` and flattened: ``[N, C *
    size^2]`` features. A baseline with no learned weights: distances on these features compare
    coarse layouts and colours, nothing semantic."""

    resize_filter = "area"
    weights_sha256 = NO_WEIGHTS_SHA256

    def __init__(self, size: int) -> None:
        super().__init__()
        self.input_size = size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(images, self.input_size).flatten(1)


def build_pixels(options: PixelsOptions, context: None) -> Pixels:
    return Pixels(options.size)
