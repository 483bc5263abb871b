"""Regularizers of gan-example: penalties on the critic, never an optimizer step."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import attrs
import torch
from torch import nn


@attrs.frozen(kw_only=True)
class R2:
    """R2: ``gamma / 2 * E[||grad_x D(x)||^2]`` over fake samples x, the zero-centred gradient
    penalty on the generator's distribution (Mescheder, Geiger & Nowozin 2018, "Which Training
    Methods for GANs do actually Converge?", Eq. 10). Norms are over every non-batch dimension."""

    player: ClassVar[str] = "critic"

    gamma: float = attrs.field(
        default=10.0,
        validator=attrs.validators.ge(0.0),
        metadata={"doc": "penalty weight gamma; >= 0"},
    )
    interval: int = attrs.field(
        default=1,
        validator=attrs.validators.ge(1),
        metadata={"doc": "critic steps between penalties: 1 = every step, k > 1 = lazy; >= 1"},
    )

    def penalty(
        self,
        critic: Callable[..., torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        x = fake.detach().requires_grad_(True)
        scores = critic(x, *extra)
        # create_graph: the penalty itself is differentiated in the critic's backward
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
        return self.gamma / 2 * grad.square().flatten(1).sum(dim=1).mean()

    def after_step(self, critic: nn.Module) -> None:
        """A pure penalty: nothing to do after the optimizer step."""
