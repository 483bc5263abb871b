"""The style-based generators and the critic: shapes, the mapping network's running mean,
truncation, style mixing, noise, and their errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from gan_stylegan.critics import StyleGAN2CriticOptions, build_stylegan2_critic
from gan_stylegan.generators import (
    StyleGAN2GeneratorOptions,
    StyleGANGeneratorOptions,
    StyleGenerator,
    build_stylegan2_generator,
    build_stylegan_generator,
)
from gan_stylegan.layers import EqualizedLinear
from torch import nn

import gancore

# 512 and 1024 px take seconds even with 2-4 feature maps: marked slow.
RESOLUTIONS = [
    8,
    16,
    32,
    64,
    128,
    256,
    pytest.param(512, marks=pytest.mark.slow),
    pytest.param(1024, marks=pytest.mark.slow),
]
KINDS = ["stylegan", "stylegan2"]


def tiny(kind: str, resolution: int = 16, channels: int = 3, **overrides: Any) -> StyleGenerator:
    """A generator with a handful of feature maps, for fast exact tests."""
    options: dict[str, Any] = {
        "latent_dim": 6,
        "style_dim": 5,
        "mapping_depth": 2,
        "channel_base": 2 * resolution,
        "channel_max": 4,
    }
    options |= overrides
    context = gancore.BuildContext(data_shape=(channels, resolution, resolution))
    if kind == "stylegan":
        return build_stylegan_generator(StyleGANGeneratorOptions(**options), context)
    return build_stylegan2_generator(StyleGAN2GeneratorOptions(**options), context)


def style_layers(generator: nn.Module) -> list[tuple[int, EqualizedLinear]]:
    """Every layer's affine map A with the index of the w it takes (in StyleGAN2 a block's toRGB
    shares its w with the next block's first layer)."""
    layers = []
    for module in generator.modules():
        index = getattr(module, "w_index", None)
        if index is not None:
            affine = next(m for n, m in module.named_modules() if n.endswith("affine"))
            assert isinstance(affine, EqualizedLinear)
            layers.append((index, affine))
    return layers


@contextmanager
def captured_styles(generator: nn.Module) -> Iterator[list[tuple[int, torch.Tensor]]]:
    """(index, w) for every style input each forward inside the block."""
    seen: list[tuple[int, torch.Tensor]] = []
    handles = []
    for index, affine in style_layers(generator):

        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], i: int = index) -> None:
            seen.append((i, args[0].detach().clone()))

        handles.append(affine.register_forward_pre_hook(hook))
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _with_noise(generator: StyleGenerator) -> StyleGenerator:
    """Give every noise input a non-zero strength (they start at zero)."""
    with torch.no_grad():
        for name, param in generator.named_parameters():
            if name.endswith("noise.strength"):
                param.fill_(0.5)
    return generator


