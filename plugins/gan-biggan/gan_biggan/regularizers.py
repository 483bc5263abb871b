"""BigGAN's orthogonal regularization (Brock et al. 2019, Sec. 3.1, Eq. 3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs
import torch
from einops import rearrange
from torch import nn

from gan_biggan.layers import raw_weight
from gancore.protocols import Player

__all__ = ["Orthogonal", "orthogonal_penalty", "regularized_weights"]

WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)


def orthogonal_penalty(weight: torch.Tensor) -> torch.Tensor:
    """``||W^T W * (1 - I)||_F^2`` for a layer's weight, ``W`` with one column per filter
    (``[in * k * k, out]``): the squared off-diagonal entries of the filters' Gram matrix, so
    the filters are pushed towards orthogonality without constraining their norms."""
    w = rearrange(weight, "out ... -> out (...)")  # rows = filters: w w^T = W^T W
    gram = w @ w.T
    off_diagonal = gram * (1.0 - torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device))
    return off_diagonal.square().sum()


def regularized_weights(generator: nn.Module) -> list[torch.Tensor]:
    """The weights BigGAN regularizes: those of every convolution and linear layer (the trained,
    unnormalized ``W`` under spectral norm). Embeddings (the shared class embedding, per-class
    gain tables) and normalization parameters are left out, as in the paper."""
    return [raw_weight(m) for m in generator.modules() if isinstance(m, WEIGHTED)]


@attrs.frozen(kw_only=True)
class Orthogonal:
    """Orthogonal regularization of the generator (Brock et al. 2019, Eq. 3):

    ``R(G) = beta * sum_W ||W^T W * (1 - I)||_F^2``

    over the weights of :func:`regularized_weights`. Its gradient is ``4 beta (W^T W * (1 - I))``
    applied to each filter; the official BigGAN code adds ``2 beta (...)`` directly to the
    gradient, which is the gradient of half this penalty (see docs/plugins/biggan.md).
    """

    player: ClassVar[Player] = "generator"

    beta: float = attrs.field(
        default=1e-4,
        converter=float,
        validator=attrs.validators.ge(0),
        metadata={"doc": "weight of the penalty, >= 0 (the paper's 1e-4)"},
    )
    interval: int = attrs.field(
        default=1,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "generator steps between applications (>= 1); k > 1 = a lazy phase every k "
            "steps with the penalty multiplied by k (the paper: 1, every step)"
        },
    )

    def check(self, players: Mapping[str, Mapping[str, nn.Module]]) -> None:
        """Every generator has a convolution or linear weight to regularize."""
        for name, generator in players.get("generator", {}).items():
            if not regularized_weights(generator):
                raise ValueError(
                    f"orthogonal: generator {name!r} ({type(generator).__name__}) has no "
                    "convolution or linear layer to regularize"
                )

    def penalty(self, generator: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """``beta * sum_W ||W^T W * (1 - I)||_F^2``; ``inputs`` (the latents) are not used."""
        terms = [orthogonal_penalty(w) for w in regularized_weights(generator)]
        return self.beta * torch.stack(terms).sum()
