"""gan-vae: variational autoencoders (VAE, beta-VAE), VAE-GAN and BEGAN for gancore."""

__version__ = "0.1.0"
