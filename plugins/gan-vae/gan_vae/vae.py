"""Task ``vae``: the variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational
Bayes"), with beta (Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a
Constrained Variational Framework") and linear KL annealing (Bowman et al. 2016, "Generating
Sentences from a Continuous Space", Sec. 3.1).

One phase, no critic. Per image, with ``z = mu + sigma * eps`` (``eps`` from ``step.latents``):

    loss = -log p(x | z) + w_t * KL(q(z | x) || N(0, I)),   w_t = beta * min(1, t / warmup)

so that with ``beta = 1`` after the warm-up the loss is ``-ELBO``. The encoder, the decoder (the
``generator``, which ``gan sample`` and every metric use) and, with a learned variance, the
Gaussian's ``log sigma`` (a player ``likelihood``) are all players of the ``generator`` group:
one optimizer, ``[optimizers.generator]``, updates them, checkpoints keep them in
``generators.safetensors`` and the EMA (when configured) averages them all, so ``gan eval`` and
the ``elbo``/``iwae`` metrics see the encoder that goes with the decoder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import torch
from torch import nn

import gancore  # at run time: option types are read with get_type_hints
from gan_vae.elbo import (
    LIKELIHOODS,
    bits_per_dim,
    gaussian_kl,
    iwae_bound,
    log_likelihood,
    log_normal,
    reparameterize,
    standard_log_normal,
)

__all__ = ["VAE", "LogScale", "VAEOptions", "build_autoencoder", "build_vae", "encode"]

VARIANCES = ("learned", "fixed")


class LogScale(nn.Module):
    """The Gaussian likelihood's learned ``log sigma``, one scalar for all pixels (a player, so
    the loop trains, averages and checkpoints it); ``forward()`` returns it."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))

    def forward(self) -> torch.Tensor:
        return self.log_sigma


def build_autoencoder(context: gancore.TaskBuildContext, task: str) -> dict[str, nn.Module]:
    """``{"generator": decoder, "encoder": encoder}`` from the run's ``[generator]``, which must
    have ``latent_dim`` and ``build_encoder()`` (``vae-conv``, ``vae-mlp``)."""
    shape = tuple(context.dataset.shapes.get("x", ()))
    if len(shape) != 3:
        raise ValueError(f"task {task!r}: needs images 'x' of shape (C, H, W) (got {shape})")
    decoder = context.build_generator()
    build_encoder = getattr(decoder, "build_encoder", None)
    if not callable(build_encoder) or not isinstance(getattr(decoder, "latent_dim", None), int):
        name = context.config.generator.spec.name if context.config.generator else "?"
        raise ValueError(
            f"task {task!r}: generator {name!r} has no encoder (no build_encoder()); use "
            "generator 'vae-conv' or 'vae-mlp'"
        )
    encoder = build_encoder()
    if not isinstance(encoder, nn.Module):
        raise ValueError(f"task {task!r}: build_encoder() returned {type(encoder).__name__}")
    return {"generator": decoder, "encoder": encoder}


