"""Residual MLP networks for any data shape: a generator of latents and a critic.

Residual blocks ``x + W2 act(W1 x)`` (He et al. 2016, "Deep Residual Learning for Image
Recognition") keep deeper MLPs trainable; they have no normalization, so gradient penalties are
meaningful per sample.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import nn

import gancore


@attrs.frozen(kw_only=True)
class ResidualMLPCriticOptions:
    hidden: int = attrs.field(
        default=64, validator=attrs.validators.ge(1), metadata={"doc": "width of every layer; >= 1"}
    )
    blocks: int = attrs.field(
        default=2, validator=attrs.validators.ge(0), metadata={"doc": "residual blocks; >= 0"}
    )


@attrs.frozen(kw_only=True)
class ResidualMLPOptions(ResidualMLPCriticOptions):
    latent_dim: int = attrs.field(
        default=8,
        validator=attrs.validators.ge(1),
        metadata={"doc": "size of the latent vector z ~ N(0, I); >= 1"},
    )


class Block(nn.Module):
    """``x + W2 leaky_relu(W1 x)``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def _trunk(inputs: int, hidden: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.LeakyReLU(0.2),
        *(Block(hidden) for _ in range(blocks)),
        nn.LeakyReLU(0.2),
    )


class ResidualMLPGenerator(nn.Module):
    """``z [N, latent_dim] -> [N, *data_shape]`` in ``(-1, 1)``."""

    def __init__(self, data_shape: tuple[int, ...], options: ResidualMLPOptions) -> None:
        super().__init__()
        self.latent_dim = options.latent_dim  # read by tasks that draw latents
        self.data_shape = data_shape
        self.trunk = _trunk(options.latent_dim, options.hidden, options.blocks)
        self.out = nn.Linear(options.hidden, math.prod(data_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.trunk(z))).reshape(z.shape[0], *self.data_shape)


class ResidualMLPCritic(nn.Module):
    """``[N, *data_shape] -> [N]`` raw scores."""

    def __init__(self, data_shape: tuple[int, ...], options: ResidualMLPCriticOptions) -> None:
        super().__init__()
        self.trunk = _trunk(math.prod(data_shape), options.hidden, options.blocks)
        self.out = nn.Linear(options.hidden, 1)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if extra:
            raise ValueError(
                f"residual-mlp critic: takes no conditioning inputs (got {len(extra)})"
            )
        return self.out(self.trunk(x.flatten(1))).squeeze(1)


def build_generator(
    options: ResidualMLPOptions, context: gancore.BuildContext
) -> ResidualMLPGenerator:
    if context.input_shape is not None:
        raise ValueError(
            f"residual-mlp generator: takes latents, not inputs (got input shape "
            f"{context.input_shape})"
        )
    return ResidualMLPGenerator(context.data_shape, options)


def build_critic(
    options: ResidualMLPCriticOptions, context: gancore.BuildContext
) -> ResidualMLPCritic:
    return ResidualMLPCritic(context.data_shape, options)
