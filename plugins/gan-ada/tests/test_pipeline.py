"""The ADA pipeline: firing, closed forms of the deterministic ops, gradients, paired tensors."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from gan_ada.ada import COLOR_OPS, GEOMETRIC_OPS, OPS, PIPELINES, AdaOptions, AdaptiveAugment

PHI_1 = statistics.NormalDist().cdf(1.0)  # the quantile whose normal draw is exactly 1


def ada(*ops: str, p: float = 1.0, quantile: float | None = None, shape=(3, 8, 8), **options):
    return AdaptiveAugment(
        AdaOptions(ops=ops or None, p=p, quantile=quantile, **options), tuple(shape)
    )


def images(n: int = 2, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class TestFiring:
    def test_p_zero_is_the_identity(self) -> None:
        """At p = 0 no op fires and the output is the input, for every pipeline."""
        x = images(4)
        for name in PIPELINES:
            augment = AdaptiveAugment(AdaOptions(pipeline=name, p=0.0), (3, 8, 8))
            assert torch.equal(augment(x), x), name
            assert not any(m.any() for m in augment.sample_params(64, 8, 8).fired.values())

    def test_p_zero_draws_are_the_identity_too(self) -> None:
        """Params drawn at p = 0 and applied give back the input exactly (no resampling drift)."""
        augment = ada(*OPS, p=0.0)
        x = images(4)
        params = augment.sample_params(4, 8, 8)
        assert params.geometry is None
        assert params.color is None
        assert torch.equal(augment.transform(x, params), x)

    def test_p_one_fires_every_op(self) -> None:
        """At p = 1 every op of the full pipeline fires for every image."""
        augment = AdaptiveAugment(AdaOptions(pipeline="bgcfnc", p=1.0), (3, 8, 8))
        fired = augment.sample_params(256, 8, 8).fired
        assert set(fired) == set(OPS)
        for op, mask in fired.items():
            assert bool(mask.all()), op

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
    def test_firing_rates_match_p(self, p: float) -> None:
        """Over 20,000 images each op (rotation: either of its two draws; filter: each band)
        fires with rate p, within 5 standard errors, and ops fire independently of each other."""
        augment = AdaptiveAugment(AdaOptions(pipeline="bgcfnc", p=p), (3, 8, 8))
        n = 20_000
        fired = augment.sample_params(n, 8, 8, generator=torch.Generator().manual_seed(1)).fired
        tolerance = 5 * math.sqrt(p * (1 - p) / n)
        for op, mask in fired.items():
            rates = mask.double().mean(dim=0).reshape(-1)
            assert (rates - p).abs().max().item() < tolerance, op
        both = (fired["xflip"] & fired["hue"]).double().mean().item()
        assert abs(both - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / n)

    def test_deterministic_mode_fires_when_quantile_below_p(self) -> None:
        """With a quantile, every op fires exactly when quantile < p."""
        for quantile, p in ((0.3, 0.5), (0.7, 0.5)):
            fired = ada(*OPS, p=p, quantile=quantile).sample_params(3, 8, 8).fired
            for op, mask in fired.items():
                if op == "rotate":  # each of the two rotations fires with 1 - sqrt(1 - p)
                    assert bool(mask.all()) == (quantile < 1 - math.sqrt(1 - p)), op
                else:
                    assert bool(mask.all()) == (quantile < p), op

    def test_the_paper_order_whatever_the_list(self) -> None:
        """'ops' are applied in the paper's order, and 'bgc' is its 12 ops in that order."""
        assert ada("hue", "xflip").ops == ("xflip", "hue")
        assert PIPELINES["bgc"] == GEOMETRIC_OPS + COLOR_OPS


