"""Unrolled GANs (Metz et al. 2017) as a task: the core's noise -> sample task whose generator
step looks ``steps`` critic updates ahead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch
from torch import nn
from torch.func import functional_call

import gancore
from gancore import StepContext, TaskBuildContext, Unconditional

__all__ = ["SUPPORTED_OPTIMIZERS", "Unrolled", "surrogate_step"]

# The critic optimizers whose update rule the surrogate steps can replay (torch.optim names).
SUPPORTED_OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
# Options of those optimizers that the replay does not implement (their defaults are fine).
_UNSUPPORTED = {
    "amsgrad": False,
    "maximize": False,
    "centered": False,
    "nesterov": False,
    "capturable": False,
}


@attrs.frozen(kw_only=True)
class Unrolled:
    """Unrolled GAN (Metz et al. 2017, "Unrolled Generative Adversarial Networks", Eq. 6-8).

    The critic step is the core task's. The generator minimises
    ``f(theta_G, theta_D^K)``: the generator loss under a surrogate critic ``theta_D^K``, reached
    from the critic's current parameters by ``steps`` = K updates of the critic's loss with the
    critic optimizer's own rule, hyperparameters and current state (Adam's moments and step
    count; SGD's momentum; RMSprop's average), on the step's real batch and generated batch.
    With ``second_order`` the generator's gradient flows through the K updates (the paper);
    without, only through the generated samples at ``theta_D^K`` (cheaper). The real critic,
    its optimizer and its buffers are left untouched: the surrogate runs on copies through
    ``torch.func.functional_call``. The surrogate uses the adversarial loss only (no
    regularizers).
    """

    steps: int = attrs.field(
        default=5,
        validator=attrs.validators.ge(0),
        metadata={
            "doc": "K, surrogate critic updates the generator looks ahead (the paper: 5 to 10 "
            "on 2-D mixtures); 0 = the ordinary GAN; >= 0"
        },
    )
    second_order: bool = attrs.field(
        default=True,
        metadata={
            "doc": "differentiate through the unrolled updates (the paper; about K extra "
            "double-backward passes); false = only through the samples (cheaper)"
        },
    )

    def build(self, context: TaskBuildContext) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        table = context.config.optimizers.tables.get("critic")
        if table is not None:
            if table.name not in SUPPORTED_OPTIMIZERS:
                raise ValueError(
                    f"task 'unrolled': the critic optimizer {table.name!r} has no surrogate "
                    f"update rule; use one of {', '.join(SUPPORTED_OPTIMIZERS)}"
                )
            for key, default in _UNSUPPORTED.items():
                if key in table.options and table.options[key] != default:
                    raise ValueError(
                        f"task 'unrolled': optimizers.critic.{key} = {table.options[key]!r} is "
                        f"not supported by the surrogate updates (only {key} = {default})"
                    )
        return Unconditional().build(context)

    def critic_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return Unconditional().critic_step(step, batch)

    def generator_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        real = batch["x"]
        latent_dim = int(step.unwrap("generator").latent_dim)  # type: ignore[arg-type]
        z = step.latents(real.shape[0], latent_dim)
        step.record_generator_inputs("generator", z)
        fake = step.generators["generator"](z)
        if self.steps == 0:
            return step.generator_loss("critic", fake, real=real)
        critic = step.unwrap("critic")
        optimizer = step.optimizer("critic")
        trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
        # Copies of the critic's parameters and buffers: the real critic stays as it is.
        named = dict(critic.named_parameters())
        theta = {n: p.detach().clone().requires_grad_(id(p) in trained) for n, p in named.items()}
        buffers = {n: b.detach().clone() for n, b in critic.named_buffers()}
        names = [n for n in theta if theta[n].requires_grad]
        states = {n: _state_copy(optimizer, named[n]) for n in names}
        settings = {n: _group_of(optimizer, named[n]) for n in names}
        kind = _kind(optimizer)
        real = real.detach()
        for _ in range(self.steps):
            target = fake if self.second_order else fake.detach()
            scores = {**theta, **buffers}
            real_scores = functional_call(critic, scores, (step.augment(real),))
            fake_scores = functional_call(critic, scores, (step.augment(target),))
            loss = step.loss.critic_loss(real_scores, fake_scores)
            grads = torch.autograd.grad(
                loss, [theta[n] for n in names], create_graph=self.second_order
            )
            for n, grad in zip(names, grads, strict=True):
                param = theta[n] if self.second_order else theta[n].detach()
                new = surrogate_step(kind, param, grad, states[n], settings[n])
                theta[n] = new if self.second_order else new.detach().requires_grad_(True)
        if not self.second_order:  # theta_D^K is a constant for the generator
            theta = {n: t.detach() for n, t in theta.items()}
        final = functional_call(critic, {**theta, **buffers}, (step.augment(fake),))
        total = step.loss.generator_loss(final)
        step.log("loss/generator", total)
        return total

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        return Unconditional().sample_inputs(generators, dataset, num, seed)

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        return Unconditional().sample(generators, inputs)


def _kind(optimizer: torch.optim.Optimizer) -> str:
    for name, cls in (
        ("adamw", torch.optim.AdamW),
        ("adam", torch.optim.Adam),
        ("rmsprop", torch.optim.RMSprop),
        ("sgd", torch.optim.SGD),
    ):
        if isinstance(optimizer, cls):
            return name
    raise ValueError(
        f"task 'unrolled': the critic optimizer {type(optimizer).__name__} has no surrogate "
        f"update rule; use one of {', '.join(SUPPORTED_OPTIMIZERS)}"
    )


def _group_of(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict[str, Any]:
    for group in optimizer.param_groups:
        if any(p is param for p in group["params"]):
            return group
    raise KeyError("parameter not in the critic optimizer")


def _state_copy(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict[str, Any]:
    """The optimizer's state of ``param``, copied (the surrogate never writes the real one)."""
    state = optimizer.state.get(param, {})
    return {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def surrogate_step(
    kind: str,
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    group: Mapping[str, Any],
) -> torch.Tensor:
    """One update of ``param`` by the rule of torch's ``kind`` optimizer (adam, adamw, rmsprop,
    sgd) with ``group``'s hyperparameters, out of place and differentiable; ``state`` (the
    optimizer's per-parameter state, a copy) is advanced in place, as the optimizer would."""
    lr = float(group["lr"])
    decay = float(group.get("weight_decay", 0.0))
    decoupled = kind == "adamw" or bool(group.get("decoupled_weight_decay", False))
    if decoupled and decay:
        param = param * (1.0 - lr * decay)  # decoupled weight decay
    elif decay:
        grad = grad + decay * param
    if kind in ("adam", "adamw"):
        beta1, beta2 = (float(b) for b in group["betas"])
        t = float(state.get("step", 0.0)) + 1.0
        m = beta1 * state.get("exp_avg", torch.zeros_like(param)) + (1.0 - beta1) * grad
        v = beta2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1.0 - beta2) * grad * grad
        state.update(step=torch.tensor(t), exp_avg=m, exp_avg_sq=v)
        # p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps); the tiny constant
        # keeps sqrt differentiable at v = 0 (second order)
        denom = torch.sqrt(v + 1e-30) / (1.0 - beta2**t) ** 0.5 + float(group["eps"])
        return param - lr / (1.0 - beta1**t) * m / denom
    if kind == "rmsprop":
        alpha = float(group["alpha"])
        avg = alpha * state.get("square_avg", torch.zeros_like(param)) + (1.0 - alpha) * grad * grad
        state.update(step=torch.tensor(float(state.get("step", 0.0)) + 1.0), square_avg=avg)
        momentum = float(group.get("momentum", 0.0))
        update = grad / (torch.sqrt(avg + 1e-30) + float(group["eps"]))
        if momentum:
            buf = state.get("momentum_buffer")
            update = update if buf is None else momentum * buf + update
            state["momentum_buffer"] = update
        return param - lr * update
    # sgd
    momentum = float(group.get("momentum", 0.0))
    if momentum:
        buf = state.get("momentum_buffer")
        dampening = float(group.get("dampening", 0.0))
        grad = grad if buf is None else momentum * buf + (1.0 - dampening) * grad
        state["momentum_buffer"] = grad
    return param - lr * grad
