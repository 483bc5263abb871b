"""A well-behaved test plugin: a loss, a class-conditional task and the tasks of the Core v2
seams (stages, players), registered through the public API."""

from __future__ import annotations

import attrs
import torch

import gancore
from gancore_test_good.conditional import ConditionalTask
from gancore_test_good.players import Growing, TinyVAE, WithQ


@attrs.frozen(kw_only=True)
class ScaledHinge:
    """Hinge loss with scores multiplied by ``scale`` first (a test component)."""

    scale: float = attrs.field(
        default=1.0, validator=attrs.validators.gt(0), metadata={"doc": "Score multiplier (> 0)."}
    )

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        # relu(1 - s*D(x)) + relu(1 + s*D(G(z)))
        return (
            torch.relu(1 - self.scale * real_scores).mean()
            + torch.relu(1 + self.scale * fake_scores).mean()
        )

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -(self.scale * fake_scores).mean()


@gancore.hookimpl
def gancore_register_losses(register: gancore.RegisterCallback) -> None:
    register("scaled-hinge", ScaledHinge, description="Hinge loss on scaled scores (test plugin).")


@gancore.hookimpl
def gancore_register_tasks(register: gancore.RegisterCallback) -> None:
    register(
        "test-conditional",
        ConditionalTask,
        description="Class-conditional MLP GAN with a projection critic (test plugin).",
    )
    register("test-growing", Growing, description="A 2-D GAN whose generator grows per stage.")
    register("test-q", WithQ, description="A 2-D GAN with an InfoGAN-style Q head player.")
    register("test-vae", TinyVAE, description="A 2-D VAE: no critic, an encoder player.")
