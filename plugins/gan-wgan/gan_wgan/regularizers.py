"""Lipschitz constraints and penalties for critics.

Penalties (``wgan-gp``, ``wgan-lp``, ``dragan``, ``drift``) are computed from the ``critic``
callable the loop hands them: it applies the configured augmenter before the critic, so gradients
taken with respect to its input flow through the augmentation, and it takes the critic's extra
(conditioning) inputs unchanged. Constraints (``weight-clip``, ``spectral-norm``) return no penalty
and act on the critic modules instead, through ``setup_critic`` (once, before the optimizers exist)
and ``after_step`` (after every critic optimizer step).

Every class here is stateless and is its own options class: the TOML keys are its fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import attrs
import torch
from einops import rearrange, reduce
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "DRAGAN",
    "Drift",
    "GradientPenalty",
    "LipschitzPenalty",
    "SpectralNorm",
    "WeightClip",
    "gradient_norms",
    "interpolate",
]

CriticFn = Callable[..., torch.Tensor]

# -------------------------------------------------------------------------------------------------
# Shared pieces
# -------------------------------------------------------------------------------------------------


def gradient_norms(
    critic: CriticFn,
    points: torch.Tensor,
    extra: tuple[torch.Tensor, ...],
    per_pixel: bool = False,
) -> torch.Tensor:
    """``||grad_x D(x)||_2`` at each of ``points`` ``[N, ...]``, the norm over every non-batch
    dimension; returns ``[N]``, differentiable with respect to the critic's parameters.

    A critic's score for a sample is the mean of its scores (one score for most critics, ``h * w``
    for patch critics), the quantity the Wasserstein loss averages and the convention of every
    gradient penalty in gancore (``r1`` too): a critic that repeats one score ``h * w`` times gets
    the penalty of a critic that gives it once. Each sample's score depends only on that sample, so
    the gradient of the sum over the batch is the per-sample gradient. The norms have the
    gradient's dtype (float64 stays float64), bfloat16 and float16 going up to float32.
    ``per_pixel=True`` is SinGAN's form instead (Shaham et al. 2019, the authors' code): the
    gradient of the *sum* of a patch critic's scores, its norm over the channels at each input
    pixel, ``[N, H, W]``.
    """
    x = points.detach().requires_grad_(True)
    scores = critic(x, *extra)
    if scores.ndim == 0 or scores.shape[0] != x.shape[0]:
        raise ValueError(
            f"critic scores must have a leading batch dimension of {x.shape[0]} "
            f"(got scores of shape {list(scores.shape)} for inputs {list(x.shape)})"
        )
    reduction = "sum" if per_pixel else "mean"
    per_sample = reduce(scores, "n ... -> n", reduction) if scores.ndim > 1 else scores
    # create_graph: the penalty is differentiated again, for the critic's parameters.
    (grad,) = torch.autograd.grad(per_sample.sum(), x, create_graph=True, allow_unused=True)
    # The norm in at least float32 (a bfloat16 gradient under autocast), never below the input's.
    dtype = torch.promote_types(x.dtype, torch.float32)
    if grad is None:  # the critic ignores its input: every gradient is zero
        return (scores.sum() * 0.0).to(dtype).expand(x.shape[0])
    if per_pixel:
        return torch.linalg.vector_norm(grad.to(dtype), dim=1)
    flat = rearrange(grad, "n ... -> n (...)").to(dtype)
    return torch.linalg.vector_norm(flat, dim=1)


def interpolate(real: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``a * real + (1 - a) * other`` with one ``a ~ U[0, 1]`` per sample (Gulrajani et al. 2017,
    Alg. 1, line 6), broadcast over every non-batch dimension."""
    if real.shape != other.shape:
        raise ValueError(
            "real and fake batches must have the same shape to interpolate "
            f"(got real {list(real.shape)}, fake {list(other.shape)})"
        )
    a = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device)
    a = a.to(real.dtype)
    return a * real.detach() + (1.0 - a) * other.detach()


