"""Instance noise: its noise, its schedule, the loop's image count and exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from gan_improved.augmenters import InstanceNoise, InstanceNoiseOptions

import gancore
import gancore.testing as gt


class TestInstanceNoise:
    @pytest.mark.parametrize("shape", [(2,), (3, 8, 8)])
    def test_conforms(self, shape: tuple[int, ...]) -> None:
        """It passes the augmenter conformance check on vectors and on images."""
        gt.check_augmenter("instance-noise", data_shape=shape)

    def test_adds_gaussian_noise_of_the_given_std(self) -> None:
        """``aug(x) - x`` has mean 0 and standard deviation ``std``; the gradient is the
        identity."""
        torch.manual_seed(0)
        aug = InstanceNoise(InstanceNoiseOptions(std=0.3, anneal_images=0))
        x = torch.randn(200_000, 2, requires_grad=True)
        noise = aug(x) - x
        assert noise.mean().item() == pytest.approx(0.0, abs=3e-3)
        assert noise.std().item() == pytest.approx(0.3, rel=5e-3)
        (grad,) = torch.autograd.grad(aug(x).sum(), x)
        assert torch.equal(grad, torch.ones_like(x))

    def test_std_falls_linearly_to_zero(self) -> None:
        """sigma = std * max(0, 1 - images / anneal_images); at 0 the input passes unchanged."""
        aug = InstanceNoise(InstanceNoiseOptions(std=0.8, anneal_images=100))
        assert aug.sigma == 0.8
        aug.feedback(0.3, 25)
        assert aug.sigma == pytest.approx(0.6)
        aug.feedback(-0.3, 50)
        assert aug.sigma == pytest.approx(0.2)
        aug.feedback(0.0, 50)
        assert aug.sigma == 0.0
        x = torch.randn(4, 2)
        assert aug(x) is x
        assert aug.log_values() == {"sigma": 0.0}

    def test_rejects_a_negative_std(self) -> None:
        """A negative std is an attrs-style error naming the key."""
        with pytest.raises(ValueError, match="'std'"):
            InstanceNoiseOptions(std=-0.1)

    def test_loop_counts_every_critic_image(self, tmp_path: Path) -> None:
        """In a run the schedule follows the real images of every critic step (batch 8, two
        critic steps per iteration: 16 images per step), read from the logged sigma."""
        document = gt.tiny_run(
            4,
            augmenter={"name": "instance-noise", "std": 1.0, "anneal_images": 128},
            training={"batch_size": 8, "critic_steps": 2, "log_every": 1, "sample_every": 0},
        )
        gancore.train(gancore.parse_config(document, gancore.get_registry()), tmp_path)
        lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
        sigmas = [json.loads(line)["augment/sigma"] for line in lines if "augment/sigma" in line]
        assert sigmas == pytest.approx([1 - 16 * k / 128 for k in range(1, 5)])

    def test_exact_resume(self, tmp_path: Path) -> None:
        """4 steps straight equal 2 steps, stop, resume, 2 more (the schedule is half-way at the
        stop: a schedule restarted from std would give other weights)."""
        document = gt.tiny_run(
            4,
            augmenter={"name": "instance-noise", "std": 0.5, "anneal_images": 32},
            training={"batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": 0},
        )
        config = gancore.parse_config(document, gancore.get_registry())
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        first = gt.train_interrupted(config, tmp_path / "resumed", after=2)
        assert first.interrupted
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        for kind in ("critics", "generators"):
            a = getattr(straight, kind)[kind[:-1]].state_dict()
            b = getattr(resumed, kind)[kind[:-1]].state_dict()
            for key in a:
                assert torch.equal(a[key], b[key]), (kind, key)
