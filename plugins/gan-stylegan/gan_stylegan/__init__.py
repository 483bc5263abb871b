"""gan-stylegan: Style-based generators (StyleGAN, StyleGAN2), the StyleGAN2 critic and the path-length regularizer, in plain PyTorch."""

__version__ = "0.1.0"