class TestGeometricClosedForms:
    @pytest.mark.parametrize(("quantile", "flipped"), [(0.75, True), (0.25, False)])
    def test_xflip(self, quantile: float, flipped: bool) -> None:
        """xflip draws i = floor(2q): i = 1 mirrors left-right exactly, i = 0 keeps the image."""
        x = images(2, h=5, w=7)
        y = ada("xflip", quantile=quantile, shape=(3, 5, 7))(x)
        assert torch.equal(y, x.flip(-1) if flipped else x)

    @pytest.mark.parametrize(("quantile", "turns"), [(0.1, 0), (0.3, 1), (0.6, 2), (0.9, 3)])
    def test_rotate90(self, quantile: float, turns: int) -> None:
        """rotate90 draws i = floor(4q) quarter turns (clockwise on screen), exactly."""
        x = images(2, h=6, w=6)
        y = ada("rotate90", quantile=quantile, shape=(3, 6, 6))(x)
        assert torch.equal(y, torch.rot90(x, turns, dims=(-1, -2)))

    def test_integer_translation(self) -> None:
        """xint at q = 0.9 shifts by round(0.1 * size) = 2 pixels right and down, the vacated rows
        and columns filled by mirroring (edge pixel repeated)."""
        x = images(1, h=20, w=20)
        y = ada("xint", quantile=0.9, shape=(3, 20, 20))(x)
        index = torch.tensor([1, 0, *range(18)])  # source of each output row/column
        assert torch.equal(y, x[:, :, index][:, :, :, index])

    def test_fractional_translation_of_one_pixel(self) -> None:
        """xfrac with a normal draw of 1 shifts by 0.125 * size = 1 pixel, copied exactly."""
        x = images(1, h=8, w=8)
        y = ada("xfrac", quantile=PHI_1)(x)
        index = torch.tensor([0, *range(7)])
        assert torch.equal(y, x[:, :, index][:, :, :, index])

    def test_two_half_turns_make_a_half_turn(self) -> None:
        """rotate at q = 0.75 draws +pi/2 before and after the (disabled) anisotropic scale:
        together a half turn, exact."""
        x = images(2)
        assert torch.equal(ada("rotate", quantile=0.75)(x), torch.rot90(x, 2, dims=(-1, -2)))

    def test_isotropic_scale_of_a_ramp(self) -> None:
        """Scaling by 2 (a normal draw of 5 at std 0.2) zooms a linear ramp to half its slope
        about the centre; bilinear sampling reproduces linear images exactly inside."""
        h, w = 6, 8
        cols = torch.arange(w, dtype=torch.float64) - (w - 1) / 2
        rows = torch.arange(h, dtype=torch.float64) - (h - 1) / 2
        ramp = (0.1 * cols[None, :] - 0.05 * rows[:, None] + 0.2).expand(1, 1, h, w)
        quantile = statistics.NormalDist().cdf(5.0)
        y = ada("scale", quantile=quantile, shape=(1, h, w))(ramp)
        expected = 0.05 * cols[None, :] - 0.025 * rows[:, None] + 0.2
        torch.testing.assert_close(y[0, 0], expected, rtol=0, atol=1e-9)

    def test_anisotropic_scale_of_a_ramp(self) -> None:
        """aniso with a normal draw of 5 scales x by 2 and y by 1/2: a horizontal ramp halves its
        slope, a vertical one is unchanged where its samples stay inside."""
        h, w = 8, 8
        cols = torch.arange(w, dtype=torch.float64) - (w - 1) / 2
        ramp = (0.1 * cols).expand(1, 1, h, w)
        y = ada("aniso", quantile=statistics.NormalDist().cdf(5.0), shape=(1, h, w))(ramp)
        torch.testing.assert_close(y[0, 0], (0.05 * cols).expand(h, w), rtol=0, atol=1e-9)


