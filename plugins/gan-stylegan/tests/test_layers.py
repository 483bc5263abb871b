"""The building blocks against their formulas: equalized lr, modulation and demodulation, AdaIN,
minibatch standard deviation, resampling."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from gan_stylegan.generators import StyleGAN2GeneratorOptions
from gan_stylegan.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStddev,
    ModulatedConv2d,
    adain,
    downsample2d,
    modulated_conv2d,
    modulated_weights,
    pixel_norm,
    upsample2d,
    use_grouped_conv,
)


def _per_sample_reference(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool
) -> torch.Tensor:
    """Modulated convolution written as a loop of ordinary convolutions, one per sample."""
    outputs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].view(1, -1, 1, 1)  # w'_oik = s_i * w_oik
        if demodulate:
            w = w / torch.sqrt((w**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        outputs.append(F.conv2d(x[n : n + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(outputs)


class TestModulatedConvolution:
    def test_demodulated_weights_have_unit_norm_per_output_channel(self) -> None:
        """After demodulation, sum over inputs and taps of w''^2 is 1 for every sample and output."""
        torch.manual_seed(0)
        weight = torch.randn(7, 5, 3, 3)
        styles = torch.randn(4, 5) * 3
        weights = modulated_weights(weight, styles, demodulate=True)
        assert weights.shape == (4, 7, 5, 3, 3)
        norms = weights.square().sum(dim=(2, 3, 4))
        torch.testing.assert_close(norms, torch.ones(4, 7), atol=1e-5, rtol=0)

    def test_modulation_without_demodulation_scales_inputs(self) -> None:
        """Without demodulation, w' = s_i * w exactly."""
        torch.manual_seed(0)
        weight, styles = torch.randn(3, 2, 1, 1), torch.randn(5, 2)
        weights = modulated_weights(weight, styles, demodulate=False)
        for n in range(5):
            torch.testing.assert_close(weights[n], weight * styles[n].view(1, 2, 1, 1))

    @pytest.mark.parametrize("grouped", [True, False])
    @pytest.mark.parametrize("demodulate", [True, False])
    @pytest.mark.parametrize("kernel", [1, 3])
    def test_equals_a_per_sample_loop_of_convolutions(
        self, grouped: bool, demodulate: bool, kernel: int
    ) -> None:
        """The grouped (and the activation-scaling) form equals one ordinary conv per sample."""
        torch.manual_seed(1)
        x = torch.randn(4, 6, 9, 9)
        weight = torch.randn(5, 6, kernel, kernel)
        styles = torch.randn(4, 6)
        out = modulated_conv2d(x, weight, styles, demodulate=demodulate, grouped=grouped)
        expected = _per_sample_reference(x, weight, styles, demodulate)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)

    @pytest.mark.parametrize("grouped", [True, False, "auto"])
    def test_module_with_upsampling_equals_the_loop(self, grouped: bool | str) -> None:
        """The layer: styles = A(w), bilinear 2x up-sampling, then the per-sample convolutions."""
        torch.manual_seed(2)
        layer = ModulatedConv2d(4, 3, 3, style_dim=8, up=True, grouped=grouped)  # type: ignore[arg-type]
        x, w = torch.randn(3, 4, 5, 5), torch.randn(3, 8)
        styles = layer.affine(w)
        weight = layer.weight / math.sqrt(4 * 9)
        expected = _per_sample_reference(upsample2d(x), weight, styles, demodulate=True)
        torch.testing.assert_close(layer(x, w), expected, atol=1e-5, rtol=1e-5)

    @pytest.mark.parametrize(
        ("setting", "device", "training", "expected"),
        [
            (True, "cpu", True, True),
            (False, "cuda", False, False),
            ("auto", "cpu", True, False),
            ("auto", "cpu", False, False),
            ("auto", "cuda", True, False),
            ("auto", "cuda", False, True),
        ],
    )
    def test_auto_picks_the_form_per_device_and_mode(
        self, setting: bool | str, device: str, training: bool, expected: bool
    ) -> None:
        """A bool is kept; "auto" is grouped only on CUDA outside training."""
        x = SimpleNamespace(device=torch.device(device))
        assert use_grouped_conv(setting, x, training) is expected  # type: ignore[arg-type]

    def test_auto_is_the_default(self) -> None:
        """The generator's default is "auto"; on this CPU the activation form runs."""
        assert StyleGAN2GeneratorOptions().grouped_conv == "auto"
        layer = ModulatedConv2d(4, 3, 3, style_dim=8, grouped="auto")
        assert not use_grouped_conv(layer.grouped, torch.zeros(1), layer.training)

    def test_style_affine_starts_at_one(self) -> None:
        """The affine map's bias starts at 1, so styles start near 1 (Karras et al. 2020)."""
        layer = ModulatedConv2d(4, 3, 3, style_dim=8)
        torch.testing.assert_close(layer.styles(torch.zeros(2, 8)), torch.ones(2, 4))

    def test_wrong_style_shape_is_an_error(self) -> None:
        """Styles must be [N, in_channels]; the message says what was expected and got."""
        with pytest.raises(ValueError, match=r"expected styles of shape \[2, 3\] \(got \[2, 4\]\)"):
            modulated_conv2d(torch.randn(2, 3, 4, 4), torch.randn(1, 3, 1, 1), torch.randn(2, 4))


