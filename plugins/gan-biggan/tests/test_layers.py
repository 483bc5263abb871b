"""The building blocks: self-attention against its formula, spectral norm, BigGAN's conditional
batch norm."""

from __future__ import annotations

import pytest
import torch
from gan_biggan.layers import HierarchicalBatchNorm, SelfAttention, conv, linear, raw_weight
from torch import nn


def _effective(layer: nn.Module) -> torch.Tensor:
    """The weight the layer uses (spectrally normalized), as a matrix [out, rest]."""
    return layer.weight.detach().reshape(layer.weight.shape[0], -1)


class TestSelfAttention:
    def test_identity_at_gamma_zero(self) -> None:
        """A fresh block (gamma = 0) returns its input exactly."""
        torch.manual_seed(0)
        block = SelfAttention(16)
        x = torch.randn(2, 16, 4, 4)
        assert float(block.gamma.detach()) == 0.0
        torch.testing.assert_close(block(x), x, rtol=0, atol=0)

    @pytest.mark.parametrize("sn", [False, True])
    def test_equals_its_formula(self, sn: bool) -> None:
        """y_j = gamma v(sum_i beta_{j,i} h(x_i)) + x_j, beta_{j,i} = softmax_i(f(x_i).g(x_j)),
        computed position by position."""
        torch.manual_seed(1)
        block = SelfAttention(16, sn=sn).eval()
        with torch.no_grad():
            block.gamma.fill_(0.7)
        x = torch.randn(2, 16, 3, 3)
        wf, wg, wh, wv = (_effective(getattr(block, n)) for n in "fghv")
        assert wf.shape == (2, 16)  # C/8 channels
        assert wv.shape == (16, 2)
        expected = torch.empty_like(x)
        for n in range(2):
            positions = x[n].reshape(16, 9).T  # x_i, [9, 16]
            f, g, h = positions @ wf.T, positions @ wg.T, positions @ wh.T
            for j in range(9):
                s = torch.stack([f[i] @ g[j] for i in range(9)])
                beta = torch.softmax(s, dim=0)
                o = wv @ (beta[:, None] * h).sum(0)
                expected[n, :, j // 3, j % 3] = 0.7 * o + positions[j]
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)

    def test_attention_rows_sum_to_one(self) -> None:
        """For every output position j, beta_{j,i} sums to 1 over the attended positions i."""
        block = SelfAttention(8)
        beta = block.attention(torch.randn(3, 8, 4, 4))
        assert beta.shape == (3, 16, 16)
        torch.testing.assert_close(beta.sum(dim=1), torch.ones(3, 16))

    def test_wrong_channels_is_one_line(self) -> None:
        """Input of the wrong width names what was expected and what came."""
        with pytest.raises(ValueError, match=r"expected \[N, 8, H, W\] \(got \[2, 4, 3, 3\]\)"):
            SelfAttention(8)(torch.randn(2, 4, 3, 3))


class TestSpectralNorm:
    @pytest.mark.parametrize("make", [lambda: conv(8, 16, 3, True), lambda: linear(32, 8, True)])
    def test_sigma_is_about_one(self, make) -> None:
        """After some power iterations (training forwards), the used weight's largest singular
        value is 1 to within a percent, whatever the raw weight's scale."""
        torch.manual_seed(0)
        layer = make()
        with torch.no_grad():
            raw_weight(layer).mul_(5.0)
        x = torch.randn(2, 8, 6, 6) if isinstance(layer, nn.Conv2d) else torch.randn(2, 32)
        for _ in range(30):
            layer(x)
        sigma = torch.linalg.matrix_norm(_effective(layer), ord=2)
        assert abs(float(sigma) - 1.0) < 0.01
        raw = raw_weight(layer).detach().reshape(layer.weight.shape[0], -1)
        assert float(torch.linalg.matrix_norm(raw, ord=2)) > 2  # the raw weight is not


class TestHierarchicalBatchNorm:
    def test_equals_its_formula(self) -> None:
        """BN(h) * (1 + W_gamma c) + W_beta c, per sample and channel."""
        torch.manual_seed(0)
        norm = HierarchicalBatchNorm(4, 6, sn=False)
        h, c = torch.randn(5, 4, 3, 3), torch.randn(5, 6)
        mean = h.mean(dim=(0, 2, 3), keepdim=True)
        var = h.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        normalized = (h - mean) / torch.sqrt(var + 1e-5)
        gain = 1 + c @ norm.gain.weight.T
        bias = c @ norm.bias.weight.T
        expected = normalized * gain[:, :, None, None] + bias[:, :, None, None]
        torch.testing.assert_close(norm(h, c), expected, rtol=1e-5, atol=1e-5)

    def test_zero_condition_is_plain_batch_norm(self) -> None:
        """With c = 0 the gain is 1 and the bias 0."""
        norm = HierarchicalBatchNorm(4, 6)
        h = torch.randn(5, 4, 3, 3)
        torch.testing.assert_close(norm(h, torch.zeros(5, 6)), norm.bn(h))