class TestColorClosedForms:
    def test_brightness_adds_its_draw(self) -> None:
        """brightness with a normal draw of 1 adds 0.2 (brightness_std) to every channel."""
        x = images(2)
        torch.testing.assert_close(ada("brightness", quantile=PHI_1)(x), x + 0.2)

    def test_contrast_scales_around_zero(self) -> None:
        """contrast with a normal draw of 1 multiplies by 2 ** 0.5."""
        x = images(2)
        torch.testing.assert_close(ada("contrast", quantile=PHI_1)(x), x * math.sqrt(2))

    def test_lumaflip_negates_the_luma(self) -> None:
        """lumaflip (i = 1) keeps the chroma and negates the gray component: x - 2 mean_c(x)."""
        x = images(2)
        y = ada("lumaflip", quantile=0.75)(x)
        torch.testing.assert_close(y, x - 2 * x.mean(dim=1, keepdim=True))

    def test_hue_by_a_third_turn_permutes_channels(self) -> None:
        """A hue rotation by 2 pi / 3 about the gray axis maps R -> G -> B -> R."""
        x = images(2)
        y = ada("hue", quantile=5 / 6)(x)
        torch.testing.assert_close(y, x[:, [2, 0, 1]], rtol=0, atol=1e-6)

    def test_saturation_scales_the_chroma(self) -> None:
        """saturation with a normal draw of 1 gives mean + 2 (x - mean) per pixel."""
        x = images(2)
        mean = x.mean(dim=1, keepdim=True)
        torch.testing.assert_close(ada("saturation", quantile=PHI_1)(x), mean + 2 * (x - mean))

    def test_color_ops_compose_in_order(self) -> None:
        """brightness, then contrast, then luma flip: -(c (x + b) - 2 mean...) as one matrix."""
        x = images(2)
        b, c = 0.2, math.sqrt(2)
        y = ada("brightness", "contrast", "lumaflip", quantile=PHI_1)(x)
        z = c * (x + b)
        torch.testing.assert_close(y, z - 2 * z.mean(dim=1, keepdim=True))

    def test_gray_images_get_the_luma_part(self) -> None:
        """On 1-channel images the colour matrix acts as on the RGB image (g, g, g): brightness,
        contrast and luma flip as on the luma; hue and saturation leave gray unchanged. The
        result equals the 3-channel pipeline on a gray RGB image."""
        g = images(3, c=1)
        gray = ada(*COLOR_OPS, quantile=0.75, shape=(1, 8, 8))
        rgb = ada(*COLOR_OPS, quantile=0.75)
        n = statistics.NormalDist().inv_cdf(0.75)
        expected = -(2 ** (0.5 * n)) * (g + 0.2 * n)  # brightness, contrast, luma flip
        torch.testing.assert_close(gray(g), expected)
        torch.testing.assert_close(rgb(g.expand(3, 3, 8, 8)), expected.expand(3, 3, 8, 8))
        assert torch.equal(ada("hue", "saturation", quantile=0.75, shape=(1, 8, 8))(g), g)


class TestOtherOps:
    def test_cutout_zeroes_a_centred_square(self) -> None:
        """cutout at q = 0.5 zeroes the central half-size square, keeps the rest."""
        x = images(1) + 3.0  # no zeros of its own
        y = ada("cutout", quantile=0.5)(x)
        assert torch.equal(y[:, :, 2:6, 2:6], torch.zeros(1, 3, 4, 4))
        mask = torch.ones(8, 8, dtype=torch.bool)
        mask[2:6, 2:6] = False
        assert torch.equal(y[:, :, mask], x[:, :, mask])

    def test_noise_std_is_half_normal(self) -> None:
        """noise adds std * N(0, 1) with std = |N(0, 0.1^2)|: with q = PHI(1), 0.1 * 1 per pixel."""
        x = images(2)
        torch.testing.assert_close(ada("noise", quantile=PHI_1)(x), x + 0.1)

    def test_filter_preserves_a_constant_image_scaled_by_the_low_gain(self) -> None:
        """The four bands sum to the image; a constant image lies in the lowest band only, so
        the filter multiplies it by the (normalised) low-band gain."""
        x = torch.full((1, 3, 16, 16), 0.5)
        augment = ada("filter", quantile=PHI_1, shape=(3, 16, 16))
        params = augment.sample_params(1, 16, 16)
        assert params.band_gains is not None
        low = params.band_gains[0, 0].item()
        torch.testing.assert_close(augment.transform(x, params), x * low)
        assert low != pytest.approx(1.0)


class TestGradients:
    def test_gradients_reach_the_input(self) -> None:
        """Through the whole random pipeline the input receives a nonzero gradient."""
        augment = AdaptiveAugment(AdaOptions(pipeline="bgcfnc", p=0.8), (3, 8, 8))
        x = images(4).requires_grad_(True)
        augment(x).square().sum().backward()
        assert x.grad is not None
        assert x.grad.abs().sum() > 0

    def test_gradcheck_and_second_order(self) -> None:
        """With fixed draws the pipeline is a differentiable map of the input: first and second
        derivatives match finite differences (R1 through the augmentation needs the second)."""
        augment = AdaptiveAugment(AdaOptions(pipeline="bgcf", p=1.0, quantile=0.6), (3, 4, 4))
        params = augment.sample_params(1, 4, 4)
        x = images(1, h=4, w=4).double().requires_grad_(True)

        def fn(t: torch.Tensor) -> torch.Tensor:
            return augment.transform(t, params).square()

        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))

    def test_bf16_inputs_keep_their_dtype(self) -> None:
        """Matrices are float64; the output has the input's dtype."""
        augment = AdaptiveAugment(AdaOptions(pipeline="bgc", p=1.0), (3, 8, 8))
        assert augment(images(2).bfloat16()).dtype == torch.bfloat16


