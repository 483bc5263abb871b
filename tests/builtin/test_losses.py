"""Tests for the built-in adversarial losses."""

from __future__ import annotations

import math

import pytest
import torch

from gancore.builtin.losses import Hinge, LeastSquares, Minimax, NonSaturating
from gancore.protocols import Loss

LOG2 = math.log(2.0)
ALL_LOSSES = [Minimax(), NonSaturating(), LeastSquares(), Hinge()]


def _softplus(value: float) -> float:
    return math.log1p(math.exp(value))


class TestAllLosses:
    @pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: type(loss).__name__)
    def test_satisfy_loss_protocol(self, loss: Loss) -> None:
        """Satisfies the Loss protocol."""
        assert isinstance(loss, Loss)

    @pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: type(loss).__name__)
    def test_scalars_with_gradients(self, loss: Loss) -> None:
        """Returns scalars that backpropagate to the scores."""
        torch.manual_seed(0)
        real = torch.randn(4, 1, 2, 2, requires_grad=True)
        fake = torch.randn(4, 1, 2, 2, requires_grad=True)
        critic_loss = loss.critic_loss(real, fake)
        generator_loss = loss.generator_loss(fake)
        assert critic_loss.shape == ()
        assert generator_loss.shape == ()
        real_grad, fake_grad = torch.autograd.grad(critic_loss, (real, fake))
        assert real_grad.abs().sum() > 0
        assert fake_grad.abs().sum() > 0
        (fake_grad,) = torch.autograd.grad(generator_loss, fake)
        assert fake_grad.abs().sum() > 0

    @pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: type(loss).__name__)
    def test_average_over_elements(self, loss: Loss) -> None:
        """Averages over every element, so repeating the batch changes nothing."""
        real = torch.tensor([0.5, -2.0])
        fake = torch.tensor([1.5, 0.25])
        torch.testing.assert_close(
            loss.critic_loss(real.repeat(3), fake.repeat(3)), loss.critic_loss(real, fake)
        )
        torch.testing.assert_close(
            loss.generator_loss(fake.reshape(2, 1, 1)), loss.generator_loss(fake)
        )


class TestNonSaturating:
    def test_critic_loss_at_zero(self) -> None:
        """Equals 2 log 2 when every score is 0."""
        loss = NonSaturating().critic_loss(torch.zeros(4), torch.zeros(4))
        assert loss.item() == pytest.approx(2 * LOG2)

    def test_closed_form(self) -> None:
        """Equals softplus(-D(x)) + softplus(D(G(z))) and softplus(-D(G(z))) on given scores."""
        real = torch.tensor([1.0, -3.0])
        fake = torch.tensor([2.0, 0.5])
        expected_critic = (_softplus(-1.0) + _softplus(3.0)) / 2 + (
            _softplus(2.0) + _softplus(0.5)
        ) / 2
        expected_generator = (_softplus(-2.0) + _softplus(-0.5)) / 2
        assert NonSaturating().critic_loss(real, fake).item() == pytest.approx(expected_critic)
        assert NonSaturating().generator_loss(fake).item() == pytest.approx(expected_generator)

    def test_stable_for_extreme_scores(self) -> None:
        """Stays finite and exact for scores far beyond the range of sigmoid in float32."""
        scores = torch.tensor([-200.0, 200.0])
        assert NonSaturating().generator_loss(scores).item() == pytest.approx(100.0)
        loss = NonSaturating().critic_loss(torch.tensor([-200.0]), torch.tensor([200.0]))
        assert loss.item() == pytest.approx(400.0)


