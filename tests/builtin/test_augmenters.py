"""Tests for the built-in augmenters."""

from __future__ import annotations

import re

import attrs
import pytest
import torch

from gancore.builtin.augmenters import (
    HorizontalFlip,
    HorizontalFlipOptions,
    NoAugment,
    build_horizontal_flip,
)
from gancore.protocols import Augmenter


@attrs.frozen
class Context:
    data_shape: tuple[int, ...]


class TestNoAugment:
    def test_identity(self) -> None:
        """Returns its input unchanged, for images and points alike."""
        x = torch.randn(2, 3)
        assert NoAugment()(x) is x
        images = torch.randn(2, 1, 4, 4)
        assert NoAugment()(images) is images

    def test_never_asks_for_feedback(self) -> None:
        """Has feedback interval 0 and ignores feedback."""
        augmenter = NoAugment()
        assert isinstance(augmenter, Augmenter)
        assert augmenter.feedback_interval == 0
        augmenter.feedback(0.9, 64)


class TestHorizontalFlip:
    def _images(self) -> torch.Tensor:
        return torch.arange(4 * 2 * 3 * 5, dtype=torch.float32).reshape(4, 2, 3, 5)

    def test_satisfies_protocol(self) -> None:
        """Is an augmenter that never asks for feedback."""
        flip = build_horizontal_flip(HorizontalFlipOptions(), Context((3, 8, 8)))
        assert isinstance(flip, HorizontalFlip)
        assert isinstance(flip, Augmenter)
        assert flip.feedback_interval == 0
        assert flip.p == 0.5
        flip.feedback(1.0, 64)

    def test_p0_is_identity(self) -> None:
        """Returns the images unchanged with p = 0."""
        torch.manual_seed(0)
        x = self._images()
        torch.testing.assert_close(HorizontalFlip(0.0)(x), x, rtol=0, atol=0)

    def test_p1_flips_every_image(self) -> None:
        """Mirrors every image along its width with p = 1."""
        torch.manual_seed(0)
        x = self._images()
        out = HorizontalFlip(1.0)(x)
        torch.testing.assert_close(out, x[..., torch.arange(4, -1, -1)], rtol=0, atol=0)

    def test_flip_rate(self) -> None:
        """Flips whole images, each with probability p."""
        torch.manual_seed(0)
        count = 20_000
        x = torch.tensor([0.0, 1.0]).expand(count, 1, 1, 2)
        out = HorizontalFlip(0.3)(x)
        flipped = out[:, 0, 0, 0] == 1.0
        # every image is either intact or wholly mirrored
        assert torch.equal(out[:, 0, 0, 1], 1.0 - out[:, 0, 0, 0])
        # binomial std: sqrt(0.3 * 0.7 / 20000) ~ 0.0032
        assert flipped.float().mean().item() == pytest.approx(0.3, abs=0.015)

    def test_gradient_flows_to_input(self) -> None:
        """Passes gradients to the images, mirrored where the image was mirrored."""
        torch.manual_seed(0)
        x = torch.zeros(6, 1, 1, 3, requires_grad=True)
        weights = torch.tensor([1.0, 2.0, 3.0])
        out = HorizontalFlip(0.5)(x)
        (grad,) = torch.autograd.grad((out * weights).sum(), x)
        for row in grad[:, 0, 0]:
            assert row.tolist() in ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])

    def test_uses_global_rng(self) -> None:
        """Repeats its flips under the same global seed."""
        x = torch.randn(16, 1, 2, 2)
        torch.manual_seed(7)
        first = HorizontalFlip(0.5)(x)
        torch.manual_seed(7)
        second = HorizontalFlip(0.5)(x)
        torch.testing.assert_close(first, second, rtol=0, atol=0)

    def test_rejects_vector_batches(self) -> None:
        """Refuses [N, D] points with a one-line message."""
        message = "horizontal flip: expected images [N, C, H, W] (got [4, 2])"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            HorizontalFlip(0.5)(torch.zeros(4, 2))

    def test_rejects_vector_data(self) -> None:
        """Refuses to be built for vector data."""
        message = "horizontal flip: expected image data of shape (C, H, W) (got 2)"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build_horizontal_flip(HorizontalFlipOptions(), Context((2,)))

    @pytest.mark.parametrize("p", [-0.1, 1.5])
    def test_rejects_probability_out_of_range(self, p: float) -> None:
        """Refuses probabilities outside [0, 1]."""
        with pytest.raises(ValueError, match="'p' must be"):
            HorizontalFlipOptions(p=p)
