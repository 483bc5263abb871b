"""gan-cyclegan: Image-to-image translation: CycleGAN (unpaired) and pix2pix (paired) tasks, ResNet and U-Net generators, PatchGAN critic."""

__version__ = "0.1.0"
