"""gan-progressive: progressive growing of GANs (Karras et al. 2018) on gancore's stage seam."""
