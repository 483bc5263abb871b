"""gan-biggan: Self-Attention GAN and BigGAN for gancore, built on gan-conditional. Hook
implementations are in :mod:`gan_biggan.plugin`."""
