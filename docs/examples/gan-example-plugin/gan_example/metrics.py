"""Metrics of gan-example: flat, JSON-ready results with the protocol that produced them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import torch

from gancore.protocols import MetricContext


@attrs.frozen(kw_only=True)
class SlicedWasserstein:
    """Sliced Wasserstein-2 distance (Rabin, Peyré, Delon & Bernot 2011; Bonneel et al. 2015)
    between generated and real samples, flattened to vectors:
    ``SW2 = sqrt(E_theta[W2^2(theta . fake, theta . real)])`` over random unit directions theta.
    In one dimension, W2^2 between two sets of n points is the mean squared difference of their
    sorted values. Computed in float64; it holds all samples (keep ``num_samples`` moderate)."""

    num_samples: int = attrs.field(
        default=2000,
        validator=attrs.validators.ge(2),
        metadata={"doc": "generated and real samples compared; >= 2"},
    )
    num_projections: int = attrs.field(
        default=256,
        validator=attrs.validators.ge(1),
        metadata={"doc": "random directions averaged over; >= 1"},
    )
    batch_size: int = attrs.field(
        default=500,
        validator=attrs.validators.ge(1),
        metadata={"doc": "samples per batch; >= 1 (memory, not result)"},
    )
    seed: int = attrs.field(
        default=0, metadata={"doc": "seed of the samples, the real draw and the directions"}
    )

    def value_keys(self) -> list[str]:
        return ["sliced-wasserstein"]

    def evaluate(self, context: MetricContext) -> dict[str, Any]:
        def gather(batches: Iterator[torch.Tensor]) -> torch.Tensor:
            return torch.cat([b.detach().double().flatten(1).cpu() for b in batches])

        fake = gather(context.generate(self.num_samples, self.batch_size, self.seed))
        real = gather(context.real(self.num_samples, self.batch_size, self.seed))
        return {
            "sliced-wasserstein": sliced_wasserstein(fake, real, self.num_projections, self.seed),
            "protocol": {
                "num_samples": self.num_samples,
                "num_projections": self.num_projections,
                "seed": self.seed,
            },
        }


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int, seed: int) -> float:
    """SW2 between point sets ``a`` and ``b`` of equal size ``[n, d]``."""
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(a.shape[1], projections, generator=gen, dtype=torch.float64)
    theta = theta / torch.linalg.vector_norm(theta, dim=0, keepdim=True)  # unit directions
    pa = (a.double() @ theta).sort(dim=0).values
    pb = (b.double() @ theta).sort(dim=0).values
    return float((pa - pb).square().mean().sqrt())
