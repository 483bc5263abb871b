"""Instance noise (Sønderby et al. 2017, "Amortised MAP Inference for Image Super-Resolution",
Sec. 4; Arjovsky & Bottou 2017, "Towards Principled Methods for Training GANs", Sec. 3.1):
Gaussian noise added to every input the critic sees, real and generated alike, with a standard
deviation annealed to zero.

The critic then compares ``p_data * N(0, sigma^2)`` with ``p_G * N(0, sigma^2)``: both blurred,
so the two overlap even where the data's modes are far apart and narrow, and the critic's
gradient reaches the generator from a mode it has not found yet. As ``sigma`` falls to 0 the
problem becomes the original one.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import nn

__all__ = ["InstanceNoise", "InstanceNoiseOptions", "build_instance_noise"]


@attrs.frozen(kw_only=True)
class InstanceNoiseOptions:
    """Options of :class:`InstanceNoise`."""

    std: float = attrs.field(
        default=0.5,
        converter=float,
        validator=attrs.validators.ge(0.0),
        metadata={
            "doc": "initial standard deviation sigma_0 of the noise, in data units (images: the "
            "[-1, 1] pixel scale); >= 0"
        },
    )
    anneal_images: int = attrs.field(
        default=2_000_000,
        validator=attrs.validators.ge(0),
        metadata={
            "doc": "real images (critic inputs per batch, counted over all processes) over which "
            "sigma falls linearly from std to 0: sigma = std * max(0, 1 - seen / anneal_images); "
            "0 = constant std"
        },
    )


class InstanceNoise(nn.Module):
    """``x + sigma * eps``, ``eps ~ N(0, I)``, on every critic input; ``sigma`` falls linearly
    from ``std`` to 0 over ``anneal_images`` real images.

    The loop reports the real images of every critic step through ``feedback`` (interval 1), so
    the schedule follows the images the critic has seen on all processes; that count is extra
    state, carried by checkpoints, so a resumed run continues the schedule exactly.
    """

    name = "instance-noise"
    feedback_interval = 1

    def __init__(self, options: InstanceNoiseOptions) -> None:
        super().__init__()
        self.options = options
        self.images = 0

    @property
    def sigma(self) -> float:
        """The current standard deviation."""
        o = self.options
        if o.anneal_images == 0:
            return o.std
        return o.std * max(0.0, 1.0 - self.images / o.anneal_images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.sigma
        if sigma == 0.0:
            return x
        return x + sigma * torch.randn_like(x)

    def feedback(self, real_sign_mean: float, images: int) -> None:
        """Count the real images the critic has seen (the sign is not used)."""
        self.images += int(images)

    def log_values(self) -> dict[str, float]:
        """``sigma``, logged by the loop as ``augment/sigma``."""
        return {"sigma": self.sigma}

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        return {"images": torch.tensor(self.images, dtype=torch.int64)}

    def set_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.images = int(state["images"])


def build_instance_noise(options: InstanceNoiseOptions, context: Any) -> InstanceNoise:
    """``instance-noise`` for any data shape."""
    return InstanceNoise(options)