def _weight_field(default: float, what: str) -> float:
    return attrs.field(
        default=default,
        converter=float,
        validator=attrs.validators.ge(0),
        metadata={"doc": what},
    )


def _interval_field() -> int:
    return attrs.field(
        default=1,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "lazy-regularization interval in critic steps: 1 = every step, inside the "
            "critic's loss (as in the papers); k > 1 = a separate phase every k steps with the "
            "penalty multiplied by k; >= 1"
        },
    )


def _target_field() -> float:
    return attrs.field(
        default=1.0,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={"doc": "gradient norm the penalty pulls towards (the Lipschitz constant K); > 0"},
    )


# -------------------------------------------------------------------------------------------------
# Gradient penalties
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class GradientPenalty:
    """Two-sided gradient penalty of WGAN-GP (Gulrajani et al. 2017, "Improved Training of
    Wasserstein GANs", Eq. 3 and Alg. 1).

    ``penalty = weight * E[(||grad D(x_hat)||_2 - target)^2]`` at ``x_hat = a*x + (1 - a)*x_fake``,
    ``a ~ U[0, 1]`` per sample, the norm over every non-batch dimension. The paper uses
    ``weight = 10`` (lambda) with Adam 1e-4, betas (0, 0.9) and 5 critic steps; its toy-data code
    uses lambda 0.1. Critics with batch norm break the per-sample penalty: use layer norm or none.
    ``D`` of a sample is the mean of its scores (patch critics: of its ``h * w`` scores), see
    :func:`gradient_norms`.
    """

    player: ClassVar[Literal["critic"]] = "critic"

    weight: float = _weight_field(10.0, "penalty weight lambda; >= 0 (the paper's 10)")
    target: float = _target_field()
    interval: int = _interval_field()
    per_pixel: bool = attrs.field(
        default=False,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "SinGAN's form: the gradient of the sum of a patch critic's scores, its norm "
            "over the channels at each pixel pulled to target (false: one norm per sample)"
        },
    )

    def penalty(
        self,
        critic: CriticFn,
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """``weight * mean_n (||grad D(x_hat_n)|| - target)^2`` on random interpolates (with
        ``per_pixel``, the mean over samples and pixels)."""
        norms = gradient_norms(critic, interpolate(real, fake), extra, self.per_pixel)
        # (||g|| - K)^2, two-sided: pulls the norm towards K from both sides
        return self.weight * (norms - self.target).square().mean()

    def after_step(self, critic: nn.Module) -> None:
        """A pure penalty: nothing to do after the optimizer step."""


@attrs.frozen(kw_only=True)
class LipschitzPenalty:
    """One-sided Lipschitz penalty of WGAN-LP (Petzka, Fischer & Lukovnikov 2018, "On the
    regularization of Wasserstein GANs", Eq. 8).

    ``penalty = weight * E[max(0, ||grad D(x_hat)||_2 - target)^2]`` on the same random
    interpolates as ``wgan-gp``: only gradients steeper than ``target`` are penalised, which is what
    the Lipschitz constraint asks for. ``D`` of a sample is the mean of its scores, see
    :func:`gradient_norms`.
    """

    player: ClassVar[Literal["critic"]] = "critic"

    weight: float = _weight_field(10.0, "penalty weight lambda; >= 0 (10, as for wgan-gp)")
    target: float = _target_field()
    interval: int = _interval_field()

    def penalty(
        self,
        critic: CriticFn,
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """``weight * mean_n max(0, ||grad D(x_hat_n)|| - target)^2`` on random interpolates."""
        norms = gradient_norms(critic, interpolate(real, fake), extra)
        # max(0, ||g|| - K)^2, one-sided
        return self.weight * torch.relu(norms - self.target).square().mean()

    def after_step(self, critic: nn.Module) -> None:
        """A pure penalty: nothing to do after the optimizer step."""


@attrs.frozen(kw_only=True)
class DRAGAN:
    """DRAGAN's gradient penalty around the real data (Kodali et al. 2017, "On Convergence and
    Stability of GANs", Sec. 4).

    ``penalty = weight * E[(||grad D(x_hat)||_2 - target)^2]`` at points near real data:
    ``x_p = x + scale * std(x) * u``, then ``x_hat = x + a * (x_p - x)``, ``a ~ U[0, 1]`` per
    sample, where ``std(x)`` is the standard deviation of the whole (per-process) real batch. With
    ``noise = "uniform"`` (the default), ``u ~ U[0, 1)`` per element and ``scale = 0.5``: the
    perturbation of the authors' released code (github.com/kodalinaveen3/DRAGAN, DRAGAN.ipynb,
    ``get_perturbed_batch``, lambda 10). With ``noise = "normal"``, ``u ~ N(0, 1)``: the paper's
    ``delta ~ N(0, cI)``, ``c = (scale * std(x))^2``. ``D`` of a sample is the mean of its
    scores, see :func:`gradient_norms`.
    """

    player: ClassVar[Literal["critic"]] = "critic"

    weight: float = _weight_field(10.0, "penalty weight lambda; >= 0 (the authors' 10)")
    target: float = _target_field()
    scale: float = attrs.field(
        default=0.5,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={
            "doc": "size of the perturbation in units of the real batch's standard deviation; "
            "> 0 (the authors' code: 0.5)"
        },
    )
    noise: Literal["uniform", "normal"] = attrs.field(
        default="uniform",
        validator=attrs.validators.in_(("uniform", "normal")),
        metadata={
            "doc": "distribution of the perturbation u per element: 'uniform' = U[0, 1) (the "
            "authors' code) or 'normal' = N(0, 1) (the paper's Gaussian delta)"
        },
    )
    interval: int = _interval_field()

    def perturb(self, real: torch.Tensor) -> torch.Tensor:
        """The points the penalty is taken at: ``x + a * scale * std(x) * u``."""
        x = real.detach()
        u = torch.rand_like(x) if self.noise == "uniform" else torch.randn_like(x)
        perturbed = x + self.scale * x.std() * u
        a = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device).to(x.dtype)
        return x + a * (perturbed - x)

    def penalty(
        self,
        critic: CriticFn,
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """``weight * mean_n (||grad D(x_hat_n)|| - target)^2`` near the real samples (``fake`` is
        unused)."""
        norms = gradient_norms(critic, self.perturb(real), extra)
        return self.weight * (norms - self.target).square().mean()

    def after_step(self, critic: nn.Module) -> None:
        """A pure penalty: nothing to do after the optimizer step."""


@attrs.frozen(kw_only=True)
class Drift:
    """Drift penalty (Karras et al. 2018, "Progressive Growing of GANs", Appendix A.1):
    ``epsilon * E[D(x_real)^2]`` keeps a Wasserstein critic's scores from drifting far from zero.

    Add it next to a gradient penalty; the paper uses ``epsilon = 0.001`` with WGAN-GP.
    """

    player: ClassVar[Literal["critic"]] = "critic"
    interval: ClassVar[int] = 1  # part of every critic loss

    epsilon: float = _weight_field(0.001, "penalty weight epsilon; >= 0 (the paper's 0.001)")

    def penalty(
        self,
        critic: CriticFn,
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """``epsilon * mean(D(x_real)^2)`` over every score (``fake`` is unused)."""
        scores = critic(real.detach(), *extra)
        # at least float32 (bfloat16 scores under autocast), float64 kept
        dtype = torch.promote_types(scores.dtype, torch.float32)
        return self.epsilon * scores.to(dtype).square().mean()

    def after_step(self, critic: nn.Module) -> None:
        """A pure penalty: nothing to do after the optimizer step."""


# -------------------------------------------------------------------------------------------------
# Constraints
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class WeightClip:
    """Weight clipping of the original WGAN (Arjovsky, Chintala & Bottou 2017, Alg. 1, line 7):
    every critic parameter is clamped to ``[-clip, clip]`` after every critic optimizer step.

    Also clamps once when the critic is built, so the first update starts from a clipped critic, as
    the reference code (martinarjovsky/WassersteinGAN main.py) clamps before each critic update.
    All parameters are clamped, normalization scales and biases included, as in that code.
    The reference recipe: RMSprop, lr 5e-5, ``clip = 0.01``, 5 critic steps.
    """

    player: ClassVar[Literal["critic"]] = "critic"
    interval: ClassVar[int] = 1  # a constraint, never a lazy phase

    clip: float = attrs.field(
        default=0.01,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={"doc": "weights are clamped to [-clip, clip]; > 0 (the paper's c = 0.01)"},
    )

    def penalty(
        self,
        critic: CriticFn,
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> None:
        """A pure constraint: no penalty."""
        return None

    @torch.no_grad()
    def after_step(self, critic: nn.Module) -> None:
        """Clamp every parameter of ``critic`` to ``[-clip, clip]`` in place."""
        for param in critic.parameters():
            param.clamp_(-self.clip, self.clip)

    def setup_critic(self, critic: nn.Module) -> None:
        """Clamp the freshly built critic, before its first update."""
        self.after_step(critic)


_NORMALIZED_LAYERS = (
    nn.Linear,
    nn.Bilinear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Embedding,
)


@attrs.frozen(kw_only=True)
class SpectralNorm:
    """Spectral normalization of a critic (Miyato et al. 2018, "Spectral Normalization for
    Generative Adversarial Networks").

    When the run is built, every ``Linear``, ``Bilinear``, ``Conv*d``, ``ConvTranspose*d`` and
    ``Embedding`` layer of every critic gets its weight reparametrized as ``W / sigma(W)``, with
    ``sigma`` estimated by ``power_iterations`` steps of power iteration per training forward
    pass (``torch.nn.utils.parametrizations.spectral_norm``; its ``u``, ``v`` vectors are buffers,
    so checkpoints carry them). It works on any registered critic, adds no penalty and no work
    after the optimizer step. Layers of other types (custom layers that call ``F.linear`` on their
    own weights) are left alone; a critic with no layer to normalise is an error.
    """

    player: ClassVar[Literal["critic"]] = "critic"
    interval: ClassVar[int] = 1  # a reparametrization, never a lazy phase

    power_iterations: int = attrs.field(
        default=1,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "power-iteration steps per forward pass; >= 1 (the paper's 1)"},
    )
    eps: float = attrs.field(
        default=1e-12,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={"doc": "added to norms in the power iteration for numerical stability; > 0"},
    )

    def setup_critic(self, critic: nn.Module) -> None:
        """Put spectral normalization on every supported layer of ``critic``, in place."""
        layers = [
            m
            for m in critic.modules()
            if isinstance(m, _NORMALIZED_LAYERS)
            and isinstance(getattr(m, "weight", None), nn.Parameter)
            and not isinstance(m.weight, nn.parameter.UninitializedParameter)
        ]
        if not layers:
            raise ValueError(
                f"spectral-norm: critic {type(critic).__name__} has no Linear, Conv or Embedding "
                "layer with a weight to normalise"
            )
        for layer in layers:
            if parametrize.is_parametrized(layer, "weight"):
                continue  # the critic normalises this layer itself
            spectral_norm(layer, n_power_iterations=self.power_iterations, eps=self.eps)

    def penalty(
        self,
        critic: CriticFn,
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> None:
        """A reparametrization: no penalty."""
        return None

    def after_step(self, critic: nn.Module) -> None:
        """Nothing to do: the next forward pass normalises the updated weights."""
