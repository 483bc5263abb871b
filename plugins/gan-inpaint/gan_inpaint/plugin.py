"""Hook implementations of gan-inpaint: the components live in ``networks``, ``task``,
``context_encoder``, ``context_task``, ``datasets``, ``metrics`` and ``command``."""

from __future__ import annotations

from gan_inpaint import command, context_encoder, context_task, datasets, metrics, networks, task
from gancore import RegisterCallback, RegisterCommandCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "deepfill",
        networks.build_deepfill_generator,
        options=networks.DeepFillGeneratorOptions,
        description="Coarse-to-fine inpainting generator with contextual attention (DeepFill v1).",
    )
    register(
        "context-encoder",
        context_encoder.build_context_encoder_generator,
        options=context_encoder.ContextEncoderGeneratorOptions,
        description="Encoder, channel-wise fully connected layer, decoder (Context Encoders).",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "deepfill",
        networks.build_deepfill_critic,
        options=networks.DeepFillCriticOptions,
        description="Stride-2 5x5 conv critic without normalization (DeepFill v1 global/local).",
    )


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "inpaint",
        task.Inpaint,
        description="Masked image -> completed image, global and local critics (DeepFill v1).",
    )
    register(
        "context-encoder",
        context_task.ContextEncoder,
        description="Centred hole, region predicted with overlap, masked L2 + adversarial loss.",
    )


@hookimpl
def gancore_register_datasets(register: RegisterCallback) -> None:
    register(
        "skimage-patches",
        datasets.build_skimage_patches,
        options=datasets.SkimagePatchesOptions,
        description="Patches of scikit-image's bundled photos, with a held-out split.",
    )


@hookimpl
def gancore_register_metrics(register: RegisterCallback) -> None:
    register(
        "inpaint-quality",
        metrics.InpaintQuality,
        description="Hole and image L1/L2/PSNR/SSIM vs mean-fill and nearest-patch baselines.",
    )


@hookimpl
def gancore_register_commands(register: RegisterCommandCallback) -> None:
    register(
        "inpaint",
        command.run_inpaint,
        configure=command.add_inpaint_arguments,
        description="Fill the holes of images with a trained inpaint run.",
    )
