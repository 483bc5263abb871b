"""Built-in critic regularizers."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import attrs
import torch
from einops import reduce
from torch import nn

from gancore.protocols import Player

__all__ = ["R1"]


@attrs.frozen(kw_only=True)
class R1:
    """R1 gradient penalty on real data (Mescheder et al. 2018, "Which Training Methods for GANs
    do actually Converge?", Eq. 9).

    ``penalty = gamma / 2 * E_x[ ||grad_x D(x)||^2 ]`` over real ``x``, the squared norm summed over
    every non-batch dimension. ``D(x)`` is a sample's score: the mean of the critic's scores for
    that sample (one for most critics, ``h * w`` for a patch critic), the convention of every
    gradient penalty in gancore and its plugins, so the penalty does not grow with the number of
    patches. The gradient keeps the input's dtype (float64 stays float64). With ``interval = k > 1`` the loop runs it lazily every ``k``
    critic steps and multiplies it by ``k`` (Karras et al. 2020, Sec. 3.1); the penalty itself is
    not scaled.
    """

    player: ClassVar[Player] = "critic"

    gamma: float = attrs.field(
        default=10.0,
        converter=float,
        validator=attrs.validators.ge(0),
        metadata={
            "doc": "penalty weight gamma; the penalty is gamma/2 * E||grad D(x)||^2, D(x) a "
            "sample's score (a patch critic's: the mean of its patch scores); >= 0"
        },
    )
    interval: int = attrs.field(
        default=1,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "lazy-regularization interval in critic steps: 1 = every step, in the critic's "
            "own backward; k > 1 = a separate phase every k steps (StyleGAN2 uses 16); >= 1"
        },
    )

    def penalty(
        self,
        critic: Callable[..., torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """``gamma / 2 * mean_n ||grad_x D(x_n)||^2`` at the real samples (``fake`` is unused)."""
        x = real.detach().requires_grad_(True)
        scores = critic(x, *extra)
        # A sample's score is the mean of its scores (h * w of them for a patch critic; for one
        # score per sample, the score itself).
        per_sample = reduce(scores, "n ... -> n", "mean") if scores.ndim > 1 else scores
        # Each score depends only on its own sample, so the gradient of the sum is the per-sample
        # gradient; create_graph keeps it differentiable for the critic's parameters.
        (grad,) = torch.autograd.grad(per_sample.sum(), x, create_graph=True, allow_unused=True)
        if grad is None:  # the critic ignores its input: the gradient is identically zero
            return scores.sum() * 0.0
        squared_norm = reduce(grad.square(), "n ... -> n", "sum")
        return 0.5 * self.gamma * squared_norm.mean()

    def after_step(self, critic: nn.Module) -> None:
        """R1 is a pure penalty: nothing to do after the optimizer step."""
