"""Hook implementations of gan-progressive: the components live in ``networks`` and ``tasks``."""

from __future__ import annotations

from gan_progressive import networks, singan, tasks
from gancore import RegisterCallback, RegisterSampleOptionCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "pggan",
        networks.build_pggan_generator,
        options=networks.PGGANGeneratorOptions,
        description="PGGAN generator: grows from 4x4, pixel norm, equalized lr (Karras 2018).",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "pggan",
        networks.build_pggan_critic,
        options=networks.PGGANCriticOptions,
        description="PGGAN critic: grows from 4x4, minibatch stddev, equalized lr (Karras 2018).",
    )


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "progressive",
        tasks.Progressive,
        description="Progressive growing: both networks grow a resolution per stage, fade-in.",
    )
    register(
        "singan",
        singan.SinGAN,
        description="SinGAN: one image, a generator and patch critic per scale (Shaham 2019).",
    )


@hookimpl
def gancore_register_datasets(register: RegisterCallback) -> None:
    register(
        "single-image",
        singan.build_single_image,
        options=singan.SingleImageOptions,
        description="One image (a file or a scikit-image sample) as a dataset of one item.",
    )


@hookimpl
def gancore_register_sample_options(register: RegisterSampleOptionCallback) -> None:
    register(
        "--start-scale",
        argument={"type": int, "metavar": "K"},
        help="SinGAN: the scales below K reproduce the training image, random noise from scale "
        "K on (0 = all random; Shaham et al. 2019)",
        adjust=singan.start_scale,
    )
    register(
        "--size-factor",
        argument={"type": float, "nargs": 2, "metavar": ("H", "W")},
        help="SinGAN: samples H times as tall and W times as wide as the training image (every "
        "scale's noise map resized)",
        picture=singan.size_factor,
    )
