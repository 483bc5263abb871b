"""Task ``began`` (Berthelot et al. 2017, "BEGAN: Boundary Equilibrium Generative Adversarial
Networks", Sec. 3.2-3.4).

The critic is an autoencoder ``D`` (critic ``began-autoencoder``) and ``L(v) = |v - D(v)|^eta``
averaged over pixels is its reconstruction loss; the critic's score is ``-L(v)`` per image, so
``L(v) = -mean(score)``. With ``x`` a real batch and ``G(z)`` generated images:

    L_D = L(x) - k_t L(G(z))             (critic phase)
    L_G = L(G(z))                        (generator phase)
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)

``k_t`` is updated after each generator step, from the last critic step's ``L(x)`` and the
generator step's ``L(G(z))`` (averaged over processes, so every process keeps the same ``k``),
and is checkpointed (the task's ``state_dict``). Logged: ``k``, ``m_global`` (the convergence
measure ``M_global = L(x) + |gamma L(x) - L(G(z))|``, Sec. 3.4.1), ``loss/real_reconstruction``
and ``loss/fake_reconstruction``.

BEGAN's losses are its own: the run's ``[loss]`` is not used (any value is ignored), and since
``step.critic_loss`` is not called, an augmenter gets no feedback (a fixed-strength augmenter
still applies, through ``step.scorer``), and critic regularizers have no recorded call to act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch
import torch.distributed as dist
from torch import nn

import gancore  # at run time: option types are read with get_type_hints

__all__ = ["BEGAN", "BEGANOptions", "build_began", "k_update"]


def k_update(k: float, lambda_k: float, gamma: float, real_loss: float, fake_loss: float) -> float:
    """``clip(k + lambda_k (gamma L(x) - L(G(z))), 0, 1)`` (Berthelot et al. 2017, Eq. 4)."""
    return min(1.0, max(0.0, k + lambda_k * (gamma * real_loss - fake_loss)))


def _fraction(low: float, high: float) -> Any:
    return [
        attrs.validators.instance_of(float),
        attrs.validators.ge(low),
        attrs.validators.le(high),
    ]


@attrs.frozen(kw_only=True)
class BEGANOptions:
    """Options of the ``began`` task (defaults: Berthelot et al. 2017, Sec. 3.4 and 4.1)."""

    gamma: float = attrs.field(
        default=0.5,
        validator=_fraction(0.0, 1.0),
        metadata={
            "doc": "diversity ratio E[L(G(z))] / E[L(x)] the controller aims at, in [0, 1]; lower "
            "= sharper, less diverse (the paper: 0.3 to 0.7)"
        },
    )
    lambda_k: float = attrs.field(
        default=0.001,
        validator=_fraction(0.0, 1.0),
        metadata={"doc": "proportional gain of the k_t controller (the paper: 0.001), in [0, 1]"},
    )
    k_initial: float = attrs.field(
        default=0.0,
        validator=_fraction(0.0, 1.0),
        metadata={"doc": "k_0, in [0, 1] (the paper: 0)"},
    )


class BEGAN:
    """The ``began`` task (module docstring); its state is ``k``."""

    def __init__(self, options: BEGANOptions) -> None:
        self.options = options
        self.k = options.k_initial
        self._real_loss: torch.Tensor | None = None  # L(x) of the last critic step

    def build(self, context: gancore.TaskBuildContext) -> tuple[dict[str, nn.Module], ...]:
        generator = context.build_generator()
        if not isinstance(getattr(generator, "latent_dim", None), int):
            raise ValueError("task 'began': the generator must take latents (no latent_dim)")
        critic = context.build_critic()
        if not callable(getattr(critic, "reconstruct", None)):
            name = context.config.critic.spec.name if context.config.critic else "?"
            raise ValueError(
                f"task 'began': critic {name!r} is not an autoencoder (no reconstruct()); use "
                "critic 'began-autoencoder'"
            )
        return {"generator": generator}, {"critic": critic}

    def _fake(self, step: gancore.StepContext, num: int) -> torch.Tensor:
        generator: Any = step.unwrap("generator")
        z = step.latents(num, int(generator.latent_dim))
        fake: torch.Tensor = step.generators["generator"](z.to(step.device))
        return fake

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        x = batch["x"]
        with torch.no_grad():
            fake = self._fake(step, len(x))
        score = step.scorer("critic")  # -L(v), through the augmenter
        real_loss = -score(x).mean()
        fake_loss = -score(fake).mean()
        self._real_loss = real_loss.detach()
        step.log("loss/real_reconstruction", real_loss)
        return real_loss - self.k * fake_loss

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        fake_loss = -step.scorer("critic")(self._fake(step, len(batch["x"]))).mean()
        real = self._real_loss if self._real_loss is not None else fake_loss.detach()
        losses = torch.stack([real, fake_loss.detach()]).double()
        if dist.is_available() and dist.is_initialized():  # k must agree on every process
            dist.all_reduce(losses)
            losses /= dist.get_world_size()
        real_value, fake_value = (float(v) for v in losses.tolist())
        gamma = self.options.gamma
        step.log("m_global", real_value + abs(gamma * real_value - fake_value))
        step.log("loss/fake_reconstruction", fake_loss)
        self.k = k_update(self.k, self.options.lambda_k, gamma, real_value, fake_value)
        step.log("k", self.k)
        return fake_loss

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: object, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        dim = int(getattr(generators["generator"], "latent_dim"))  # noqa: B009 (an nn.Module attr)
        return {"z": torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"]))

    def state_dict(self) -> dict[str, Any]:
        return {"k": self.k}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.k = float(state["k"])


def build_began(options: BEGANOptions, context: object) -> BEGAN:
    del context
    return BEGAN(options)
