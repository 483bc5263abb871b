"""Datasets of gan-example: map-style, items deterministic functions of the index."""

from __future__ import annotations

import attrs
import numpy as np
import torch


@attrs.frozen(kw_only=True)
class TwoMoonsOptions:
    size: int = attrs.field(
        default=10_000, validator=attrs.validators.ge(2), metadata={"doc": "number of points; >= 2"}
    )
    noise: float = attrs.field(
        default=0.05,
        validator=attrs.validators.ge(0.0),
        metadata={"doc": "standard deviation of Gaussian noise added to each point; >= 0"},
    )
    seed: int = attrs.field(
        default=0, validator=attrs.validators.ge(0), metadata={"doc": "seed of the draw; >= 0"}
    )


class TwoMoons:
    """Two interleaving half circles (the upper one centred at (0, 0), the lower at (1, 0.5),
    radius 1), shifted and halved into about [-1, 1]^2. Half the points on each, at uniform
    angles; drawn once at construction, so item i is always the same point."""

    def __init__(self, options: TwoMoonsOptions) -> None:
        rng = np.random.default_rng(options.seed)
        upper = options.size // 2
        angle = rng.uniform(0.0, np.pi, size=options.size)
        x = np.where(np.arange(options.size) < upper, np.cos(angle), 1.0 - np.cos(angle))
        y = np.where(np.arange(options.size) < upper, np.sin(angle), 0.5 - np.sin(angle))
        points = np.stack([x - 0.5, y - 0.25], axis=1) / 1.5
        points += rng.normal(0.0, options.noise, size=points.shape)
        self.points = torch.from_numpy(points.astype(np.float32))
        self.shapes = {"x": (2,)}

    def __len__(self) -> int:
        return self.points.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.points[index]}

    def get_batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return {"x": self.points[indices]}


def build_two_moons(options: TwoMoonsOptions, context: None) -> TwoMoons:
    return TwoMoons(options)
