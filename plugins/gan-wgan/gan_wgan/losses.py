"""The Wasserstein adversarial loss: a pure function of critic scores."""

from __future__ import annotations

import attrs
import torch

__all__ = ["Wasserstein"]


@attrs.frozen(kw_only=True)
class Wasserstein:
    """Wasserstein loss (Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN", Eq. 3 and Alg. 1).

    The critic estimates the Kantorovich-Rubinstein dual ``W(P_r, P_g) = sup_{||f||_L <= 1}
    E[f(x_real)] - E[f(x_fake)]``, so it minimises ``E[D(fake)] - E[D(real)]`` and the generator
    minimises ``-E[D(fake)]``. The dual only holds for (K-)Lipschitz critics: pair this loss with a
    constraint or penalty (``weight-clip``, ``wgan-gp``, ``wgan-lp``, ``spectral-norm``).
    Scores are raw critic outputs of any shape (patch critics included); each mean is over all
    elements.
    """

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        # E[D(G(z))] - E[D(x)]
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        # -E[D(G(z))]
        return -fake_scores.mean()
