"""Hook implementations of gan-improved: the components live in sibling modules."""

from __future__ import annotations

from gan_improved import augmenters, critics, generators, losses, regularizers, tasks
from gancore import RegisterCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "virtual-batchnorm",
        generators.build_virtual_batchnorm,
        options=generators.VirtualBatchNormOptions,
        description="A generator's batch norm replaced by reference-batch norm (Salimans 2016).",
    )


@hookimpl
def gancore_register_augmenters(register: RegisterCallback) -> None:
    register(
        "instance-noise",
        augmenters.build_instance_noise,
        options=augmenters.InstanceNoiseOptions,
        description="Gaussian noise on every critic input, annealed to 0 (Sonderby et al. 2017).",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "minibatch-discrimination",
        critics.build_minibatch_discrimination,
        options=critics.MinibatchDiscriminationOptions,
        description="Minibatch features o(x) appended to a feature critic's (Salimans 2016).",
    )
    register(
        "pacgan",
        critics.build_pacgan,
        options=critics.PacGANOptions,
        description="Packing: the inner critic scores m samples at once (Lin et al. 2018).",
    )


@hookimpl
def gancore_register_losses(register: RegisterCallback) -> None:
    register(
        "label-smoothing",
        losses.LabelSmoothing,
        description="Logistic loss with one-sided label smoothing, real target 0.9 (Salimans 2016).",
    )


@hookimpl
def gancore_register_regularizers(register: RegisterCallback) -> None:
    register(
        "feature-matching",
        regularizers.FeatureMatching,
        description="Generator matches the mean critic features of real data (Salimans 2016).",
    )
    register(
        "historical-averaging",
        regularizers.build_historical_averaging,
        options=regularizers.HistoricalAveragingOptions,
        description="Penalty ||theta - running mean of theta||^2 on a player (Salimans 2016).",
    )


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "unrolled",
        tasks.Unrolled,
        description="Generator loss through K unrolled critic updates (Metz et al. 2017).",
    )
