"""Tests for the built-in MLP and DCGAN networks."""

from __future__ import annotations

import math
import re

import attrs
import pytest
import torch
from torch import nn

from gancore.builtin.networks import (
    DCGANCritic,
    DCGANCriticOptions,
    DCGANGenerator,
    DCGANGeneratorOptions,
    MLPCritic,
    MLPCriticOptions,
    MLPGenerator,
    MLPGeneratorOptions,
    build_dcgan_critic,
    build_dcgan_generator,
    build_mlp_critic,
    build_mlp_generator,
)


@attrs.frozen
class Context:
    data_shape: tuple[int, ...]
    input_shape: tuple[int, ...] | None = None


RESOLUTIONS = [8, 16, 32, 64, 128]


class TestMLPGenerator:
    def test_maps_latents_to_points(self) -> None:
        """Maps [N, latent_dim] latents to [N, D] points."""
        torch.manual_seed(0)
        generator = build_mlp_generator(
            MLPGeneratorOptions(latent_dim=8, hidden=16, depth=2), Context((2,))
        )
        assert isinstance(generator, MLPGenerator)
        assert generator.latent_dim == 8
        assert generator(torch.randn(5, 8)).shape == (5, 2)

    def test_defaults_follow_the_wgan_gp_toy_network(self) -> None:
        """Defaults give 2-D noise and three ReLU hidden layers of 512 units."""
        generator = build_mlp_generator(MLPGeneratorOptions(), Context((2,)))
        linears = [m for m in generator.modules() if isinstance(m, nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [
            (2, 512),
            (512, 512),
            (512, 512),
            (512, 2),
        ]
        assert sum(isinstance(m, nn.ReLU) for m in generator.modules()) == 3

    def test_output_is_unbounded(self) -> None:
        """Ends in a linear layer, so outputs are not squashed into [-1, 1]."""
        generator = build_mlp_generator(MLPGeneratorOptions(hidden=8, depth=1), Context((2,)))
        last = generator.net[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.bias.fill_(5.0)
        assert generator(torch.zeros(3, 2)).min() > 1.0

    def test_leaky_relu(self) -> None:
        """Uses LeakyReLU(0.2) when asked."""
        generator = build_mlp_generator(
            MLPGeneratorOptions(activation="leaky-relu", depth=2, hidden=4), Context((2,))
        )
        leaky = [m for m in generator.modules() if isinstance(m, nn.LeakyReLU)]
        assert len(leaky) == 2
        assert all(m.negative_slope == 0.2 for m in leaky)

    def test_batch_norm(self) -> None:
        """norm = 'batch' puts a BatchNorm1d between each hidden Linear and its nonlinearity (the
        VEEGAN/PacGAN toy generator); in training mode each hidden unit is then standardized over
        the batch before the ReLU."""
        generator = build_mlp_generator(
            MLPGeneratorOptions(latent_dim=3, hidden=5, depth=2, norm="batch"), Context((2,))
        )
        kinds = [type(m) for m in generator.net]
        assert kinds == [
            nn.Linear,
            nn.BatchNorm1d,
            nn.ReLU,
            nn.Linear,
            nn.BatchNorm1d,
            nn.ReLU,
            nn.Linear,
        ]
        generator.train()
        z = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
        linear = generator.net[0](z)
        pre = generator.net[:2](z)  # the first Linear and its batch norm (gain 1, bias 0)
        var = linear.var(0, unbiased=False)
        torch.testing.assert_close(pre.mean(0), torch.zeros(5), atol=1e-6, rtol=0)
        torch.testing.assert_close(pre.var(0, unbiased=False), var / (var + 1e-5))
        # the default keeps the module layout of earlier versions (checkpoints load)
        plain = build_mlp_generator(MLPGeneratorOptions(hidden=5, depth=2), Context((2,)))
        assert [type(m) for m in plain.net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]

    def test_layer_norm(self) -> None:
        """norm = 'layer' puts a LayerNorm between each hidden Linear and its nonlinearity: each
        sample's units are standardized over the units, so a sample's output does not depend on
        the rest of its batch (unlike batch norm in training mode)."""
        generator = build_mlp_generator(
            MLPGeneratorOptions(latent_dim=3, hidden=5, depth=2, norm="layer"), Context((2,))
        )
        kinds = [type(m) for m in generator.net]
        assert kinds == [
            nn.Linear,
            nn.LayerNorm,
            nn.ReLU,
            nn.Linear,
            nn.LayerNorm,
            nn.ReLU,
            nn.Linear,
        ]
        generator.train()
        z = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
        linear = generator.net[0](z)
        pre = generator.net[:2](z)
        var = linear.var(1, unbiased=False, keepdim=True)
        expected = (linear - linear.mean(1, keepdim=True)) / torch.sqrt(var + 1e-5)
        torch.testing.assert_close(pre, expected)
        torch.testing.assert_close(generator(z[:1]), generator(z)[:1])

    def test_rejects_unknown_norm(self) -> None:
        """Accepts only 'none', 'batch' and 'layer'."""
        with pytest.raises(ValueError, match="'norm' must be in"):
            MLPGeneratorOptions(norm="group")

    def test_rejects_image_data(self) -> None:
        """Names the component and the shape when the data are images."""
        with pytest.raises(ValueError, match=r"^mlp generator: expected vector data of shape "):
            build_mlp_generator(MLPGeneratorOptions(), Context((1, 16, 16)))
        with pytest.raises(ValueError, match=r"\(got 1x16x16\)$"):
            build_mlp_generator(MLPGeneratorOptions(), Context((1, 16, 16)))

    def test_rejects_image_inputs(self) -> None:
        """Refuses to be built as an image-to-image generator."""
        message = "mlp generator: takes latents, not inputs (got input shape 2)"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build_mlp_generator(MLPGeneratorOptions(), Context((2,), input_shape=(2,)))

    def test_rejects_wrong_latents(self) -> None:
        """Says which latent shape it expected."""
        generator = build_mlp_generator(MLPGeneratorOptions(hidden=4), Context((2,)))
        with pytest.raises(ValueError, match=r"expected latents \[N, 2\] \(got \[3, 5\]\)"):
            generator(torch.zeros(3, 5))

    def test_rejects_unknown_activation(self) -> None:
        """Accepts only 'relu' and 'leaky-relu'."""
        with pytest.raises(ValueError, match="'activation' must be in"):
            MLPGeneratorOptions(activation="tanh")


class TestMLPCritic:
    def test_returns_one_score_per_point(self) -> None:
        """Scores [N, D] points as [N]."""
        torch.manual_seed(0)
        critic = build_mlp_critic(MLPCriticOptions(hidden=16, depth=2), Context((3,)))
        assert isinstance(critic, MLPCritic)
        assert critic(torch.randn(7, 3)).shape == (7,)

    def test_rejects_image_data(self) -> None:
        """Names the component and the shape when the data are images."""
        with pytest.raises(
            ValueError, match=r"^mlp critic: expected vector data of shape \(D,\) \(got 3x8x8\)$"
        ):
            build_mlp_critic(MLPCriticOptions(), Context((3, 8, 8)))

    def test_rejects_conditioning_inputs(self) -> None:
        """Refuses extra inputs, being unconditional."""
        critic = build_mlp_critic(MLPCriticOptions(hidden=4), Context((2,)))
        with pytest.raises(ValueError, match="takes no conditioning inputs"):
            critic(torch.zeros(2, 2), torch.zeros(2, 1))


class TestDCGANGenerator:
    @pytest.mark.parametrize("size", RESOLUTIONS)
    @pytest.mark.parametrize("channels", [1, 3])
    def test_output_shape(self, size: int, channels: int) -> None:
        """Produces [N, C, S, S] images for every supported size and channel count."""
        torch.manual_seed(0)
        options = DCGANGeneratorOptions(latent_dim=16, channels=4, max_channels=32)
        generator = build_dcgan_generator(options, Context((channels, size, size)))
        assert isinstance(generator, DCGANGenerator)
        assert generator.latent_dim == 16
        assert generator(torch.randn(2, 16)).shape == (2, channels, size, size)

    def test_layer_widths_follow_dcgan(self) -> None:
        """At 64x64 and default widths, the feature maps are 512, 256, 128, 64 (then C)."""
        generator = build_dcgan_generator(DCGANGeneratorOptions(), Context((3, 64, 64)))
        convs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
        assert [(m.in_channels, m.out_channels) for m in convs] == [
            (100, 512),
            (512, 256),
            (256, 128),
            (128, 64),
            (64, 3),
        ]
        assert convs[0].stride == (1, 1)
        assert all(m.stride == (2, 2) and m.padding == (1, 1) for m in convs[1:])

    def test_widths_are_capped(self) -> None:
        """No layer has more than max_channels feature maps."""
        generator = build_dcgan_generator(
            DCGANGeneratorOptions(channels=8, max_channels=16), Context((1, 128, 128))
        )
        convs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
        assert [m.out_channels for m in convs] == [16, 16, 16, 16, 8, 1]

    def test_outputs_lie_in_unit_interval(self) -> None:
        """Outputs lie in [-1, 1], even for large latents."""
        torch.manual_seed(0)
        generator = build_dcgan_generator(
            DCGANGeneratorOptions(latent_dim=8, channels=8), Context((3, 16, 16))
        )
        images = generator(100.0 * torch.randn(4, 8))
        assert images.min() >= -1.0
        assert images.max() <= 1.0

    def test_init_statistics(self) -> None:
        """Initialises conv weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), biases to 0."""
        torch.manual_seed(0)
        generator = build_dcgan_generator(DCGANGeneratorOptions(), Context((3, 32, 32)))
        weights = torch.cat(
            [m.weight.flatten() for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
        )
        assert abs(weights.mean().item()) < 1e-3
        assert weights.std().item() == pytest.approx(0.02, rel=0.02)
        scales = torch.cat(
            [m.weight.flatten() for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
        )
        assert scales.mean().item() == pytest.approx(1.0, abs=0.005)
        assert scales.std().item() == pytest.approx(0.02, rel=0.2)
        for module in generator.modules():
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.Tensor):
                assert torch.count_nonzero(bias) == 0

    def test_rejects_non_power_of_two(self) -> None:
        """Names the component, the accepted sizes and the shape it got."""
        message = (
            "dcgan generator: image height and width must each be a power of two from 8 to 128 "
            "(got 3x20x20)"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build_dcgan_generator(DCGANGeneratorOptions(), Context((3, 20, 20)))

    @pytest.mark.parametrize("shape", [(3, 4, 4), (3, 256, 256), (3, 16, 256)])
    def test_rejects_unsupported_sizes(self, shape: tuple[int, ...]) -> None:
        """Refuses sides below 8 or above 128 (rectangular images are accepted:
        tests/test_image_loading.py)."""
        with pytest.raises(ValueError, match="power of two from 8 to 128"):
            build_dcgan_generator(DCGANGeneratorOptions(), Context(shape))

    def test_rejects_vector_data(self) -> None:
        """Refuses 2-D points with a one-line message."""
        message = "dcgan generator: expected image data of shape (C, H, W) (got 2)"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build_dcgan_generator(DCGANGeneratorOptions(), Context((2,)))

    def test_rejects_image_inputs(self) -> None:
        """Refuses to be built as an image-to-image generator."""
        message = "dcgan generator: takes latents, not inputs (got input shape 3x16x16)"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build_dcgan_generator(
                DCGANGeneratorOptions(), Context((3, 16, 16), input_shape=(3, 16, 16))
            )


class TestDCGANCritic:
    @pytest.mark.parametrize("size", RESOLUTIONS)
    @pytest.mark.parametrize("channels", [1, 3])
    def test_output_shape(self, size: int, channels: int) -> None:
        """Scores [N, C, S, S] images as [N] for every supported size and channel count."""
        torch.manual_seed(0)
        options = DCGANCriticOptions(channels=4, max_channels=32)
        critic = build_dcgan_critic(options, Context((channels, size, size)))
        assert isinstance(critic, DCGANCritic)
        assert critic(torch.randn(2, channels, size, size)).shape == (2,)

    def test_layer_widths_follow_dcgan(self) -> None:
        """At 64x64 and default widths, the feature maps are 64, 128, 256, 512 (then 1)."""
        critic = build_dcgan_critic(DCGANCriticOptions(), Context((3, 64, 64)))
        convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
        assert [(m.in_channels, m.out_channels) for m in convs] == [
            (3, 64),
            (64, 128),
            (128, 256),
            (256, 512),
            (512, 1),
        ]

    def test_blocks_compose_to_the_critic(self) -> None:
        """``blocks`` (for Freeze-D) are the conv groups in order; chained, they are the critic,
        and they share its parameters."""
        torch.manual_seed(0)
        critic = build_dcgan_critic(DCGANCriticOptions(channels=4), Context((1, 32, 32)))
        blocks = critic.blocks
        assert len(blocks) == 4  # 32 -> 16, 16 -> 8, 8 -> 4, then the 4x4 scoring conv
        assert all(isinstance(b[0], nn.Conv2d) for b in blocks)  # type: ignore[index]
        x = torch.randn(3, 1, 32, 32)
        critic.eval()
        y = x
        for block in blocks:
            y = block(y)
        assert torch.equal(y.flatten(), critic(x))
        owned = {id(p) for p in critic.parameters()}
        assert {id(p) for b in blocks for p in b.parameters()} == owned

    def test_first_layer_is_not_normalised(self) -> None:
        """Puts LeakyReLU(0.2) straight after the first conv and a norm after the others."""
        critic = build_dcgan_critic(DCGANCriticOptions(channels=4), Context((3, 32, 32)))
        layers = list(critic.net)
        assert isinstance(layers[0], nn.Conv2d)
        assert isinstance(layers[1], nn.LeakyReLU)
        assert layers[1].negative_slope == 0.2
        assert sum(isinstance(m, nn.BatchNorm2d) for m in layers) == 2

    @pytest.mark.parametrize(
        ("norm", "kind"),
        [
            ("batch", nn.BatchNorm2d),
            ("layer", nn.GroupNorm),
            ("instance", nn.InstanceNorm2d),
        ],
    )
    def test_norm(self, norm: str, kind: type[nn.Module]) -> None:
        """Uses the requested normalization on every hidden layer but the first."""
        critic = build_dcgan_critic(DCGANCriticOptions(channels=4, norm=norm), Context((1, 32, 32)))
        norms = [m for m in critic.modules() if isinstance(m, kind)]
        assert len(norms) == 2
        if norm == "layer":
            assert all(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in norms)

    def test_layer_norm_scores_are_per_sample(self) -> None:
        """Scores each image independently with layer norm, so gradient penalties are valid."""
        torch.manual_seed(0)
        critic = build_dcgan_critic(
            DCGANCriticOptions(channels=4, norm="layer"), Context((1, 8, 8))
        )
        x = torch.randn(4, 1, 8, 8)
        torch.testing.assert_close(critic(x)[1:], critic(x[1:]))

    def test_no_norm(self) -> None:
        """Has no normalization layers, and biases on every conv, with norm 'none'."""
        critic = build_dcgan_critic(
            DCGANCriticOptions(channels=4, norm="none"), Context((1, 32, 32))
        )
        assert not any(
            isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d)
            for m in critic.modules()
        )
        assert all(m.bias is not None for m in critic.modules() if isinstance(m, nn.Conv2d))

    def test_init_statistics(self) -> None:
        """Initialises conv weights ~ N(0, 0.02) and biases to 0."""
        torch.manual_seed(0)
        critic = build_dcgan_critic(DCGANCriticOptions(), Context((3, 32, 32)))
        weights = torch.cat(
            [m.weight.flatten() for m in critic.modules() if isinstance(m, nn.Conv2d)]
        )
        assert abs(weights.mean().item()) < 1e-3
        assert weights.std().item() == pytest.approx(0.02, rel=0.02)
        for module in critic.modules():
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.Tensor):
                assert torch.count_nonzero(bias) == 0

    def test_rejects_non_power_of_two(self) -> None:
        """Names the component, the accepted sizes and the shape it got."""
        message = (
            "dcgan critic: image height and width must each be a power of two from 8 to 128 "
            "(got 1x20x20)"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build_dcgan_critic(DCGANCriticOptions(), Context((1, 20, 20)))

    def test_rejects_vector_data(self) -> None:
        """Refuses 2-D points with a one-line message."""
        message = "dcgan critic: expected image data of shape (C, H, W) (got 2)"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build_dcgan_critic(DCGANCriticOptions(), Context((2,)))

    def test_rejects_wrong_image_shape(self) -> None:
        """Says which input shape it expected."""
        critic = build_dcgan_critic(DCGANCriticOptions(channels=4), Context((3, 16, 16)))
        with pytest.raises(
            ValueError, match=r"expected images \[N, 3, 16, 16\] \(got \[2, 3, 8, 8\]\)"
        ):
            critic(torch.zeros(2, 3, 8, 8))

    def test_rejects_unknown_norm(self) -> None:
        """Accepts only the four normalizations."""
        with pytest.raises(ValueError, match="'norm' must be in"):
            DCGANCriticOptions(norm="spectral")

    def test_gradients_reach_every_parameter(self) -> None:
        """Backpropagates to every parameter of generator and critic."""
        torch.manual_seed(0)
        context = Context((3, 16, 16))
        generator = build_dcgan_generator(DCGANGeneratorOptions(latent_dim=4, channels=4), context)
        critic = build_dcgan_critic(DCGANCriticOptions(channels=4), context)
        critic(generator(torch.randn(3, 4))).sum().backward()
        for module in (generator, critic):
            for name, parameter in module.named_parameters():
                assert parameter.grad is not None, name
                assert math.isfinite(parameter.grad.abs().sum().item()), name
