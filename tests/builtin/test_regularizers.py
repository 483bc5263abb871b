"""Tests for the built-in critic regularizers."""

from __future__ import annotations

import pytest
import torch
from einops import reduce
from torch import nn

from gancore.builtin.regularizers import R1
from gancore.protocols import CriticRegularizer


class LinearCritic(nn.Module):
    """D(x) = <w, x>, flattened over every non-batch dimension."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return reduce(x * self.weight, "n ... -> n", "sum")


class ConstantCritic(nn.Module):
    """D(x) = b, ignoring x."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0])


class TestR1:
    def test_satisfies_protocol(self) -> None:
        """Is a critic regularizer for the critic player."""
        r1 = R1()
        assert isinstance(r1, CriticRegularizer)
        assert R1.player == "critic"
        assert (r1.gamma, r1.interval) == (10.0, 1)

    def test_linear_critic(self) -> None:
        """Equals gamma/2 * ||w||^2 exactly for a linear critic."""
        torch.manual_seed(0)
        weight = torch.randn(1, 4, 4, dtype=torch.float64)
        critic = LinearCritic(weight)
        real = torch.randn(3, 1, 4, 4, dtype=torch.float64)
        penalty = R1(gamma=3.0).penalty(critic, real, torch.zeros_like(real), ())
        assert penalty.shape == ()
        assert penalty.item() == pytest.approx(1.5 * weight.square().sum().item(), rel=1e-12)

    def test_constant_critic(self) -> None:
        """Is zero for a constant critic, and still backpropagates."""
        critic = ConstantCritic()
        real = torch.randn(2, 3)
        penalty = R1().penalty(critic, real, real, ())
        assert penalty.item() == 0.0
        (bias_grad,) = torch.autograd.grad(penalty, critic.bias)
        assert bias_grad.item() == 0.0

    def test_zero_gradient_critic(self) -> None:
        """Is zero for a critic whose output uses x with zero gradient."""
        real = torch.randn(2, 3)
        penalty = R1().penalty(lambda x: x.sum(dim=1) * 0.0, real, real, ())
        assert penalty.item() == 0.0

    def test_double_backward(self) -> None:
        """Backpropagates to the critic's parameters: the gradient wrt w is gamma * w."""
        weight = torch.tensor([[1.0, -2.0, 0.5]])
        critic = LinearCritic(weight)
        penalty = R1(gamma=4.0).penalty(critic, torch.randn(5, 3), torch.randn(5, 3), ())
        (weight_grad,) = torch.autograd.grad(penalty, critic.weight)
        torch.testing.assert_close(weight_grad, 4.0 * weight)

    def test_does_not_touch_real(self) -> None:
        """Leaves the real batch without gradient or graph."""
        real = torch.randn(2, 3)
        R1().penalty(LinearCritic(torch.ones(3)), real, real, ())
        assert not real.requires_grad
        assert real.grad is None

    def test_passes_extra_inputs(self) -> None:
        """Calls the critic with the conditioning inputs, and takes the gradient only wrt x."""
        seen: list[tuple[torch.Tensor, ...]] = []
        label = torch.tensor([[2.0], [3.0]])

        def critic(x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
            seen.append(extra)
            return (x * extra[0]).sum(dim=1)

        penalty = R1(gamma=2.0).penalty(critic, torch.zeros(2, 2), torch.zeros(2, 2), (label,))
        assert seen[0][0] is label
        # grad for sample n is label_n * (1, 1): squared norms 8 and 18, mean 13, times gamma/2 = 1
        assert penalty.item() == pytest.approx(13.0)

    def test_not_scaled_by_interval(self) -> None:
        """Leaves the lazy-regularization scaling to the loop."""
        critic = LinearCritic(torch.tensor([3.0, 4.0]))
        real = torch.randn(4, 2)
        eager = R1(gamma=1.0).penalty(critic, real, real, ())
        lazy = R1(gamma=1.0, interval=16).penalty(critic, real, real, ())
        assert eager.item() == pytest.approx(12.5)
        assert lazy.item() == pytest.approx(12.5)

    def test_after_step_does_nothing(self) -> None:
        """Leaves the critic's weights alone after a step."""
        critic = LinearCritic(torch.tensor([3.0, 4.0]))
        R1().after_step(critic)
        torch.testing.assert_close(critic.weight.detach(), torch.tensor([3.0, 4.0]))

    def test_rejects_negative_gamma(self) -> None:
        """Refuses a negative gamma in attrs' words."""
        with pytest.raises(ValueError, match="'gamma' must be >= 0"):
            R1(gamma=-1.0)

    def test_rejects_zero_interval(self) -> None:
        """Refuses an interval below 1."""
        with pytest.raises(ValueError, match="'interval' must be >= 1"):
            R1(interval=0)

    def test_integer_gamma_becomes_float(self) -> None:
        """Stores a gamma given as an integer (as TOML may) as a float."""
        assert R1(gamma=10) == R1(gamma=10.0)
        assert isinstance(R1(gamma=10).gamma, float)


class RepeatedPatches(nn.Module):
    """A patch critic: the score <w, x> repeated on an h x w grid, [N, 1, h, w]."""

    def __init__(self, weight: torch.Tensor, side: int) -> None:
        super().__init__()
        self.scalar = LinearCritic(weight)
        self.side = side

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        score = self.scalar(x)
        return score[:, None, None, None].expand(-1, 1, self.side, self.side)


class TestR1PatchCritic:
    """A sample's score is the mean of its patch scores, and the gradient keeps the input dtype."""

    def test_penalty_does_not_depend_on_the_number_of_patches(self) -> None:
        """A critic repeating one score on 2x2 or 8x8 patches has the one-score penalty."""
        torch.manual_seed(0)
        weight = torch.randn(1, 4, 4, dtype=torch.float64)
        real = torch.randn(3, 1, 4, 4, dtype=torch.float64)
        single = R1(gamma=3.0).penalty(LinearCritic(weight), real, real, ())
        for side in (2, 8):
            patches = R1(gamma=3.0).penalty(RepeatedPatches(weight, side), real, real, ())
            assert patches.item() == pytest.approx(single.item(), rel=1e-12)
        assert single.item() == pytest.approx(1.5 * weight.square().sum().item(), rel=1e-12)

    def test_float64_stays_float64(self) -> None:
        """float64 inputs give a float64 penalty, exact to float64 precision."""
        weight = torch.full((1, 2, 2), 1.0 / 3.0, dtype=torch.float64)
        real = torch.randn(2, 1, 2, 2, dtype=torch.float64)
        penalty = R1(gamma=2.0).penalty(RepeatedPatches(weight, 4), real, real, ())
        assert penalty.dtype == torch.float64
        assert penalty.item() == pytest.approx(4 / 9, rel=1e-15)
