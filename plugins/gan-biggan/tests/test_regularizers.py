"""Orthogonal regularization against its formula and its gradient."""

from __future__ import annotations

import torch
from gan_biggan.layers import conv, linear
from gan_biggan.regularizers import Orthogonal, orthogonal_penalty, regularized_weights
from torch import nn


class TestOrthogonalPenalty:
    def test_known_value(self) -> None:
        """Filters (1, 0, 0) and (1, 1, 0): Gram off-diagonal 1 twice, so ||.||_F^2 = 2."""
        weight = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
        assert float(orthogonal_penalty(weight)) == 2.0

    def test_orthogonal_filters_cost_nothing(self) -> None:
        """Orthogonal filters of any norms: zero penalty (the norms are not constrained)."""
        weight = torch.diag(torch.tensor([3.0, 0.5, 2.0]))
        assert float(orthogonal_penalty(weight)) == 0.0

    def test_equals_formula_on_a_convolution(self) -> None:
        """A conv weight [out, in, k, k] is W with one column per filter: beta ||W^T W (1-I)||^2."""
        torch.manual_seed(0)
        weight = torch.randn(5, 3, 3, 3)
        w = weight.reshape(5, 27).T  # [in k k, out]
        expected = ((w.T @ w) * (1 - torch.eye(5))).square().sum()
        torch.testing.assert_close(orthogonal_penalty(weight), expected)

    def test_gradient(self) -> None:
        """d/dW of beta ||W W^T (1-I)||^2 (rows = filters) is 4 beta (W W^T * (1 - I)) W."""
        torch.manual_seed(1)
        layer = nn.Linear(6, 4, bias=False)
        reg = Orthogonal(beta=1e-4)
        (grad,) = torch.autograd.grad(reg.penalty(layer, torch.zeros(1, 6)), [layer.weight])
        w = layer.weight.detach()
        expected = 4e-4 * ((w @ w.T) * (1 - torch.eye(4))) @ w
        torch.testing.assert_close(grad, expected)


class TestRegularizedWeights:
    def test_embeddings_and_norms_are_left_out(self) -> None:
        """Convolutions and linear layers count; embeddings and norm parameters do not."""
        net = nn.ModuleDict(
            {
                "embed": nn.Embedding(10, 4),
                "linear": nn.Linear(4, 8),
                "conv": nn.Conv2d(8, 8, 3),
                "norm": nn.BatchNorm2d(8),
            }
        )
        weights = regularized_weights(net)
        assert [tuple(w.shape) for w in weights] == [(8, 4), (8, 8, 3, 3)]

    def test_spectral_norm_regularizes_the_raw_weight(self) -> None:
        """Under spectral norm the penalty is on the trained W, not W / sigma."""
        layers = nn.Sequential(conv(2, 4, 3, sn=True), linear(4, 2, sn=True))
        weights = regularized_weights(layers)
        assert weights[0] is layers[0].parametrizations.weight.original
        assert weights[1] is layers[1].parametrizations.weight.original
        assert all(w.requires_grad for w in weights)

    def test_penalty_sums_over_layers(self) -> None:
        """R(G) = beta * the sum of the layers' penalties."""
        torch.manual_seed(2)
        net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5))
        total = orthogonal_penalty(net[0].weight) + orthogonal_penalty(net[1].weight)
        torch.testing.assert_close(
            Orthogonal(beta=0.5).penalty(net, torch.zeros(1, 3)), 0.5 * total
        )
