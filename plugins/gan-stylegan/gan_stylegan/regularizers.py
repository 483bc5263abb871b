"""The path-length regularizer of StyleGAN2, a generator regularizer with a running mean."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs
import torch
import torch.distributed as dist
from einops import reduce
from torch import nn

__all__ = ["PathLength", "PathLengthOptions", "build_path_length"]


@attrs.frozen(kw_only=True)
class PathLengthOptions:
    """Options of ``path-length``; defaults follow StyleGAN2 (Karras et al. 2020, Sec. 3.2 and
    Appendix B)."""

    weight: float = attrs.field(
        default=2.0,
        converter=float,
        validator=attrs.validators.ge(0),
        metadata={"doc": "penalty weight w_pl; >= 0 (the paper's 2)"},
    )
    decay: float = attrs.field(
        default=0.01,
        converter=float,
        validator=[attrs.validators.gt(0), attrs.validators.le(1)],
        metadata={
            "doc": "rate of the running mean a <- a + decay * (mean L - a); in (0, 1] "
            "(the paper's 0.01)"
        },
    )
    batch_shrink: int = attrs.field(
        default=2,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "the penalty uses the first N // batch_shrink latents of the generator step "
            "(at least one); >= 1 (the paper's 2)"
        },
    )
    interval: int = attrs.field(
        default=4,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "lazy-regularization interval in generator steps: a separate phase every k "
            "steps with the penalty multiplied by k; >= 1 (the paper's 4)"
        },
    )


def _style_parts(generator: nn.Module, what: str) -> tuple[Any, Any]:
    """``generator``'s ``mapping`` and ``synthesis`` methods, or a one-line ``ValueError``."""
    mapping: Any = getattr(generator, "mapping", None)
    synthesis: Any = getattr(generator, "synthesis", None)
    if not (callable(mapping) and callable(synthesis)):
        raise ValueError(
            f"path-length: {what} has no mapping(z) and synthesis(ws) methods; use a "
            "style-based generator ('stylegan', 'stylegan2')"
        )
    return mapping, synthesis


class PathLength(nn.Module):
    """Path length regularization (Karras et al. 2020, "Analyzing and Improving the Image Quality
    of StyleGAN", Sec. 3.2, Eq. 4).

    For latents ``z`` (the first ``N // batch_shrink`` of the generator step's), ``ws =
    G.mapping(z)`` ``[n, num_ws, style_dim]`` and images ``G.synthesis(ws)`` ``[n, C, H, W]``:

    - ``y ~ N(0, I) / sqrt(H * W)`` per pixel (image-size-independent scale);
    - ``L_n = sqrt(mean_l sum_d (d(G(ws) . y) / d ws)_{n,l,d}^2)``, the length of ``J_w^T y``;
    - ``a <- a + decay * (mean_n L_n - a)``, the running mean (buffer ``pl_mean``, so checkpoints
      carry it; averaged over processes when training is distributed);
    - ``penalty = weight * mean_n (L_n - a)^2`` with the updated ``a``.

    The loop runs it every ``interval`` generator steps and multiplies it by ``interval``. It needs
    a generator with ``mapping(z)`` and ``synthesis(ws)`` methods (``stylegan``, ``stylegan2``),
    which :meth:`check` verifies when the run is built.
    """

    player: ClassVar[Literal["generator"]] = "generator"

    pl_mean: torch.Tensor

    def __init__(self, options: PathLengthOptions) -> None:
        super().__init__()
        self.weight = options.weight
        self.decay = options.decay
        self.batch_shrink = options.batch_shrink
        self.interval = options.interval
        self.register_buffer("pl_mean", torch.zeros(()))

    def check(self, players: Mapping[str, Mapping[str, nn.Module]]) -> None:
        """At build time: every generator of the run has ``mapping`` and ``synthesis`` (else the
        first lazy step, ``interval`` steps in, would fail)."""
        for name, generator in players.get("generator", {}).items():
            _style_parts(generator, f"generator {name!r} ({type(generator).__name__})")

    def path_lengths(self, generator: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """``L_n`` ``[n]`` for the first ``n = max(1, N // batch_shrink)`` latents, differentiable
        with respect to the generator's parameters."""
        mapping, synthesis = _style_parts(generator, f"generator {type(generator).__name__}")
        z = inputs[: max(1, inputs.shape[0] // self.batch_shrink)]
        ws = mapping(z)
        images = synthesis(ws)
        height, width = images.shape[-2:]
        dtype = torch.promote_types(images.dtype, torch.float32)  # float32 at least (bf16 runs)
        noise = torch.randn(images.shape, device=images.device).to(dtype)
        noise = noise / math.sqrt(height * width)  # y ~ N(0, I) / sqrt(H * W)
        # create_graph: the penalty is differentiated again, for the generator's parameters.
        (grad,) = torch.autograd.grad((images.to(dtype) * noise).sum(), ws, create_graph=True)
        return reduce(grad.to(dtype).square(), "n l d -> n l", "sum").mean(dim=1).sqrt()

    def penalty(self, generator: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """``weight * mean_n (L_n - a)^2`` after updating the running mean ``a``."""
        lengths = self.path_lengths(generator, inputs)
        batch_mean = lengths.detach().mean()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(batch_mean)  # every process keeps the same running mean
            batch_mean = batch_mean / dist.get_world_size()
        with torch.no_grad():
            self.pl_mean.copy_(self.pl_mean.lerp(batch_mean.to(self.pl_mean), self.decay))
        return self.weight * (lengths - self.pl_mean).square().mean()

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, decay={self.decay}, batch_shrink={self.batch_shrink}, "
            f"interval={self.interval}"
        )


def build_path_length(options: PathLengthOptions, context: Any) -> PathLength:
    """The ``path-length`` regularizer (the context is not needed)."""
    return PathLength(options)
