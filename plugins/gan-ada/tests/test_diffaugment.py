"""DiffAugment: colour, translation and cutout with their closed forms; no adaptation."""

from __future__ import annotations

import pytest
import torch
from gan_ada.diffaugment import DiffAugment, DiffAugmentOptions


def diffaugment(*policy: str, quantile: float | None = None, shape=(3, 8, 8), **options):
    return DiffAugment(
        DiffAugmentOptions(
            policy=policy or ("color", "translation", "cutout"), quantile=quantile, **options
        ),
        tuple(shape),
    )


def images(n: int = 2, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class TestDiffAugment:
    def test_asks_for_no_feedback(self) -> None:
        """Nothing adapts: feedback_interval is 0."""
        assert diffaugment().feedback_interval == 0

    def test_color_closed_form(self) -> None:
        """At q = 0.75: brightness + 0.25, saturation x 1.5 about the channel mean, contrast x 1.25
        about the image mean, in that order."""
        x = images(2)
        y = diffaugment("color", quantile=0.75)(x)
        z = x + 0.25
        mean = z.mean(dim=1, keepdim=True)
        z = (z - mean) * 1.5 + mean
        mean = z.mean(dim=(1, 2, 3), keepdim=True)
        torch.testing.assert_close(y, (z - mean) * 1.25 + mean)

    def test_translation_closed_form(self) -> None:
        """At q = 0.7 with ratio 0.125 of 16 pixels: shift floor(5 q) - 2 = +1 in x and y, zero
        padded."""
        x = images(1, h=16, w=16)
        y = diffaugment("translation", quantile=0.7, shape=(3, 16, 16))(x)
        expected = torch.zeros_like(x)
        expected[:, :, 1:, 1:] = x[:, :, :-1, :-1]
        assert torch.equal(y, expected)

    def test_cutout_closed_form(self) -> None:
        """At q = 0.5 the half-size square is centred on pixel (4, 4): rows and columns 2..5."""
        x = images(1) + 3.0
        y = diffaugment("cutout", quantile=0.5)(x)
        expected = x.clone()
        expected[:, :, 2:6, 2:6] = 0
        assert torch.equal(y, expected)

    def test_gradients_and_pairs(self) -> None:
        """Gradients reach the input; augment_together gives both tensors the same draw."""
        augment = diffaugment()
        x = images(4).requires_grad_(True)
        augment(x).sum().backward()
        assert x.grad is not None
        assert x.grad.abs().sum() > 0
        a, b = augment.augment_together(x.detach(), x.detach().clone())
        assert torch.equal(a, b)

    def test_gray_images(self) -> None:
        """1-channel images: saturation is a no-op (the channel is its own mean)."""
        x = images(2, c=1)
        y = diffaugment("color", quantile=0.75, shape=(1, 8, 8))(x)
        z = x + 0.25
        mean = z.mean(dim=(1, 2, 3), keepdim=True)
        torch.testing.assert_close(y, (z - mean) * 1.25 + mean)

    def test_unknown_policy(self) -> None:
        """An unknown part is refused in attrs' voice, naming the choices."""
        with pytest.raises(ValueError, match="'policy' must name parts among color, translation"):
            DiffAugmentOptions(policy=("colour",))
