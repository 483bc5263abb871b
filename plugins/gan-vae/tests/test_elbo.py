"""The VAE's objective against closed forms: KL, likelihoods, ELBO, IWAE, reparameterization."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from gan_vae.elbo import (
    bits_per_dim,
    gaussian_kl,
    iwae_bound,
    log_likelihood,
    reparameterize,
)
from gan_vae.vae import VAE, VAEOptions
from torch import nn
from torch.distributions import ContinuousBernoulli, MultivariateNormal, Normal, kl_divergence


class TestKL:
    def test_equals_torch_kl_divergence(self) -> None:
        """The KL term equals torch's analytic KL of diagonal Gaussians to N(0, I)."""
        gen = torch.Generator().manual_seed(0)
        mu, logvar = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
        q = Normal(mu, torch.exp(0.5 * logvar))
        p = Normal(torch.zeros(3), torch.ones(3))
        expected = kl_divergence(q, p).sum(dim=1)
        torch.testing.assert_close(gaussian_kl(mu, logvar), expected)

    def test_is_zero_at_the_prior(self) -> None:
        """q = N(0, I) has no KL to the prior."""
        assert gaussian_kl(torch.zeros(2, 5), torch.zeros(2, 5)).abs().max() == 0


class TestReparameterize:
    def test_gradients_reach_mu_and_sigma(self) -> None:
        """dz/dmu = 1 and dz/dlogvar = eps sigma / 2."""
        mu = torch.tensor([0.5, -1.0], requires_grad=True)
        logvar = torch.tensor([0.2, -0.4], requires_grad=True)
        eps = torch.tensor([1.5, -0.3])
        reparameterize(mu, logvar, eps).sum().backward()
        assert mu.grad is not None
        assert logvar.grad is not None
        torch.testing.assert_close(mu.grad, torch.ones(2))
        torch.testing.assert_close(logvar.grad, 0.5 * eps * torch.exp(0.5 * logvar.detach()))

    def test_value(self) -> None:
        """z = mu + exp(logvar / 2) eps."""
        z = reparameterize(torch.tensor([1.0]), torch.tensor([math.log(4.0)]), torch.tensor([2.0]))
        torch.testing.assert_close(z, torch.tensor([5.0]))


class TestLikelihoods:
    def test_gaussian_keeps_every_constant(self) -> None:
        """The Gaussian log-likelihood is torch's Normal log_prob summed over pixels."""
        gen = torch.Generator().manual_seed(1)
        x, mean = torch.rand(3, 1, 2, 2, generator=gen) * 2 - 1, torch.rand(3, 1, 2, 2) * 2 - 1
        log_sigma = torch.tensor(math.log(0.3))
        expected = Normal(mean, 0.3).log_prob(x).flatten(1).sum(1)
        torch.testing.assert_close(log_likelihood(x, mean, "gaussian", log_sigma), expected)

    def test_continuous_bernoulli_is_a_density_on_minus_one_to_one(self) -> None:
        """CB on (x + 1) / 2 minus D log 2 (the Jacobian); it integrates to 1 over [-1, 1]."""
        mean = torch.full((1, 1, 1, 1), 0.6)  # lambda = 0.8
        grid = torch.linspace(-1, 1, 20001).view(-1, 1, 1, 1)
        density = log_likelihood(grid, mean.expand_as(grid), "continuous-bernoulli").exp()
        assert torch.trapezoid(density, grid.flatten()).item() == pytest.approx(1.0, abs=1e-4)
        x = torch.tensor([[[[0.5]]]])
        expected = ContinuousBernoulli(probs=torch.tensor(0.8)).log_prob(torch.tensor(0.75))
        value = log_likelihood(x, mean, "continuous-bernoulli")
        torch.testing.assert_close(value, (expected - math.log(2.0)).view(1), rtol=1e-4, atol=1e-5)

    def test_bernoulli_is_the_cross_entropy(self) -> None:
        """Binary targets: the Bernoulli log-probability of y = (x + 1) / 2."""
        x = torch.tensor([[[[1.0, -1.0]]]])
        mean = torch.tensor([[[[0.5, 0.0]]]])  # lambda 0.75 and 0.5
        expected = math.log(0.75) + math.log(0.5)
        assert log_likelihood(x, mean, "bernoulli").item() == pytest.approx(expected, rel=1e-5)

    def test_shape_mismatch_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="differ"):
            log_likelihood(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3), "bernoulli")

    def test_bits_per_dim_on_the_8_bit_scale(self) -> None:
        """A uniform density on [-1, 1]^D (nll = D log 2) is 8 bits per dim on the 8-bit scale
        (log2 255 ~ 7.99; uniform over 255 units of width)."""
        dims = 4
        nll = torch.tensor(dims * math.log(2.0))
        assert bits_per_dim(nll, dims, "gaussian").item() == pytest.approx(math.log2(255.0))
        assert bits_per_dim(nll, dims, "bernoulli").item() == pytest.approx(1.0)


