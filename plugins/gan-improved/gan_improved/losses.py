"""One-sided label smoothing (Salimans et al. 2016, Sec. 3.4) as an adversarial loss."""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F

__all__ = ["LabelSmoothing"]


@attrs.frozen(kw_only=True)
class LabelSmoothing:
    """The logistic GAN loss with the critic's target for real data lowered from 1 to
    ``real_target`` (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.4).

    Critic: binary cross-entropy of ``sigmoid(D(x))`` against ``real_target`` for real data and
    0 for fakes; the fake target stays 0 ("one-sided": smoothing it too would reward the
    generator's mistakes where real data is absent). The generator's loss is unchanged: the
    non-saturating ``-log sigmoid(D(G(z)))`` or the minimax ``log(1 - sigmoid(D(G(z))))``.
    """

    real_target: float = attrs.field(
        default=0.9,
        converter=float,
        validator=[attrs.validators.gt(0.5), attrs.validators.le(1.0)],
        metadata={
            "doc": "critic's target probability for real data: 0.9 in the paper, 1 = no "
            "smoothing; in (0.5, 1]"
        },
    )
    generator: Literal["non-saturating", "minimax"] = attrs.field(
        default="non-saturating",
        validator=attrs.validators.in_(("non-saturating", "minimax")),
        metadata={
            "doc": "generator loss, unchanged by the smoothing: 'non-saturating' "
            "(-log sigmoid(D(G(z)))) or 'minimax' (log(1 - sigmoid(D(G(z)))))"
        },
    )

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        # -(t log sigmoid(s) + (1 - t) log(1 - sigmoid(s))) = t softplus(-s) + (1 - t) softplus(s)
        t = self.real_target
        real = t * F.softplus(-real_scores) + (1.0 - t) * F.softplus(real_scores)
        # fake target 0: -log(1 - sigmoid(s)) = softplus(s)
        return real.mean() + F.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        if self.generator == "minimax":
            # log(1 - sigmoid(s)) = -softplus(s)
            return -F.softplus(fake_scores).mean()
        # -log(sigmoid(s)) = softplus(-s)
        return F.softplus(-fake_scores).mean()
