"""Hook implementations of gan-biggan: the components live in ``networks``, ``regularizers`` and
``truncation``."""

from __future__ import annotations

from gan_biggan import networks, regularizers, truncation
from gancore import RegisterCallback, RegisterSampleOptionCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "sagan",
        networks.build_sagan_generator,
        options=networks.SAGANGeneratorOptions,
        description="SAGAN ResNet generator: spectral norm, self-attention (Zhang et al. 2019).",
    )
    register(
        "biggan",
        networks.build_biggan_generator,
        options=networks.BigGANGeneratorOptions,
        description="BigGAN generator: shared embedding, hierarchical z, conditional BN (Brock 2019).",
    )
    register(
        "biggan-deep",
        networks.build_biggan_deep_generator,
        options=networks.BigGANDeepGeneratorOptions,
        description="BigGAN-deep generator: bottleneck blocks, two per resolution, z to every block.",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "sagan",
        networks.build_sagan_critic,
        options=networks.SAGANCriticOptions,
        description="SAGAN ResNet critic: spectral norm, self-attention; wrap in 'projection'.",
    )
    register(
        "biggan",
        networks.build_biggan_critic,
        options=networks.CriticOptions,
        description="BigGAN ResNet critic: spectral norm, self-attention; wrap in 'projection'.",
    )
    register(
        "biggan-deep",
        networks.build_biggan_deep_critic,
        options=networks.BigGANDeepCriticOptions,
        description="BigGAN-deep critic: bottleneck blocks, two per stage; wrap in 'projection'.",
    )


@hookimpl
def gancore_register_regularizers(register: RegisterCallback) -> None:
    register(
        "orthogonal",
        regularizers.Orthogonal,
        description="BigGAN's orthogonal regularization beta ||W^T W * (1 - I)||_F^2 on G.",
    )


@hookimpl
def gancore_register_sample_options(register: RegisterSampleOptionCallback) -> None:
    register(
        "--truncation-threshold",
        argument={"type": float, "metavar": "T"},
        help="BigGAN's truncation trick (sagan, biggan, biggan-deep): latent values with "
        "|z| > T are resampled (smaller T: less variety, higher fidelity)",
        adjust=truncation.truncation,
    )
