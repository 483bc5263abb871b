"""Tests of the feature extractors: shapes, weights loading and its error texts, the bundled
digits classifier."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import torch
from safetensors.torch import save_file

import gancore
from gancore.metrics.extractors import (
    DIGITS_CLASSIFIER_ACCURACY,
    DIGITS_CLASSIFIER_SHA256,
    INCEPTION_V3_FILENAME,
    INCEPTION_V3_SHA256,
    DigitsClassifier,
    DigitsClassifierOptions,
    InceptionV3,
    InceptionV3Options,
    build_digits_classifier,
    build_extractor,
    build_inception_v3,
    bundled_digits_weights,
    file_sha256,
    load_digits_split,
)
from gancore.protocols import FeatureExtractor


@pytest.fixture(scope="module")
def inception() -> InceptionV3:
    torch.manual_seed(0)
    return InceptionV3()


class TestInceptionV3:
    def test_architecture_size(self, inception: InceptionV3) -> None:
        """The network has the 23,850,960 parameters of Inception-v3 without the auxiliary head,
        with a 1008-way classifier."""
        assert sum(p.numel() for p in inception.parameters()) == 23_850_960
        assert tuple(inception.fc.weight.shape) == (1008, 2048)

    def test_output_shapes(self, inception: InceptionV3) -> None:
        """Two 1-channel 16x16 images give features [2, 2048] and logits [2, 1008]."""
        images = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            features, logits = inception.features_and_logits(images)
        assert features.shape == (2, 2048)
        assert logits.shape == (2, 1008)
        assert features.dtype == torch.float32
        assert bool((features >= 0).all())  # pool3 averages ReLU outputs
        # The logits are pool3 times the classifier weights, without the bias (as IS uses them).
        torch.testing.assert_close(logits, features @ inception.fc.weight.T)

    def test_protocol_attributes(self, inception: InceptionV3) -> None:
        """It is a FeatureExtractor: 299 input, bilinear resize, a weights hash."""
        assert isinstance(inception, FeatureExtractor)
        assert (inception.input_size, inception.resize_filter) == (299, "bilinear")
        assert inception.weights_sha256 == "random-init"
        assert not any(p.requires_grad for p in inception.parameters())

    def test_rejects_bad_shapes(self, inception: InceptionV3) -> None:
        """Images with 2 channels are refused with the shape that was given."""
        with pytest.raises(ValueError, match=r"C = 1 or 3 \(got \(2, 2, 8, 8\)\)"):
            inception(torch.zeros(2, 2, 8, 8))


class TestInceptionWeights:
    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is one line naming the path, the expected file, its size and hash, the
        option to set, and that nothing is downloaded."""
        path = tmp_path / "nowhere.pth"
        with pytest.raises(FileNotFoundError) as exc:
            build_inception_v3(InceptionV3Options(weights_path=str(path)))
        assert str(exc.value) == (
            f"inception-v3 weights not found at '{path}': expected the FID Inception state dict "
            "'pt_inception-2015-12-05-6726825d.pth' (95,628,359 bytes, sha256 "
            "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2) released with "
            "pytorch-fid; copy it there, or set 'weights_path' (a metric option) to where it is; "
            "gancore never downloads weights"
        )

    def test_default_location(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without weights_path the file is looked for in $GANCORE_CACHE/weights, and in
        ~/.cache/gancore/weights when GANCORE_CACHE is unset."""
        monkeypatch.setenv("GANCORE_CACHE", str(tmp_path / "cache"))
        with pytest.raises(FileNotFoundError) as exc:
            build_inception_v3(InceptionV3Options())
        expected = tmp_path / "cache" / "weights" / INCEPTION_V3_FILENAME
        assert f"not found at '{expected}'" in str(exc.value)
        monkeypatch.delenv("GANCORE_CACHE")
        monkeypatch.setenv("HOME", str(tmp_path))
        with pytest.raises(FileNotFoundError) as exc:
            build_inception_v3(InceptionV3Options())
        expected = tmp_path / ".cache" / "gancore" / "weights" / INCEPTION_V3_FILENAME
        assert f"not found at '{expected}'" in str(exc.value)

    def test_hash_mismatch(self, tmp_path: Path) -> None:
        """A file with another hash is refused in one line showing both hashes and the way out."""
        path = tmp_path / INCEPTION_V3_FILENAME
        path.write_bytes(b"not the inception weights")
        with pytest.raises(ValueError, match="sha256") as exc:
            build_inception_v3(InceptionV3Options(weights_path=str(path)))
        assert str(exc.value) == (
            f"inception-v3 weights '{path}' have sha256 {file_sha256(path)} but "
            f"{INCEPTION_V3_SHA256} was expected: another or a damaged file; use the right one, "
            "or if you trust this file set 'weights_sha256' (a metric option) to its hash"
        )

    def test_loads_file_without_batchnorm_counters(
        self, tmp_path: Path, inception: InceptionV3
    ) -> None:
        """A .pth state dict without num_batches_tracked loads, is verified, and its hash is
        recorded on the model."""
        state = {k: v for k, v in inception.state_dict().items() if "num_batches" not in k}
        path = tmp_path / "inception.pth"
        torch.save(state, path)
        digest = file_sha256(path)
        model = build_inception_v3(InceptionV3Options(weights_path=str(path), sha256=digest))
        assert model.weights_sha256 == digest
        torch.testing.assert_close(model.fc.weight, inception.fc.weight)
        torch.testing.assert_close(
            model.Mixed_7c.branch3x3dbl_3b.bn.running_var,
            inception.Mixed_7c.branch3x3dbl_3b.bn.running_var,
        )


@pytest.fixture(scope="module")
def digits() -> DigitsClassifier:
    return build_digits_classifier(DigitsClassifierOptions())


class TestDigitsClassifier:
    def test_bundled_weights_verified(self, digits: DigitsClassifier) -> None:
        """The bundled file exists, is small and matches the recorded sha256."""
        path = bundled_digits_weights()
        assert path.is_file()
        assert path.stat().st_size < 500_000
        assert file_sha256(path) == DIGITS_CLASSIFIER_SHA256
        assert digits.weights_sha256 == DIGITS_CLASSIFIER_SHA256
        assert isinstance(digits, FeatureExtractor)

    def test_heldout_accuracy(self, digits: DigitsClassifier) -> None:
        """Accuracy on the held-out split is what the training script reported (98.6 %), within
        half a point."""
        _, _, images, labels = load_digits_split()
        with torch.no_grad():
            _, logits = digits.features_and_logits(images)
        accuracy = float((logits.argmax(dim=1) == labels).double().mean())
        assert round(DIGITS_CLASSIFIER_ACCURACY, 4) == 0.9861
        assert accuracy >= DIGITS_CLASSIFIER_ACCURACY - 0.005

    def test_shapes_and_resize(self, digits: DigitsClassifier) -> None:
        """8x8 and 16x16 inputs give [N, 128] features and [N, 10] logits; 3 channels are
        averaged to 1."""
        images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
        with torch.no_grad():
            features, logits = digits.features_and_logits(images)
            rgb = digits(images.expand(3, 3, 8, 8))
        assert (features.shape, logits.shape) == ((3, 128), (3, 10))
        torch.testing.assert_close(rgb, features)
        assert (digits.input_size, digits.resize_filter) == (16, "bilinear-antialias")

    def test_hash_mismatch(self, tmp_path: Path) -> None:
        """Weights other than the recorded ones are refused unless their hash is given."""
        path = tmp_path / "digits.safetensors"
        save_file({k: v.contiguous() for k, v in DigitsClassifier().state_dict().items()}, path)
        with pytest.raises(ValueError, match=DIGITS_CLASSIFIER_SHA256):
            build_digits_classifier(DigitsClassifierOptions(weights_path=str(path)))
        digest = file_sha256(path)
        model = build_digits_classifier(
            DigitsClassifierOptions(weights_path=str(path), sha256=digest)
        )
        assert model.weights_sha256 == digest

    def test_state_dict_that_does_not_fit(self, tmp_path: Path) -> None:
        """A state dict with a missing key is refused, naming the key."""
        state = DigitsClassifier().state_dict()
        del state["fc.bias"]
        path = tmp_path / "digits.pth"
        torch.save(state, path)
        options = DigitsClassifierOptions(weights_path=str(path), sha256=None)
        with pytest.raises(ValueError, match=r"do not fit the network: missing keys \['fc.bias'\]"):
            build_digits_classifier(options)


class _Mean(torch.nn.Module):
    """A user extractor: per-channel means and standard deviations (features [N, 2C])."""

    input_size = 8
    resize_filter = "none"
    weights_sha256 = "no-weights"

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], dim=1) * self.scale


@attrs.frozen(kw_only=True)
class _NoOptions:
    """The test extractors have no options."""


class _UserPlugin:
    """An in-process plugin registering two extractors: a valid one and one without a hash."""

    @gancore.hookimpl
    def gancore_register_extractors(self, register: gancore.RegisterCallback) -> None:
        register("channel-mean", lambda o, c: _Mean(), options=_NoOptions, description="Means.")
        register(
            "no-hash",
            lambda o, c: torch.nn.Linear(2, 2),
            options=_NoOptions,
            description="Lacks the protocol attributes.",
        )


@pytest.fixture
def user_plugin() -> None:
    """The process-wide registry with _UserPlugin installed (reset by the autouse fixture)."""
    gancore.reset_registry(
        gancore.load_registry(entry_points=False, plugins=[("user", _UserPlugin())])
    )


class TestBuildExtractor:
    def test_builds_registered_extractor_once(self) -> None:
        """build_extractor looks the name up in the registry, verifies and caches the module."""
        first = build_extractor("digits-classifier")
        assert isinstance(first, DigitsClassifier)
        assert build_extractor("gancore:digits-classifier") is first
        assert not first.training and not any(p.requires_grad for p in first.parameters())

    def test_registered_by_the_builtin_plugin(self) -> None:
        """Both built-in extractors are registry components with documented options."""
        registry = gancore.get_registry()
        for name, options in (
            ("inception-v3", InceptionV3Options),
            ("digits-classifier", DigitsClassifierOptions),
        ):
            spec = registry.get("extractor", name)
            assert (spec.provider, spec.options) == ("gancore", options)
            assert all(f.metadata.get("doc") for f in attrs.fields(options))

    def test_unknown_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unknown name is the registry's error, with a suggestion and the choices (the
        built-in extractors only: plugins such as gan-superres add their own)."""
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "")
        gancore.reset_registry()
        with pytest.raises(gancore.UnknownComponentError) as exc:
            build_extractor("digit-classifier")
        assert str(exc.value) == (
            "unknown extractor 'digit-classifier' (did you mean 'digits-classifier'?); "
            "available: digits-classifier, inception-v3"
        )

    def test_weights_options_passed(self, tmp_path: Path) -> None:
        """weights_path and weights_sha256 reach the extractor's options."""
        path = tmp_path / "digits.safetensors"
        save_file({k: v.contiguous() for k, v in DigitsClassifier().state_dict().items()}, path)
        digest = file_sha256(path)
        model = build_extractor("digits-classifier", weights_path=str(path), weights_sha256=digest)
        assert model.weights_sha256 == digest

    def test_plugin_extractor(self, user_plugin: None) -> None:
        """Any nn.Module a plugin registers is an extractor, named after its registration."""
        model = build_extractor("channel-mean")
        assert isinstance(model, _Mean)
        assert model.name == "channel-mean"
        with pytest.raises(ValueError, match="has no 'weights_path' option"):
            build_extractor("channel-mean", weights_path="x.pth")

    def test_metric_resolves_in_the_run_registry(self) -> None:
        """A metric a run builds finds its extractor in the registry the run was parsed with,
        not in the process-wide one (which lacks the plugin here)."""
        registry, _ = gancore.load_registry(entry_points=False, plugins=[("user", _UserPlugin())])
        document = {
            "data": {"name": "digits", "resolution": 8},
            "metrics": [{"name": "fid", "extractor": "channel-mean", "num_generated": 2}],
        }
        config = gancore.parse_config(document, registry)
        metric = config.metrics[0].build(gancore.BuildContext(data_shape=(1, 8, 8)))
        assert metric == config.metrics[0].options  # the options are the metric
        assert isinstance(metric.load_extractor(), _Mean)
        with pytest.raises(gancore.UnknownComponentError, match="unknown extractor"):
            config.metrics[0].options.load_extractor()  # unbound: the process-wide registry

    def test_plugin_extractor_without_protocol_attributes(self, user_plugin: None) -> None:
        """A module without input_size, resize_filter and weights_sha256 is refused."""
        with pytest.raises(ValueError, match="lacks") as exc:
            build_extractor("no-hash")
        assert str(exc.value) == (
            "extractor 'user:no-hash' (plugin 'user') lacks input_size, resize_filter, "
            "weights_sha256; a FeatureExtractor states its input size, resize filter and weights "
            "hash so that results can carry their protocol"
        )
