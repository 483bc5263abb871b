"""Hook implementations of gan-superres: the components live in ``networks``, ``task``,
``datasets``, ``features``, ``metrics`` and ``command``."""

from __future__ import annotations

from gan_superres import command, datasets, features, metrics, networks, task
from gancore import RegisterCallback, RegisterCommandCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "srresnet",
        networks.build_srresnet,
        options=networks.SRResNetOptions,
        description="SRResNet: 16 residual blocks, long skip, x2 sub-pixel upsampling (SRGAN's G).",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "srgan",
        networks.build_srgan_critic,
        options=networks.SRGANCriticOptions,
        description="SRGAN critic: 8 strided 3x3 convs (64-512), BN, LeakyReLU, dense 1024.",
    )


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "srgan",
        task.Srgan,
        description="LR -> HR super-resolution: MSE pre-training, then perceptual + adversarial.",
    )


@hookimpl
def gancore_register_datasets(register: RegisterCallback) -> None:
    register(
        "sr-images",
        datasets.build_sr_images,
        options=datasets.SRImagesOptions,
        description="HR crops of bundled photos or your images, optionally paired with LR files.",
    )


@hookimpl
def gancore_register_extractors(register: RegisterCallback) -> None:
    register(
        "vgg19",
        features.build_vgg19,
        options=features.VGG19Options,
        description="VGG19 (ImageNet) features, relu5_4 content maps; weights from a local file.",
    )
    register(
        "sr-features",
        features.build_sr_features,
        options=features.SRFeaturesOptions,
        description="Small VGG-style feature net trained on bundled photos; weights bundled.",
    )


@hookimpl
def gancore_register_metrics(register: RegisterCallback) -> None:
    register(
        "sr-quality",
        metrics.build_sr_quality,
        options=metrics.SRQuality,
        description="PSNR/SSIM on Y (border crop r) and feature distance, against bicubic.",
    )


@hookimpl
def gancore_register_commands(register: RegisterCommandCallback) -> None:
    register(
        "upscale",
        command.run_upscale,
        configure=command.add_upscale_arguments,
        description="Upscale images with a trained srgan run (tiled for large images).",
    )
