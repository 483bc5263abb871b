"""The pggan generator and critic: conformance, growth and the fade-in formula (Sec. 3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from gan_progressive.networks import (
    PGGANCritic,
    PGGANCriticOptions,
    PGGANGenerator,
    PGGANGeneratorOptions,
    build_pggan_critic,
    build_pggan_generator,
)

import gancore.testing as gt
from gancore import BuildContext

SMALL = {"latent_dim": 8, "channel_base": 64, "max_channels": 16}


def _generator(final: int = 16) -> PGGANGenerator:
    return build_pggan_generator(
        PGGANGeneratorOptions(**SMALL), BuildContext(data_shape=(3, final, final))
    )


def _critic(final: int = 16) -> PGGANCritic:
    options = PGGANCriticOptions(channel_base=64, max_channels=16)
    return build_pggan_critic(options, BuildContext(data_shape=(3, final, final)))


class TestConformance:
    def test_registered_networks_conform_at_4x4(self) -> None:
        """Built for 4x4 data, both pass the kit's generator and critic checks."""
        gt.check_generator("pggan", SMALL, data_shape=(3, 4, 4))
        gt.check_critic("pggan", {"channel_base": 64, "max_channels": 16}, data_shape=(3, 4, 4))

    @pytest.mark.parametrize("alpha", [0.5, 1.0])
    def test_grown_networks_conform(self, alpha: float) -> None:
        """Grown to 16x16 (mid fade-in or not), both pass the kit's checks."""
        generator, critic = _generator(), _critic()
        for network in (generator, critic):
            network.grow()
            network.grow()
            network.alpha.fill_(alpha)
        gt.check_generator(generator, data_shape=(3, 16, 16))
        gt.check_critic(critic, data_shape=(3, 16, 16))

    def test_bad_shapes_are_one_line_errors(self) -> None:
        """Non-square or non-power-of-two data, and a critic input at the wrong resolution."""
        with pytest.raises(ValueError, match="power of two"):
            _generator(final=12)
        with pytest.raises(ValueError, match=r"expected images \[N, 3, 4, 4\]"):
            _critic()(torch.zeros(2, 3, 8, 8))
        generator = _generator(final=8)
        generator.grow()
        with pytest.raises(ValueError, match="cannot grow past the data's 8x8"):
            generator.grow()


class TestFadeIn:
    @pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
    def test_generator_output_is_the_blend(self, alpha: float) -> None:
        """G(z) = (1 - alpha) * up(toRGB_old(h)) + alpha * toRGB_new(block(h))."""
        generator = _generator()
        generator.grow()
        z = torch.randn(4, 8)
        before = _generator()  # the same 4x4 network: its output is toRGB_old(h)
        before.load_state_dict(generator.state_dict(), strict=False)
        old = F.interpolate(before(z), scale_factor=2.0, mode="nearest")
        generator.alpha.fill_(1.0)
        new = generator(z)
        generator.alpha.fill_(alpha)
        expected = (1 - alpha) * old + alpha * new
        assert torch.allclose(generator(z), expected, atol=1e-6)

    @pytest.mark.parametrize("alpha", [0.0, 0.3])
    def test_critic_input_is_the_blend(self, alpha: float) -> None:
        """The critic's first 4x4 features blend fromRGB_old(avgpool(x)) with the new block's."""
        critic = _critic()
        critic.grow()
        x = torch.randn(4, 3, 8, 8)
        seen: list[torch.Tensor] = []
        hook = critic.head_conv.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
        critic.alpha.fill_(1.0)
        critic(x)
        old = F.leaky_relu(critic.from_rgb[0](F.avg_pool2d(x, 2)), 0.2)
        critic.alpha.fill_(alpha)
        critic(x)
        hook.remove()
        new, blended = seen[0][:, :-1], seen[1][:, :-1]  # without the stddev channel
        assert torch.allclose(blended, (1 - alpha) * old + alpha * new, atol=1e-6)

    def test_growth_keeps_old_layers_and_adds_new(self) -> None:
        """Growing appends a block and a toRGB/fromRGB layer; the old ones are unchanged."""
        generator, critic = _generator(), _critic()
        g0 = {k: v.clone() for k, v in generator.state_dict().items()}
        generator.grow()
        critic.grow()
        assert generator.resolution == critic.resolution == 8
        assert len(generator.to_rgb) == len(critic.from_rgb) == 2
        assert all(torch.equal(generator.state_dict()[k], v) for k, v in g0.items())
        assert critic(torch.randn(4, 3, 8, 8)).shape == (4,)
