"""Task ``vae-gan`` (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity
metric", Sec. 2 and Alg. 1).

A VAE whose decoder is also a GAN generator, with the reconstruction measured in the critic's
features instead of pixels. With ``x~ = Dec(z)``, ``z ~ q(z|x)`` and ``x_p = Dec(z_p)``,
``z_p ~ N(0, I)``, per image (nats up to constants):

- ``L_prior = KL(q(z|x) || N(0, I))``;
- ``L_llike = 1/2 ||Dis_l(x~) - Dis_l(x)||^2``: a unit-variance Gaussian log-likelihood in the
  critic's layer ``l``, here the critic's last hidden features (``FeatureCritic.features``, the
  input to its last layer), summed over the features. The critic is called on ``[x, x~]`` in one
  batch, without the augmenter (a comparison of two images must see them transformed alike);
- ``L_GAN``: the configured ``[loss]`` on the critic's scores of the real batch, the
  reconstructions ``x~`` and the prior samples ``x_p``.

Updates, as Alg. 1: encoder ``L_prior + L_llike``; decoder ``gamma L_llike + L_GAN`` (its
generator loss); critic ``L_GAN`` (its critic loss). Encoder and decoder are both in the
``generator`` group (one phase, one optimizer), so the generator phase's single loss is built so
that each gets its own gradient: the decoder is fed ``z`` through a gradient scale of
``1 / gamma`` for the ``gamma L_llike`` term (the encoder then receives exactly the gradient of
``L_llike``), and the adversarial term decodes ``z`` detached (the encoder receives none of it).

The critic's loss is ``loss.critic_loss(D([x, x]), D([x~, x_p]))``: each fake kind is scored
against the real batch, one call, so regularizers and the augmenter see it once. With a loss that
averages over its inputs, that is the paper's ``log D(x) + log(1 - D(x~)) + log(1 - D(x_p))``
with the two fake terms weighted 1/2 each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch
from torch import nn

import gancore  # at run time: option types are read with get_type_hints
from gan_vae.elbo import gaussian_kl, reparameterize
from gan_vae.vae import build_autoencoder, encode

__all__ = ["VAEGAN", "VAEGANOptions", "build_vae_gan", "scale_gradient"]


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` unchanged in the forward pass; its gradient multiplied by ``scale`` backward."""
    out: torch.Tensor = _ScaleGradient.apply(x, scale)
    return out


@attrs.frozen(kw_only=True)
class VAEGANOptions:
    """Options of the ``vae-gan`` task."""

    gamma: float = attrs.field(
        default=0.01,
        validator=[attrs.validators.instance_of(float), attrs.validators.gt(0.0)],
        metadata={
            "doc": "Larsen et al.'s gamma: weight of L_llike in the decoder's loss, which trades "
            "reconstruction against fooling the critic (0.01 suits the digits with a 32-channel "
            "dcgan critic, whose 1,024 features L_llike sums over); > 0"
        },
    )


class VAEGAN:
    """The ``vae-gan`` task (module docstring)."""

    def __init__(self, options: VAEGANOptions) -> None:
        self.options = options

    def build(self, context: gancore.TaskBuildContext) -> dict[str, dict[str, nn.Module]]:
        generators = build_autoencoder(context, "vae-gan")
        critic = context.build_critic()
        if not callable(getattr(critic, "features", None)):
            name = context.config.critic.spec.name if context.config.critic else "?"
            raise ValueError(
                f"task 'vae-gan': critic {name!r} exposes no features (a FeatureCritic, such as "
                "'dcgan' or 'mlp', is needed for the feature-space reconstruction loss)"
            )
        return {"generator": generators, "critic": {"critic": critic}}

    def _posterior(
        self, step: gancore.StepContext, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = encode(step.generators["encoder"], x)
        eps = step.latents(len(x), mu.shape[1]).to(mu)
        return mu, logvar, reparameterize(mu, logvar, eps)

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        x = batch["x"]
        decoder = step.generators["generator"]
        with torch.no_grad():  # the critic's update needs no graph through encoder and decoder
            _, _, z = self._posterior(step, x)
            reconstructed = decoder(z)
            prior = decoder(step.latents(len(x), z.shape[1]).to(z))
        return step.critic_loss("critic", torch.cat([x, x]), torch.cat([reconstructed, prior]))

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        x = batch["x"]
        gamma = self.options.gamma
        decoder = step.generators["generator"]
        mu, logvar, z = self._posterior(step, x)
        prior_term = gaussian_kl(mu, logvar).mean()
        # gamma * L_llike below: the decoder's gradient is gamma dL_llike; through the 1/gamma
        # scale the encoder's is dL_llike, as Alg. 1 prescribes.
        reconstructed = decoder(scale_gradient(z, 1.0 / gamma))
        critic: Any = step.unwrap("critic")  # frozen in this phase: called bare, as loss terms are
        features = critic.features(torch.cat([x, reconstructed]))
        real_features, fake_features = features.chunk(2)
        llike = 0.5 * (fake_features - real_features.detach()).square().sum(dim=1).mean()
        # The adversarial term trains the decoder only: decode z detached from the encoder.
        fakes = torch.cat([decoder(z.detach()), decoder(step.latents(len(x), z.shape[1]).to(z))])
        adversarial = step.generator_loss("critic", fakes, real=torch.cat([x, x]))
        step.log("loss/prior", prior_term)
        step.log("loss/llike", llike)
        step.log("loss/pixel_l1", (reconstructed.detach() - x).abs().mean())
        return prior_term + gamma * llike + adversarial

    @torch.no_grad()
    def reconstruct(self, generators: Mapping[str, Any], x: torch.Tensor) -> torch.Tensor:
        """``Dec(mu(x))``."""
        mu, _ = encode(generators["encoder"], x)
        out: torch.Tensor = generators["generator"](mu)
        return out

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: object, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        dim = int(getattr(generators["generator"], "latent_dim"))  # noqa: B009 (an nn.Module attr)
        return {"z": torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"]))


def build_vae_gan(options: VAEGANOptions, context: object) -> VAEGAN:
    del context
    return VAEGAN(options)