class TestShapes:
    @pytest.mark.parametrize("resolution", RESOLUTIONS)
    @pytest.mark.parametrize("channels", [1, 3])
    def test_every_resolution_and_channel_count(self, resolution: int, channels: int) -> None:
        """Both generators make [N, C, R, R] images and the critic scores them [N]."""
        torch.manual_seed(0)
        z = torch.randn(2, 6)
        for kind in KINDS:
            generator = tiny(kind, resolution, channels)
            assert generator.num_ws == 2 * (resolution.bit_length() - 1) - 2
            indices = sorted({i for i, _ in style_layers(generator)})
            assert indices == list(range(generator.num_ws))
            with torch.no_grad():
                images = generator(z)
            assert images.shape == (2, channels, resolution, resolution), kind
            assert torch.isfinite(images).all()
        critic = build_stylegan2_critic(
            StyleGAN2CriticOptions(channel_base=2 * resolution, channel_max=4),
            gancore.BuildContext(data_shape=(channels, resolution, resolution)),
        )
        with torch.no_grad():
            scores = critic(images)
        assert scores.shape == (2,)

    def test_channel_widths_follow_base_and_cap(self) -> None:
        """Feature maps at resolution r are min(channel_base // r, channel_max)."""
        generator = tiny("stylegan2", 32, channel_base=256, channel_max=16)
        blocks = generator.synthesis_network.blocks  # type: ignore[union-attr]
        widths = [block.to_rgb.conv.in_channels for block in blocks]  # type: ignore[union-attr]
        assert widths == [16, 16, 16, 8]  # 4, 8, 16, 32 px: 64, 32, 16, 8 capped at 16

    @pytest.mark.parametrize(
        ("shape", "message"),
        [
            ((3, 20, 20), "image size must be a square power of two from 8 to 1024 (got 3x20x20)"),
            ((3, 4, 4), "image size must be a square power of two from 8 to 1024 (got 3x4x4)"),
            ((3, 16, 8), "image size must be a square power of two from 8 to 1024 (got 3x16x8)"),
            ((2, 16, 16), "images must have 1 or 3 channels (got 2x16x16)"),
            ((16,), "expected image data of shape (C, H, W) (got 16)"),
        ],
    )
    def test_unsupported_shapes_are_one_line_errors(
        self, shape: tuple[int, ...], message: str
    ) -> None:
        """Every network refuses unsupported data with a message naming itself and the shape."""
        context = gancore.BuildContext(data_shape=shape)
        builders: list[tuple[str, Callable[[], object]]] = [
            (
                "generator 'stylegan'",
                lambda: build_stylegan_generator(StyleGANGeneratorOptions(), context),
            ),
            (
                "generator 'stylegan2'",
                lambda: build_stylegan2_generator(StyleGAN2GeneratorOptions(), context),
            ),
            (
                "critic 'stylegan2'",
                lambda: build_stylegan2_critic(StyleGAN2CriticOptions(), context),
            ),
        ]
        for name, build in builders:
            with pytest.raises(ValueError, match=re.escape(message)) as exc:
                build()
            assert str(exc.value) == f"{name}: {message}"

    def test_too_few_channels_for_the_resolution(self) -> None:
        """channel_base below the resolution leaves no feature maps: an error naming the key."""
        with pytest.raises(ValueError, match=r"channel_base // resolution must be >= 1"):
            tiny("stylegan2", 64, channel_base=32)

    def test_refuses_image_inputs(self) -> None:
        """Style generators take latents; an image-to-image task gets a clear error."""
        context = gancore.BuildContext(data_shape=(3, 8, 8), input_shape=(3, 8, 8))
        with pytest.raises(ValueError, match="takes latents, not inputs"):
            build_stylegan2_generator(StyleGAN2GeneratorOptions(), context)

    def test_wrong_latents_and_critic_inputs(self) -> None:
        """Inputs are checked where they enter, with got/expected shapes."""
        generator = tiny("stylegan2", 8)
        with pytest.raises(ValueError, match=r"expected latents \[N, 6\] \(got \[2, 5\]\)"):
            generator(torch.randn(2, 5))
        with pytest.raises(ValueError, match=r"expected ws \[N, 4, 5\] \(got \[2, 3, 5\]\)"):
            generator.synthesis(torch.randn(2, 3, 5))
        critic = build_stylegan2_critic(
            StyleGAN2CriticOptions(channel_base=64, channel_max=4),
            gancore.BuildContext(data_shape=(1, 8, 8)),
        )
        with pytest.raises(
            ValueError, match=r"expected images \[N, 1, 8, 8\] \(got \[2, 3, 8, 8\]\)"
        ):
            critic(torch.randn(2, 3, 8, 8))
        with pytest.raises(ValueError, match="takes no conditioning inputs"):
            critic(torch.randn(2, 1, 8, 8), torch.zeros(2))


class TestMappingNetwork:
    @pytest.mark.parametrize("kind", KINDS)
    def test_running_mean_of_w(self, kind: str) -> None:
        """In training, w_avg <- beta * w_avg + (1 - beta) * mean(w) per forward; not in eval."""
        torch.manual_seed(0)
        generator = tiny(kind, 8, style_mixing_prob=0.0)
        beta = 0.995
        z1, z2 = torch.randn(4, 6), torch.randn(3, 6)
        with torch.no_grad():
            w1, w2 = generator.mapping_network(z1), generator.mapping_network(z2)
            generator.train()
            generator(z1)
            expected = (1 - beta) * w1.mean(dim=0)
            torch.testing.assert_close(generator.mapping_network.w_avg, expected)
            generator(z2)
            expected = beta * expected + (1 - beta) * w2.mean(dim=0)
            torch.testing.assert_close(generator.mapping_network.w_avg, expected)
            generator.eval()
            generator(z1)
            torch.testing.assert_close(generator.mapping_network.w_avg, expected)
        assert "mapping_network.w_avg" in generator.state_dict()

    def test_depth_width_and_lr_multiplier(self) -> None:
        """The mapping network has mapping_depth layers of mapping_width, at the lr multiplier."""
        generator = tiny(
            "stylegan2", 8, mapping_depth=3, mapping_width=7, mapping_lr_multiplier=0.1
        )
        layers = list(generator.mapping_network.layers)
        assert [(m.in_features, m.out_features) for m in layers] == [(6, 7), (7, 7), (7, 5)]  # type: ignore[union-attr]
        assert all(m.lr_multiplier == 0.1 for m in layers)

    def test_latents_are_pixel_normalized(self) -> None:
        """Scaling z does not change w: z is normalised to unit mean square first."""
        generator = tiny("stylegan", 8)
        z = torch.randn(3, 6)
        torch.testing.assert_close(generator.mapping_network(z * 5), generator.mapping_network(z))


