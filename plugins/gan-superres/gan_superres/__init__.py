"""gan-superres: SRGAN single-image super-resolution for gancore."""

__version__ = "0.1.0"
