"""gan-wgan: Wasserstein losses and Lipschitz constraints: WGAN, weight clipping, WGAN-GP, WGAN-LP, DRAGAN, spectral normalization."""

__version__ = "0.1.0"
