"""The unrolled task: surrogate updates, the untouched real critic, resume."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from gan_improved.tasks import Unrolled, surrogate_step
from torch import nn

import gancore
import gancore.testing as gt
from gancore.builtin.augmenters import NoAugment
from gancore.builtin.losses import NonSaturating


def context(
    generator: nn.Module, critic: nn.Module, optimizer: torch.optim.Optimizer
) -> gancore.StepContext:
    step = gancore.StepContext(
        players={"generator": {"generator": generator}, "critic": {"critic": critic}},
        modules={"generator": generator, "critic": critic},
        loss=NonSaturating(),
        augmenter=NoAugment(),
        feedback=None,
        device=torch.device("cpu"),
        seed=0,
        rank=0,
        world_size=1,
        optimizers={"critic": optimizer},
    )
    step.begin(1, 0, 0)
    return step


def players(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    generator = gt.TinyGenerator((2,), latent_dim=3)
    critic = gt.TinyCritic((2,), hidden=6)
    return generator, critic


def warm_adam(critic: nn.Module, lr: float = 0.01) -> torch.optim.Optimizer:
    """An Adam optimizer with two steps of state, as the loop's would have."""
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    for _ in range(2):
        optimizer.zero_grad()
        critic(torch.randn(8, 2)).square().mean().backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return optimizer


BATCH = {"x": torch.randn(8, 2)}


