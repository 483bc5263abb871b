"""Components that ship with gancore, registered through the same hooks as any plugin."""
