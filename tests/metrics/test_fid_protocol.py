"""The metrics' ``resize`` protocols: TF1's bilinear ("tf-legacy", the TensorFlow-era FID code and
torch-fidelity), clean-fid's antialiased bicubic ("clean") and the extractor's own filter (the
default). The resizes are checked against closed forms; the protocols against each other on the
same images, with the bundled digits classifier (the protocol is about preprocessing, not
weights)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from gancore.metrics import FIDMetric, KIDMetric
from gancore.metrics.extractors import (
    InceptionV3,
    load_digits_split,
    resize_clean,
    resize_for_protocol,
    resize_tf1_bilinear,
)


class _Images:
    def __init__(self, images: torch.Tensor) -> None:
        self.images = images
        self.shapes = {"x": tuple(images.shape[1:])}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.images[index]}


class _Context:
    """Fixed 'generated' and real images, served in order."""

    def __init__(self, generated: torch.Tensor, real: torch.Tensor) -> None:
        self.generated, self.dataset = generated, _Images(real)
        self.device = torch.device("cpu")

    @staticmethod
    def _batches(images: torch.Tensor, num: int, batch_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, num, batch_size):
            yield images[start : min(start + batch_size, num)].clone()

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        return self._batches(self.generated, num, batch_size)

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        return self._batches(self.dataset.images, num, batch_size)


def _checkerboard(side: int) -> torch.Tensor:
    """``[1, 1, side, side]`` one-pixel checkerboard of 0 and 255."""
    rows = torch.arange(side).view(-1, 1)
    return ((rows + rows.T) % 2 * 255.0).view(1, 1, side, side)


class TestTF1Bilinear:
    def test_upsampling_closed_form(self) -> None:
        """2x2 -> 4x4 samples input coordinates 0, 0.5, 1, 1.5 (i * in / out, no half-pixel
        offset), the last clamped to the edge: rows and columns [a, (a+b)/2, b, b]."""
        a, b, c, d = 0.0, 100.0, 200.0, 40.0
        out = resize_tf1_bilinear(torch.tensor([[[[a, b], [c, d]]]]), 4, 4)
        top = [a, (a + b) / 2, b, b]
        bottom = [c, (c + d) / 2, d, d]
        middle = [(t + u) / 2 for t, u in zip(top, bottom, strict=True)]
        assert out.tolist() == [[[top, middle, bottom, bottom]]]

    def test_downsampling_skips_pixels(self) -> None:
        """4 -> 2 takes input pixels 0 and 2 exactly: no averaging, no antialiasing."""
        row = torch.tensor([[[[10.0, 20.0, 30.0, 40.0]]]])
        assert resize_tf1_bilinear(row, 1, 2).tolist() == [[[[10.0, 30.0]]]]

    def test_same_size_is_identity(self) -> None:
        """Resizing to the input's size returns the input."""
        x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0)) * 255
        assert torch.equal(resize_tf1_bilinear(x, 5, 7), x)

    def test_differs_from_half_pixel_bilinear(self) -> None:
        """PyTorch's align_corners=False bilinear samples (i + 0.5) * in / out - 0.5: another
        first row (a, a + (b-a)/4, ...) than TF1's (a, (a+b)/2, ...)."""
        x = torch.tensor([[[[0.0, 100.0], [200.0, 40.0]]]])
        torch_bilinear = F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)
        assert torch_bilinear[0, 0, 0].tolist() == [0.0, 25.0, 75.0, 100.0]
        assert resize_tf1_bilinear(x, 4, 4)[0, 0, 0].tolist() == [0.0, 50.0, 100.0, 100.0]


class TestAliasing:
    def test_checkerboard(self) -> None:
        """A one-pixel checkerboard (mean 127.5) shrunk 64 -> 16: TF1's bilinear lands on pixels
        of one colour only and returns a black image (aliasing); clean-fid's antialiased bicubic
        returns the mean grey."""
        board = _checkerboard(64)
        legacy = resize_tf1_bilinear(board, 16, 16)
        clean = resize_clean(board, 16, 16)
        assert torch.equal(legacy, torch.zeros(1, 1, 16, 16))
        assert clean.sub(127.5).abs().max().item() < 1.0

    def test_clean_is_pillow_bicubic_per_channel(self) -> None:
        """Each channel resized on its own: equal channels stay equal, clipped to [0, 255]."""
        board = _checkerboard(12).expand(2, 3, 12, 12)
        clean = resize_clean(board, 7, 5)
        assert clean.shape == (2, 3, 7, 5)
        assert torch.equal(clean[:, 0], clean[:, 2])
        assert clean.min().item() >= 0.0
        assert clean.max().item() <= 255.0


