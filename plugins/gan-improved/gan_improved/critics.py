"""Critic wrappers: minibatch discrimination (Salimans et al. 2016, Sec. 3.2) and packing
(Lin et al. 2018, PacGAN). Each wraps an inner critic, built from its own table (``inner``)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from einops import rearrange, repeat
from torch import nn

import gancore
from gancore.protocols import FeatureCritic

__all__ = [
    "MinibatchDiscrimination",
    "MinibatchDiscriminationOptions",
    "PacCritic",
    "PacGANOptions",
    "build_minibatch_discrimination",
    "build_pacgan",
]


def _inner_table(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(
            f"'{attribute.name}' must be a critic table such as {{name = \"mlp\", hidden = 128}} "
            f"(got {value!r})"
        )


def _mlp_table() -> dict[str, Any]:
    return {"name": "mlp"}


# -------------------------------------------------------------------------------------------------
# Minibatch discrimination
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MinibatchDiscriminationOptions:
    """Options of :class:`MinibatchDiscrimination`."""

    inner: dict[str, Any] = attrs.field(
        factory=_mlp_table,
        validator=_inner_table,
        metadata={
            "doc": "the critic whose last hidden features f(x) feed the minibatch layer, a table "
            'with its own name and options, e.g. {name = "mlp", hidden = 128}; it must be a '
            "feature critic"
        },
    )
    kernels: int = attrs.field(
        default=100,
        validator=attrs.validators.ge(1),
        metadata={"doc": "B, number of minibatch features o(x)_b appended to f(x); >= 1"},
    )
    kernel_dim: int = attrs.field(
        default=5,
        validator=attrs.validators.ge(1),
        metadata={"doc": "C, size of each row M_{i,b} compared by L1 distance; >= 1"},
    )
    init_std: float = attrs.field(
        default=0.05,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={"doc": "standard deviation of the normal initialisation of T; > 0"},
    )


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs",
    Sec. 3.2) on the last hidden features of an inner feature critic.

    For features ``f(x_i)`` in ``R^A`` and a tensor ``T`` in ``R^{A x B x C}``:
    ``M_i = f(x_i) T`` in ``R^{B x C}``, ``c_b(x_i, x_j) = exp(-||M_{i,b} - M_{j,b}||_1)`` and
    ``o(x_i)_b = sum_j c_b(x_i, x_j)``, the sum over every sample of the batch the critic is
    called on, ``j = i`` included as in the paper (it adds the constant 1). ``[f(x_i), o(x_i)]``
    feeds the last layer; that layer is linear in the built-in critics, so the score is
    ``inner.score(f) + o . w`` with ``w`` in ``R^B`` (initialised to zero: at the start the
    critic scores as its inner critic). The critic is itself a feature critic with features
    ``[f, o]`` of size ``A + B``.

    A sample's score depends on the whole batch it is scored with: the loop scores the real and
    the generated batch separately, as the paper does; on several processes each scores its own
    share of the batch (N / processes samples).
    """

    def __init__(self, inner: nn.Module, kernels: int, kernel_dim: int, init_std: float) -> None:
        super().__init__()
        self.inner = inner
        self.kernels = kernels  # B
        self.kernel_dim = kernel_dim  # C
        a = int(inner.feature_dim)  # type: ignore[arg-type]
        self.inner_dim = a  # A
        self.feature_dim = a + kernels
        # T as an A x (B C) matrix
        self.tensor = nn.Parameter(torch.randn(a, kernels * kernel_dim) * init_std)
        self.weight = nn.Parameter(torch.zeros(kernels))  # w: o's part of the last layer

    def minibatch_features(self, features: torch.Tensor) -> torch.Tensor:
        """``o(x_i)`` ``[N, B]`` from the inner features ``f(x_i)`` ``[N, A]``."""
        m = rearrange(features @ self.tensor, "n (b c) -> n b c", b=self.kernels)
        # ||M_{i,b} - M_{j,b}||_1 for every pair: [N, N, B]
        distances = (m.unsqueeze(1) - m.unsqueeze(0)).abs().sum(dim=-1)
        out: torch.Tensor = torch.exp(-distances).sum(dim=1)  # sum over j, j = i included
        return out

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """``[f(x), o(x)]`` ``[N, A + B]``."""
        f = self.inner.features(x, *extra)  # type: ignore[operator]
        return torch.cat([f, self.minibatch_features(f)], dim=1)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """The last layer on ``[f, o]``: ``inner.score(f) + o . w``."""
        f, o = features[:, : self.inner_dim], features[:, self.inner_dim :]
        inner: torch.Tensor = self.inner.score(f)  # type: ignore[operator]
        return inner + (o @ self.weight).reshape(inner.shape)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x, *extra))


