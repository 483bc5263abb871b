"""Virtual batch normalization."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from gan_improved.generators import VirtualBatchNorm, VirtualBatchNormGenerator
from torch import nn

import gancore.testing as gt

DCGAN = {"name": "dcgan", "latent_dim": 8, "channels": 8}


def batch_norm(x: torch.Tensor, norm: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    return F.batch_norm(x, None, None, norm.weight, norm.bias, training=True, eps=norm.eps)


class TestVirtualBatchNormLayer:
    @pytest.mark.parametrize("shape", [(3,), (3, 2, 2)])
    def test_each_example_with_the_reference(self, shape: tuple[int, ...]) -> None:
        """The reference rows are batch-normalized on their own; every other row x as the last
        row of batch norm on [reference, x] (weights n/(n+1) and 1/(n+1))."""
        torch.manual_seed(0)
        norm = nn.BatchNorm1d(3) if len(shape) == 1 else nn.BatchNorm2d(3)
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-1, 1)
        layer = VirtualBatchNorm(norm, reference_size=4)
        x = torch.randn(4 + 2, *shape) * 2 + 1
        out = layer(x)
        torch.testing.assert_close(out[:4], batch_norm(x[:4], norm))
        for i in (4, 5):
            alone = batch_norm(torch.cat([x[:4], x[i : i + 1]]), norm)[-1]
            torch.testing.assert_close(out[i], alone, rtol=1e-5, atol=1e-5)

    def test_shares_the_affine_parameters(self) -> None:
        """weight and bias are the replaced layer's own parameters."""
        norm = nn.BatchNorm1d(2)
        layer = VirtualBatchNorm(norm, 2)
        assert layer.weight is norm.weight
        assert layer.bias is norm.bias


class TestVirtualBatchNormGenerator:
    def test_conforms(self) -> None:
        """It passes the generator check with the dcgan generator inside."""
        generator = gt.check_generator(
            "virtual-batchnorm", {"inner": DCGAN, "reference_size": 4}, data_shape=(1, 16, 16)
        )
        assert generator.latent_dim == 8
        kinds = {type(m) for m in generator.modules()}
        assert VirtualBatchNorm in kinds
        assert nn.BatchNorm2d not in kinds

    def test_samples_do_not_depend_on_the_batch(self) -> None:
        """A sample is the same alone or in a batch, in training mode too: only the reference
        batch and the sample itself set its statistics."""
        generator = gt.check_generator(
            "virtual-batchnorm", {"inner": DCGAN, "reference_size": 4}, data_shape=(1, 16, 16)
        )
        z = torch.randn(5, 8)
        with torch.no_grad():
            torch.testing.assert_close(generator(z)[2:3], generator(z[2:3]), rtol=1e-4, atol=1e-5)

    def test_reference_is_a_buffer_drawn_from_the_seed(self) -> None:
        """The reference latents are in the state dict and the same for the same seed."""
        options = {"inner": DCGAN, "reference_size": 3}
        a = gt.check_generator("virtual-batchnorm", options, data_shape=(1, 16, 16), seed=1)
        b = gt.check_generator("virtual-batchnorm", options, data_shape=(1, 16, 16), seed=1)
        assert a.state_dict()["reference"].shape == (3, 8)
        assert torch.equal(a.state_dict()["reference"], b.state_dict()["reference"])

    def test_refuses_a_generator_without_batch_norm(self) -> None:
        """The mlp generator has no batch norm: a one-line error says so."""
        with pytest.raises(AssertionError, match="has no BatchNorm1d/2d layer to replace"):
            gt.check_generator("virtual-batchnorm", {"inner": {"name": "mlp"}}, data_shape=(2,))

    def test_refuses_a_generator_without_latents(self) -> None:
        """The inner generator must take latents."""
        with pytest.raises(ValueError, match="no integer latent_dim"):
            VirtualBatchNormGenerator(nn.Sequential(nn.BatchNorm1d(2)), 2)

    @pytest.mark.slow
    def test_trains_on_digits(self, tmp_path: Path) -> None:
        """A short dcgan run on 16x16 digits with virtual batch norm trains and checkpoints."""
        gt.check_training(
            gt.tiny_run(
                2,
                data={"name": "digits", "resolution": 16},
                generator={"name": "virtual-batchnorm", "reference_size": 4, "inner": DCGAN},
                critic={"name": "dcgan", "channels": 8},
            ),
            tmp_path / "run",
        )