# -------------------------------------------------------------------------------------------------
# A linear-Gaussian model: p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I), so p(x) = N(b, W W^T + s^2 I)
# and the exact posterior is Gaussian, diagonal when W's columns are orthogonal.
# -------------------------------------------------------------------------------------------------

SIGMA = 0.5
W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # D = 3, latent 2: orthogonal columns
B = torch.tensor([0.1, -0.2, 0.3])


class LinearDecoder(nn.Module):
    latent_dim = 2

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ W.T + B


class Posterior(nn.Module):
    """q(z|x) = the exact posterior (``scale = 1``), or a too narrow/shifted one."""

    def __init__(self, scale: float = 1.0, shift: float = 0.0) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        precision = 1.0 + (W * W).sum(0) / SIGMA**2  # diagonal of I + W^T W / s^2
        variance = 1.0 / precision
        mu = (x - B) @ W / SIGMA**2 * variance
        return mu + self.shift, torch.log(variance * self.scale**2).expand_as(mu)


def _vae() -> VAE:
    return VAE(VAEOptions(likelihood="gaussian", variance="fixed", sigma=SIGMA))


def _log_px(x: torch.Tensor) -> torch.Tensor:
    covariance = W @ W.T + SIGMA**2 * torch.eye(3)
    return MultivariateNormal(B, covariance).log_prob(x)


def _x() -> torch.Tensor:
    return torch.tensor([[0.4, 1.0, -0.1], [-1.0, 0.5, 0.6]])


def _eps(num: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(num, k, 2, generator=torch.Generator().manual_seed(seed))


class TestELBO:
    def test_equals_its_closed_form(self) -> None:
        """E_q log p(x|z) = -D/2 log(2 pi s^2) - (||x - W mu - b||^2 + tr(W S W^T)) / (2 s^2);
        the Monte Carlo ELBO with 20,000 draws is within 4 standard errors of it."""
        x = _x()
        generators = {"generator": LinearDecoder(), "encoder": Posterior(scale=1.3, shift=0.2)}
        mu, logvar = generators["encoder"](x)
        residual = x - mu @ W.T - B
        trace = (logvar.exp() * (W * W).sum(0)).sum(1)
        expected_rec = -1.5 * math.log(2 * math.pi * SIGMA**2) - (
            residual.square().sum(1) + trace
        ) / (2 * SIGMA**2)
        expected = expected_rec - gaussian_kl(mu, logvar)
        draws = 20_000  # one draw per row of x repeated: one decoder call
        terms = _vae().elbo_terms(generators, x.repeat(draws, 1), _eps(2 * draws, 1))
        torch.testing.assert_close(terms["kl"][:2], gaussian_kl(mu, logvar).double())
        estimate = terms["elbo"].view(draws, 2)
        error = (estimate.mean(0) - expected.double()).abs()
        standard_error = estimate.std(0) / math.sqrt(draws)
        assert torch.all(error < 4 * standard_error), (estimate.mean(0), expected)

    def test_exact_posterior_makes_the_elbo_log_px(self) -> None:
        """With q the exact posterior, every importance weight is p(x): IWAE = ELBO = log p(x)
        for any k, to round-off."""
        x = _x()
        generators = {"generator": LinearDecoder(), "encoder": Posterior()}
        log_weights = _vae().log_weights(generators, x, _eps(2, 5))
        torch.testing.assert_close(
            log_weights, _log_px(x).double().unsqueeze(1).expand(-1, 5), rtol=0, atol=1e-5
        )
        torch.testing.assert_close(iwae_bound(log_weights), _log_px(x).double(), rtol=0, atol=1e-5)


class TestIWAE:
    def test_at_least_the_elbo_and_tightens_with_k(self) -> None:
        """With an imperfect q, in expectation: ELBO = IWAE_1 < IWAE_5 < IWAE_50 < log p(x), and
        IWAE_1000 is within 0.02 nats of log p(x)."""
        x = _x()
        generators = {"generator": LinearDecoder(), "encoder": Posterior(scale=0.8, shift=0.1)}
        vae = _vae()
        elbo = vae.elbo_terms(generators, x, _eps(2, 4000))["elbo"]

        def expected_bound(k: int, repeats: int) -> torch.Tensor:
            """The bound's mean over ``repeats`` independent estimates, per image."""
            log_weights = vae.log_weights(generators, x.repeat(repeats, 1), _eps(2 * repeats, k, k))
            return iwae_bound(log_weights).view(repeats, 2).mean(0)

        bounds = [expected_bound(k, 200) for k in (1, 5, 50)]
        exact = _log_px(x).double()
        assert torch.all((bounds[0] - elbo).abs() < 0.02)  # IWAE_1 estimates the ELBO
        for looser, tighter in itertools.pairwise(bounds):
            assert torch.all(tighter > looser)
        assert torch.all(bounds[-1] < exact)
        assert torch.all((exact - expected_bound(1000, 10)).abs() < 0.02)

    def test_bound_of_equal_weights_is_that_weight(self) -> None:
        """log (1/k) sum exp(c) = c."""
        torch.testing.assert_close(iwae_bound(torch.full((2, 7), -3.0)), torch.full((2,), -3.0))
