"""sr-quality: luma, PSNR and SSIM against scikit-image and closed forms, and the metric."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import Any

import attrs
import numpy as np
import pytest
import torch
from gan_superres.datasets import SRImages, SRImagesOptions
from gan_superres.degrade import bicubic_upscale, downscale
from gan_superres.metrics import SRQuality, build_sr_quality, psnr_y, rgb_to_y, ssim_y
from gan_superres.task import Srgan
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

import gancore
import gancore.testing as gt

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def _images(n: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _noisy(images: torch.Tensor, amount: float, seed: int = 1) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return (images + amount * noise).clamp(-1.0, 1.0)


def _level(levels: Any) -> torch.Tensor:
    """8-bit levels as values in [-1, 1]."""
    return torch.as_tensor(levels, dtype=torch.float32) / 127.5 - 1.0


def _cropped_y(images: torch.Tensor, border: int) -> np.ndarray:
    y = rgb_to_y(images).numpy()
    return y[:, border : y.shape[1] - border, border : y.shape[2] - border]


# Shapes [C, H, W] and borders compared with scikit-image: RGB and grey, square and not.
REFERENCE_CASES = [
    ((3, 24, 24), 2),
    ((3, 40, 36), 4),
    ((1, 32, 32), 2),
    ((1, 33, 47), 4),
    ((3, 19, 64), 4),
]


def _assert_equal_results(*results: dict[str, Any]) -> None:
    """Equal protocols and counts, and values equal up to float64 rounding: SSIM's convolutions
    of a batch of 1 and of 16 may round the last digit differently (seen on an Intel Xeon)."""
    first = results[0]
    for other in results[1:]:
        assert other.keys() == first.keys()
        for key, value in first.items():
            if isinstance(value, float):
                assert other[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
            else:
                assert other[key] == value, key


class TestRgbToY:
    def test_known_colours(self) -> None:
        """Black is 16, white 235, and pure red, green and blue are 16 plus their weight."""
        levels = torch.tensor(
            [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.float32
        )
        images = _level(levels.tolist())[:, :, None, None]  # [5, 3, 1, 1]
        y = rgb_to_y(images)[:, 0, 0]
        assert y.dtype == torch.float64
        expected = torch.tensor([16.0, 235.0, 81.481, 144.553, 40.966], dtype=torch.float64)
        torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)

    def test_grey_is_the_rgb_of_equal_channels(self) -> None:
        """A grey value v gives 16 + 219 v, the Y of the RGB (v, v, v)."""
        grey = _images(2, 1, 5, 7)
        v = ((grey.double() + 1) * 127.5).round() / 255
        torch.testing.assert_close(rgb_to_y(grey), 16 + 219 * v[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(rgb_to_y(grey), rgb_to_y(grey.expand(-1, 3, -1, -1)))

    def test_rounds_to_8_bits_first(self) -> None:
        """Values between two levels are rounded to the nearest level before Y."""
        exact = _level([[[100.0]], [[200.0]], [[50.0]]])[None]
        nudged = exact + torch.tensor([0.3, -0.4, 0.2])[None, :, None, None] / 127.5
        assert torch.equal(rgb_to_y(nudged), rgb_to_y(exact))
        assert float(rgb_to_y(_level([[[[100.6]]]]))) == 16 + 219 * 101 / 255

    def test_rejects_other_channel_counts(self) -> None:
        with pytest.raises(ValueError, match=r"C = 1 or 3 \(got \(1, 2, 4, 4\)\)"):
            rgb_to_y(torch.zeros(1, 2, 4, 4))


class TestPsnrY:
    @pytest.mark.parametrize(("shape", "border"), REFERENCE_CASES)
    def test_equals_scikit_image(self, shape: tuple[int, int, int], border: int) -> None:
        """Equals skimage's peak_signal_noise_ratio on the same cropped Y, image by image."""
        hr = _images(3, *shape)
        sr = _noisy(hr, 0.1)
        ours = psnr_y(sr, hr, border)
        assert ours.dtype == torch.float64
        assert ours.shape == (3,)
        a, b = _cropped_y(sr, border), _cropped_y(hr, border)
        for i in range(3):
            expected = peak_signal_noise_ratio(b[i], a[i], data_range=255)
            assert float(ours[i]) == pytest.approx(expected, rel=1e-6)

    def test_identical_images_are_infinite(self) -> None:
        """No error: +inf dB (no cap)."""
        hr = _images(2, 3, 16, 16)
        assert torch.equal(psnr_y(hr, hr, 2), torch.full((2,), math.inf, dtype=torch.float64))

    def test_constant_offset(self) -> None:
        """Grey levels off by d everywhere: Y is off by 219 d / 255, PSNR 20 log10(255^2 / 219 d)."""
        for d in (1, 5):
            gen = torch.Generator().manual_seed(d)
            hr = _level(torch.randint(0, 200, (2, 1, 12, 12), generator=gen).float().tolist())
            sr = hr + d / 127.5
            expected = 20 * math.log10(255**2 / (219 * d))
            torch.testing.assert_close(
                psnr_y(sr, hr, 2), torch.full((2,), expected, dtype=torch.float64)
            )

    def test_the_border_is_not_scored(self) -> None:
        """Errors only in the border strip leave the cropped images identical."""
        hr = _images(1, 3, 16, 16)
        sr = hr.clone()
        sr[..., :3, :] = -hr[..., :3, :]
        assert math.isinf(float(psnr_y(sr, hr, 3)))
        assert math.isfinite(float(psnr_y(sr, hr, 2)))

    def test_shape_and_border_errors(self) -> None:
        with pytest.raises(ValueError, match="must have the same shape"):
            psnr_y(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 6), 0)
        with pytest.raises(ValueError, match="leave 0x0 pixels"):
            psnr_y(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), 4)
        with pytest.raises(ValueError, match="'border' must be >= 0"):
            psnr_y(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), -1)


