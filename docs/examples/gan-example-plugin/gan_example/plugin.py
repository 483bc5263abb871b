"""Hook implementations of gan-example: one component of every kind, and one command."""

from __future__ import annotations

import gancore
from gan_example import (
    augmenters,
    commands,
    datasets,
    extractors,
    losses,
    metrics,
    networks,
    regularizers,
    tasks,
)

# The gancore API versions this plugin is written for: gancore warns when it provides another.
GANCORE_API = ">=1.0,<2"


@gancore.hookimpl
def gancore_register_generators(register: gancore.RegisterCallback) -> None:
    register(
        "residual-mlp",
        networks.build_generator,
        options=networks.ResidualMLPOptions,
        description="MLP with residual blocks and tanh output, for any data shape.",
    )


@gancore.hookimpl
def gancore_register_critics(register: gancore.RegisterCallback) -> None:
    register(
        "residual-mlp",
        networks.build_critic,
        options=networks.ResidualMLPCriticOptions,
        description="MLP critic with residual blocks on the flattened input, scores [N].",
    )


@gancore.hookimpl
def gancore_register_losses(register: gancore.RegisterCallback) -> None:
    register(
        "smoothed-non-saturating",
        losses.SmoothedNonSaturating,
        description="Non-saturating loss, real labels smoothed (Salimans et al. 2016).",
    )


@gancore.hookimpl
def gancore_register_regularizers(register: gancore.RegisterCallback) -> None:
    register(
        "r2",
        regularizers.R2,
        description="Zero-centred gradient penalty on fake data (Mescheder et al. 2018).",
    )


@gancore.hookimpl
def gancore_register_augmenters(register: gancore.RegisterCallback) -> None:
    register(
        "adaptive-noise",
        augmenters.build_adaptive_noise,
        options=augmenters.AdaptiveNoiseOptions,
        description="Instance noise whose level adapts to the critic's overfitting.",
    )


@gancore.hookimpl
def gancore_register_datasets(register: gancore.RegisterCallback) -> None:
    register(
        "two-moons",
        datasets.build_two_moons,
        options=datasets.TwoMoonsOptions,
        description="Two interleaving half circles of 2-D points, drawn once from a seed.",
    )


@gancore.hookimpl
def gancore_register_tasks(register: gancore.RegisterCallback) -> None:
    register(
        "pacgan",
        tasks.PacGAN,
        description="Unconditional GAN whose critic scores packs of samples (Lin et al. 2018).",
    )


@gancore.hookimpl
def gancore_register_metrics(register: gancore.RegisterCallback) -> None:
    register(
        "sliced-wasserstein",
        metrics.SlicedWasserstein,
        description="Sliced Wasserstein-2 distance between generated and real samples.",
    )


@gancore.hookimpl
def gancore_register_extractors(register: gancore.RegisterCallback) -> None:
    register(
        "pixels",
        extractors.build_pixels,
        options=extractors.PixelsOptions,
        description="Images area-downsampled to a small square, as features; no weights.",
    )


@gancore.hookimpl
def gancore_register_commands(register: gancore.RegisterCommandCallback) -> None:
    register(
        "describe-run",
        commands.describe_run,
        configure=commands.add_arguments,
        description="print a trained run's progress, last losses and network sizes",
    )
