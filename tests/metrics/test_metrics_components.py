"""Tests of the metric components on a stand-in MetricContext, with the bundled digits extractor:
values, protocol, registration, streaming, the reference cache and result comparison."""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import torch

import gancore
from gancore._cli import main
from gancore.metrics import (
    PROTOCOL_FIELDS,
    DensityCoverageMetric,
    FeatureStats,
    FIDMetric,
    ISMetric,
    KIDMetric,
    PrecisionRecallMetric,
    ProtocolMismatchError,
    build_extractor,
    build_feature_metric,
    clear_memory_cache,
    compare_results,
    content_sha256,
    frechet_distance,
    quantize_8bit,
    reference_dir,
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
    """Serves fixed 'generated' and real images in order, each batch a fresh tensor; records the
    calls it gets and the most earlier batches still alive when a new one is made."""

    def __init__(self, generated: torch.Tensor, real: torch.Tensor | _Images) -> None:
        self.generated = generated
        self.dataset = real if isinstance(real, _Images) else _Images(real)
        self.device = torch.device("cpu")
        self.calls: list[tuple[str, int, int, int]] = []
        self.most_alive = 0

    def _batches(self, images: torch.Tensor, num: int, batch_size: int) -> Iterator[torch.Tensor]:
        earlier: list[weakref.ref[torch.Tensor]] = []
        for start in range(0, num, batch_size):
            self.most_alive = max(self.most_alive, sum(r() is not None for r in earlier))
            batch = images[start : min(start + batch_size, num)].clone()
            earlier.append(weakref.ref(batch))
            yield batch
            del batch

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        self.calls.append(("generate", num, batch_size, seed))
        return self._batches(self.generated, num, batch_size)

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        self.calls.append(("real", num, batch_size, seed))
        return self._batches(self.dataset.images, num, batch_size)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out digits (real, 360) and training digits (1437), both 1x8x8 in [-1, 1]."""
    train, _, test, _ = load_digits_split()
    return test, train


def _noise(n: int, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


SMALL = {"extractor": "digits-classifier", "num_generated": 200, "batch_size": 64, "seed": 3}


def _features(images: torch.Tensor) -> FeatureStats:
    """Digits-classifier features of quantized images, in one batch, straight from the network."""
    stats = FeatureStats(keep_features=True)
    with torch.no_grad():
        stats.update(build_extractor("digits-classifier")(quantize_8bit(images)))
    return stats


class TestFIDMetric:
    def test_value_is_the_frechet_distance_of_the_features(
        self, digits: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        """The value equals frechet_distance of the extractor's features of the same images,
        computed in one batch without the metric (relative 1e-9)."""
        real, other = digits
        result = FIDMetric(**SMALL).evaluate(_Context(other, real))
        a, b = _features(real[:200]), _features(other[:200])
        expected = frechet_distance(a.mean(), a.covariance(), b.mean(), b.covariance())
        assert result["fd-digits"] == pytest.approx(expected, rel=1e-9)

    def test_result_carries_its_protocol(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """The result is JSON: the value under 'fd-digits' (not 'fid') and a protocol with every
        documented field."""
        real, other = digits
        context = _Context(other, real)
        assert isinstance(context, MetricContext)
        result = FIDMetric(**SMALL).evaluate(context)
        assert json.loads(json.dumps(result)) == result
        assert set(result) == {"fd-digits", "protocol"}
        protocol = result["protocol"]
        assert list(protocol) == [
            "metric",
            "extractor",
            "extractor_weights_sha256",
            "extractor_input_size",
            "resize_filter",
            "quantize_8bit",
            "image_shape",
            "num_generated",
            "seed_generated",
            "num_real",
            "seed_real",
            "real_sha256",
            "generator",
            "truncation",
        ]
        assert set(protocol) <= set(PROTOCOL_FIELDS)
        sha, _, _ = content_sha256([real[:200]])
        assert protocol == {
            "metric": "fd-digits",
            "extractor": "digits-classifier",
            "extractor_weights_sha256": DIGITS_CLASSIFIER_SHA256,
            "extractor_input_size": 16,
            "resize_filter": "bilinear-antialias",
            "quantize_8bit": True,
            "image_shape": [1, 8, 8],
            "num_generated": 200,
            "seed_generated": 3,
            "num_real": 200,  # min(dataset size 360, num_generated 200)
            "seed_real": 3,
            "real_sha256": sha,
            "generator": None,  # this context does not say; the training loop and gan eval do
            "truncation": None,
        }
        assert context.calls == [
            ("real", 200, 64, 3),  # hashed
            ("real", 200, 64, 3),  # extracted (a cache miss)
            ("generate", 200, 64, 3),
        ]

    def test_same_images_score_zero(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Generated images identical to the real ones give exactly 0; noise scores far higher
        than other real digits."""
        real, other = digits
        assert FIDMetric(**SMALL).evaluate(_Context(real, real))["fd-digits"] == 0.0
        digits_score = FIDMetric(**SMALL).evaluate(_Context(other, real))["fd-digits"]
        noise_score = FIDMetric(**SMALL).evaluate(_Context(_noise(200), real))["fd-digits"]
        assert 0.0 < 5 * digits_score < noise_score

    def test_shape_mismatch(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Generated and real samples of different shapes are refused with both shapes."""
        real, _ = digits
        with pytest.raises(ValueError, match="shape") as exc:
            FIDMetric(**SMALL).evaluate(_Context(_noise(200, 16), real))
        assert str(exc.value) == (
            "fd-digits: generated samples have shape [1, 16, 16] but the real ones [1, 8, 8]; "
            "score against data at the generator's resolution"
        )

    def test_streams_one_batch_at_a_time(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """When a batch is made, at most the one before it is still referenced (by the loop that
        consumed it): images stream, and with FID's O(d^2) statistics memory does not grow with
        the number of samples."""
        real, other = digits
        context = _Context(other, real)
        FIDMetric(**{**SMALL, "num_generated": 1000, "batch_size": 50}).evaluate(context)
        assert context.most_alive == 1


class TestKIDMetric:
    def test_values(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Other digits score near 0 and below noise; subsets are capped at the sample count."""
        real, other = digits
        metric = KIDMetric(**SMALL, num_subsets=10, subset_size=1000)
        close = metric.evaluate(_Context(other, real))
        far = metric.evaluate(_Context(_noise(200), real))
        assert set(close) == {"kd-digits", "kd-digits_std", "protocol"}
        assert (close["protocol"]["num_subsets"], close["protocol"]["subset_size"]) == (10, 200)
        assert close["protocol"]["metric"] == "kd-digits"
        assert abs(close["kd-digits"]) < far["kd-digits"]
        assert close["kd-digits_std"] >= 0.0


class TestISMetric:
    def test_values(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Real digits of all ten classes score close to 10; no real data is drawn."""
        real, _ = digits
        context = _Context(real, real)
        result = ISMetric(**SMALL, splits=2).evaluate(context)
        assert 8.0 < result["is-digits"] <= 10.0
        protocol = result["protocol"]
        assert (protocol["splits"], protocol["metric"]) == (2, "is-digits")
        assert (protocol["num_real"], protocol["seed_real"], protocol["real_sha256"]) == (
            0,
            None,
            None,
        )
        assert [call[0] for call in context.calls] == ["generate"]


class TestPrecisionRecallMetric:
    def test_values(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Real images against themselves give precision and recall 1."""
        real, _ = digits
        result = PrecisionRecallMetric(**SMALL).evaluate(_Context(real, real))
        assert (result["precision"], result["recall"]) == (1.0, 1.0)
        assert (result["protocol"]["metric"], result["protocol"]["k"]) == ("precision-recall", 3)


class TestDensityCoverageMetric:
    def test_values(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Real images against themselves cover every ball; noise covers fewer."""
        real, _ = digits
        same = DensityCoverageMetric(**SMALL).evaluate(_Context(real, real))
        noise = DensityCoverageMetric(**SMALL).evaluate(_Context(_noise(200), real))
        assert same["coverage"] == 1.0
        assert noise["coverage"] < 0.5
        assert noise["density"] < same["density"]
        assert same["protocol"]["k"] == 5


METRICS = {
    "fid": FIDMetric,
    "kid": KIDMetric,
    "is": ISMetric,
    "precision-recall": PrecisionRecallMetric,
    "density-coverage": DensityCoverageMetric,
}


class TestRegistration:
    def test_builtin_plugin_registers_the_metrics(self) -> None:
        """Each metric is a registry component of the built-in plugin whose options are the
        metric (bound to the run's registry by its factory), satisfies the Metric protocol and
        documents every option."""
        registry = gancore.get_registry()
        for name, cls in METRICS.items():
            spec = registry.get("metric", name)
            assert (spec.provider, spec.factory, spec.options) == (
                "gancore",
                build_feature_metric,
                cls,
            )
            assert isinstance(cls(), Metric), name
            for field in attrs.fields(cls):
                assert field.metadata.get("doc"), f"{name}.{field.name}"

    def test_metrics_tables_in_a_run_file(self) -> None:
        """[[metrics]] tables structure into the metric classes; a bad option is a config error
        with its key path."""
        document = {
            "data": {"name": "digits"},
            "generator": {"name": "dcgan"},
            "critic": {"name": "dcgan"},
            "metrics": [
                {"name": "fid", "extractor": "digits-classifier", "num_generated": 500},
                {"name": "precision-recall", "k": 5},
            ],
        }
        config = gancore.parse_config(document, gancore.get_registry())
        assert config.metrics[0].options == FIDMetric(
            extractor="digits-classifier", num_generated=500
        )
        assert config.metrics[1].options == PrecisionRecallMetric(k=5)
        document["metrics"] = [{"name": "kid", "num_subset": 10}]
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.parse_config(document, gancore.get_registry())
        assert "metrics[0].num_subset: unknown key (did you mean 'num_subsets'?)" in str(exc.value)

    def test_components_command_lists_them(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`gan components metric` shows every metric with its options and their docs."""
        assert main(["components", "metric", "--json"]) == 0
        listed = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
        assert set(METRICS) <= set(listed)
        options = {o["name"]: o for o in listed["kid"]["options"]}
        assert options["num_subsets"]["default"] == 100
        assert options["extractor"]["default"] == "inception-v3"
        assert "never downloaded" in options["weights_path"]["doc"].lower()
        assert main(["components", "extractor"]) == 0
        text = capsys.readouterr().out
        assert "digits-classifier  (gancore)" in text and "inception-v3  (gancore)" in text

    def test_validation(self) -> None:
        """Counts below their minimum are refused with the option's name."""
        with pytest.raises(ValueError, match="'num_generated' must be >= 2"):
            FIDMetric(num_generated=1)

    def test_value_names(self) -> None:
        """Only inception-v3 results are called fid, kid and is."""
        assert value_name("fid", "inception-v3") == "fid"
        assert value_name("fid", "gancore:inception-v3") == "fid"
        assert value_name("fid", "digits-classifier") == "fd-digits"
        assert value_name("kid", "dino") == "kd-dino"
        assert value_name("is", "digits-classifier") == "is-digits"
        assert FIDMetric(extractor="digits-classifier").value_keys() == ["fd-digits"]
        assert KIDMetric().value_keys() == ["kid", "kid_std"]

    def test_quantize(self) -> None:
        """8-bit rounding keeps -1 and 1 and snaps values to multiples of 1/127.5 offset by -1."""
        values = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5])
        levels = (quantize_8bit(values) + 1.0) * 127.5
        torch.testing.assert_close(levels, torch.tensor([0.0, 0.0, 128.0, 191.0, 255.0, 255.0]))


class TestReferenceCache:
    def test_disk_and_memory_hits(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """A first evaluation extracts the real features and saves them; the same dataset object
        reuses them from memory (real data not even read); a fresh process reads the file (real
        data read once, to hash it) and gets the identical value."""
        real, other = digits
        dataset = _Images(real)
        first = _Context(other, dataset)
        value = FIDMetric(**SMALL).evaluate(first)["fd-digits"]
        assert [c[0] for c in first.calls] == ["real", "real", "generate"]
        assert len(list(reference_dir().glob("*.safetensors"))) == 1

        again = _Context(other, dataset)
        assert FIDMetric(**SMALL).evaluate(again)["fd-digits"] == value
        assert [c[0] for c in again.calls] == ["generate"]

        clear_memory_cache()  # as in a new process
        from_disk = _Context(other, dataset)
        assert FIDMetric(**SMALL).evaluate(from_disk)["fd-digits"] == value
        assert [c[0] for c in from_disk.calls] == ["real", "generate"]

    def test_key_is_content_and_extractor(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Other real samples, another count or quantization make new entries; the seed of the
        generated samples and the batch size do not."""
        real, other = digits
        FIDMetric(**SMALL).evaluate(_Context(other, real))
        FIDMetric(**{**SMALL, "seed": 3, "batch_size": 50}).evaluate(_Context(other, real))
        assert len(list(reference_dir().glob("*.safetensors"))) == 1
        FIDMetric(**SMALL).evaluate(_Context(other, real.flip(-1)))
        FIDMetric(**{**SMALL, "num_real": 150}).evaluate(_Context(other, real))
        FIDMetric(**SMALL, quantize=False).evaluate(_Context(other, real))
        assert len(list(reference_dir().glob("*.safetensors"))) == 4

    def test_features_entry_serves_fid(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """KID's entry (with raw features) also serves FID; FID's (statistics only) cannot serve
        KID, which extracts and saves its own."""
        real, other = digits
        KIDMetric(**SMALL, num_subsets=2).evaluate(_Context(other, real))
        clear_memory_cache()
        fid = _Context(other, real)
        FIDMetric(**SMALL).evaluate(fid)
        assert [c[0] for c in fid.calls] == ["real", "generate"]

    def test_off_and_damaged(self, digits: tuple[torch.Tensor, torch.Tensor]) -> None:
        """cache_reference = false writes nothing; a damaged file is recomputed and replaced."""
        real, other = digits
        FIDMetric(**SMALL, cache_reference=False).evaluate(_Context(other, real))
        assert not reference_dir().exists()
        value = FIDMetric(**SMALL).evaluate(_Context(other, real))["fd-digits"]
        (entry,) = reference_dir().glob("*.safetensors")
        entry.write_bytes(b"damaged")
        clear_memory_cache()
        context = _Context(other, real)
        assert FIDMetric(**SMALL).evaluate(context)["fd-digits"] == value
        assert [c[0] for c in context.calls] == ["real", "real", "generate"]
        assert entry.stat().st_size > 1000

    def test_location(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Entries live in $GANCORE_CACHE/reference-stats, else ~/.cache/gancore/reference-stats."""
        monkeypatch.setenv("GANCORE_CACHE", str(tmp_path / "c"))
        assert reference_dir() == tmp_path / "c" / "reference-stats"
        monkeypatch.delenv("GANCORE_CACHE")
        monkeypatch.setenv("HOME", str(tmp_path))
        assert reference_dir() == tmp_path / ".cache" / "gancore" / "reference-stats"


def _result(**protocol: object) -> dict[str, object]:
    base = {"metric": "fid", "num_generated": 100, "generator": "ema"}
    return {"run": "a", "fid.fid": 12.5, "fid.protocol": {**base, **protocol}}


class TestCompareResults:
    def test_equal_protocols(self) -> None:
        """Values of metrics with equal protocols are compared: this, other, difference."""
        other = {**_result(), "run": "b", "fid.fid": 10.0}
        assert compare_results(_result(), other) == {
            "fid.fid": {"this": 12.5, "other": 10.0, "difference": 2.5}
        }

    def test_different_protocols(self) -> None:
        """Any differing field refuses the comparison, in one line naming fields and values."""
        other = _result(num_generated=50_000, generator="raw")
        with pytest.raises(ProtocolMismatchError) as exc:
            compare_results(_result(), other)
        assert str(exc.value) == (
            "cannot compare: fid: protocols differ in num_generated 100 here, 50000 there, "
            "generator 'ema' here, 'raw' there"
        )

    def test_missing_metric(self) -> None:
        """A metric the other result lacks is refused."""
        other = {"kid.kid": 0.1, "kid.protocol": {"metric": "kid"}}
        with pytest.raises(
            ProtocolMismatchError, match=r"fid: missing from the other result \(it has: kid\)"
        ):
            compare_results(_result(), other)
