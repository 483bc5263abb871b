"""Pixel norm, minibatch standard deviation and the equalized learning rate against their
formulas (Karras et al. 2018, Sec. 3, 4.1, 4.2)."""

from __future__ import annotations

import math

import pytest
import torch
from gan_progressive.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStddev,
    PixelNorm,
    he_constant,
    minibatch_stddev,
    pixel_norm,
)


class TestPixelNorm:
    def test_equals_the_formula(self) -> None:
        """b_xy = a_xy / sqrt(mean_j (a_xy^j)^2 + 1e-8), written out pixel by pixel."""
        a = torch.randn(2, 3, 4, 5, dtype=torch.float64)
        b = pixel_norm(a)
        for n in range(2):
            for y in range(4):
                for x in range(5):
                    v = a[n, :, y, x]
                    expected = v / math.sqrt(float((v**2).sum()) / 3 + 1e-8)
                    assert torch.allclose(b[n, :, y, x], expected)

    def test_unit_mean_square_and_epsilon(self) -> None:
        """Each pixel's features have mean square 1; the layer's epsilon is the paper's 1e-8."""
        b = PixelNorm()(torch.randn(4, 8, 3, 3, dtype=torch.float64) * 7)
        assert torch.allclose(b.square().mean(dim=1), torch.ones(4, 3, 3, dtype=torch.float64))
        assert PixelNorm().epsilon == 1e-8
        assert torch.equal(pixel_norm(torch.zeros(1, 4)), torch.zeros(1, 4))


class TestMinibatchStddev:
    def test_equals_the_formula(self) -> None:
        """The extra channel of sample i is the mean over features and pixels of the stddev over
        its group {i mod M, i mod M + M, ...}, M = N / 4."""
        x = torch.randn(8, 3, 2, 2, dtype=torch.float64)
        out = minibatch_stddev(x, group_size=4)
        assert out.shape == (8, 4, 2, 2)
        assert torch.equal(out[:, :3], x)
        groups = 2
        for i in range(8):
            members = x[i % groups :: groups]  # 4 samples
            std = torch.sqrt(((members - members.mean(0)) ** 2).mean(0) + 1e-8)
            assert torch.allclose(out[i, 3], torch.full((2, 2), float(std.mean()), dtype=x.dtype))

    def test_small_or_odd_batches(self) -> None:
        """A batch of 2 is one group; a batch of 6 falls back to groups of 3; identical samples
        give the square root of epsilon."""
        x = torch.randn(1, 2, 3, 3).repeat(6, 1, 1, 1)
        out = MinibatchStddev(4)(x)
        assert torch.allclose(out[:, 2], torch.full((6, 3, 3), 1e-4))
        two = torch.randn(2, 1, 1, 1, dtype=torch.float64)
        expected = float((two[0] - two[1]).abs()) / 2
        assert minibatch_stddev(two)[0, 1].item() == pytest.approx(expected, rel=1e-6)


class TestEqualizedLearningRate:
    def test_conv_scale_is_the_he_constant(self) -> None:
        """scale = sqrt(2) / sqrt(in * k * k); toRGB gain 1: 1 / sqrt(in)."""
        conv = EqualizedConv2d(16, 8, 3, padding=1)
        assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(16 * 9))
        assert EqualizedConv2d(32, 3, 1, gain=1.0).scale == pytest.approx(1 / math.sqrt(32))
        assert he_constant(50) == pytest.approx(math.sqrt(2 / 50))

    def test_weights_are_unit_normal_and_applied_scaled(self) -> None:
        """Stored weights ~ N(0, 1), biases 0, and the output is the conv with weight * scale."""
        torch.manual_seed(0)
        conv = EqualizedConv2d(64, 64, 3, padding=1)
        assert conv.weight.std().item() == pytest.approx(1.0, abs=0.02)
        assert torch.equal(conv.bias, torch.zeros(64))
        x = torch.randn(2, 64, 5, 5)
        expected = torch.nn.functional.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1)
        assert torch.allclose(conv(x), expected)
        dense = EqualizedLinear(100, 10)
        assert dense.scale == pytest.approx(math.sqrt(2) / 10)
        y = torch.randn(3, 100)
        assert torch.allclose(dense(y), y @ (dense.weight * dense.scale).T)
