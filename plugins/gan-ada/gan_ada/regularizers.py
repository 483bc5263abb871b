"""Freeze-D: freeze the first blocks of a critic (Mo, Cho & Shin 2020, "Freeze the Discriminator:
a Simple Baseline for Fine-Tuning GANs"), the transfer-learning baseline that Karras et al. 2020
compare ADA with and combine it with.

A critic declares its blocks with an attribute ``blocks``: a sequence of ``nn.Module`` ordered
from the input to the output. ``freeze-d`` sets ``requires_grad = False`` on every parameter of
``critic.blocks[:k]`` once, when the run is built (gancore's optional ``setup_critic`` seam), before
the optimizers are created, so the frozen parameters never reach the critic's optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

import attrs
import torch
from torch import nn

__all__ = ["FreezeD", "critic_blocks"]


def critic_blocks(critic: nn.Module) -> Sequence[nn.Module]:
    """The critic's declared ``blocks``, checked: a non-empty sequence of ``nn.Module``."""
    blocks = getattr(critic, "blocks", None)
    name = type(critic).__name__
    if blocks is None:
        raise ValueError(
            f"freeze-d: critic {name} declares no 'blocks' (a sequence of nn.Module ordered "
            "from input to output); freeze-d works only with critics that declare them"
        )
    if isinstance(blocks, nn.Module) and not isinstance(blocks, nn.Sequential | nn.ModuleList):
        raise ValueError(
            f"freeze-d: critic {name}'s 'blocks' must be a sequence of nn.Module "
            f"(got a single {type(blocks).__name__})"
        )
    items = list(blocks)
    if not all(isinstance(b, nn.Module) for b in items):
        raise ValueError(f"freeze-d: critic {name}'s 'blocks' must all be nn.Module instances")
    return items


@attrs.frozen(kw_only=True)
class FreezeD:
    """Freeze the first ``blocks`` blocks of every critic (Freeze-D, Mo et al. 2020): their
    parameters get ``requires_grad = False`` before the optimizers exist, so they keep their
    (pretrained) values. Adds no penalty. Critics must declare ``blocks``; the error names the
    critic class when one does not, or has fewer blocks than asked for.
    """

    player: ClassVar[Literal["critic"]] = "critic"
    interval: ClassVar[int] = 1  # a setup-time constraint, never a lazy phase

    blocks: int = attrs.field(
        default=1,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)],
        metadata={
            "doc": "number of critic blocks to freeze, counted from the input; >= 0 (0 freezes "
            "nothing); at most the critic's number of blocks"
        },
    )

    def setup_critic(self, critic: nn.Module) -> None:
        """Set ``requires_grad = False`` on the parameters of ``critic.blocks[:blocks]``."""
        blocks = critic_blocks(critic)
        if self.blocks > len(blocks):
            raise ValueError(
                f"freeze-d: 'blocks' = {self.blocks} but critic {type(critic).__name__} "
                f"declares only {len(blocks)} blocks"
            )
        for block in blocks[: self.blocks]:
            block.requires_grad_(False)

    def penalty(
        self,
        critic: Callable[..., torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> None:
        """A constraint: no penalty."""
        return None

    def after_step(self, critic: nn.Module) -> None:
        """Nothing to do: frozen parameters are not in the optimizer."""
