"""Losses of gan-example: pure functions of critic scores."""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F


@attrs.frozen(kw_only=True)
class SmoothedNonSaturating:
    """Non-saturating loss with one-sided label smoothing: the critic's target for real data is
    ``real_target`` instead of 1, fakes keep 0 (Salimans et al. 2016, "Improved Techniques for
    Training GANs", Sec. 3.4)."""

    real_target: float = attrs.field(
        default=0.9,
        validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)],
        metadata={"doc": "target probability of real data; 1 = no smoothing; in (0, 1]"},
    )

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        # BCE(sigmoid(D(x)), real_target) + BCE(sigmoid(D(G(z))), 0)
        target = torch.full_like(real_scores, self.real_target)
        real = F.binary_cross_entropy_with_logits(real_scores, target)
        return real + F.softplus(fake_scores).mean()  # -log(1 - sigmoid(s)) = softplus(s)

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_scores).mean()  # -log(sigmoid(s)) = softplus(-s)
