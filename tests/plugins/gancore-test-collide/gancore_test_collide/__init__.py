"""A test plugin that registers names other distributions also register."""

from __future__ import annotations

import attrs
import torch

import gancore


@attrs.frozen(kw_only=True)
class OtherHinge:
    """A second 'hinge' loss (a test component), to exercise name collisions."""

    margin: float = attrs.field(default=2.0, metadata={"doc": "Margin of the hinge."})

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return (
            torch.relu(self.margin - real_scores).mean()
            + torch.relu(self.margin + fake_scores).mean()
        )

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -fake_scores.mean()


@gancore.hookimpl
def gancore_register_losses(register: gancore.RegisterCallback) -> None:
    register("hinge", OtherHinge, description="Hinge with a margin of 2 (collides on purpose).")
