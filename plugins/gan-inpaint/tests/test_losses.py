"""Discounted L1, known-pixel L1 and compositing."""

from __future__ import annotations

import math

import torch
from gan_inpaint.losses import (
    composite,
    discount_weights,
    discounted_hole_l1,
    distance_to_known,
    known_l1,
)


def _brute_distances(mask: torch.Tensor) -> torch.Tensor:
    h, w = mask.shape[-2:]
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    points = torch.stack([rows.flatten(), cols.flatten()], 1).float()
    out = []
    for m in mask[:, 0]:
        known = points[m.flatten() < 0.5]
        out.append(torch.cdist(points, known).amin(1).view(h, w))
    return torch.stack(out)[:, None]


class TestDiscount:
    def test_rectangle_closed_form(self) -> None:
        """In a rectangular hole the weight is gamma ** (1 + distance to the nearest edge)."""
        mask = torch.zeros(1, 1, 9, 10)
        top, bottom, left, right = 2, 7, 3, 9  # rows 2..6, cols 3..8
        mask[:, :, top:bottom, left:right] = 1.0
        gamma = 0.9
        got = discount_weights(mask, gamma)
        want = torch.zeros(1, 1, 9, 10)
        for i in range(top, bottom):
            for j in range(left, right):
                steps = min(i - top + 1, bottom - i, j - left + 1, right - j)
                want[0, 0, i, j] = gamma**steps
        torch.testing.assert_close(got, want)

    def test_diagonal_distance_is_euclidean(self) -> None:
        """One known pixel at a corner: the far corner is sqrt(2) * (n - 1) away."""
        mask = torch.ones(1, 1, 5, 5)
        mask[0, 0, 0, 0] = 0.0
        dist = distance_to_known(mask)
        assert math.isclose(float(dist[0, 0, 4, 4]), math.sqrt(32), rel_tol=1e-6)
        weight = float(discount_weights(mask, 0.99)[0, 0, 4, 4])
        assert math.isclose(weight, 0.99 ** math.sqrt(32), rel_tol=1e-6)

    def test_matches_brute_force_on_random_masks(self) -> None:
        """The separable transform equals the distance to every known pixel, minimised."""
        gen = torch.Generator().manual_seed(0)
        mask = (torch.rand(4, 1, 11, 7, generator=gen) < 0.6).float()
        mask[:, :, 0, 0] = 0.0  # at least one known pixel
        torch.testing.assert_close(distance_to_known(mask), _brute_distances(mask))

    def test_known_pixels_weigh_nothing(self) -> None:
        """Weights are zero outside the hole, and in an image with no known pixel."""
        mask = torch.zeros(2, 1, 4, 4)
        mask[0, :, 1:3, 1:3] = 1.0
        mask[1] = 1.0
        weights = discount_weights(mask, 0.99)
        assert torch.all(weights[0][mask[0] < 0.5] == 0)
        assert torch.all(weights[1] == 0)


class TestL1:
    def test_known_l1_is_zero_for_a_perfect_output(self) -> None:
        """An output that reproduces the known pixels (anything in the hole) has zero known L1."""
        gen = torch.Generator().manual_seed(1)
        image = torch.rand(2, 3, 6, 6, generator=gen) * 2 - 1
        mask = torch.zeros(2, 1, 6, 6)
        mask[:, :, 2:4, 1:5] = 1.0
        output = torch.where(mask > 0.5, torch.randn(2, 3, 6, 6, generator=gen), image)
        assert float(known_l1(output, image, mask)) == 0.0
        assert float(known_l1(image + 0.5, image, mask)) == 0.5

    def test_hole_l1_closed_form(self) -> None:
        """With error e everywhere, the hole loss is e times the mean weight over the hole."""
        mask = torch.zeros(1, 1, 5, 5)
        mask[:, :, 1:4, 1:4] = 1.0  # 3x3 hole: 8 pixels at distance 1, the centre at 2
        weights = discount_weights(mask, 0.5)
        image = torch.zeros(1, 2, 5, 5)
        loss = discounted_hole_l1(image + 0.25, image, mask, weights)
        assert math.isclose(float(loss), 0.25 * (8 * 0.5 + 0.25) / 9, rel_tol=1e-6)


class TestComposite:
    def test_known_pixels_are_bit_exact(self) -> None:
        """Compositing copies known pixels bit for bit, even next to non-finite outputs."""
        gen = torch.Generator().manual_seed(2)
        image = torch.rand(3, 3, 8, 8, generator=gen) * 2 - 1
        mask = (torch.rand(3, 1, 8, 8, generator=gen) < 0.4).float()
        output = torch.randn(3, 3, 8, 8, generator=gen)
        output[mask.expand_as(output) < 0.5] = float("nan")
        done = composite(output, image, mask)
        known = mask.expand_as(image) < 0.5
        assert torch.equal(done[known], image[known])
        assert torch.equal(done[~known], output[~known])

    def test_gradient_reaches_the_hole_only(self) -> None:
        """The completed image is differentiable in the hole, constant on known pixels."""
        output = torch.zeros(1, 1, 4, 4, requires_grad=True)
        mask = torch.zeros(1, 1, 4, 4)
        mask[..., 1, 1] = 1.0
        composite(output, torch.ones(1, 1, 4, 4), mask).sum().backward()
        assert output.grad is not None
        assert torch.equal(output.grad, mask)
