"""One-sided label smoothing: its targets and its conformance."""

import pytest
import torch
import torch.nn.functional as F
from gan_improved.losses import LabelSmoothing

import gancore.testing as gt


class TestLabelSmoothing:
    def test_conforms(self) -> None:
        """It passes the loss conformance check with each generator loss."""
        gt.check_loss("label-smoothing")
        gt.check_loss("label-smoothing", {"generator": "minimax"})

    def test_critic_targets(self) -> None:
        """The critic's loss is BCE with target 0.9 on real scores and 0 on fake ones."""
        real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([0.5, -0.7, 0.0])
        expected = F.binary_cross_entropy_with_logits(
            real, torch.full_like(real, 0.9)
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        got = LabelSmoothing().critic_loss(real, fake)
        assert got.item() == pytest.approx(expected.item(), rel=1e-6)

    def test_minimum_at_the_smoothed_target(self) -> None:
        """The real term is minimal where sigmoid(score) = real_target, not at +infinity."""
        loss = LabelSmoothing(real_target=0.8)
        best = torch.logit(torch.tensor(0.8))
        scores = best + torch.tensor([-0.1, 0.0, 0.1])
        values = [loss.critic_loss(s.reshape(1), torch.tensor([-50.0])).item() for s in scores]
        assert values[1] < values[0]
        assert values[1] < values[2]

    def test_target_one_is_the_plain_logistic_loss(self) -> None:
        """real_target = 1 gives the ordinary logistic critic loss."""
        real, fake = torch.randn(5), torch.randn(5)
        plain = F.softplus(-real).mean() + F.softplus(fake).mean()
        assert torch.allclose(LabelSmoothing(real_target=1.0).critic_loss(real, fake), plain)

    def test_generator_targets_unchanged(self) -> None:
        """The generator's losses are the unsmoothed non-saturating and minimax ones."""
        fake = torch.tensor([0.4, -2.0])
        assert torch.allclose(LabelSmoothing().generator_loss(fake), F.softplus(-fake).mean())
        minimax = LabelSmoothing(generator="minimax").generator_loss(fake)
        assert torch.allclose(minimax, -F.softplus(fake).mean())

    def test_refuses_a_target_at_or_below_one_half(self) -> None:
        """A real target of 0.5 or less is an attrs-style error naming the key."""
        with pytest.raises(ValueError, match="real_target"):
            LabelSmoothing(real_target=0.5)
