"""Hook implementations of gan-cyclegan: the components live in ``networks``, ``tasks``,
``datasets`` and ``translate`` (CycleGAN, pix2pix), ``stargan`` (StarGAN) and ``pix2pixhd``
(pix2pixHD); each of the last two registers its own through its ``register_*`` functions."""

from __future__ import annotations

from gan_cyclegan import datasets, networks, pix2pixhd, stargan, tasks, translate
from gancore import RegisterCallback, RegisterCommandCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "resnet",
        networks.build_resnet_generator,
        options=networks.ResnetGeneratorOptions,
        description="Image-to-image ResNet generator, reflection padding, instance norm (CycleGAN).",
    )
    register(
        "unet",
        networks.build_unet_generator,
        options=networks.UNetGeneratorOptions,
        description="Image-to-image U-Net generator with skip connections and dropout (pix2pix).",
    )
    stargan.register_generators(register)
    pix2pixhd.register_generators(register)


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "patchgan",
        networks.build_patchgan_critic,
        options=networks.PatchGANCriticOptions,
        description="PatchGAN critic: one score per overlapping patch, 70x70 by default (pix2pix).",
    )
    stargan.register_critics(register)
    pix2pixhd.register_critics(register)


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "cyclegan",
        tasks.build_cyclegan,
        options=tasks.CycleGANOptions,
        description="Unpaired translation: two generators, two critics, cycle loss (Zhu 2017).",
    )
    register(
        "pix2pix",
        tasks.build_pix2pix,
        options=tasks.Pix2PixOptions,
        description="Paired translation: conditional critic on (input, image) plus L1 (Isola 2017).",
    )
    stargan.register_tasks(register)
    pix2pixhd.register_tasks(register)


@hookimpl
def gancore_register_datasets(register: RegisterCallback) -> None:
    register(
        "unpaired",
        datasets.build_unpaired,
        options=datasets.UnpairedOptions,
        description="Two image domains (folders or datasets) of any sizes, for CycleGAN.",
    )
    register(
        "paired",
        datasets.build_paired,
        options=datasets.PairedOptions,
        description="Aligned image pairs: side-by-side files or two folders matched by name.",
    )
    register(
        "digits-translation",
        datasets.build_digits_translation,
        options=datasets.DigitsTranslationOptions,
        description="Offline digits and a known transform of them, with a held-out split.",
    )
    stargan.register_datasets(register)
    pix2pixhd.register_datasets(register)


@hookimpl
def gancore_register_commands(register: RegisterCommandCallback) -> None:
    register(
        "translate",
        translate.run_translate,
        configure=translate.add_translate_arguments,
        description="Translate images with a trained cyclegan, pix2pix, pix2pixhd or stargan run.",
    )
