"""Hook implementations of gan-conditional: the components live in ``networks``, ``tasks`` and
``metrics``."""

from __future__ import annotations

from gan_conditional import metrics, networks, sampling, tasks
from gancore import RegisterCallback, RegisterSampleOptionCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "concat",
        networks.build_concat_generator,
        options=networks.ConcatGeneratorOptions,
        description="Class conditioning: one-hot or embedded label concatenated to z (cGAN).",
    )
    register(
        "conditional-batchnorm",
        networks.build_cbn_generator,
        options=networks.ConditionalBatchNormOptions,
        description="Class conditioning: per-class gain and bias in every norm layer (CBN).",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "concat",
        networks.build_concat_critic,
        options=networks.ConcatCriticOptions,
        description="Class conditioning: one-hot label maps concatenated to the input (cGAN).",
    )
    register(
        "projection",
        networks.build_projection_critic,
        options=networks.ProjectionCriticOptions,
        description="Projection critic psi(phi(x)) + embed(y).phi(x) (Miyato & Koyama 2018).",
    )


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "conditional",
        tasks.Conditional,
        description="Class-conditional GAN: G(z, y), D(x, y) (cGAN, projection critic).",
    )
    register(
        "acgan",
        tasks.ACGAN,
        description="Auxiliary classifier GAN: a class head on the critic (Odena et al. 2017).",
    )
    register(
        "infogan",
        tasks.InfoGAN,
        description="InfoGAN: latent codes and a Q head maximising L_I (Chen et al. 2016).",
    )


@hookimpl
def gancore_register_metrics(register: RegisterCallback) -> None:
    register(
        "class-accuracy",
        metrics.build_class_accuracy,
        options=metrics.ClassAccuracy,
        description="Accuracy of a classifier extractor on generated samples of each class.",
    )
    register(
        "intra-fid",
        metrics.build_intra_fid,
        options=metrics.IntraFID,
        description="Mean over classes of the Frechet distance of each class's samples.",
    )
    register(
        "code-accuracy",
        metrics.build_code_accuracy,
        options=metrics.CodeAccuracy,
        description="InfoGAN: classifier accuracy of a categorical code after Hungarian matching.",
    )


@hookimpl
def gancore_register_sample_options(register: RegisterSampleOptionCallback) -> None:
    register(
        "--vary-code",
        argument={"metavar": "NAME"},
        help="InfoGAN: write a grid whose rows set code NAME (c1, c2, ...) to each of its values "
        "and whose columns keep their noise and other codes",
        picture=sampling.vary_code,
    )
    register(
        "--code-steps",
        argument={"type": int, "metavar": "K"},
        help=f"with --vary-code on a continuous code: rows of the sweep (default "
        f"{sampling.DEFAULT_STEPS})",
        requires="--vary-code",
    )
    register(
        "--code-range",
        argument={"type": float, "nargs": 2, "metavar": ("LOW", "HIGH")},
        help="with --vary-code on a continuous code: the sweep's ends (default -2 2, as Chen "
        "et al. 2016)",
        requires="--vary-code",
    )