class TestPaired:
    def test_same_transform_for_both_tensors(self) -> None:
        """augment_together applies one draw to both tensors: equal inputs give equal outputs,
        while two separate calls draw differently."""
        augment = AdaptiveAugment(AdaOptions(pipeline="bgcfnc", p=0.9), (3, 8, 8))
        x = images(8)
        a, b = augment.augment_together(x, x.clone())
        assert torch.equal(a, b)
        assert not torch.equal(augment(x), augment(x))

    def test_image_and_mask(self) -> None:
        """color=(True, False): the mask gets exactly the image's geometric transform and cutout,
        no colour."""
        shape = (3, 8, 8)
        full = AdaptiveAugment(AdaOptions(pipeline="bgcfnc", p=1.0, quantile=0.7), shape)
        geometric = AdaptiveAugment(
            AdaOptions(ops=(*GEOMETRIC_OPS, "cutout"), p=1.0, quantile=0.7), (1, 8, 8)
        )
        x = images(2)
        mask = (images(2, c=1, seed=3) > 0).float()
        image_out, mask_out = full.augment_together(x, mask, color=(True, False))
        assert torch.equal(mask_out, geometric(mask))
        assert torch.equal(image_out, full(x))

    def test_concatenated_channels_with_color_channels(self) -> None:
        """A 4-channel critic input (RGB + mask, as a pix2pix-style concatenation) with
        color_channels = [[0, 1, 2]]: colour touches the RGB channels only."""
        augment = ada("brightness", quantile=PHI_1, shape=(4, 8, 8), color_channels=((0, 1, 2),))
        x = images(2, c=4)
        y = augment(x)
        torch.testing.assert_close(y[:, :3], x[:, :3] + 0.2)
        assert torch.equal(y[:, 3], x[:, 3])

    def test_two_rgb_groups_get_the_same_color(self) -> None:
        """Two concatenated RGB images as two groups get the same colour transform."""
        augment = ada(*COLOR_OPS, p=0.9, shape=(6, 8, 8), color_channels=((0, 1, 2), (3, 4, 5)))
        x = images(4)
        y = augment(torch.cat([x, x], dim=1))
        assert torch.equal(y[:, :3], y[:, 3:])

    def test_mismatched_sizes_are_refused(self) -> None:
        """Tensors of different N, H or W cannot share a transform."""
        augment = ada("xflip")
        with pytest.raises(ValueError, match="same N, H, W"):
            augment.augment_together(images(2), images(3))


class TestErrors:
    def test_colour_ops_need_known_channels(self) -> None:
        """4-channel data without color_channels is refused at build time, naming the fix."""
        with pytest.raises(ValueError, match="set 'color_channels'"):
            AdaptiveAugment(AdaOptions(pipeline="bgc"), (4, 8, 8))
        AdaptiveAugment(AdaOptions(pipeline="bg"), (4, 8, 8))  # geometric only: fine

    def test_color_channels_out_of_range(self) -> None:
        """A colour channel beyond the data's channels is an error naming both."""
        with pytest.raises(ValueError, match="names channel 3 but the images have 3 channels"):
            AdaptiveAugment(AdaOptions(color_channels=((1, 2, 3),)), (3, 8, 8))

    def test_vector_data_is_refused(self) -> None:
        """ada needs images (C, H, W)."""
        with pytest.raises(ValueError, match=r"expected image data of shape \(C, H, W\) \(got 2\)"):
            AdaptiveAugment(AdaOptions(), (2,))

    def test_wrong_rank_input(self) -> None:
        """A non-image batch at call time names the expected shape."""
        with pytest.raises(ValueError, match=r"expected images \[N, C, H, W\] \(got \[4, 2\]\)"):
            ada("xflip")(torch.zeros(4, 2))