class TestSurrogateStep:
    @pytest.mark.parametrize(
        ("cls", "kind", "options"),
        [
            (torch.optim.Adam, "adam", {"betas": (0.5, 0.9), "weight_decay": 0.1}),
            (torch.optim.AdamW, "adamw", {"betas": (0.0, 0.99), "weight_decay": 0.1}),
            (torch.optim.SGD, "sgd", {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
            (torch.optim.SGD, "sgd", {}),
            (torch.optim.RMSprop, "rmsprop", {"alpha": 0.9, "momentum": 0.5}),
        ],
    )
    def test_matches_the_torch_optimizer(self, cls: Any, kind: str, options: Any) -> None:
        """One surrogate update equals the torch optimizer's step from the same state."""
        torch.manual_seed(0)
        param = nn.Parameter(torch.randn(3, 2))
        optimizer = cls([param], lr=0.05, **options)
        for _ in range(3):  # some state
            param.grad = torch.randn(3, 2)
            optimizer.step()
        grad = torch.randn(3, 2)
        state = {
            k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[param].items()
        }
        expected = surrogate_step(kind, param.detach(), grad, state, optimizer.param_groups[0])
        param.grad = grad
        optimizer.step()
        torch.testing.assert_close(expected, param.detach(), rtol=1e-5, atol=1e-6)
        for key, value in optimizer.state[param].items():  # the copy advanced as the optimizer
            torch.testing.assert_close(
                torch.as_tensor(state[key]).float(), torch.as_tensor(value).float()
            )


class TestUnrolled:
    @pytest.mark.parametrize("second_order", [True, False])
    def test_real_critic_is_untouched(self, second_order: bool) -> None:
        """The generator step leaves the critic's parameters, buffers and optimizer state as
        they were, and gives the critic no gradient; the generator gets one."""
        generator, critic = players()
        optimizer = warm_adam(critic)
        before = copy.deepcopy(critic.state_dict())
        state_before = copy.deepcopy(optimizer.state_dict())
        critic.requires_grad_(False)  # as the loop freezes it in the generator phase
        loss = Unrolled(steps=3, second_order=second_order).generator_step(
            context(generator, critic, optimizer), BATCH
        )
        loss.backward()
        for key, value in critic.state_dict().items():
            assert torch.equal(value, before[key]), key
        after = optimizer.state_dict()
        for index, state in state_before["state"].items():
            for key, value in state.items():
                assert torch.equal(after["state"][index][key], value), (index, key)
        assert all(p.grad is None for p in critic.parameters())
        assert all(p.grad is not None for p in generator.parameters())

    def test_no_steps_is_the_ordinary_generator_loss(self) -> None:
        """steps = 0: the core task's generator loss."""
        generator, critic = players()
        optimizer = warm_adam(critic)
        unrolled = Unrolled(steps=0).generator_step(context(generator, critic, optimizer), BATCH)
        plain = gancore.Unconditional().generator_step(context(generator, critic, optimizer), BATCH)
        assert torch.equal(unrolled, plain)

    def test_first_order_is_the_loss_at_the_updated_critic(self) -> None:
        """Without second order: the generator's loss and gradient are those at a copy of the
        critic after K steps of its own optimizer (a deep copy of both) on the same batch."""
        generator, critic = players()
        optimizer = warm_adam(critic)
        step = context(generator, critic, optimizer)
        loss = Unrolled(steps=2, second_order=False).generator_step(step, BATCH)
        (grad,) = torch.autograd.grad(loss, generator.linear.weight)

        ahead = copy.deepcopy(critic)
        ahead_opt = torch.optim.Adam(ahead.parameters(), lr=0.01, betas=(0.5, 0.9))
        ahead_opt.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        step2 = context(generator, critic, optimizer)
        z = step2.latents(8, 3)
        fake = generator(z)
        for _ in range(2):
            ahead_opt.zero_grad()
            NonSaturating().critic_loss(ahead(BATCH["x"]), ahead(fake.detach())).backward()
            ahead_opt.step()
        ahead.requires_grad_(False)
        expected = NonSaturating().generator_loss(ahead(fake))
        (expected_grad,) = torch.autograd.grad(expected, generator.linear.weight)
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)

    def test_second_order_differs_from_first_order(self) -> None:
        """Differentiating through the updates changes the generator's gradient, not its loss."""
        grads, losses = [], []
        for second_order in (True, False):
            generator, critic = players()
            optimizer = warm_adam(critic, lr=0.1)
            critic.requires_grad_(False)
            loss = Unrolled(steps=3, second_order=second_order).generator_step(
                context(generator, critic, optimizer), BATCH
            )
            losses.append(loss.detach())
            grads.append(torch.autograd.grad(loss, generator.linear.weight)[0])
        torch.testing.assert_close(losses[0], losses[1])
        assert not torch.allclose(grads[0], grads[1])

    def test_trains(self, tmp_path: Path) -> None:
        """The task trains with either setting (conformance)."""
        gt.check_task({"name": "unrolled", "steps": 2}, tmp_path / "a")
        gt.check_task({"name": "unrolled", "steps": 2, "second_order": False}, tmp_path / "b")

    def test_resumes_exactly(self, tmp_path: Path) -> None:
        """4 steps straight equal 2, stop, resume, 2: the surrogate keeps no hidden state."""
        document = gt.tiny_run(
            4,
            task={"name": "unrolled", "steps": 2},
            training={"batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": 0},
        )
        config = gancore.parse_config(document, gancore.get_registry())
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        gt.train_interrupted(config, tmp_path / "resumed", after=2)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        for name in ("generator", "critic"):
            a = (straight.generators | straight.critics)[name].state_dict()
            b = (resumed.generators | resumed.critics)[name].state_dict()
            for key in a:
                assert torch.equal(a[key], b[key]), (name, key)

    def test_refuses_an_optimizer_without_a_rule(self, tmp_path: Path) -> None:
        """A critic optimizer the surrogate cannot replay is a one-line error naming it."""
        with pytest.raises(ValueError, match="critic optimizer 'adagrad' has no surrogate"):
            gt.check_task("unrolled", tmp_path / "run", optimizers={"critic": {"name": "adagrad"}})

    def test_refuses_amsgrad(self, tmp_path: Path) -> None:
        """Adam's amsgrad is not replayed: refused, naming the key."""
        with pytest.raises(
            ValueError, match=r"optimizers\.critic\.amsgrad = True is not supported"
        ):
            gt.check_task(
                "unrolled",
                tmp_path / "run",
                optimizers={"critic": {"name": "adam", "amsgrad": True}},
            )
