"""BigGAN's truncation trick: resampling, the generators' switch and `gan sample`."""

from __future__ import annotations

import pytest
import torch
from gan_biggan.truncation import set_truncation_threshold, truncate_latents
from gan_conditional.networks import LabelledBuildContext
from torch import nn

import gancore


def _build(table: dict, classes: int | None = 3) -> nn.Module:
    context = LabelledBuildContext(
        data_shape=(1, 8, 8), registry=gancore.get_registry(), num_classes=classes
    )
    return context.resolve("generator", table)


class TestTruncateLatents:
    @pytest.mark.parametrize("threshold", [2.0, 0.5, 0.04])
    def test_no_value_beyond_the_threshold(self, threshold: float) -> None:
        """Every value ends inside [-T, T]; the ones already inside are untouched."""
        z = torch.randn(512, 16, generator=torch.Generator().manual_seed(0))
        out = truncate_latents(z, threshold)
        assert float(out.abs().max()) <= threshold
        inside = z.abs() <= threshold
        assert torch.equal(out[inside], z[inside])
        assert not torch.equal(out, z)

    def test_resampled_values_follow_the_truncated_normal(self) -> None:
        """Redrawn values are N(0, 1) restricted to [-1, 1]: their variance is about 0.291."""
        z = torch.full((200_000,), 5.0)  # all outside: all redrawn
        out = truncate_latents(z, 1.0)
        assert abs(float(out.mean())) < 0.01
        assert abs(float(out.var()) - 0.2911) < 0.01

    def test_is_reproducible_and_leaves_the_input(self) -> None:
        """The same latents give the same result; the input is not modified."""
        z = torch.randn(64, 8)
        before = z.clone()
        assert torch.equal(truncate_latents(z, 0.5), truncate_latents(z, 0.5))
        assert torch.equal(z, before)

    def test_threshold_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match=r"must be > 0 \(got 0\)"):
            truncate_latents(torch.randn(2, 2), 0.0)


class TestGenerators:
    def test_biggan_truncates_its_latents(self) -> None:
        """With a threshold, G(z, y) is G(truncate(z), y)."""
        torch.manual_seed(0)
        generator = _build(
            {"name": "biggan", "latent_dim": 6, "channels": 2, "attention_resolution": 8}
        ).eval()
        z, labels = torch.randn(4, 6) * 3, torch.tensor([0, 1, 2, 0])
        with torch.no_grad():
            plain = generator(truncate_latents(z, 0.5), labels)
            generator.truncation_threshold = 0.5
            truncated = generator(z, labels)
        torch.testing.assert_close(truncated, plain)

    def test_set_finds_a_wrapped_sagan(self) -> None:
        """A sagan inside conditional-batchnorm is found; a run without one is one line."""
        inner = {"name": "sagan", "latent_dim": 4, "channels": 2, "attention_resolution": 8}
        wrapped = _build({"name": "conditional-batchnorm", "inner": inner})
        assert set_truncation_threshold({"generator": wrapped}, 0.7) == ["generator"]
        assert wrapped.inner.truncation_threshold == 0.7
        dcgan = _build({"name": "dcgan", "latent_dim": 4}, classes=None)
        with pytest.raises(gancore.ConfigError, match="no generator of this run resamples"):
            set_truncation_threshold({"generator": dcgan}, 0.7)
        with pytest.raises(gancore.ConfigError, match=r"must be > 0 \(got -1\)"):
            set_truncation_threshold({"generator": wrapped}, -1.0)
