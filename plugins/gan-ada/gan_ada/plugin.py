"""Hook implementations of gan-ada: the components live in ``ada``, ``diffaugment`` and ``regularizers``."""

from __future__ import annotations

from gan_ada import ada, diffaugment, regularizers
from gancore import RegisterCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_augmenters(register: RegisterCallback) -> None:
    register(
        "ada",
        ada.build_ada,
        options=ada.AdaOptions,
        description="Adaptive discriminator augmentation, 'bgc' pipeline (Karras et al. 2020).",
    )
    register(
        "diffaugment",
        diffaugment.build_diffaugment,
        options=diffaugment.DiffAugmentOptions,
        description="DiffAugment: colour, translation, cutout on every image (Zhao et al. 2020).",
    )


@hookimpl
def gancore_register_regularizers(register: RegisterCallback) -> None:
    register(
        "freeze-d",
        regularizers.FreezeD,
        description="Freeze the first k blocks of the critic (Freeze-D, Mo et al. 2020).",
    )
    register(
        "bcr",
        regularizers.BalancedConsistency,
        description="Balanced consistency regularization: D(x) = D(T(x)) for real and fake "
        "(bCR, Zhao et al. 2021).",
    )
