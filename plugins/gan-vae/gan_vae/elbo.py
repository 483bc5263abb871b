"""The VAE's objective as pure functions: the KL to the prior, the likelihoods, the ELBO and the
importance-weighted bound. No modules, no optimizers; every value is per image, in nats.

Data scale. gancore's images lie in ``[-1, 1]``; every log-likelihood here is a log-density of
``x`` on that scale (or, for ``bernoulli``, a log-probability; see below), summed over the
``D = C * H * W`` pixels, with every constant kept, so the nats are honest:

- ``gaussian``: ``log N(x; mu, sigma^2) = -D/2 log(2 pi) - D log sigma - sum (x - mu)^2 / (2
  sigma^2)`` with ``mu`` the decoder's output and one ``sigma`` shared by all pixels.
- ``continuous-bernoulli`` (Loaiza-Ganem & Cunningham 2019, "The continuous Bernoulli: fixing a
  pervasive error in variational autoencoders"): ``y = (x + 1) / 2`` in ``[0, 1]``,
  ``lambda = (mu + 1) / 2``; ``log p(x) = sum log CB(y; lambda) - D log 2`` (the Jacobian of
  ``y = (x + 1) / 2``), a proper density for the grey-level digits.
- ``bernoulli``: ``sum y log lambda + (1 - y) log(1 - lambda)``, the binary cross-entropy used by
  Kingma & Welling (2014) for binarised MNIST. The digits are not binary (17 grey levels,
  smoothed by resizing), so for them this is not a normalised likelihood: its "nats" are an
  upper bound neither on ``-log p(x)`` nor comparable with the other two. It is offered for
  comparison with papers only.

Bits per dimension: ``-log p(x)`` of a density on ``[-1, 1]`` becomes the density of the
8-bit scale ``[0, 256)`` by adding ``D log 127.5`` (the Jacobian of ``255 (x + 1) / 2``), then
``bits/dim = (nll / D + log 127.5) / log 2``: the convention of image density models (no
dequantization). For ``bernoulli`` it is ``nll / (D log 2)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "LIKELIHOODS",
    "LOG_2PI",
    "bits_per_dim",
    "gaussian_kl",
    "iwae_bound",
    "log_likelihood",
    "log_normal",
    "reparameterize",
    "standard_log_normal",
]

LIKELIHOODS = ("gaussian", "continuous-bernoulli", "bernoulli")
LOG_2PI = math.log(2.0 * math.pi)
LOG_SCALE_8BIT = math.log(127.5)  # [-1, 1] -> [0, 255]: x' = 127.5 (x + 1)
EDGE = 1e-6  # decoder outputs are kept this far inside (-1, 1) before logits are taken


def _per_image(values: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the first: ``[N, ...] -> [N]``."""
    return values.flatten(1).sum(dim=1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``z = mu + sigma * eps`` with ``sigma = exp(logvar / 2)``, differentiable in ``mu`` and
    ``logvar`` (Kingma & Welling 2014, Sec. 2.4)."""
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag sigma^2) || N(0, I))`` per row ``[N]``:
    ``1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2)`` (Kingma & Welling 2014, App. B)."""
    return 0.5 * _per_image(mu.square() + logvar.exp() - 1.0 - logvar)


def log_normal(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(x; mu, diag exp(logvar))`` per row ``[N]``; ``logvar`` broadcasts."""
    return -0.5 * _per_image(LOG_2PI + logvar + (x - mu).square() / logvar.exp())


def standard_log_normal(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` per row ``[N]``."""
    return -0.5 * _per_image(LOG_2PI + z.square())


def log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, likelihood: str, log_sigma: torch.Tensor | None = None
) -> torch.Tensor:
    """``log p(x | z)`` per image ``[N]`` in nats on the ``[-1, 1]`` scale (module docstring).

    ``mean`` is the decoder's output ``[N, C, H, W]`` in ``[-1, 1]``; ``log_sigma`` (a scalar
    tensor) is the Gaussian's log standard deviation, shared by all pixels.
    """
    if x.shape != mean.shape:
        raise ValueError(
            f"log_likelihood: images {list(x.shape)} and decoder output {list(mean.shape)} differ"
        )
    if likelihood == "gaussian":
        if log_sigma is None:
            raise ValueError("log_likelihood: the gaussian likelihood needs log_sigma")
        return log_normal(x, mean, 2.0 * log_sigma.expand_as(x))
    # tanh output m = 2 lambda - 1 = tanh(a), so lambda = sigmoid(2 a) = sigmoid(2 atanh(m))
    logits = 2.0 * torch.atanh(mean.clamp(-1.0 + EDGE, 1.0 - EDGE))
    y = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
    if likelihood == "bernoulli":
        return -_per_image(F.binary_cross_entropy_with_logits(logits, y, reduction="none"))
    if likelihood == "continuous-bernoulli":
        density = torch.distributions.ContinuousBernoulli(logits=logits, validate_args=False)
        return _per_image(density.log_prob(y)) - y[0].numel() * math.log(2.0)
    raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)} (got {likelihood!r})")


def bits_per_dim(nll: torch.Tensor, dims: int, likelihood: str) -> torch.Tensor:
    """Bits per dimension of ``nll`` (``-log p(x)`` in nats per image over ``dims`` pixels):
    on the 8-bit scale for densities, plain for ``bernoulli`` (module docstring)."""
    offset = 0.0 if likelihood == "bernoulli" else LOG_SCALE_8BIT
    return (nll / dims + offset) / math.log(2.0)


def iwae_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """``log (1/k) sum_i w_i`` per row ``[N]`` of log importance weights ``[N, k]``
    (``log w_i = log p(x, z_i) - log q(z_i | x)``, Burda et al. 2016, Eq. 8), computed in a
    numerically stable way; k = 1 is the ELBO's one-sample estimate."""
    return torch.logsumexp(log_weights, dim=1) - math.log(log_weights.shape[1])