class TestTruncation:
    @pytest.mark.parametrize("kind", KINDS)
    def test_psi_zero_gives_the_mean_ws_image_for_every_latent(self, kind: str) -> None:
        """With psi = 0 every latent gives the image of w_avg."""
        torch.manual_seed(0)
        generator = _with_noise(tiny(kind, 16)).eval()
        w_avg = torch.randn(5)
        generator.mapping_network.w_avg.copy_(w_avg)
        generator.truncation_psi = 0.0
        with torch.no_grad():
            images = generator(torch.randn(4, 6))
            mean_image = generator.synthesis(w_avg.expand(1, generator.num_ws, 5))
        for image in images:
            torch.testing.assert_close(image, mean_image[0], atol=1e-5, rtol=1e-5)
        assert images.std(dim=0).max() < 1e-5
        generator.truncation_psi = 1.0
        with torch.no_grad():
            assert generator(torch.randn(4, 6)).std(dim=0).mean() > 1e-3  # varies without

    @pytest.mark.parametrize("kind", KINDS)
    def test_psi_one_changes_nothing(self, kind: str) -> None:
        """psi = 1 gives the untruncated image, whatever w_avg and the cutoff."""
        torch.manual_seed(0)
        generator = _with_noise(tiny(kind, 16)).eval()
        generator.mapping_network.w_avg.copy_(torch.randn(5))
        z = torch.randn(3, 6)
        with torch.no_grad():
            w = generator.mapping_network(z)
            plain = generator.synthesis(w[:, None].expand(3, generator.num_ws, 5))
            generator.truncation_psi, generator.truncation_cutoff = 1.0, 2
            torch.testing.assert_close(generator(z), plain)

    def test_psi_and_cutoff_follow_the_formula(self) -> None:
        """w' = w_avg + psi (w - w_avg) for style inputs < cutoff; the others untouched."""
        torch.manual_seed(0)
        generator = tiny("stylegan2", 16)
        w_avg = torch.randn(5)
        generator.mapping_network.w_avg.copy_(w_avg)
        generator.truncation_psi, generator.truncation_cutoff = 0.7, 2
        z = torch.randn(3, 6)
        with torch.no_grad():
            w = generator.mapping_network(z)
            ws = generator.mapping(z, update_w_avg=False)
        assert ws.shape == (3, generator.num_ws, 5)
        for layer in range(generator.num_ws):
            expected = w_avg + 0.7 * (w - w_avg) if layer < 2 else w
            torch.testing.assert_close(ws[:, layer], expected)

    @pytest.mark.parametrize("kind", KINDS)
    def test_truncation_reaches_every_style_input(self, kind: str) -> None:
        """Each layer's affine map receives the truncated w when sampling through forward."""
        torch.manual_seed(0)
        generator = tiny(kind, 16).eval()
        generator.mapping_network.w_avg.copy_(torch.randn(5))
        generator.truncation_psi = 0.5
        z = torch.randn(2, 6)
        with torch.no_grad(), captured_styles(generator) as seen:
            generator(z)
            w = generator.mapping_network(z)
        expected = generator.mapping_network.w_avg.lerp(w, 0.5)
        assert sorted({i for i, _ in seen}) == list(range(generator.num_ws))
        for _, styles in seen:
            torch.testing.assert_close(styles, expected)


