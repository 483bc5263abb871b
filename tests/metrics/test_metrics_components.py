"""Tests of the metric components on a stand-in MetricContext, with the bundled digits extractor."""

from __future__ import annotations

import json
from collections.abc import Iterator

import attrs
import pytest
import torch

from gancore.metrics import METRICS
from gancore.metrics.components import (
    DensityCoverageMetric,
    FIDMetric,
    ISMetric,
    KIDMetric,
    PrecisionRecallMetric,
    quantize_8bit,
    value_name,
)
from gancore.metrics.extractors import DIGITS_CLASSIFIER_SHA256, load_digits_split
from gancore.protocols import Metric, MetricContext


class _Images:
    """A minimal dataset over a tensor of images."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images
        self.shapes = {"x": tuple(images.shape[1:])}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.images[index]}


class _Context:
    """Serves fixed 'generated' and real images in order; records the calls it gets."""

    def __init__(self, generated: torch.Tensor, real: torch.Tensor) -> None:
        self.generated = generated
        self.dataset = _Images(real)
        self.device = torch.device("cpu")
        self.calls: list[tuple[str, int, int, int]] = []

    def _batches(self, images: torch.Tensor, num: int, batch_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, num, batch_size):
            yield images[start : min(start + batch_size, num)]

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        self.calls.append(("generate", num, batch_size, seed))
        return self._batches(self.generated, num, batch_size)

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        self.calls.append(("real", num, batch_size, seed))
        return self._batches(self.dataset.images, num, batch_size)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out digits (real) and training digits, both 1x8x8 in [-1, 1]."""
    train, _, test, _ = load_digits_split()
    return test, train


def _noise(n: int) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


SMALL = {"extractor": "digits-classifier", "num_generated": 200, "batch_size": 64, "seed": 3}


class TestFIDMetric:
    def test_protocol_and_labels(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """The result is flat JSON with the value under 'fd-digits' and the full protocol."""
        real, other = digits
        context = _Context(other, real)
        assert isinstance(context, MetricContext)
        result = FIDMetric(**SMALL).evaluate(context)
        assert json.loads(json.dumps(result)) == result
        assert set(result) == {
            "fd-digits",
            "metric",
            "extractor",
            "extractor_weights_sha256",
            "extractor_input_size",
            "resize_filter",
            "gray_to_rgb",
            "quantize_8bit",
            "num_real",
            "num_generated",
            "seed_real",
            "seed_generated",
        }
        assert result["metric"] == "fd-digits"
        assert result["extractor"] == "digits-classifier"
        assert result["extractor_weights_sha256"] == DIGITS_CLASSIFIER_SHA256
        assert (result["extractor_input_size"], result["resize_filter"]) == (
            16,
            "bilinear-antialias",
        )
        # num_real defaults to min(dataset size, num_generated) = min(360, 200)
        assert (result["num_real"], result["num_generated"]) == (200, 200)
        assert context.calls == [("generate", 200, 64, 3), ("real", 200, 64, 3)]

    def test_same_images_score_zero(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Generated images identical to the real ones give exactly 0; noise scores far higher
        than other real digits."""
        real, other = digits
        assert FIDMetric(**SMALL).evaluate(_Context(real, real))["fd-digits"] == 0.0
        digits_score = FIDMetric(**SMALL).evaluate(_Context(other, real))["fd-digits"]
        noise_score = FIDMetric(**SMALL).evaluate(_Context(_noise(200), real))["fd-digits"]
        assert 0.0 < 5 * digits_score < noise_score


class TestKIDMetric:
    def test_values(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Other digits score near 0 and below noise; subsets are capped at the sample count."""
        real, other = digits
        metric = KIDMetric(**SMALL, num_subsets=10, subset_size=1000)
        close = metric.evaluate(_Context(other, real))
        far = metric.evaluate(_Context(_noise(200), real))
        assert close["kd-digits_subset_size"] == 200
        assert close["kd-digits_subsets"] == 10
        assert abs(close["kd-digits"]) < far["kd-digits"]
        assert close["kd-digits_std"] >= 0.0


class TestISMetric:
    def test_values(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Real digits of all ten classes score close to 10; no real data is drawn."""
        real, _ = digits
        context = _Context(real, real)
        result = ISMetric(**SMALL, splits=2).evaluate(context)
        assert 8.0 < result["is-digits"] <= 10.0
        assert result["is-digits_splits"] == 2
        assert (result["num_real"], result["seed_real"]) == (0, None)
        assert [call[0] for call in context.calls] == ["generate"]


class TestPrecisionRecallMetric:
    def test_values(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Real images against themselves give precision and recall 1."""
        real, _ = digits
        result = PrecisionRecallMetric(**SMALL).evaluate(_Context(real, real))
        assert (result["precision"], result["recall"], result["k"]) == (1.0, 1.0, 3)
        assert result["metric"] == "precision-recall"


class TestDensityCoverageMetric:
    def test_values(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Real images against themselves cover every ball; noise covers fewer."""
        real, _ = digits
        same = DensityCoverageMetric(**SMALL).evaluate(_Context(real, real))
        noise = DensityCoverageMetric(**SMALL).evaluate(_Context(_noise(200), real))
        assert same["coverage"] == 1.0
        assert noise["coverage"] < 0.5
        assert noise["density"] < same["density"]


class TestMetricOptions:
    def test_protocol_and_docs(self) -> None:
        """Every metric satisfies the Metric protocol and documents every option."""
        for name, cls in METRICS.items():
            assert isinstance(cls(), Metric), name
            for field in attrs.fields(cls):
                assert field.metadata.get("doc"), f"{name}.{field.name}"

    def test_validation(self) -> None:
        """Counts below their minimum are refused with the option's name."""
        with pytest.raises(ValueError, match="'num_generated' must be >= 2"):
            FIDMetric(num_generated=1)

    def test_value_names(self) -> None:
        """Only inception-v3 results are called fid, kid and is."""
        assert value_name("fid", "inception-v3") == "fid"
        assert value_name("fid", "digits-classifier") == "fd-digits"
        assert value_name("kid", "dino") == "kd-dino"
        assert value_name("is", "digits-classifier") == "is-digits"

    def test_quantize(self) -> None:
        """8-bit rounding keeps -1 and 1 and snaps values to multiples of 1/127.5 offset by -1."""
        values = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5])
        levels = (quantize_8bit(values) + 1.0) * 127.5
        torch.testing.assert_close(levels, torch.tensor([0.0, 0.0, 128.0, 191.0, 255.0, 255.0]))
