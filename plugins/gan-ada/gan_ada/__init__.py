"""gan-ada: adaptive discriminator augmentation (ADA), DiffAugment and Freeze-D for limited data."""

from gan_ada.ada import AdaptiveAugment, AugmentParams
from gan_ada.diffaugment import DiffAugment
from gan_ada.regularizers import FreezeD

__all__ = ["AdaptiveAugment", "AugmentParams", "DiffAugment", "FreezeD", "__version__"]

__version__ = "0.1.0"
