"""Freeze-D: freeze the first blocks of a critic (Mo, Cho & Shin 2020, "Freeze the Discriminator:
a Simple Baseline for Fine-Tuning GANs"), the transfer-learning baseline that Karras et al. 2020
compare ADA with and combine it with; and bCR, balanced consistency regularization (Zhao et al.
2021, "Improved Consistency Regularization for GANs"), the augmentation baseline that never shows
the critic's adversarial loss an augmented image.

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
from einops import reduce
from torch import nn

from gan_ada.diffaugment import DiffAugment, DiffAugmentOptions

__all__ = ["BalancedConsistency", "FreezeD", "critic_blocks"]


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


def _weight(default: float, doc: str) -> float:
    return attrs.field(
        default=default,
        converter=float,
        validator=[attrs.validators.ge(0.0), attrs.validators.lt(float("inf"))],
        metadata={"doc": doc},
    )


@attrs.frozen(kw_only=True)
class BalancedConsistency:
    """bCR (Zhao et al. 2021, Eqs. 1-3): the critic's scores should not change under a
    semantics-preserving transform ``T`` of its input, for real and for generated images:

        penalty = real * E_x ||D(x) - D(T(x))||^2 + fake * E_z ||D(G(z)) - D(T(G(z)))||^2

    added to the critic's loss (every critic step). ``D(x)`` is a sample's score (the mean of a
    patch critic's scores), gradients flow through both terms. ``T`` is the paper's: a horizontal
    flip with probability 1/2 (``xflip``) and an integer translation of up to ``translation`` of
    the size in each direction, zero padded. Unlike ``ada`` and ``diffaugment`` the adversarial loss
    sees only unaugmented images, so nothing can leak into the generator; run it without an
    ``[augmenter]`` (one would also transform both sides of the penalty). ``T`` draws from torch's
    global random state, which checkpoints keep (exact resume).
    """

    player: ClassVar[Literal["critic"]] = "critic"
    interval: ClassVar[int] = 1  # part of every critic loss

    real: float = _weight(10.0, "weight lambda_real of the real images' term (paper: 10); >= 0")
    fake: float = _weight(
        10.0, "weight lambda_fake of the generated images' term (paper: 10); >= 0"
    )
    translation: float = attrs.field(
        default=0.125,
        converter=float,
        validator=[attrs.validators.ge(0.0), attrs.validators.le(0.5)],
        metadata={
            "doc": "T's translation: up to this fraction of the size, zero padded (paper: 4 px of "
            "32, 0.125); in [0, 0.5]"
        },
    )
    xflip: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "T mirrors each image left-right with probability 1/2 (paper: yes); false for "
            "data whose mirror image is not a valid sample (digits, text)"
        },
    )

    _shift: DiffAugment = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(
            lambda self: DiffAugment(
                DiffAugmentOptions(policy=("translation",), translation_ratio=self.translation)
            ),
            takes_self=True,
        ),
    )

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``T(x)`` for images ``[N, C, H, W]``: each image flipped (``xflip``) with probability
        1/2, then shifted by whole pixels."""
        if x.ndim != 4:
            shape = "x".join(map(str, x.shape[1:])) or "none"
            raise ValueError(f"bcr: expected images of shape (C, H, W) (got {shape})")
        if self.xflip:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.translation > 0:
            shift = self._shift
            x = shift.transform(
                x, shift.sample_params(x.shape[0], x.shape[2], x.shape[3], x.device)
            )
        return x

    def penalty(
        self,
        critic: Callable[..., torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """``real * mean ||D(x) - D(T x)||^2 + fake * mean ||D(G z) - D(T G z)||^2``."""

        def score(x: torch.Tensor) -> torch.Tensor:
            scores = critic(x, *extra)
            return reduce(scores, "n ... -> n", "mean") if scores.ndim > 1 else scores

        total = real.new_zeros(())
        for weight, x in ((self.real, real), (self.fake, fake)):
            if weight > 0:
                x = x.detach()
                total = total + weight * (score(x) - score(self.transform(x))).square().mean()
        return total

    def after_step(self, critic: nn.Module) -> None:
        """A pure penalty: nothing to do after the optimizer step."""