def build_minibatch_discrimination(
    options: MinibatchDiscriminationOptions, context: gancore.BuildContext
) -> MinibatchDiscrimination:
    """``minibatch-discrimination``: the inner critic built for the same data."""
    inner = context.resolve("critic", options.inner, key="inner")
    if not isinstance(inner, FeatureCritic) or not isinstance(inner, nn.Module):
        raise ValueError(
            f"minibatch-discrimination: inner critic {options.inner['name']!r} "
            f"({type(inner).__name__}) does not expose its features (feature_dim, features, "
            "score); use a feature critic such as mlp or dcgan"
        )
    return MinibatchDiscrimination(inner, options.kernels, options.kernel_dim, options.init_std)


# -------------------------------------------------------------------------------------------------
# PacGAN
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PacGANOptions:
    """Options of :class:`PacCritic`."""

    inner: dict[str, Any] = attrs.field(
        factory=_mlp_table,
        validator=_inner_table,
        metadata={
            "doc": "the critic that scores packs, a table with its own name and options, e.g. "
            '{name = "mlp", hidden = 128}; it is built for the packed shape'
        },
    )
    pack: int = attrs.field(
        default=2,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "m, samples per critic input (the paper uses 2 to 4; 1 = no packing); each "
            "process's batch must be a multiple of m; >= 1"
        },
    )


class PacCritic(nn.Module):
    """Packing (Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial
    networks"): the inner critic scores ``m`` samples at once, concatenated along the features
    (vectors ``[N, D]`` -> ``[N/m, m D]``) or the channels (images ``[N, C, H, W]`` ->
    ``[N/m, m C, H, W]``); consecutive samples of a batch form a pack, all real or all generated.

    Each pack's score is returned once for each of its samples (``[N]``, ``[N, 1]``, ... as the
    inner critic's), so a loss's mean over
    the scores is its mean over the packs. A gradient penalty differentiates the sum of the
    scores, which counts each pack ``m`` times: ``r1`` on a packed critic is ``m`` times ``r1``
    of the inner critic on the packed inputs (set ``gamma / m`` to match that), and the gradient
    at a sample that ``wgan-gp`` constrains is ``m`` times its pack's.
    """

    def __init__(self, inner: nn.Module, pack: int) -> None:
        super().__init__()
        self.inner = inner
        self.pack = pack

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if extra:
            raise ValueError(f"pacgan critic: takes no conditioning inputs (got {len(extra)})")
        m, n = self.pack, x.shape[0]
        if n % m:
            raise ValueError(
                f"pacgan critic: a batch of {n} samples does not split into packs of {m}; make "
                f"each process's batch (training.batch_size / processes / training.accumulate) "
                f"a multiple of pack = {m}"
            )
        packed = rearrange(x, "(n m) c ... -> n (m c) ...", m=m)
        scores: torch.Tensor = self.inner(packed)
        out: torch.Tensor = repeat(scores, "n ... -> (n m) ...", m=m)
        return out


def build_pacgan(options: PacGANOptions, context: gancore.BuildContext) -> PacCritic:
    """``pacgan``: the inner critic built for the packed sample shape."""
    shape = tuple(context.data_shape)
    if not shape:
        raise ValueError("pacgan critic: the data shape is unknown")
    packed = (shape[0] * options.pack, *shape[1:])
    inner = attrs.evolve(context, data_shape=packed).resolve("critic", options.inner, key="inner")
    if not isinstance(inner, nn.Module):
        raise ValueError(
            f"pacgan critic: inner critic {options.inner['name']!r} is a "
            f"{type(inner).__name__}, expected a torch.nn.Module"
        )
    return PacCritic(inner, options.pack)
