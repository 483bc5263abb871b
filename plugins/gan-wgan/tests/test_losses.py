"""The Wasserstein loss."""

from __future__ import annotations

import pytest
import torch
from gan_wgan.losses import Wasserstein


class TestWasserstein:
    def test_critic_loss_is_fake_mean_minus_real_mean(self) -> None:
        """Critic loss is E[D(fake)] - E[D(real)]."""
        real = torch.tensor([1.0, 2.0, 3.0])
        fake = torch.tensor([-1.0, 0.5])
        assert Wasserstein().critic_loss(real, fake).item() == pytest.approx(-0.25 - 2.0)

    def test_generator_loss_is_minus_fake_mean(self) -> None:
        """Generator loss is -E[D(fake)]."""
        fake = torch.tensor([[1.0], [3.0]])
        assert Wasserstein().generator_loss(fake).item() == pytest.approx(-2.0)

    def test_patch_scores_average_over_every_element(self) -> None:
        """Patch scores [N, 1, h, w] are averaged over all elements."""
        real = torch.arange(8.0).reshape(2, 1, 2, 2)
        fake = torch.zeros(2, 1, 2, 2)
        assert Wasserstein().critic_loss(real, fake).item() == pytest.approx(-3.5)

    def test_gradients_are_constant(self) -> None:
        """The critic's loss is linear in the scores: each real score gets gradient -1/N."""
        real = torch.randn(4, requires_grad=True)
        fake = torch.randn(4, requires_grad=True)
        Wasserstein().critic_loss(real, fake).backward()
        assert real.grad is not None
        assert fake.grad is not None
        torch.testing.assert_close(real.grad, torch.full((4,), -0.25))
        torch.testing.assert_close(fake.grad, torch.full((4,), 0.25))