class TestResizeForProtocol:
    def test_scaling(self) -> None:
        """8-bit pixels 0, 128, 255 become (p - 128) / 128 = -1, 0, 127/128, the Inception graph's
        scaling; 'extractor' returns the images untouched."""
        images = torch.tensor([0.0, 128.0, 255.0]).div(127.5).sub(1.0).view(1, 1, 1, 3)
        out = resize_for_protocol(images, "tf-legacy", 3)  # 1x3 -> 3x3: rows repeat
        assert out[0, 0, 0].tolist() == [-1.0, 0.0, 127 / 128]
        assert resize_for_protocol(images, "extractor", 3) is images
        with pytest.raises(ValueError, match="resize must be one of"):
            resize_for_protocol(images, "bicubic", 3)

    def test_inception_input(self) -> None:
        """tf-legacy brings 8x8 one-channel images to 299x299; the Inception network (random
        weights here) takes them without resizing again."""
        images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
        prepared = resize_for_protocol(images, "tf-legacy", 299)
        assert prepared.shape == (2, 1, 299, 299)
        assert InceptionV3()(prepared).shape == (2, 2048)


class TestProtocolsOnTheSameImages:
    def test_fid_differs_by_protocol(self) -> None:
        """The same images measured three ways: 360 training digits against the 360 held out,
        enlarged to 32x32 (4x nearest) with a one-pixel checker texture of +-24 levels (the fine
        detail a photo has), shrunk to the digits classifier's 16x16. fd-digits = 2.6380
        ('extractor': bilinear with antialias), 2.8378 ('tf-legacy': TF1 bilinear, which sees
        one phase of the texture) and 2.9984 ('clean': antialiased bicubic), measured by this
        test. Each is finite and >= 0, they differ pairwise by more than 0.1, and each result
        names its protocol. (At the digits' own 8x8, enlarged to 16, the three give 2.3919,
        3.2365 and 3.2220: TF1 and bicubic differ least when enlarging.)"""
        train, _, test, _ = load_digits_split()
        rows = torch.arange(32).view(-1, 1)
        texture = ((rows + rows.T) % 2 * 2 - 1) * (24 / 127.5)

        def enlarged(images: torch.Tensor) -> torch.Tensor:
            blocks = images.repeat_interleave(4, -1).repeat_interleave(4, -2)
            return (blocks + texture).clamp(-1.0, 1.0)

        values, filters = {}, {}
        for resize in ("extractor", "tf-legacy", "clean"):
            metric = FIDMetric(
                extractor="digits-classifier",
                num_generated=360,
                batch_size=120,
                resize=resize,
                cache_reference=False,
            )
            result = metric.evaluate(_Context(enlarged(train[:360]), enlarged(test)))
            values[resize] = result["fd-digits"]
            filters[resize] = result["protocol"]["resize_filter"]
        assert filters == {
            "extractor": "bilinear-antialias",
            "tf-legacy": "tf-legacy",
            "clean": "clean",
        }
        for value in values.values():
            assert math.isfinite(value) and value >= 0.0
        names = list(values)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                assert abs(values[first] - values[second]) > 0.1, (first, second, values)

    def test_cached_reference_is_per_protocol(self) -> None:
        """A cached reference from one protocol is never served to another: tf-legacy after a
        cached default evaluation equals tf-legacy on a cold cache."""
        train, _, test, _ = load_digits_split()
        common = {"extractor": "digits-classifier", "num_generated": 120, "batch_size": 120}
        cold = FIDMetric(**common, resize="tf-legacy").evaluate(_Context(train, test))
        FIDMetric(**common).evaluate(_Context(train, test))
        warm = FIDMetric(**common, resize="tf-legacy").evaluate(_Context(train, test))
        assert warm["fd-digits"] == cold["fd-digits"]
        assert warm["protocol"] == cold["protocol"]

    def test_kid_takes_the_option_too(self) -> None:
        """KID records the protocol it used."""
        train, _, test, _ = load_digits_split()
        metric = KIDMetric(
            extractor="digits-classifier", num_generated=100, num_subsets=5, resize="clean"
        )
        assert metric.evaluate(_Context(train, test))["protocol"]["resize_filter"] == "clean"

    def test_needs_8_bit_pixels(self) -> None:
        """The 8-bit protocols refuse quantize = false with one line."""
        with pytest.raises(ValueError, match="quantize") as exc:
            FIDMetric(resize="tf-legacy", quantize=False)
        assert str(exc.value) == (
            "'resize' = 'tf-legacy' works on 8-bit pixels and needs 'quantize' = true "
            "(got quantize = false)"
        )
