"""The ResNet and U-Net generators and the PatchGAN critic."""

from __future__ import annotations

import pytest
import torch
from gan_cyclegan.networks import (
    PatchGANCriticOptions,
    ResnetGeneratorOptions,
    UNetGeneratorOptions,
    build_patchgan_critic,
    build_resnet_generator,
    build_unet_generator,
    patchgan_receptive_field,
)
from torch import nn

import gancore


def _ctx(data: tuple[int, ...], inputs: tuple[int, ...] | None = None) -> gancore.BuildContext:
    return gancore.BuildContext(data_shape=data, input_shape=inputs)


def _conv_weights(module: nn.Module) -> torch.Tensor:
    return torch.cat(
        [
            m.weight.detach().flatten()
            for m in module.modules()
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
        ]
    )


class TestResnetGenerator:
    def test_shapes_and_range(self) -> None:
        """1-channel 16x16 inputs become 3-channel 16x16 outputs in [-1, 1]."""
        torch.manual_seed(0)
        g = build_resnet_generator(
            ResnetGeneratorOptions(blocks=2, channels=8), _ctx((3, 16, 16), (1, 16, 16))
        )
        out = g(torch.randn(2, 1, 16, 16) * 5)
        assert out.shape == (2, 3, 16, 16)
        assert out.abs().max() <= 1.0

    def test_paper_layout(self) -> None:
        """9 residual blocks, reflection padding, instance norm, 7x7 convolutions at both ends."""
        g = build_resnet_generator(ResnetGeneratorOptions(), _ctx((3, 64, 64), (3, 64, 64)))
        layers = list(g.modules())
        assert sum(type(m).__name__ == "ResidualBlock" for m in layers) == 9
        assert any(isinstance(m, nn.ReflectionPad2d) for m in layers)
        assert not any(isinstance(m, nn.ZeroPad2d) for m in layers)
        norms = [m for m in layers if isinstance(m, nn.InstanceNorm2d)]
        assert norms
        assert not any(isinstance(m, nn.BatchNorm2d) for m in layers)
        convs = [m for m in layers if isinstance(m, nn.Conv2d)]
        assert convs[0].kernel_size == (7, 7)
        assert convs[-1].kernel_size == (7, 7)
        assert convs[0].out_channels == 64

    def test_init_is_normal_002(self) -> None:
        """Convolution weights are drawn from N(0, 0.02)."""
        torch.manual_seed(0)
        g = build_resnet_generator(ResnetGeneratorOptions(blocks=6), _ctx((3, 32, 32), (3, 32, 32)))
        weights = _conv_weights(g)
        assert abs(float(weights.mean())) < 1e-3
        assert float(weights.std()) == pytest.approx(0.02, rel=0.02)

    def test_rejects_bad_sizes(self) -> None:
        """Sizes not divisible by 2 ** downsamplings and a missing input shape are errors."""
        with pytest.raises(ValueError, match="multiples of 2 \\*\\* downsamplings = 4"):
            build_resnet_generator(ResnetGeneratorOptions(), _ctx((3, 18, 18), (3, 18, 18)))
        with pytest.raises(ValueError, match="image-to-image generator"):
            build_resnet_generator(ResnetGeneratorOptions(), _ctx((3, 16, 16)))
        g = build_resnet_generator(
            ResnetGeneratorOptions(blocks=1, channels=4), _ctx((3, 16, 16), (1, 16, 16))
        )
        with pytest.raises(
            ValueError, match=r"expected images \[N, 1, H, W\] \(got \[2, 3, 16, 16\]\)"
        ):
            g(torch.zeros(2, 3, 16, 16))


class TestUNetGenerator:
    def test_depth_reaches_one_pixel(self) -> None:
        """Default depth is log2(size): a 16x16 input is encoded down to 1x1 (4 layers)."""
        g = build_unet_generator(UNetGeneratorOptions(channels=4), _ctx((3, 16, 16), (1, 16, 16)))
        assert g.depth == 4
        out = g.eval()(torch.randn(2, 1, 16, 16))
        assert out.shape == (2, 3, 16, 16)
        assert out.abs().max() <= 1.0

    def test_paper_widths_at_256(self) -> None:
        """At 256x256 the encoder is C64-C128-C256-C512-C512-C512-C512-C512."""
        g = build_unet_generator(UNetGeneratorOptions(), _ctx((3, 256, 256), (3, 256, 256)))
        widths = [
            layer[-1].out_channels if isinstance(layer[-1], nn.Conv2d) else layer[-2].out_channels
            for layer in g.encoder
        ]
        assert widths == [64, 128, 256, 512, 512, 512, 512, 512]
        dropouts = [any(isinstance(m, nn.Dropout) for m in layer) for layer in g.decoder]
        assert dropouts == [True, True, True, False, False, False, False, False]

    def test_skip_connections_carry_the_input(self) -> None:
        """Output pixels depend on the input pixel at the same place through the skips."""
        torch.manual_seed(0)
        g = build_unet_generator(
            UNetGeneratorOptions(channels=4, norm="none", dropout=0.0), _ctx((1, 8, 8), (1, 8, 8))
        )
        x = torch.randn(1, 1, 8, 8, requires_grad=True)
        g(x)[0, 0, 3, 5].backward()
        assert x.grad is not None
        assert x.grad[0, 0, 3, 5] != 0


class TestPatchGAN:
    @pytest.mark.parametrize(("layers", "field"), [(1, 16), (2, 34), (3, 70), (4, 142)])
    def test_receptive_field_formula(self, layers: int, field: int) -> None:
        """3 stride-2 layers see 70x70 patches (Isola et al. 2017); 1, 2, 4 see 16, 34, 142."""
        assert patchgan_receptive_field(layers) == field

    def test_receptive_field_measured(self) -> None:
        """The input pixels one score depends on span exactly 70x70 (gradient footprint)."""
        torch.manual_seed(0)
        d = build_patchgan_critic(
            PatchGANCriticOptions(channels=4, norm="none"), _ctx((1, 128, 128))
        )
        x = torch.randn(1, 1, 128, 128, requires_grad=True)
        scores = d(x)
        assert scores.shape == (1, 1, 14, 14)
        scores[0, 0, 7, 7].backward()
        assert x.grad is not None
        rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
        cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
        assert int(rows.max() - rows.min()) + 1 == 70
        assert int(cols.max() - cols.min()) + 1 == 70

    def test_norm_choice_and_too_small_images(self) -> None:
        """norm = 'batch' uses batch norm; images smaller than 3 * 2 ** layers are refused."""
        d = build_patchgan_critic(PatchGANCriticOptions(norm="batch"), _ctx((6, 32, 32)))
        assert any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
        assert d(torch.randn(2, 6, 32, 32)).shape == (2, 1, 2, 2)
        with pytest.raises(
            ValueError, match="16x16 are too small for layers = 3 \\(needs a side of at least 24"
        ):
            build_patchgan_critic(PatchGANCriticOptions(), _ctx((3, 16, 16)))
        with pytest.raises(ValueError, match="takes no conditioning inputs"):
            d(torch.randn(2, 6, 32, 32), torch.zeros(2))

    def test_bad_option_is_one_line_config_error(self) -> None:
        """A wrong option value names the key, what was expected and what was given."""
        registry, _ = gancore.load_registry()
        doc = {
            "data": {"name": "digits-translation"},
            "critic": {"name": "patchgan", "norm": "layer"},
        }
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.parse_config(doc, registry)
        (line,) = exc.value.problems
        assert line.startswith("critic.norm:")
        assert "'layer'" in line
