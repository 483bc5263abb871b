"""Hook implementations of gan-stylegan: the components live in ``generators``, ``critics`` and
``regularizers``."""

from __future__ import annotations

from gan_stylegan import critics, generators, regularizers
from gancore import RegisterCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "stylegan",
        generators.build_stylegan_generator,
        options=generators.StyleGANGeneratorOptions,
        description="StyleGAN: mapping network, AdaIN styles, noise inputs (Karras et al. 2019).",
    )
    register(
        "stylegan2",
        generators.build_stylegan2_generator,
        options=generators.StyleGAN2GeneratorOptions,
        description="StyleGAN2: modulated convolutions, skip toRGB outputs (Karras et al. 2020).",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "stylegan2",
        critics.build_stylegan2_critic,
        options=critics.StyleGAN2CriticOptions,
        description="StyleGAN2 residual critic with minibatch stddev (Karras et al. 2020).",
    )


@hookimpl
def gancore_register_regularizers(register: RegisterCallback) -> None:
    register(
        "path-length",
        regularizers.build_path_length,
        options=regularizers.PathLengthOptions,
        description="StyleGAN2 path length regularization of the generator, lazy (Karras 2020).",
    )