class TestMinimax:
    def test_critic_loss_matches_non_saturating(self) -> None:
        """Shares the critic loss with the non-saturating variant."""
        real = torch.tensor([0.3, -1.2, 4.0])
        fake = torch.tensor([-0.7, 2.2, 0.0])
        torch.testing.assert_close(
            Minimax().critic_loss(real, fake), NonSaturating().critic_loss(real, fake)
        )

    def test_generator_loss_closed_form(self) -> None:
        """Equals log(1 - sigmoid(D(G(z)))), which is -log 2 at score 0."""
        assert Minimax().generator_loss(torch.zeros(3)).item() == pytest.approx(-LOG2)
        fake = torch.tensor([1.0, -2.0])
        expected = math.log(1 - 1 / (1 + math.exp(-1.0))) + math.log(1 - 1 / (1 + math.exp(2.0)))
        assert Minimax().generator_loss(fake).item() == pytest.approx(expected / 2)

    def test_generator_gradient_saturates(self) -> None:
        """Has a vanishing generator gradient where the critic confidently rejects fakes."""
        fake = torch.tensor([-20.0], requires_grad=True)
        (minimax_grad,) = torch.autograd.grad(Minimax().generator_loss(fake), fake)
        (non_saturating_grad,) = torch.autograd.grad(NonSaturating().generator_loss(fake), fake)
        assert abs(minimax_grad.item()) < 1e-8
        assert non_saturating_grad.item() == pytest.approx(-1.0)


class TestLeastSquares:
    def test_default_targets(self) -> None:
        """Uses a=0, b=1, c=1 by default."""
        assert LeastSquares() == LeastSquares(a=0.0, b=1.0, c=1.0)

    def test_closed_form(self) -> None:
        """Equals 0.5(D(x)-b)^2 + 0.5(D(G(z))-a)^2 and 0.5(D(G(z))-c)^2 on given scores."""
        loss = LeastSquares()
        real = torch.tensor([1.0, 3.0])
        fake = torch.tensor([0.0, 2.0])
        # real: 0.5 * mean(0, 4) = 1; fake: 0.5 * mean(0, 4) = 1
        assert loss.critic_loss(real, fake).item() == pytest.approx(2.0)
        # 0.5 * mean(1, 1) = 0.5
        assert loss.generator_loss(fake).item() == pytest.approx(0.5)

    def test_custom_targets(self) -> None:
        """Regresses to custom targets a=-1, b=1, c=0."""
        loss = LeastSquares(a=-1.0, b=1.0, c=0.0)
        real = torch.tensor([2.0])
        fake = torch.tensor([1.0])
        # 0.5 * (2 - 1)^2 + 0.5 * (1 + 1)^2 = 0.5 + 2
        assert loss.critic_loss(real, fake).item() == pytest.approx(2.5)
        # 0.5 * (1 - 0)^2
        assert loss.generator_loss(fake).item() == pytest.approx(0.5)
        assert loss.critic_loss(torch.ones(3), -torch.ones(3)).item() == 0.0
        assert loss.generator_loss(torch.zeros(3)).item() == 0.0

    def test_integer_targets_become_floats(self) -> None:
        """Stores targets given as integers (as TOML may) as floats."""
        loss = LeastSquares(a=-1, b=1, c=0)
        assert isinstance(loss.a, float)
        assert loss == LeastSquares(a=-1.0, b=1.0, c=0.0)


class TestHinge:
    def test_zero_beyond_margin(self) -> None:
        """Gives zero critic loss when real scores are >= 1 and fake scores <= -1."""
        loss = Hinge().critic_loss(torch.tensor([1.0, 5.0]), torch.tensor([-1.0, -7.0]))
        assert loss.item() == 0.0

    def test_closed_form(self) -> None:
        """Equals relu(1 - D(x)) + relu(1 + D(G(z))) and -D(G(z)) on given scores."""
        real = torch.tensor([0.0, 2.0])
        fake = torch.tensor([0.5, -3.0])
        # mean(1, 0) + mean(1.5, 0) = 0.5 + 0.75
        assert Hinge().critic_loss(real, fake).item() == pytest.approx(1.25)
        assert Hinge().generator_loss(fake).item() == pytest.approx(1.25)