class TestAdaIN:
    def test_output_has_the_styles_mean_and_std(self) -> None:
        """Every output feature map has mean y_b and standard deviation |y_s| over its pixels."""
        torch.manual_seed(0)
        x = torch.randn(3, 5, 8, 8) * 4 + 2
        scale, bias = torch.randn(3, 5), torch.randn(3, 5)
        out = adain(x, scale, bias)
        torch.testing.assert_close(out.mean(dim=(2, 3)), bias, atol=1e-5, rtol=0)
        torch.testing.assert_close(
            out.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-5, rtol=1e-5
        )

    def test_ignores_the_inputs_statistics(self) -> None:
        """Shifting and scaling an input map does not change the output (instance norm first)."""
        torch.manual_seed(0)
        x = torch.randn(2, 3, 4, 4)
        scale, bias = torch.randn(2, 3), torch.randn(2, 3)
        torch.testing.assert_close(
            adain(x * 7 - 3, scale, bias), adain(x, scale, bias), atol=1e-5, rtol=1e-5
        )


class TestEqualizedLearningRate:
    @pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
    def test_linear_scales_its_weight_at_run_time(self, lr_multiplier: float) -> None:
        """Stored weights are N(0, 1) / lr_mul; the layer computes x @ (W * lr_mul / sqrt(in)).T."""
        torch.manual_seed(0)
        layer = EqualizedLinear(256, 128, bias_init=0.5, lr_multiplier=lr_multiplier)
        assert layer.weight.std().item() == pytest.approx(1.0 / lr_multiplier, rel=0.02)
        x = torch.randn(4, 256)
        expected = F.linear(x, layer.weight * lr_multiplier / 16.0, torch.full((128,), 0.5))
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)

    def test_lr_multiplier_slows_the_effective_weight(self) -> None:
        """One SGD step moves the effective weight lr_mul^2 times as far (equalized lr, Sec. 4.1)."""
        moves = []
        for lr_multiplier in (1.0, 0.01):
            torch.manual_seed(0)
            layer = EqualizedLinear(16, 4, lr_multiplier=lr_multiplier).double()
            before = (layer.weight * layer.weight_gain).detach().clone()
            layer(torch.ones(1, 16, dtype=torch.float64)).sum().backward()
            with torch.no_grad():
                layer.weight -= 0.1 * layer.weight.grad  # type: ignore[operator]
            moves.append(((layer.weight * layer.weight_gain).detach() - before).abs().max().item())
        assert moves[1] / moves[0] == pytest.approx(0.01**2, rel=1e-9)

    def test_conv_uses_he_gain(self) -> None:
        """A conv layer's effective weight is the stored N(0, 1) weight over sqrt(fan_in)."""
        torch.manual_seed(0)
        layer = EqualizedConv2d(8, 4, 3)
        x = torch.randn(2, 8, 6, 6)
        expected = F.conv2d(x, layer.weight / math.sqrt(8 * 9), layer.bias, padding=1)
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)

    def test_pixel_norm_gives_unit_mean_square(self) -> None:
        """Pixel norm rescales each vector to mean square 1 over its features."""
        out = pixel_norm(torch.randn(5, 32) * 10)
        torch.testing.assert_close(out.square().mean(dim=1), torch.ones(5), atol=1e-5, rtol=0)


class TestMinibatchStddev:
    @pytest.mark.parametrize(("batch", "group"), [(8, 4), (6, 3), (3, 3), (5, 1)])
    def test_appended_channel_matches_the_formula(self, batch: int, group: int) -> None:
        """Sample n's extra map is the mean over features of the std over its group (n mod N/G)."""
        torch.manual_seed(0)
        x = torch.randn(batch, 3, 4, 4)
        out = MinibatchStddev(group_size=4, num_channels=1)(x)
        assert out.shape == (batch, 4, 4, 4)
        torch.testing.assert_close(out[:, :3], x)
        groups = batch // group
        for n in range(batch):
            members = x[[m for m in range(batch) if m % groups == n % groups]]
            assert len(members) == group
            std = torch.sqrt(members.var(dim=0, unbiased=False) + 1e-8).mean()
            torch.testing.assert_close(out[n, 3], std.expand(4, 4), atol=1e-6, rtol=1e-5)


class TestResampling:
    def test_downsample_uses_the_1331_filter(self) -> None:
        """Down-sampling a constant image keeps it (inside the border) and halves the size."""
        x = torch.ones(1, 2, 8, 8)
        out = downsample2d(x)
        assert out.shape == (1, 2, 4, 4)
        torch.testing.assert_close(out[:, :, 1:-1, 1:-1], torch.ones(1, 2, 2, 2))
        # A single bright pixel spreads with weights outer([1,3,3,1]) / 64, strided by 2.
        impulse = torch.zeros(1, 1, 8, 8)
        impulse[0, 0, 4, 4] = 64.0
        assert downsample2d(impulse)[0, 0, 2, 2].item() == pytest.approx(9.0)

    def test_upsample_doubles_the_size(self) -> None:
        """Bilinear 2x up-sampling keeps constants and doubles each side."""
        out = upsample2d(torch.full((1, 1, 3, 3), 2.0))
        torch.testing.assert_close(out, torch.full((1, 1, 6, 6), 2.0))
