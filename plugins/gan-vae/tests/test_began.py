"""BEGAN's equilibrium controller: the k_t formula, clipping, and exact resume with k_t."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from gan_vae.began import BEGAN, BEGANOptions, k_update
from safetensors.torch import load_file

import gancore
import gancore.testing as gt


class TestKUpdate:
    def test_equals_the_formula(self) -> None:
        """k + lambda_k (gamma L(x) - L(G(z)))."""
        assert k_update(0.3, 0.001, 0.5, 0.4, 0.1) == pytest.approx(0.3 + 0.001 * (0.2 - 0.1))

    def test_is_clipped_to_zero_and_one(self) -> None:
        assert k_update(0.0, 0.01, 0.5, 0.1, 0.9) == 0.0
        assert k_update(0.999, 0.1, 0.5, 1.0, 0.0) == 1.0

    def test_task_state_round_trips(self) -> None:
        """k_0 is the option; state_dict carries k."""
        task = BEGAN(BEGANOptions(k_initial=0.25))
        assert task.state_dict() == {"k": 0.25}
        other = BEGAN(BEGANOptions())
        other.load_state_dict({"k": 0.75})
        assert other.k == 0.75

    def test_options_are_checked(self) -> None:
        with pytest.raises(ValueError, match=r"'gamma' must be <= 1\.0"):
            BEGANOptions(gamma=1.5)


class FakeStep:
    """The parts of gancore.StepContext BEGAN's steps use: a critic scoring -L(v) from a table
    (real images are ones, generated ones zeros), a generator of zeros."""

    device = torch.device("cpu")

    def __init__(self, real_loss: float, fake_loss: float) -> None:
        self.losses = {1.0: real_loss, 0.0: fake_loss}
        self.generators = {"generator": lambda z: torch.zeros(len(z), 1, 8, 8)}
        self.logged: dict[str, Any] = {}

    def unwrap(self, name: str) -> Any:
        return SimpleNamespace(latent_dim=2)

    def latents(self, num: int, dim: int) -> torch.Tensor:
        return torch.zeros(num, dim)

    def scorer(self, critic: str) -> Any:
        return lambda v: -torch.tensor([self.losses[float(x.mean())] for x in v])

    def log(self, name: str, value: Any) -> None:
        self.logged[name] = float(value)


class TestSteps:
    def test_losses_and_k_follow_the_paper(self) -> None:
        """L_D = L(x) - k L(G(z)), L_G = L(G(z)); then k moves by lambda_k (gamma L(x) -
        L(G(z))), and M_global = L(x) + |gamma L(x) - L(G(z))| is logged."""
        task = BEGAN(BEGANOptions(k_initial=0.5, lambda_k=0.1, gamma=0.5))
        step = FakeStep(real_loss=0.4, fake_loss=0.3)
        batch = {"x": torch.ones(4, 1, 8, 8)}
        critic_loss = task.critic_step(step, batch)  # type: ignore[arg-type]
        assert critic_loss.item() == pytest.approx(0.4 - 0.5 * 0.3)
        generator_loss = task.generator_step(step, batch)  # type: ignore[arg-type]
        assert generator_loss.item() == pytest.approx(0.3)
        assert task.k == pytest.approx(0.5 + 0.1 * (0.5 * 0.4 - 0.3))
        assert step.logged["k"] == pytest.approx(task.k)
        assert step.logged["m_global"] == pytest.approx(0.4 + abs(0.5 * 0.4 - 0.3))

    def test_k_stays_in_zero_one(self) -> None:
        task = BEGAN(BEGANOptions(lambda_k=1.0))
        batch = {"x": torch.ones(2, 1, 8, 8)}
        for real, fake, bound in (
            (0.1, 0.9, 0.0),
            (1.0, 0.0, 0.5),
            (1.0, 0.0, 1.0),
            (1.0, 0.0, 1.0),
        ):
            step = FakeStep(real, fake)
            task.critic_step(step, batch)  # type: ignore[arg-type]
            task.generator_step(step, batch)  # type: ignore[arg-type]
            assert task.k == bound


def _weights(checkpoint: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / f"{name}.safetensors"))


class TestResume:
    @pytest.mark.parametrize("task", ["began", "vae"])
    def test_is_exact_with_task_state(self, tmp_path: Path, runs: Any, task: str) -> None:
        """6 steps straight equal 3 + resume + 3: weights and the task's state (k_t, the
        VAE's KL annealing counter)."""
        document = runs.began(6) if task == "began" else runs.vae(6, kl_warmup_steps=10)
        config = gancore.parse_config(document, gancore.get_registry())
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        gt.train_interrupted(config, tmp_path / "resumed", after=3)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        assert straight.checkpoint is not None
        assert resumed.checkpoint is not None
        assert straight.step == resumed.step == 6
        _, state = gancore.load_checkpoint(straight.checkpoint)
        _, state_resumed = gancore.load_checkpoint(resumed.checkpoint)
        assert state["task"] == state_resumed["task"]
        if "k" in state["task"]:
            assert 0.0 < state["task"]["k"] <= 1.0  # the controller moved
        else:
            assert state["task"]["steps_done"] == 6
        names = ["generators"] + (["critics"] if "critic" in document else [])
        for name in names:
            a, b = _weights(straight.checkpoint, name), _weights(resumed.checkpoint, name)
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), key
