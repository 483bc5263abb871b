"""gan-example: an example third-party gancore plugin. The hooks are in ``gan_example.plugin``."""
