"""Built-in augmenters: identity and random horizontal flips."""

from __future__ import annotations

import attrs
import torch
from torch import nn

from gancore.builtin.networks import BuildContextLike

__all__ = ["HorizontalFlip", "HorizontalFlipOptions", "NoAugment", "build_horizontal_flip"]


@attrs.frozen(kw_only=True)
class NoAugment:
    """The identity: the critic sees samples as they are (any shape)."""

    # Deliberately unannotated, so attrs keeps it out of the options: it is a constant, not a knob.
    feedback_interval = 0  # never asks for feedback

    def __call__(self, x: torch.Tensor, /) -> torch.Tensor:
        return x

    def feedback(self, real_sign_mean: float, images: int) -> None:
        """Ignored: nothing adapts."""


@attrs.frozen(kw_only=True)
class HorizontalFlipOptions:
    """Options of :class:`HorizontalFlip`."""

    p: float = attrs.field(
        default=0.5,
        converter=float,
        validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)],
        metadata={"doc": "probability that each image is mirrored left-right; 0 to 1"},
    )


class HorizontalFlip(nn.Module):
    """Mirrors each image left-right independently with probability ``p``; differentiable in the
    images. The 'xflip' op of ADA (Karras et al. 2020, "Training Generative Adversarial Networks
    with Limited Data", Appendix B.1) at a fixed probability, and the usual flip augmentation of
    DCGAN-era training. Draws from torch's global RNG on the images' device.
    """

    feedback_interval: int

    def __init__(self, p: float) -> None:  # p: flip probability per image, in [0, 1]
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"horizontal flip: 'p' must be in [0, 1] (got {p})")
        self.p = p
        self.feedback_interval = 0  # fixed p: never asks for feedback

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"horizontal flip: expected images [N, C, H, W] (got {list(x.shape)})")
        # rand is in [0, 1), so p = 0 never flips and p = 1 always does
        flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p
        return torch.where(flip, x.flip(-1), x)

    def feedback(self, real_sign_mean: float, images: int) -> None:
        """Ignored: ``p`` is fixed."""


def build_horizontal_flip(
    options: HorizontalFlipOptions, context: BuildContextLike
) -> HorizontalFlip:
    """Horizontal flip for image data of shape ``(C, H, W)``."""
    if len(context.data_shape) != 3:
        shape = "x".join(map(str, context.data_shape))
        raise ValueError(f"horizontal flip: expected image data of shape (C, H, W) (got {shape})")
    return HorizontalFlip(options.p)
