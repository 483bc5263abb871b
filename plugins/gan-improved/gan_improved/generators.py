"""Virtual batch normalization (Salimans et al. 2016, Sec. 3.5) as a generator wrapper."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import nn

import gancore

__all__ = [
    "VirtualBatchNorm",
    "VirtualBatchNormGenerator",
    "VirtualBatchNormOptions",
    "build_virtual_batchnorm",
]


def _generator_table(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(
            f"'{attribute.name}' must be a generator table such as {{name = \"dcgan\"}} "
            f"(got {value!r})"
        )


@attrs.frozen(kw_only=True)
class VirtualBatchNormOptions:
    """Options of :class:`VirtualBatchNormGenerator`."""

    inner: dict[str, Any] = attrs.field(
        factory=lambda: {"name": "dcgan"},
        validator=_generator_table,
        metadata={
            "doc": "the generator whose batch norm layers become virtual batch norm, a table "
            'with its own name and options, e.g. {name = "dcgan", channels = 64}; it must '
            "take latents and hold BatchNorm1d/2d layers"
        },
    )
    reference_size: int = attrs.field(
        default=64,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "n, latents in the reference batch, drawn once from the run seed; every "
            "forward also runs these n (the cost); >= 1"
        },
    )


class VirtualBatchNorm(nn.Module):
    """A batch norm layer whose statistics come from a reference batch (Salimans et al. 2016,
    Sec. 3.5): the first ``reference_size`` rows of its input are the reference batch, normalized
    with their own statistics; every other row ``x`` with the statistics of the reference batch
    plus ``x`` itself, weights ``n / (n + 1)`` and ``1 / (n + 1)``. Statistics are per channel,
    over the batch and the spatial positions, as batch norm's; the affine ``weight`` and ``bias``
    are the replaced layer's own parameters. No running statistics: training and evaluation
    normalize the same way.
    """

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm, reference_size: int) -> None:
        super().__init__()
        self.reference_size = reference_size
        self.eps = norm.eps
        self.weight = norm.weight  # the same Parameter objects (None without affine)
        self.bias = norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.reference_size
        dims = [0, *range(2, x.ndim)]  # batch and spatial positions
        shape = [1, -1, *([1] * (x.ndim - 2))]
        ref, rest = x[:n], x[n:]
        ref_mean = ref.mean(dim=dims)
        ref_square = ref.square().mean(dim=dims)
        # each example with the reference: E[h] = (n E_ref[h] + E_pos[h_i]) / (n + 1), same for h^2
        own = list(range(2, x.ndim))
        own_mean = rest.mean(dim=own) if own else rest
        own_square = rest.square().mean(dim=own) if own else rest.square()
        mean = (n * ref_mean + own_mean) / (n + 1)  # [M, C]
        square = (n * ref_square + own_square) / (n + 1)
        var = (square - mean.square()).clamp_min(0.0)
        mean = mean.reshape(rest.shape[0], -1, *([1] * (x.ndim - 2)))
        var = var.reshape(rest.shape[0], -1, *([1] * (x.ndim - 2)))
        ref_var = (ref_square - ref_mean.square()).clamp_min(0.0)
        ref_out = (ref - ref_mean.reshape(shape)) * torch.rsqrt(ref_var.reshape(shape) + self.eps)
        rest_out = (rest - mean) * torch.rsqrt(var + self.eps)
        out = torch.cat([ref_out, rest_out])
        if self.weight is not None:
            out = out * self.weight.reshape(shape)
        if self.bias is not None:
            out = out + self.bias.reshape(shape)
        return out


def _replace_batchnorm(module: nn.Module, reference_size: int) -> int:
    """Replace every BatchNorm1d/2d below ``module`` by :class:`VirtualBatchNorm`; the count."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d | nn.BatchNorm2d):
            setattr(module, name, VirtualBatchNorm(child, reference_size))
            count += 1
        else:
            count += _replace_batchnorm(child, reference_size)
    return count


class VirtualBatchNormGenerator(nn.Module):
    """An unconditional generator with virtual batch norm in place of its batch norm layers.

    The reference latents ``[n, latent_dim]`` are drawn once, when the run is built (from the run
    seed), and kept as a buffer, so checkpoints carry them and every process uses the same. Each
    forward runs them in front of the given latents (one extra batch of ``n``: the cost) and
    returns the given latents' samples only.
    """

    reference: torch.Tensor  # the reference latents [n, latent_dim] (buffer)

    def __init__(self, inner: nn.Module, reference_size: int) -> None:
        super().__init__()
        latent_dim = getattr(inner, "latent_dim", None)
        if not isinstance(latent_dim, int):
            raise ValueError(
                f"virtual-batchnorm: inner generator {type(inner).__name__} has no integer "
                "latent_dim (it must take latents)"
            )
        if not _replace_batchnorm(inner, reference_size):
            raise ValueError(
                f"virtual-batchnorm: inner generator {type(inner).__name__} has no "
                "BatchNorm1d/2d layer to replace"
            )
        self.inner = inner
        self.latent_dim = latent_dim
        self.reference_size = reference_size
        self.register_buffer("reference", torch.randn(reference_size, latent_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        both = torch.cat([self.reference.to(z.dtype), z])
        out: torch.Tensor = self.inner(both)[self.reference_size :]
        return out


def build_virtual_batchnorm(
    options: VirtualBatchNormOptions, context: gancore.BuildContext
) -> VirtualBatchNormGenerator:
    """``virtual-batchnorm``: the inner generator for the same data, its batch norm replaced."""
    inner = context.resolve("generator", options.inner, key="inner")
    if not isinstance(inner, nn.Module):
        raise ValueError(
            f"virtual-batchnorm: inner generator {options.inner['name']!r} is a "
            f"{type(inner).__name__}, expected a torch.nn.Module"
        )
    return VirtualBatchNormGenerator(inner, options.reference_size)
