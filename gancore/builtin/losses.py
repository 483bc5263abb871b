"""Built-in adversarial losses: pure functions of critic scores.

Scores are raw (pre-sigmoid) critic outputs of any shape; every loss is the mean over all elements
of each term. Losses never call models, run backward or touch optimizers.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

__all__ = ["Hinge", "LeastSquares", "Minimax", "NonSaturating"]


def _logistic_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    # -log(sigmoid(D(x))) - log(1 - sigmoid(D(G(z))))
    # -log(sigmoid(s)) = softplus(-s);  -log(1 - sigmoid(s)) = softplus(s)
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


@attrs.frozen(kw_only=True)
class Minimax:
    """The original, saturating GAN loss (Goodfellow et al. 2014, "Generative Adversarial Nets").

    The generator minimises ``log(1 - sigmoid(D(G(z))))``, whose gradient vanishes when the critic
    confidently rejects fakes; :class:`NonSaturating` is the usual remedy.
    """

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        # softplus(-D(x)) + softplus(D(G(z)))
        return _logistic_critic_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        # log(1 - sigmoid(D(G(z)))) = -softplus(D(G(z)))
        return -F.softplus(fake_scores).mean()


@attrs.frozen(kw_only=True)
class NonSaturating:
    """The non-saturating GAN loss (Goodfellow et al. 2014, "Generative Adversarial Nets", Sec. 3):
    the generator maximises ``log(sigmoid(D(G(z))))`` instead of minimising
    ``log(1 - sigmoid(D(G(z))))``."""

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        # softplus(-D(x)) + softplus(D(G(z)))
        return _logistic_critic_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        # -log(sigmoid(D(G(z)))) = softplus(-D(G(z)))
        return F.softplus(-fake_scores).mean()


@attrs.frozen(kw_only=True)
class LeastSquares:
    """Least-squares GAN loss (Mao et al. 2017, "Least Squares Generative Adversarial Networks").

    The critic regresses fakes to ``a`` and reals to ``b``; the generator pushes fakes towards
    ``c``. ``a=0, b=1, c=1`` (the default) and ``a=-1, b=1, c=0`` are the paper's choices.
    """

    a: float = attrs.field(
        default=0.0, converter=float, metadata={"doc": "critic's target score for fake data"}
    )
    b: float = attrs.field(
        default=1.0, converter=float, metadata={"doc": "critic's target score for real data"}
    )
    c: float = attrs.field(
        default=1.0,
        converter=float,
        metadata={"doc": "score the generator wants the critic to give fake data"},
    )

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        # 0.5 * (D(x) - b)^2 + 0.5 * (D(G(z)) - a)^2
        return (
            0.5 * (real_scores - self.b).square().mean()
            + 0.5 * (fake_scores - self.a).square().mean()
        )

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        # 0.5 * (D(G(z)) - c)^2
        return 0.5 * (fake_scores - self.c).square().mean()


@attrs.frozen(kw_only=True)
class Hinge:
    """Hinge loss (Lim & Ye 2017, "Geometric GAN"; as used by SAGAN, Zhang et al. 2019)."""

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        # relu(1 - D(x)) + relu(1 + D(G(z)))
        return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        # -D(G(z))
        return -fake_scores.mean()
