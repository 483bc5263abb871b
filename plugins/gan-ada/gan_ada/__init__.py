"""gan-ada: Adaptive discriminator augmentation (ADA) and DiffAugment for training with limited data."""

__version__ = "0.1.0"
