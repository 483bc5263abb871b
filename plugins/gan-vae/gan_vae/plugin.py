"""Hook implementations of gan-vae: the components live in ``networks``, ``vae``, ``vaegan``,
``began``, ``metrics`` and ``command``."""

from __future__ import annotations

from gan_vae import began, command, metrics, networks, vae, vaegan
from gancore import RegisterCallback, RegisterCommandCallback, hookimpl

GANCORE_API = ">=1.0,<2"  # the gancore API versions this plugin is written for


@hookimpl
def gancore_register_generators(register: RegisterCallback) -> None:
    register(
        "vae-mlp",
        networks.build_vae_mlp,
        options=networks.VAEMLPOptions,
        description="VAE decoder z -> x, ReLU MLP with tanh; builds its mirrored MLP encoder.",
    )
    register(
        "vae-conv",
        networks.build_vae_conv,
        options=networks.VAEConvOptions,
        description="VAE decoder shaped as DCGAN's generator; encoder shaped as DCGAN's critic.",
    )
    register(
        "began",
        networks.build_began_generator,
        options=networks.BEGANGeneratorOptions,
        description="BEGAN generator: fc to 8x8, 3x3 conv + ELU pairs, nearest upsampling, tanh.",
    )


@hookimpl
def gancore_register_critics(register: RegisterCallback) -> None:
    register(
        "began-autoencoder",
        networks.build_began_autoencoder,
        options=networks.BEGANAutoencoderOptions,
        description="BEGAN critic: a conv autoencoder D scoring -mean|v - D(v)|^eta per image.",
    )


@hookimpl
def gancore_register_tasks(register: RegisterCallback) -> None:
    register(
        "vae",
        vae.build_vae,
        options=vae.VAEOptions,
        description="VAE: encoder, decoder, ELBO (Gaussian/Bernoulli), beta, KL annealing; no critic.",
    )
    register(
        "vae-gan",
        vaegan.build_vae_gan,
        options=vaegan.VAEGANOptions,
        description="VAE-GAN: reconstruction in the critic's features plus the GAN loss.",
    )
    register(
        "began",
        began.build_began,
        options=began.BEGANOptions,
        description="BEGAN: autoencoder critic, equilibrium controller k_t (checkpointed).",
    )


@hookimpl
def gancore_register_metrics(register: RegisterCallback) -> None:
    register(
        "elbo",
        metrics.build_elbo,
        options=metrics.ELBO,
        description="VAE runs: the ELBO on (held-out) images, nats and bits per dimension.",
    )
    register(
        "iwae",
        metrics.build_iwae,
        options=metrics.IWAE,
        description="VAE runs: the k-sample IWAE bound on log p(x) (held-out), nats and bits/dim.",
    )


@hookimpl
def gancore_register_commands(register: RegisterCommandCallback) -> None:
    register(
        "reconstruct",
        command.run_reconstruct,
        configure=command.add_reconstruct_arguments,
        description="Reconstruct images with a trained vae or vae-gan run's encoder and decoder.",
    )
