"""gan-conditional: class-conditional GANs (cGAN, projection critic, conditional batch norm,
ACGAN) and InfoGAN for gancore. Hook implementations are in :mod:`gan_conditional.plugin`."""
