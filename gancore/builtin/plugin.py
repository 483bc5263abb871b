"""The built-in plugin: hook implementations only; the components live in sibling modules."""

from __future__ import annotations

from gancore._registry import RegisterCallback
from gancore._task import Unconditional
from gancore.builtin import augmenters, datasets, losses, networks, regularizers
from gancore.builtin.mode_coverage import ModeCoverageMetric
from gancore.hookspecs import hookimpl
from gancore.metrics import components as metrics
from gancore.metrics import extractors


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "mlp",
        networks.build_mlp_generator,
        options=networks.MLPGeneratorOptions,
        description="Fully connected generator for vector data such as 2-D toy mixtures.",
    )
    register(
        "dcgan",
        networks.build_dcgan_generator,
        options=networks.DCGANGeneratorOptions,
        description="DCGAN generator: transposed convolutions, batch norm, ReLU (Radford 2016).",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "mlp",
        networks.build_mlp_critic,
        options=networks.MLPCriticOptions,
        description="Fully connected critic for vector data such as 2-D toy mixtures.",
    )
    register(
        "dcgan",
        networks.build_dcgan_critic,
        options=networks.DCGANCriticOptions,
        description="DCGAN critic: strided convolutions, LeakyReLU, configurable norm.",
    )


@hookimpl
def gancore_register_losses(register: RegisterCallback) -> None:
    register(
        "minimax",
        losses.Minimax,
        description="Original saturating minimax loss (Goodfellow et al. 2014).",
    )
    register(
        "non-saturating",
        losses.NonSaturating,
        description="Non-saturating logistic loss, G minimises softplus(-D(G(z))).",
    )
    register(
        "least-squares",
        losses.LeastSquares,
        description="Least-squares loss with targets a, b, c (LSGAN, Mao et al. 2017).",
    )
    register("hinge", losses.Hinge, description="Hinge loss (Lim & Ye 2017; SAGAN, BigGAN).")


@hookimpl
def gancore_register_regularizers(register: RegisterCallback) -> None:
    register(
        "r1",
        regularizers.R1,
        description="R1 gradient penalty on real data, lazy-capable (Mescheder et al. 2018).",
    )


@hookimpl
def gancore_register_augmenters(register: RegisterCallback) -> None:
    register("none", augmenters.NoAugment, description="No augmentation.")
    register(
        "hflip",
        augmenters.build_horizontal_flip,
        options=augmenters.HorizontalFlipOptions,
        description="Random horizontal flip of every critic input with probability p.",
    )


@hookimpl
def gancore_register_datasets(register: RegisterCallback) -> None:
    register(
        "toy2d",
        datasets.build_toy2d,
        options=datasets.Toy2dOptions,
        description="2-D Gaussian mixtures (ring, grid; WGAN-GP's toys) with known modes.",
    )
    register(
        "digits",
        datasets.build_digits,
        options=datasets.DigitsOptions,
        description="scikit-learn's bundled 8x8 handwritten digits, resized (offline).",
    )
    register(
        "image-folder",
        datasets.build_image_folder,
        options=datasets.ImageFolderOptions,
        description="Your own images from a folder: resize, center crop, mirror, class subfolders.",
    )
    register(
        "npz",
        datasets.build_npz,
        options=datasets.NpzOptions,
        description="Arrays from a NumPy .npz file: images [N, C, H, W] or points [N, D].",
    )


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "unconditional", Unconditional, description="Noise to sample: one generator, one critic."
    )


@hookimpl
def gancore_register_metrics(register: RegisterCallback) -> None:
    register(
        "mode-coverage",
        ModeCoverageMetric,
        description="Modes covered, % high-quality samples and KL for 2-D mixtures.",
    )
    register(
        "fid",
        metrics.build_feature_metric,
        options=metrics.FIDMetric,
        description="Fréchet distance of real and generated features (FID; Heusel et al. 2017).",
    )
    register(
        "kid",
        metrics.build_feature_metric,
        options=metrics.KIDMetric,
        description="Unbiased polynomial-kernel MMD² over subsets (KID; Bińkowski et al. 2018).",
    )
    register(
        "is",
        metrics.build_feature_metric,
        options=metrics.ISMetric,
        description="Inception score of generated samples over splits (Salimans et al. 2016).",
    )
    register(
        "precision-recall",
        metrics.build_feature_metric,
        options=metrics.PrecisionRecallMetric,
        description="k-NN manifold precision and recall, k = 3 (Kynkäänniemi et al. 2019).",
    )
    register(
        "density-coverage",
        metrics.build_feature_metric,
        options=metrics.DensityCoverageMetric,
        description="k-NN density and coverage of real balls, k = 5 (Naeem et al. 2020).",
    )


@hookimpl
def gancore_register_extractors(register: RegisterCallback) -> None:
    register(
        "inception-v3",
        extractors.build_inception_v3,
        options=extractors.InceptionV3Options,
        description="FID Inception-v3 (TF 2015-12-05 graph): 2048-d pool3, 1008 logits; local file.",
    )
    register(
        "digits-classifier",
        extractors.build_digits_classifier,
        options=extractors.DigitsClassifierOptions,
        description="Small CNN trained on scikit-learn's digits, bundled: 128-d features, 10 logits.",
    )
