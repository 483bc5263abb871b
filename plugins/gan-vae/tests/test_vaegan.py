"""VAE-GAN's generator phase gives the encoder and the decoder the gradients of Larsen et al.'s
separate losses (Alg. 1), from one scalar."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from gan_vae.elbo import gaussian_kl, reparameterize
from gan_vae.networks import VAEMLPOptions, build_vae_mlp
from gan_vae.vaegan import VAEGAN, VAEGANOptions, scale_gradient
from torch import nn

import gancore

CONTEXT = gancore.BuildContext(data_shape=(1, 8, 8))


class FakeStep:
    """The parts of gancore.StepContext the generator step uses; latents from a fixed list."""

    def __init__(self, players: dict[str, nn.Module], critic: nn.Module, draws: list[torch.Tensor]):
        self.generators = players
        self._critic = critic
        self._draws: Iterator[torch.Tensor] = iter(draws)
        self.logged: dict[str, Any] = {}

    def latents(self, num: int, dim: int) -> torch.Tensor:
        return next(self._draws)

    def unwrap(self, name: str) -> nn.Module:
        return self._critic

    def generator_loss(self, critic: str, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return F.softplus(-self._critic(fake)).mean()  # non-saturating

    def log(self, name: str, value: Any) -> None:
        self.logged[name] = value


def test_scale_gradient() -> None:
    """Identity forward; the gradient times the scale backward."""
    x = torch.ones(3, requires_grad=True)
    y = scale_gradient(x, 0.25)
    assert torch.equal(y, x.detach())
    (2 * y).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, torch.full((3,), 0.5))


@pytest.mark.parametrize("gamma", [0.01, 1.0])
def test_each_player_gets_its_own_loss_gradient(gamma: float) -> None:
    """d(step loss)/d(encoder) = d(L_prior + L_llike)/d(encoder) and d(step loss)/d(decoder) =
    d(gamma L_llike + L_GAN)/d(decoder), as the paper's three losses."""
    torch.manual_seed(0)
    decoder = build_vae_mlp(VAEMLPOptions(latent_dim=3, hidden=8, depth=1), CONTEXT)
    encoder = decoder.build_encoder()
    context = gancore.BuildContext(data_shape=(1, 8, 8), registry=gancore.get_registry())
    critic = context.resolve("critic", {"name": "dcgan", "channels": 4, "norm": "none"})
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    eps, prior_z = torch.randn(4, 3), torch.randn(4, 3)
    players = {"encoder": encoder, "generator": decoder}
    loss = VAEGAN(VAEGANOptions(gamma=gamma)).generator_step(
        FakeStep(players, critic, [eps, prior_z]),  # type: ignore[arg-type]
        {"x": x},
    )
    enc_params, dec_params = list(encoder.parameters()), list(decoder.parameters())
    got_enc = torch.autograd.grad(loss, enc_params, retain_graph=True)
    got_dec = torch.autograd.grad(loss, dec_params)

    # The paper's losses, written out separately with the same noise.
    mu, logvar = encoder(x)
    z = reparameterize(mu, logvar, eps)
    reconstructed = decoder(z)
    real_features, fake_features = critic.features(torch.cat([x, reconstructed])).chunk(2)
    llike = 0.5 * (fake_features - real_features.detach()).square().sum(1).mean()
    prior = gaussian_kl(mu, logvar).mean()
    adversarial = F.softplus(-critic(torch.cat([reconstructed, decoder(prior_z)]))).mean()
    want_enc = torch.autograd.grad(prior + llike, enc_params, retain_graph=True)
    want_dec = torch.autograd.grad(gamma * llike + adversarial, dec_params)
    for got, want in zip(got_enc + got_dec, want_enc + want_dec, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
