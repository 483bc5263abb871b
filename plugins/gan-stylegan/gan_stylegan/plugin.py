"""Hook implementations of gan-stylegan: the components live in ``generators``, ``critics`` and
``regularizers``, the options of ``gan sample`` in ``sampling``."""

from __future__ import annotations

from gan_stylegan import critics, generators, regularizers, sampling
from gancore import RegisterCallback, RegisterSampleOptionCallback, hookimpl

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


@hookimpl
def gancore_register_sample_options(register: RegisterSampleOptionCallback) -> None:
    register(
        "--truncation",
        argument={"type": float, "metavar": "PSI"},
        help="truncation trick for style-based generators: w = w_avg + PSI * (w - w_avg) "
        "(1 = off, 0 = the average image)",
        adjust=sampling.truncation,
    )
    register(
        "--truncation-cutoff",
        argument={"type": int, "metavar": "K"},
        help="with --truncation: truncate only the style layers < K (default: all)",
        requires="--truncation",
    )
    register(
        "--style-mixing",
        help="write a style-mixing grid instead: sqrt(--num) row and column sources and, at "
        "(i, j), row i's styles before --crossover and column j's from it on",
        picture=sampling.style_mixing,
    )
    register(
        "--crossover",
        argument={"type": int, "metavar": "K"},
        help="with --style-mixing: the first style layer taken from the column source "
        "(default: half the generator's style layers)",
        requires="--style-mixing",
    )
