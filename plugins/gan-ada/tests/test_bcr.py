"""bCR, balanced consistency regularization (Zhao et al. 2021): the penalty's formula, its
transform, and a run with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gan_ada.regularizers import BalancedConsistency
from safetensors.torch import load_file
from torch import nn

import gancore
import gancore.testing as gt


class Linear(nn.Module):
    """D(x) = <w, x> with a fixed weight image: scores and gradients in closed form."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def _images(n: int = 6, c: int = 1, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(
        n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


class TestTransform:
    def test_identity_without_flip_and_translation(self) -> None:
        """translation 0 and no xflip: T is the identity, so the penalty is exactly 0."""
        reg = BalancedConsistency(translation=0.0, xflip=False)
        x = _images()
        assert torch.equal(reg.transform(x), x)
        critic = Linear((1, 8, 8)).double()
        assert reg.penalty(critic, x, x.flip(0), ()).item() == 0.0

    def test_flip_only_mirrors_about_half(self) -> None:
        """xflip alone: every image is itself or its mirror, about half of them mirrored."""
        reg = BalancedConsistency(translation=0.0, xflip=True)
        torch.manual_seed(0)
        x = _images(n=400)
        y = reg.transform(x)
        same = (y == x).flatten(1).all(1)
        mirrored = (y == x.flip(-1)).flatten(1).all(1)
        assert bool((same | mirrored).all())
        assert 160 < int(mirrored.sum()) < 240

    def test_translation_is_a_whole_pixel_shift_with_zero_padding(self) -> None:
        """Translation alone: each image is a shift by at most 1 px (0.125 of 8) padded with 0."""
        reg = BalancedConsistency(translation=0.125, xflip=False)
        torch.manual_seed(0)
        x = _images(n=50) + 1.0  # no zero pixels of its own
        y = reg.transform(x)
        seen = set()
        for xi, yi in zip(x, y, strict=True):
            matches = []
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    shifted = torch.zeros_like(xi)
                    src = xi[:, max(0, -dy) : 8 - max(0, dy), max(0, -dx) : 8 - max(0, dx)]
                    shifted[:, max(0, dy) : 8 - max(0, -dy), max(0, dx) : 8 - max(0, -dx)] = src
                    if torch.allclose(shifted, yi, atol=1e-12):
                        matches.append((dx, dy))
            assert len(matches) == 1
            seen.add(matches[0])
        assert len(seen) >= 5  # the shifts vary

    def test_refuses_non_images(self) -> None:
        with pytest.raises(
            ValueError, match=r"bcr: expected images of shape \(C, H, W\) \(got 2\)"
        ):
            BalancedConsistency().transform(torch.zeros(4, 2))