class TestStyleMixing:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("crossover", [0, 1, 3, 6])
    def test_grid_uses_rows_before_and_columns_after_the_crossover(
        self, kind: str, crossover: int
    ) -> None:
        """mix_styles: image [i, j] takes w of rows[i] for style inputs < k, columns[j] after."""
        torch.manual_seed(0)
        generator = _with_noise(tiny(kind, 16)).eval()
        rows, columns = torch.randn(2, 6), torch.randn(3, 6)
        with torch.no_grad(), captured_styles(generator) as seen:
            grid = generator.mix_styles(rows, columns, crossover)
            w_rows, w_cols = generator.mapping_network(rows), generator.mapping_network(columns)
        assert grid.shape == (2, 3, 3, 16, 16)
        assert sorted({i for i, _ in seen}) == list(range(generator.num_ws))
        for layer, styles in seen:
            styles = styles.view(2, 3, 5)
            for i in range(2):
                for j in range(3):
                    expected = w_rows[i] if layer < crossover else w_cols[j]
                    torch.testing.assert_close(styles[i, j], expected)

    @pytest.mark.parametrize("kind", KINDS)
    def test_grid_images_are_reproducible_and_match_single_latents(self, kind: str) -> None:
        """The grid's corner cases are the plain images: crossover num_ws = rows, 0 = columns."""
        torch.manual_seed(0)
        generator = _with_noise(tiny(kind, 16)).eval()
        rows, columns = torch.randn(2, 6), torch.randn(3, 6)
        with torch.no_grad():
            all_rows = generator.mix_styles(rows, columns, generator.num_ws)
            all_cols = generator.mix_styles(rows, columns, 0)
            torch.testing.assert_close(
                all_rows, generator.mix_styles(rows, columns, generator.num_ws)
            )
            for j in range(3):
                torch.testing.assert_close(all_rows[:, j], generator(rows), atol=1e-5, rtol=1e-5)
            for i in range(2):
                torch.testing.assert_close(all_cols[i], generator(columns), atol=1e-5, rtol=1e-5)

    def test_crossover_out_of_range(self) -> None:
        """A crossover outside [0, num_ws] is an error that gives the range."""
        generator = tiny("stylegan2", 8)
        with pytest.raises(ValueError, match=r"crossover must be in \[0, 4\] \(got 5\)"):
            generator.mix_styles(torch.randn(1, 6), torch.randn(1, 6), 5)

    @pytest.mark.parametrize("kind", KINDS)
    def test_training_mixes_at_a_random_crossover(self, kind: str) -> None:
        """With probability 1, inputs < k take w(z) and inputs >= k one other w, k in 1..num_ws-1."""
        generator = tiny(kind, 32, style_mixing_prob=1.0).train()
        crossovers = set()
        for seed in range(12):
            torch.manual_seed(seed)
            z = torch.randn(3, 6)
            with torch.no_grad(), captured_styles(generator) as seen:
                generator(z)
                w = generator.mapping_network(z)
            assert len(seen) == len(style_layers(generator))
            mixed = sorted({i for i, styles in seen if not torch.equal(styles, w)})
            assert mixed, "no layer took a second latent's w"
            k = mixed[0]
            assert mixed == list(range(k, generator.num_ws))
            assert 1 <= k <= generator.num_ws - 1
            second = next(styles for i, styles in seen if i == k)
            for i, styles in seen:
                torch.testing.assert_close(styles, second if i >= k else w)
            assert not torch.allclose(second, w)
            crossovers.add(k)
        assert len(crossovers) > 2  # the crossover is random

    @pytest.mark.parametrize("kind", KINDS)
    def test_no_mixing_in_eval_or_with_probability_zero(self, kind: str) -> None:
        """Eval mode and style_mixing_prob = 0 give every style input w(z)."""
        for generator in (
            tiny(kind, 16, style_mixing_prob=1.0).eval(),
            tiny(kind, 16, style_mixing_prob=0.0).train(),
        ):
            z = torch.randn(3, 6)
            with torch.no_grad(), captured_styles(generator) as seen:
                generator(z)
                w = generator.mapping_network(z)
            for _, styles in seen:
                torch.testing.assert_close(styles, w)


class TestNoise:
    @pytest.mark.parametrize("kind", KINDS)
    def test_fixed_in_eval_random_in_training(self, kind: str) -> None:
        """Eval mode repeats its images exactly (fixed noise); training draws new noise."""
        torch.manual_seed(0)
        generator = _with_noise(tiny(kind, 16, style_mixing_prob=0.0))
        z = torch.randn(2, 6)
        with torch.no_grad():
            generator.eval()
            first = generator(z)
            torch.testing.assert_close(generator(z), first, atol=0, rtol=0)
            copy = _with_noise(tiny(kind, 16, style_mixing_prob=0.0))
            copy.load_state_dict(generator.state_dict())
            torch.testing.assert_close(copy.eval()(z), first, atol=0, rtol=0)
            generator.train()
            assert not torch.allclose(generator(z), generator(z))
            generator.noise_mode = "none"
            torch.testing.assert_close(generator(z), generator(z))

    def test_adain_layers_give_their_styles_statistics(self) -> None:
        """In StyleGAN, each layer's output has per-channel mean y_b and std |y_s| from A(w)."""
        torch.manual_seed(0)
        generator = _with_noise(tiny("stylegan", 16)).eval()
        layer = generator.synthesis_network.layers[2]  # type: ignore[index]
        outputs: list[torch.Tensor] = []
        handle = layer.register_forward_hook(lambda m, a, out: outputs.append(out))
        z = torch.randn(3, 6)
        with torch.no_grad():
            generator(z)
            scale, bias = layer.affine(generator.mapping_network(z)).chunk(2, dim=1)
        handle.remove()
        (out,) = outputs
        torch.testing.assert_close(out.mean(dim=(2, 3)), bias, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            out.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-4, rtol=1e-4
        )