class TestSsimY:
    @pytest.mark.parametrize(("shape", "border"), REFERENCE_CASES)
    def test_equals_scikit_image(self, shape: tuple[int, int, int], border: int) -> None:
        """Equals skimage's structural_similarity with Wang et al.'s settings on the same cropped
        Y (skimage averages its map 5 pixels in from each side: our valid windows)."""
        hr = _images(3, *shape)
        sr = _noisy(hr, 0.15)
        ours = ssim_y(sr, hr, border)
        assert ours.dtype == torch.float64
        assert ours.shape == (3,)
        a, b = _cropped_y(sr, border), _cropped_y(hr, border)
        for i in range(3):
            expected = structural_similarity(
                a[i],
                b[i],
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255,
            )
            assert float(ours[i]) == pytest.approx(expected, rel=1e-6, abs=1e-9)

    def test_smooth_images_also_match(self) -> None:
        """On smooth, similar images (SSIM near 1) the agreement holds too."""
        ramp = torch.linspace(-0.8, 0.8, 30)
        hr = (ramp[None, :] * ramp[:, None]).expand(1, 3, 30, 30).contiguous()
        sr = hr + 0.02 * torch.sin(torch.arange(30.0))[None, None, None, :]
        a, b = _cropped_y(sr, 2), _cropped_y(hr, 2)
        expected = structural_similarity(
            a[0],
            b[0],
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        assert expected > 0.9
        assert float(ssim_y(sr, hr, 2)[0]) == pytest.approx(expected, rel=1e-6)

    def test_identical_images_are_one(self) -> None:
        hr = _images(2, 3, 24, 24)
        torch.testing.assert_close(ssim_y(hr, hr, 2), torch.ones(2, dtype=torch.float64))
        assert float(ssim_y(_noisy(hr, 0.2), hr, 2).max()) < 0.99

    def test_constant_images(self) -> None:
        """Flat images of luma a and b: no variance, SSIM = (2 a b + C1) / (a^2 + b^2 + C1)."""
        a_level, b_level = 60.0, 180.0
        sr = torch.full((1, 1, 16, 16), float(_level(a_level)))
        hr = torch.full((1, 1, 16, 16), float(_level(b_level)))
        a, b = 16 + 219 * a_level / 255, 16 + 219 * b_level / 255
        expected = (2 * a * b + C1) / (a * a + b * b + C1)
        assert float(ssim_y(sr, hr, 1)[0]) == pytest.approx(expected, rel=1e-12)

    def test_needs_a_whole_window(self) -> None:
        """The cropped image must hold one 11 x 11 window."""
        assert ssim_y(torch.zeros(1, 1, 15, 15), torch.zeros(1, 1, 15, 15), 2).shape == (1,)
        with pytest.raises(ValueError, match="leave 10x10 pixels; at least 11x11 are needed"):
            ssim_y(torch.zeros(1, 1, 14, 14), torch.zeros(1, 1, 14, 14), 2)


# -------------------------------------------------------------------------------------------------
# The metric
# -------------------------------------------------------------------------------------------------

SCALE = 2
HR_SHAPE = (3, 32, 32)


class Bicubic(nn.Module):
    """A 'generator' that is bicubic upscaling."""

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return bicubic_upscale(lr, SCALE)


class Oracle(nn.Module):
    """A 'generator' that returns the HR image whose LR input is nearest to the one it gets."""

    def __init__(self, hr: torch.Tensor) -> None:
        super().__init__()
        self.hr = hr
        self.lr = downscale(hr, SCALE).flatten(1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.hr[torch.cdist(lr.flatten(1), self.lr).argmin(dim=1)]


class Sharpened(nn.Module):
    """Bicubic upscaling plus a fixed random 3x3 convolution of it: a per-image function."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        gen = torch.Generator().manual_seed(3)
        with torch.no_grad():
            self.conv.weight.copy_(0.1 * torch.randn(self.conv.weight.shape, generator=gen))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = bicubic_upscale(lr, SCALE)
        return up + self.conv(up)


def _dataset(size: int = 10) -> gt.FakeDataset:
    return gt.FakeDataset({"x": HR_SHAPE}, size=size, seed=5)


def _hr(dataset: Any) -> torch.Tensor:
    return torch.stack([dataset[i]["x"] for i in range(len(dataset))])


def _context(dataset: Any, generator: nn.Module, task: Any = None) -> SimpleNamespace:
    return SimpleNamespace(
        task=Srgan(scale=SCALE) if task is None else task,
        generators={"generator": generator},
        dataset=dataset,
        device=torch.device("cpu"),
    )


def _order(size: int, num: int, seed: int) -> list[int]:
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:num].tolist()


class TestSRQuality:
    def test_a_bicubic_generator_scores_as_the_baseline(self) -> None:
        """A generator that is bicubic upscaling gets exactly the bicubic values."""
        result = SRQuality(num_images=6, batch_size=4, extractor="").evaluate(
            _context(_dataset(), Bicubic())
        )
        assert set(result) == {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "protocol"}
        assert result["psnr"] == result["bicubic_psnr"]
        assert result["ssim"] == result["bicubic_ssim"]
        assert 5 < result["psnr"] < 40
        assert 0 < result["ssim"] < 1

    def test_returning_the_hr_image_is_perfect(self) -> None:
        """The HR images themselves: SSIM 1 and PSNR at the cap (+inf per image); bicubic is
        worse."""
        dataset = _dataset()
        result = SRQuality(num_images=8, batch_size=3, extractor="").evaluate(
            _context(dataset, Oracle(_hr(dataset)))
        )
        assert result["ssim"] == pytest.approx(1.0, abs=1e-12)
        assert result["psnr"] == 100.0
        assert result["bicubic_ssim"] < 0.99
        assert math.isfinite(result["bicubic_psnr"])

    def test_equals_a_direct_computation(self) -> None:
        """The means of psnr_y and ssim_y over the seeded draw, border = the task's scale."""
        dataset = _dataset(12)
        generator = Sharpened()
        result = SRQuality(num_images=7, batch_size=3, seed=11, extractor="").evaluate(
            _context(dataset, generator)
        )
        hr = _hr(dataset)[_order(12, 7, 11)]
        lr = downscale(hr, SCALE)
        with torch.no_grad():
            sr = generator(lr).clamp(-1, 1)
        for prefix, images in (("", sr), ("bicubic_", bicubic_upscale(lr, SCALE))):
            psnr = float(psnr_y(images, hr, SCALE).mean())
            ssim = float(ssim_y(images, hr, SCALE).mean())
            assert result[f"{prefix}psnr"] == pytest.approx(psnr, rel=1e-12)
            assert result[f"{prefix}ssim"] == pytest.approx(ssim, rel=1e-12)
        assert result["psnr"] != result["bicubic_psnr"]

    def test_border_option(self) -> None:
        """border = 0 scores the whole image; None is the scale, as the protocol says."""
        dataset = _dataset()
        context = _context(dataset, Sharpened())
        default = SRQuality(num_images=4, extractor="").evaluate(context)
        whole = SRQuality(num_images=4, extractor="", border=0).evaluate(context)
        assert (default["protocol"]["border"], whole["protocol"]["border"]) == (SCALE, 0)
        hr = _hr(dataset)[_order(10, 4, 0)]
        bicubic = bicubic_upscale(downscale(hr, SCALE), SCALE)
        expected = float(psnr_y(bicubic, hr, 0).mean())
        assert whole["bicubic_psnr"] == pytest.approx(expected, rel=1e-12)
        assert whole["bicubic_psnr"] != default["bicubic_psnr"]

    def test_batch_size_does_not_change_the_result(self) -> None:
        """Batch sizes 1, 3 and 16 give equal values (to float64 rounding) and protocols, with
        a dataset smaller than num_images (the permutation repeats)."""
        context = _context(_dataset(), Sharpened())
        results = [
            SRQuality(num_images=13, batch_size=b, seed=2, extractor="").evaluate(context)
            for b in (1, 3, 16)
        ]
        _assert_equal_results(*results)

    def test_seed_draws_other_images(self) -> None:
        context = _context(_dataset(), Sharpened())
        one, two = (SRQuality(num_images=3, seed=s, extractor="").evaluate(context) for s in (0, 1))
        assert one["psnr"] != two["psnr"]
        assert one["protocol"]["data_sha256"] != two["protocol"]["data_sha256"]

    def test_paired_low_resolution_images(self) -> None:
        """A dataset's own 'lr' images are the inputs (here: flat grey, so bicubic is grey)."""

        class Paired:
            shapes = {"x": HR_SHAPE, "lr": (3, 16, 16)}  # noqa: RUF012 (a test double)

            def __len__(self) -> int:
                return 4

            def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
                return {"x": _images(1, *HR_SHAPE, seed=i)[0], "lr": torch.zeros(3, 16, 16)}

        result = SRQuality(num_images=4, extractor="").evaluate(_context(Paired(), Bicubic()))
        hr = torch.stack([Paired()[i]["x"] for i in _order(4, 4, 0)])
        expected = float(psnr_y(torch.zeros_like(hr), hr, SCALE).mean())
        assert result["bicubic_psnr"] == pytest.approx(expected, rel=1e-12)
        assert result["protocol"]["low_resolution"] == "dataset 'lr'"

    def test_bundled_photos(self) -> None:
        """On crops of a real photo (the get_batch path) bicubic x2 scores as bicubic does:
        roughly 20-40 dB and SSIM between 0.5 and 1."""
        photos = SRImages(SRImagesOptions(images=("skimage:camera",), size=32, stride=64))
        result = SRQuality(num_images=8, extractor="").evaluate(_context(photos, Bicubic()))
        assert 20 < result["bicubic_psnr"] < 40
        assert 0.5 < result["bicubic_ssim"] < 1
        assert result["protocol"]["image_shape"] == [3, 32, 32]

    def test_protocol(self) -> None:
        """The result is JSON-ready and its protocol states what changes the values."""
        result = SRQuality(num_images=5, seed=3, extractor="").evaluate(
            _context(_dataset(), Bicubic())
        )
        json.dumps(result)
        protocol = result["protocol"]
        assert protocol["metric"] == "sr-quality"
        assert (protocol["scale"], protocol["border"], protocol["num_images"]) == (2, 2, 5)
        assert protocol["seed"] == 3
        assert protocol["image_shape"] == list(HR_SHAPE)
        assert protocol["low_resolution"] == "downscale: bicubic-antialias"
        assert protocol["quantize_8bit"] is True
        assert protocol["extractor"] is None
        assert protocol["extractor_weights_sha256"] is None
        assert len(protocol["data_sha256"]) == 64
        assert "batch_size" not in protocol

    def test_conforms_to_the_metric_kit(self) -> None:
        gt.check_metric(
            SRQuality, {"num_images": 2, "extractor": ""}, context=_context(_dataset(), Bicubic())
        )

    def test_needs_an_srgan_task(self) -> None:
        """Another task, or no generator, is a one-line error naming what is missing."""
        context = _context(_dataset(), Bicubic(), task=gancore.Unconditional())
        with pytest.raises(ValueError, match="with a 'scale' \\(task 'srgan'\\)") as exc:
            SRQuality(extractor="").evaluate(context)
        assert "Unconditional" in str(exc.value)
        assert "\n" not in str(exc.value)
        context = _context(_dataset(), Bicubic())
        context.generators = {}
        with pytest.raises(ValueError, match="'generators' with a 'generator'"):
            SRQuality(extractor="").evaluate(context)

    def test_generator_of_the_wrong_size(self) -> None:
        class Nearest(nn.Module):
            def forward(self, lr: torch.Tensor) -> torch.Tensor:
                return lr

        with pytest.raises(ValueError, match=r"made images \(3, 16, 16\) from inputs"):
            SRQuality(extractor="").evaluate(_context(_dataset(), Nearest()))

    def test_options(self) -> None:
        """None and '' both mean no extractor (and survive TOML); bad values are refused."""
        assert SRQuality(extractor=None) == SRQuality(extractor="")
        assert SRQuality(extractor="").value_keys() == [
            "psnr",
            "ssim",
            "bicubic_psnr",
            "bicubic_ssim",
        ]
        assert "feature_distance" in SRQuality().value_keys()
        gt.check_options_roundtrip(SRQuality, {"extractor": "", "border": 3}, kind="metric")
        gt.check_options_roundtrip(SRQuality, kind="metric")
        with pytest.raises(ValueError, match="'border' must be >= 0"):
            SRQuality(border=-1)
        with pytest.raises(ValueError, match="'num_images' must be >= 1"):
            SRQuality(num_images=0)


# -------------------------------------------------------------------------------------------------
# The feature distance, with a tiny extractor of this file's own
# -------------------------------------------------------------------------------------------------


class TinyFeatures(nn.Module):
    """Content features: 2x2 average pools of the image; content_scale 0.5."""

    input_size = 32
    resize_filter = "none"
    weights_sha256 = "tiny-weights"
    content_scale = 0.5

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(images, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.feature_map(images).flatten(1)


class Flat(TinyFeatures):
    """Features without a spatial map."""

    feature_map = None  # type: ignore[assignment]


@attrs.frozen(kw_only=True)
class _NoOptions:
    """The test extractors have no options."""


def _tiny(options: _NoOptions, context: object) -> nn.Module:
    return TinyFeatures()


def _flat(options: _NoOptions, context: object) -> nn.Module:
    return Flat()


class _TinyPlugin:
    @gancore.hookimpl
    def gancore_register_extractors(self, register: gancore.RegisterCallback) -> None:
        register("tiny-features", _tiny, options=_NoOptions, description="Average pools.")
        register("flat-features", _flat, options=_NoOptions, description="No feature map.")


@pytest.fixture
def tiny_registry() -> gancore.Registry:
    """A registry with the tiny extractors, not installed process-wide."""
    registry, _ = gancore.load_registry(
        entry_points=False, plugins=[("tiny", _TinyPlugin())], env={}
    )
    return registry


def _bound(registry: gancore.Registry, **options: Any) -> SRQuality:
    return build_sr_quality(
        SRQuality(**options), gancore.BuildContext(data_shape=HR_SHAPE, registry=registry)
    )


class TestFeatureDistance:
    def test_equals_a_direct_computation(self, tiny_registry: gancore.Registry) -> None:
        """Mean over images of mean((s pool(SR) - s pool(HR))^2) on the 8-bit images, with the
        extractor resolved in the run's registry and named in the protocol."""
        dataset = _dataset()
        metric = _bound(tiny_registry, num_images=5, batch_size=2, extractor="tiny-features")
        result = metric.evaluate(_context(dataset, Sharpened()))
        hr = _hr(dataset)[_order(10, 5, 0)]
        lr = downscale(hr, SCALE)
        with torch.no_grad():
            sr = Sharpened()(lr).clamp(-1, 1)

        def levels(x: torch.Tensor) -> torch.Tensor:
            return ((x.double().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1

        for prefix, images in (("", sr), ("bicubic_", bicubic_upscale(lr, SCALE))):
            diff = 0.5 * (
                torch.nn.functional.avg_pool2d(levels(images), 2)
                - torch.nn.functional.avg_pool2d(levels(hr), 2)
            )
            expected = float(diff.square().flatten(1).mean(1).mean())
            assert result[f"{prefix}feature_distance"] == pytest.approx(expected, rel=1e-5)
        assert result["feature_distance"] != result["bicubic_feature_distance"]
        protocol = result["protocol"]
        assert protocol["extractor"] == "tiny-features"
        assert protocol["extractor_weights_sha256"] == "tiny-weights"
        assert protocol["content_scale"] == 0.5

    def test_zero_for_the_hr_images(self, tiny_registry: gancore.Registry) -> None:
        dataset = _dataset()
        metric = _bound(tiny_registry, num_images=4, extractor="tiny-features")
        result = metric.evaluate(_context(dataset, Oracle(_hr(dataset))))
        assert result["feature_distance"] == 0.0
        assert result["bicubic_feature_distance"] > 0

    def test_batch_size_does_not_change_it(self, tiny_registry: gancore.Registry) -> None:
        context = _context(_dataset(), Sharpened())
        one, two = (
            _bound(tiny_registry, num_images=6, batch_size=b, extractor="tiny-features").evaluate(
                context
            )
            for b in (1, 4)
        )
        _assert_equal_results(one, two)

    def test_needs_a_feature_map(self, tiny_registry: gancore.Registry) -> None:
        metric = _bound(tiny_registry, num_images=2, extractor="flat-features")
        with pytest.raises(ValueError, match="'flat-features' has no feature_map\\(\\)"):
            metric.evaluate(_context(_dataset(), Bicubic()))

    def test_unknown_extractor(self, tiny_registry: gancore.Registry) -> None:
        """An unknown name is the registry's error, with a suggestion."""
        metric = _bound(tiny_registry, num_images=2, extractor="tiny-feature")
        with pytest.raises(gancore.UnknownComponentError, match="did you mean 'tiny-features'"):
            metric.evaluate(_context(_dataset(), Bicubic()))
