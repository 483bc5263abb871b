"""Augmenters of gan-example: differentiable, applied to every input the critic sees."""

from __future__ import annotations

import attrs
import torch
from torch import nn

import gancore


@attrs.frozen(kw_only=True)
class AdaptiveNoiseOptions:
    max_std: float = attrs.field(
        default=0.5,
        validator=attrs.validators.gt(0.0),
        metadata={"doc": "largest noise standard deviation, in data units; > 0"},
    )
    target: float = attrs.field(
        default=0.6,
        validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)],
        metadata={"doc": "target E[sign(D(real))]; in [0, 1] (ADA uses 0.6)"},
    )
    adjust_images: int = attrs.field(
        default=50_000,
        validator=attrs.validators.ge(1),
        metadata={"doc": "real images over which the std can move from 0 to max_std; >= 1"},
    )
    feedback_interval: int = attrs.field(
        default=4,
        validator=attrs.validators.ge(1),
        metadata={"doc": "critic steps between adjustments; >= 1"},
    )


class AdaptiveNoise(nn.Module):
    """Gaussian instance noise ``x + std * n`` (Sønderby et al. 2017) whose ``std`` follows the
    overfitting heuristic of ADA (Karras et al. 2020, Sec. 3): every ``feedback_interval`` critic
    steps, ``std += sign(r - target) * max_std * images / adjust_images`` with
    ``r = E[sign(D(real))]``, clamped to ``[0, max_std]``. ``std`` is a buffer, so checkpoints and
    resume carry it."""

    std: torch.Tensor

    def __init__(self, options: AdaptiveNoiseOptions) -> None:
        super().__init__()
        self.options = options
        self.feedback_interval = options.feedback_interval
        self.register_buffer("std", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std.to(x.dtype) * torch.randn_like(x)  # d(output)/dx = 1

    def feedback(self, real_sign_mean: float, images: int) -> None:
        o = self.options
        step = o.max_std * images / o.adjust_images
        direction = 1.0 if real_sign_mean > o.target else -1.0
        self.std.copy_((self.std + direction * step).clamp(0.0, o.max_std))


def build_adaptive_noise(
    options: AdaptiveNoiseOptions, context: gancore.BuildContext
) -> AdaptiveNoise:
    return AdaptiveNoise(options)
