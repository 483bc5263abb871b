"""Hook implementations of gan-wgan: the components live in ``losses`` and ``regularizers``."""

from __future__ import annotations

from gan_wgan import losses, regularizers
from gancore import RegisterCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_losses(register: RegisterCallback) -> None:
    register(
        "wgan",
        losses.Wasserstein,
        description="Wasserstein loss: D minimises E[D(fake)] - E[D(real)] (Arjovsky et al. 2017).",
    )


@hookimpl
def gancore_register_regularizers(register: RegisterCallback) -> None:
    register(
        "weight-clip",
        regularizers.WeightClip,
        description="Clamp every critic weight to [-clip, clip] after each critic step (WGAN).",
    )
    register(
        "wgan-gp",
        regularizers.GradientPenalty,
        description="Two-sided gradient penalty on real-fake interpolates (Gulrajani et al. 2017).",
    )
    register(
        "wgan-lp",
        regularizers.LipschitzPenalty,
        description="One-sided gradient penalty on real-fake interpolates (Petzka et al. 2018).",
    )
    register(
        "dragan",
        regularizers.DRAGAN,
        description="Gradient penalty at noisy perturbations of real data (Kodali et al. 2017).",
    )
    register(
        "drift",
        regularizers.Drift,
        description="Drift penalty epsilon * E[D(real)^2] on critic scores (Karras et al. 2018).",
    )
    register(
        "spectral-norm",
        regularizers.SpectralNorm,
        description="Spectral normalization of every conv/linear layer of any critic (Miyato 2018).",
    )