class TestPenalty:
    def test_equals_the_formula(self) -> None:
        """real * mean (D(x) - D(Tx))^2 + fake * mean (D(Gz) - D(TGz))^2, with T drawn from the
        global random state in the order real, then fake."""
        reg = BalancedConsistency(real=3.0, fake=0.5)
        critic = Linear((3, 8, 8)).double()
        real, fake = _images(c=3, seed=2), _images(c=3, seed=3)
        torch.manual_seed(5)
        got = reg.penalty(critic, real, fake, ())
        torch.manual_seed(5)
        t_real = reg.transform(real)
        t_fake = reg.transform(fake)
        with torch.no_grad():
            want = (
                3.0 * (critic(real) - critic(t_real)).square().mean()
                + 0.5 * (critic(fake) - critic(t_fake)).square().mean()
            )
        assert got.item() == pytest.approx(want.item(), rel=1e-12)
        assert got.item() > 0

    def test_gradient_flows_through_both_scores(self) -> None:
        """For D(x) = <w, x>: d/dw of mean (D(x) - D(Tx))^2 = 2 mean (D(x) - D(Tx)) (x - Tx)."""
        reg = BalancedConsistency(real=1.0, fake=0.0)
        critic = Linear((1, 8, 8)).double()
        x = _images(seed=4)
        torch.manual_seed(9)
        reg.penalty(critic, x, x, ()).backward()
        torch.manual_seed(9)
        tx = reg.transform(x)
        with torch.no_grad():
            diff = critic(x) - critic(tx)
            want = (2 * diff[:, None, None, None] * (x - tx)).mean(0)
        assert critic.w.grad is not None
        torch.testing.assert_close(critic.w.grad, want, rtol=1e-12, atol=1e-12)

    def test_patch_critic_uses_the_mean_score(self) -> None:
        """A critic with several scores per sample is compared on their mean."""
        reg = BalancedConsistency(real=1.0, fake=0.0, xflip=True, translation=0.0)
        x = _images(seed=6)

        def patches(v: torch.Tensor) -> torch.Tensor:
            return v[:, 0, :2, :2]  # 4 "patch scores"

        torch.manual_seed(1)
        got = reg.penalty(patches, x, x, ())
        torch.manual_seed(1)
        tx = reg.transform(x)
        want = (x[:, 0, :2, :2].mean((1, 2)) - tx[:, 0, :2, :2].mean((1, 2))).square().mean()
        assert got.item() == pytest.approx(want.item(), rel=1e-12)

    def test_weights_validated(self) -> None:
        with pytest.raises(ValueError, match=r"'real' must be >= 0\.0"):
            BalancedConsistency(real=-1.0)
        with pytest.raises(ValueError, match=r"'translation' must be <= 0\.5"):
            BalancedConsistency(translation=0.6)


class TestInARun:
    def test_conformance(self) -> None:
        """The conformance kit: a finite, non-negative penalty with gradients to the critic."""
        gt.check_regularizer("bcr", data_shape=(3, 8, 8))

    def test_run_and_exact_resume(self, tmp_path: Path) -> None:
        """A digits run with bcr trains and logs; 4 steps straight equal 2 + stop + resume + 2
        (T's draws come from the checkpointed random state)."""
        document = gt.tiny_run(
            steps=4,
            data={"name": "digits", "resolution": 8},
            generator={"name": "dcgan", "latent_dim": 8, "channels": 8},
            critic={"name": "dcgan", "channels": 8},
            regularizers=[{"name": "bcr", "xflip": True}],
        )
        document["training"]["checkpoint_every"] = 2
        gt.check_training(document, tmp_path / "checked")
        config = gancore.parse_config(document, gancore.get_registry(), source="test")
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        gt.train_interrupted(config, tmp_path / "resumed", after=2)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        assert straight.checkpoint is not None
        assert resumed.checkpoint is not None
        for group in ("critics", "generators"):
            a = load_file(str(straight.checkpoint / f"{group}.safetensors"))
            b = load_file(str(resumed.checkpoint / f"{group}.safetensors"))
            for key in a:
                assert torch.equal(a[key], b[key]), (group, key)

    def test_changes_training(self, tmp_path: Path) -> None:
        """The penalty takes part: the critic after 2 steps differs from a run without it."""
        document = gt.tiny_run(
            steps=2,
            data={"name": "digits", "resolution": 8},
            generator={"name": "dcgan", "latent_dim": 8, "channels": 8},
            critic={"name": "dcgan", "channels": 8},
        )
        plain = gancore.train(
            gancore.parse_config(document, gancore.get_registry(), source="plain"),
            tmp_path / "plain",
            progress=False,
        )
        document["regularizers"] = [{"name": "bcr"}]
        with_bcr = gancore.train(
            gancore.parse_config(document, gancore.get_registry(), source="bcr"),
            tmp_path / "bcr",
            progress=False,
        )
        assert plain.checkpoint is not None
        assert with_bcr.checkpoint is not None
        a = load_file(str(plain.checkpoint / "critics.safetensors"))
        b = load_file(str(with_bcr.checkpoint / "critics.safetensors"))
        assert any(not torch.equal(a[k], b[k]) for k in a)