def encode(encoder: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu, logvar)`` of ``q(z | x)``, each ``[N, latent_dim]``."""
    mu, logvar = encoder(x)
    return mu, logvar


@attrs.frozen(kw_only=True)
class VAEOptions:
    """Options of the ``vae`` task."""

    likelihood: str = attrs.field(
        default="gaussian",
        validator=attrs.validators.in_(LIKELIHOODS),
        metadata={
            "doc": "p(x|z): 'gaussian' (mean = decoder output, the natural choice for [-1, 1] "
            "data), 'continuous-bernoulli' (on (x + 1) / 2, a density for grey levels) or "
            "'bernoulli' (binary cross-entropy; the digits are not binary, so its nats are not "
            "a likelihood)"
        },
    )
    variance: str = attrs.field(
        default="learned",
        validator=attrs.validators.in_(VARIANCES),
        metadata={
            "doc": "gaussian only: 'learned' (one log sigma for all pixels, trained with the "
            "rest) or 'fixed' (sigma below)"
        },
    )
    sigma: float = attrs.field(
        default=0.2,
        validator=[attrs.validators.instance_of(float), attrs.validators.gt(0.0)],
        metadata={
            "doc": "gaussian only: the standard deviation on the [-1, 1] scale, fixed or the "
            "initial value of the learned one; > 0"
        },
    )
    beta: float = attrs.field(
        default=1.0,
        validator=[attrs.validators.instance_of(float), attrs.validators.ge(0.0)],
        metadata={"doc": "weight of the KL term (beta-VAE; 1 = the ELBO); >= 0"},
    )
    kl_warmup_steps: int = attrs.field(
        default=0,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)],
        metadata={
            "doc": "KL annealing: the KL weight rises linearly from 0 to beta over this many "
            "generator steps; 0 = no annealing"
        },
    )


class VAE:
    """The ``vae`` task (module docstring). Its state is the number of generator steps taken
    (for the KL annealing)."""

    players: ClassVar[dict[str, str]] = {"generator": "generator"}

    def __init__(self, options: VAEOptions) -> None:
        self.options = options
        self.steps_done = 0

    @property
    def learned_variance(self) -> bool:
        return self.options.likelihood == "gaussian" and self.options.variance == "learned"

    def build(self, context: gancore.TaskBuildContext) -> dict[str, dict[str, nn.Module]]:
        players = build_autoencoder(context, "vae")
        if self.learned_variance:
            players["likelihood"] = LogScale(self.options.sigma)
        return {"generator": players}

    # -- the objective --------------------------------------------------------------------------

    def _log_sigma(self, generators: Mapping[str, Any], like: torch.Tensor) -> torch.Tensor | None:
        if self.options.likelihood != "gaussian":
            return None
        if self.learned_variance:
            value: torch.Tensor = generators["likelihood"]()
            return value
        return torch.tensor(math.log(self.options.sigma), device=like.device, dtype=like.dtype)

    def log_px_given_z(
        self, generators: Mapping[str, Any], x: torch.Tensor, z: torch.Tensor
    ) -> torch.Tensor:
        """``log p(x | z)`` per image ``[N]`` (nats, [-1, 1] scale)."""
        mean = generators["generator"](z)
        return log_likelihood(x, mean, self.options.likelihood, self._log_sigma(generators, x))

    def kl_weight(self) -> float:
        warmup = self.options.kl_warmup_steps
        ramp = 1.0 if warmup == 0 else min(1.0, (self.steps_done + 1) / warmup)
        return self.options.beta * ramp

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        x = batch["x"]
        mu, logvar = encode(step.generators["encoder"], x)
        eps = step.latents(len(x), mu.shape[1]).to(mu)
        z = reparameterize(mu, logvar, eps)
        reconstruction = -self.log_px_given_z(step.generators, x, z)  # [N] nats
        kl = gaussian_kl(mu, logvar)  # [N] nats
        weight = self.kl_weight()
        self.steps_done += 1
        nll = (reconstruction + kl).detach()
        step.log("loss/reconstruction", reconstruction.mean())
        step.log("loss/kl", kl.mean())
        step.log("elbo", -nll.mean())
        step.log("bits_per_dim", bits_per_dim(nll, x[0].numel(), self.options.likelihood).mean())
        step.log("kl_weight", weight)
        sigma = self._log_sigma(step.generators, x)
        if sigma is not None:
            step.log("sigma", sigma.detach().exp())
        return (reconstruction + weight * kl).mean()

    # -- evaluation (the elbo and iwae metrics, gan reconstruct) ----------------------------------

    @torch.no_grad()
    def elbo_terms(
        self, generators: Mapping[str, Any], x: torch.Tensor, eps: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Per image ``[N]`` (float64, nats): ``reconstruction`` (``-E_q log p(x|z)`` averaged
        over the ``S`` draws ``z = mu + sigma * eps[:, s]``, ``eps`` ``[N, S, latent_dim]``),
        ``kl`` (analytic) and ``elbo = -(reconstruction + kl)``."""
        mu, logvar = encode(generators["encoder"], x)
        draws = eps.shape[1]
        total = torch.zeros(len(x), dtype=torch.float64, device=x.device)
        for s in range(draws):
            z = reparameterize(mu, logvar, eps[:, s].to(mu))
            total += self.log_px_given_z(generators, x, z).double()
        reconstruction = -total / draws
        kl = gaussian_kl(mu.double(), logvar.double())
        return {"reconstruction": reconstruction, "kl": kl, "elbo": -(reconstruction + kl)}

    @torch.no_grad()
    def log_weights(
        self, generators: Mapping[str, Any], x: torch.Tensor, eps: torch.Tensor
    ) -> torch.Tensor:
        """``log p(x, z_i) - log q(z_i | x)`` ``[N, k]`` (float64) for the ``k`` draws
        ``z_i = mu + sigma * eps[:, i]`` (``eps`` ``[N, k, latent_dim]``)."""
        mu, logvar = encode(generators["encoder"], x)
        columns = []
        for i in range(eps.shape[1]):
            z = reparameterize(mu, logvar, eps[:, i].to(mu))
            log_joint = self.log_px_given_z(generators, x, z).double() + standard_log_normal(
                z.double()
            )
            columns.append(log_joint - log_normal(z.double(), mu.double(), logvar.double()))
        return torch.stack(columns, dim=1)

    def iwae(
        self, generators: Mapping[str, Any], x: torch.Tensor, eps: torch.Tensor
    ) -> torch.Tensor:
        """The IWAE bound on ``log p(x)`` per image ``[N]`` with ``k = eps.shape[1]`` samples."""
        return iwae_bound(self.log_weights(generators, x, eps))

    @torch.no_grad()
    def reconstruct(self, generators: Mapping[str, Any], x: torch.Tensor) -> torch.Tensor:
        """The decoder's output at the posterior mean: ``Dec(mu(x))``."""
        mu, _ = encode(generators["encoder"], x)
        out: torch.Tensor = generators["generator"](mu)
        return out

    # -- samples ---------------------------------------------------------------------------------

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: object, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        dim = int(getattr(generators["generator"], "latent_dim"))  # noqa: B009 (an nn.Module attr)
        return {"z": torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        """Decoded prior samples: the decoder's mean (Gaussian, Bernoulli) or its lambda
        (continuous Bernoulli), not a draw from p(x|z)."""
        return gancore.SampleGrid(images=generators["generator"](inputs["z"]))

    # -- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.steps_done = int(state["steps_done"])


def build_vae(options: VAEOptions, context: object) -> VAE:
    del context
    return VAE(options)
