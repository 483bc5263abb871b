"""gan-inpaint: DeepFill-style inpainting with contextual attention, global and local critics."""

__version__ = "0.1.0"
