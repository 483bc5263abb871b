"""The plugin is installed, loads through its entry point, registers its components, they pass
gancore's conformance kit, each task trains on gancore's loop, and the examples validate."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
import torch
from gan_vae.networks import (
    BEGANAutoencoder,
    ConvDecoder,
    MLPDecoder,
    VAEConvOptions,
    VAEMLPOptions,
    build_vae_conv,
    build_vae_mlp,
)

import gancore
import gancore.testing as gt

CONTEXT = gancore.BuildContext(data_shape=(1, 8, 8))
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NAMES = (
    ("generator", "vae-mlp"),
    ("generator", "vae-conv"),
    ("generator", "began"),
    ("critic", "began-autoencoder"),
    ("task", "vae"),
    ("task", "vae-gan"),
    ("task", "began"),
    ("metric", "elbo"),
    ("metric", "iwae"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        (ep,) = [ep for ep in eps if ep.name == "gan-vae"]
        assert ep.value == "gan_vae.plugin"

    def test_plugin_loads(self) -> None:
        _, infos = gancore.load_registry()
        (info,) = [i for i in infos if i.name == "gan-vae"]
        assert info.status == "loaded", info.error
        assert info.version == "0.1.0"

    def test_registers_these_components(self) -> None:
        """Each component has a one-line description, a qualified name and documented options
        that survive TOML; nothing else is registered."""
        gt.check_plugin_components("gan-vae", NAMES)

    def test_command_is_registered(self) -> None:
        registry, _ = gancore.load_registry()
        assert registry.commands["reconstruct"].provider == "gan-vae"


class TestConformance:
    @pytest.mark.parametrize("name", ["vae-mlp", "vae-conv", "began"])
    @pytest.mark.parametrize("size", [8, 16])
    def test_generators(self, name: str, size: int) -> None:
        options = {"latent_dim": 3, "channels": 4} if name != "vae-mlp" else {"hidden": 8}
        gt.check_generator(name, options, data_shape=(1, size, size))

    @pytest.mark.parametrize("size", [8, 16])
    def test_began_autoencoder(self, size: int) -> None:
        critic = gt.check_critic(
            "began-autoencoder", {"hidden": 4, "channels": 4}, data_shape=(3, size, size)
        )
        assert isinstance(critic, BEGANAutoencoder)
        x = torch.rand(2, 3, size, size) * 2 - 1
        expected = -(x - critic.reconstruct(x)).abs().mean(dim=(1, 2, 3))
        torch.testing.assert_close(critic(x), expected)

    @pytest.mark.parametrize("kind", ["conv", "mlp"])
    def test_encoders(self, kind: str) -> None:
        """The encoder maps [N, C, H, W] to finite (mu, logvar) [N, latent_dim]; gradients reach
        its parameters."""
        decoder: ConvDecoder | MLPDecoder = (
            build_vae_conv(VAEConvOptions(latent_dim=3, channels=4), CONTEXT)
            if kind == "conv"
            else build_vae_mlp(VAEMLPOptions(latent_dim=3, hidden=8), CONTEXT)
        )
        encoder = decoder.build_encoder()
        mu, logvar = encoder(torch.rand(4, 1, 8, 8) * 2 - 1)
        assert mu.shape == logvar.shape == (4, 3)
        assert torch.isfinite(mu).all()
        assert torch.isfinite(logvar).all()
        (mu.square().mean() + logvar.square().mean()).backward()
        assert all(p.grad is not None for p in encoder.parameters())

    def test_bad_shapes_are_one_line_errors(self) -> None:
        with pytest.raises(AssertionError, match=r"vae-conv: image size must be a square power"):
            gt.check_generator("vae-conv", data_shape=(1, 12, 12))
        with pytest.raises(AssertionError, match=r"expected image data of shape \(C, H, W\)"):
            gt.check_generator("began", data_shape=(2,))
        decoder = build_vae_conv(VAEConvOptions(latent_dim=3, channels=4), CONTEXT)
        with pytest.raises(
            ValueError, match=r"expected images \[N, 1, 8, 8\] \(got \[2, 1, 4, 4\]"
        ):
            decoder.build_encoder()(torch.zeros(2, 1, 4, 4))


class TestTasksTrain:
    """Each task trains two steps on 8x8 digits with the loop: logs, samples, checkpoint."""

    def test_vae(self, tmp_path: Path, runs: Any) -> None:
        gt.check_training(runs.vae(), tmp_path / "vae")

    @pytest.mark.parametrize("likelihood", ["continuous-bernoulli", "bernoulli"])
    def test_vae_likelihoods(self, tmp_path: Path, runs: Any, likelihood: str) -> None:
        gt.check_training(runs.vae(likelihood=likelihood), tmp_path / "vae")

    def test_vae_gan(self, tmp_path: Path, runs: Any) -> None:
        gt.check_training(runs.vae_gan(), tmp_path / "vae-gan")

    def test_began(self, tmp_path: Path, runs: Any) -> None:
        gt.check_training(runs.began(), tmp_path / "began")

    def test_vae_refuses_a_generator_without_encoder(self, tmp_path: Path, runs: Any) -> None:
        document = runs.vae()
        document["generator"] = {"name": "dcgan", "latent_dim": 4, "channels": 4}
        with pytest.raises(ValueError, match="generator 'dcgan' has no encoder"):
            gt.check_training(document, tmp_path / "run")

    def test_began_refuses_a_plain_critic(self, tmp_path: Path, runs: Any) -> None:
        document = runs.began()
        document["critic"] = {"name": "dcgan", "channels": 4}
        with pytest.raises(ValueError, match="critic 'dcgan' is not an autoencoder"):
            gt.check_training(document, tmp_path / "run")


class TestExamples:
    @pytest.mark.parametrize(
        ("example", "task"),
        [
            ("vae-digits.toml", "vae"),
            ("vae-gan-digits.toml", "vae-gan"),
            ("began-digits.toml", "began"),
        ],
    )
    def test_example_validates(self, example: str, task: str) -> None:
        """examples/<name>.toml is a valid run file of its task."""
        config = gancore.load_config(EXAMPLES / example)
        assert config.task.name == f"gan-vae:{task}"
