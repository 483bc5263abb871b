"""The feature extractors: ``vgg19`` on a random state dict in torchvision's layout, and the
bundled ``sr-features``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from gan_superres import features
from gan_superres.datasets import load_source
from gan_superres.degrade import bicubic_upscale, downscale
from gan_superres.features import (
    SR_FEATURES_FIGURES,
    SR_FEATURES_SHA256,
    VGG19,
    SRFeatures,
    SRFeaturesOptions,
    VGG19Options,
    build_sr_features,
    build_vgg19,
    bundled_sr_features_weights,
)
from gan_superres.task import Srgan, content_features
from safetensors import safe_open
from safetensors.torch import save_file

import gancore.testing as gt
from gancore.metrics import build_extractor
from gancore.metrics.extractors import file_sha256

# torchvision's vgg19().features: the indices of the 16 convolutions, and after which of them
# (counted from 1) a 2x2 max pool follows. Written out here, independently of features.py.
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
POOL_AFTER = (2, 4, 8, 12, 16)


def _images(n: int = 2, size: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=generator) * 2.0 - 1.0


@pytest.fixture(scope="module")
def vgg_state() -> dict[str, torch.Tensor]:
    """A random VGG19 state dict with torchvision's keys, classifier included (small)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        state = dict(VGG19().state_dict())
    state["classifier.0.weight"] = torch.randn(8, 4)
    state["classifier.0.bias"] = torch.randn(8)
    return state


@pytest.fixture(scope="module")
def vgg_file(vgg_state: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save(vgg_state, path)
    return path


def _vgg(path: Path, layer: str = "relu5_4") -> VGG19:
    return build_vgg19(VGG19Options(weights_path=str(path), sha256=None, layer=layer))


class TestVGG19:
    def test_loads_torchvision_layout(self, vgg_file: Path) -> None:
        """A torchvision state dict loads (classifier keys ignored); the file's hash is kept."""
        model = _vgg(vgg_file)
        assert model.weights_sha256 == file_sha256(vgg_file)
        assert model.name == "vgg19-relu5_4"
        assert not any(p.requires_grad for p in model.parameters())

    def test_shapes(self, vgg_file: Path) -> None:
        """relu5_4 is 512 channels at H/16, relu2_2 128 at H/2; forward pools to [N, C']."""
        deep, shallow = _vgg(vgg_file), _vgg(vgg_file, "relu2_2")
        images = _images()
        assert deep.feature_map(images).shape == (2, 512, 2, 2)
        assert shallow.feature_map(images).shape == (2, 128, 16, 16)
        assert deep(images).shape == (2, 512)
        assert shallow(_images(channels=1)).shape == (2, 128)

    def test_feature_map_is_the_plain_pass(
        self, vgg_file: Path, vgg_state: dict[str, torch.Tensor]
    ) -> None:
        """relu5_4 equals a hand-written pass of conv/ReLU/pool over the state dict."""
        images = _images()
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = ((images + 1) / 2 - mean) / std
        for count, index in enumerate(CONV_INDICES, start=1):
            weight, bias = (
                vgg_state[f"features.{index}.weight"],
                vgg_state[f"features.{index}.bias"],
            )
            x = F.relu(F.conv2d(x, weight, bias, padding=1))
            if count in POOL_AFTER and count != 16:  # relu5_4 comes before the last pool
                x = F.max_pool2d(x, 2)
        assert (x > 0).float().mean() > 0.25  # a live map, not all zeros
        torch.testing.assert_close(_vgg(vgg_file).feature_map(images), x, rtol=1e-5, atol=1e-8)

    def test_conv_layer_is_before_its_relu(self, vgg_file: Path) -> None:
        """conv5_4 is relu5_4 without the rectification."""
        images = _images()
        before = _vgg(vgg_file, "conv5_4").feature_map(images)
        torch.testing.assert_close(before.clamp(min=0), _vgg(vgg_file).feature_map(images))
        assert (before < 0).any()

    def test_normalization(self) -> None:
        """[-1, 1] maps to [0, 1], then ImageNet's mean and deviation per channel."""
        model = VGG19("relu1_1")
        images = torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1)
        got = model.normalize(images)
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        torch.testing.assert_close(got[0, :, 0, 0], -mean / std)
        torch.testing.assert_close(got[1, :, 0, 0], (1 - mean) / std)

    def test_gradients_reach_the_images_only(self, vgg_file: Path) -> None:
        """The feature map is differentiable in the images; the parameters get no gradient."""
        model = _vgg(vgg_file, "relu2_2")
        images = _images().requires_grad_(True)
        model.feature_map(images).square().mean().backward()
        assert images.grad is not None
        assert images.grad.abs().sum() > 0
        assert all(p.grad is None for p in model.parameters())

    def test_safetensors_file(
        self, vgg_file: Path, vgg_state: dict[str, torch.Tensor], tmp_path: Path
    ) -> None:
        """The same state dict as .safetensors loads to the same features."""
        path = tmp_path / "vgg19.safetensors"
        save_file({k: v.contiguous() for k, v in vgg_state.items()}, str(path))
        images = _images()
        torch.testing.assert_close(
            _vgg(path, "relu3_1").feature_map(images), _vgg(vgg_file, "relu3_1").feature_map(images)
        )

    def test_through_build_extractor(self, vgg_file: Path) -> None:
        """The registered extractor builds with the core's overrides and has the core's attributes."""
        digest = file_sha256(vgg_file)
        model = build_extractor("vgg19", weights_path=str(vgg_file), weights_sha256=digest)
        assert (model.input_size, model.resize_filter, model.weights_sha256) == (
            224,
            "bilinear-antialias",
            digest,
        )
        assert model.content_scale == pytest.approx(1 / 12.75)
        srgan = Srgan(extractor="vgg19", weights_path=str(vgg_file), weights_sha256=digest)
        assert srgan.content_scale(srgan.content_extractor()) == pytest.approx(1 / 12.75)

    def test_wrong_sha256(self, vgg_file: Path) -> None:
        """Another hash than the expected one is a one-line error naming file, both hashes."""
        options = VGG19Options(weights_path=str(vgg_file), sha256="ab" * 32)
        with pytest.raises(ValueError, match="sha256") as error:
            build_vgg19(options)
        text = str(error.value)
        assert str(vgg_file) in text
        assert "ab" * 32 in text
        assert file_sha256(vgg_file) in text
        assert "\n" not in text

    def test_default_hash_prefix(self, vgg_file: Path) -> None:
        """By default the hash must begin with the released file's name prefix."""
        with pytest.raises(ValueError, match="beginning with dcbb9e9d"):
            build_vgg19(VGG19Options(weights_path=str(vgg_file)))

    def test_missing_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A missing file says where it was looked for, which file is expected and the ways out."""
        monkeypatch.setenv("GANCORE_CACHE", str(tmp_path))
        with pytest.raises(FileNotFoundError) as error:
            build_vgg19(VGG19Options())
        text = str(error.value)
        assert str(tmp_path / "weights" / "vgg19-dcbb9e9d.pth") in text
        for part in ("ImageNet VGG19", "548 MB", "weights_path", 'extractor = "sr-features"'):
            assert part in text
        assert "\n" not in text

    def test_wrong_layout(self, tmp_path: Path) -> None:
        """Keys of another layout, or tensors of other shapes, are a one-line error."""
        path = tmp_path / "flat.pth"
        torch.save({"0.weight": torch.zeros(64, 3, 3, 3), "0.bias": torch.zeros(64)}, path)
        with pytest.raises(ValueError, match="do not fit") as error:
            _vgg(path)
        assert "features.0.weight" in str(error.value)
        assert "'0.weight'" in str(error.value)
        state = dict(VGG19().state_dict())
        state["features.0.weight"] = torch.zeros(32, 3, 3, 3)
        path = tmp_path / "narrow.pth"
        torch.save(state, path)
        with pytest.raises(ValueError, match=r"'features.0.weight' has shape \(32, 3, 3, 3\)"):
            _vgg(path)

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A file that is no checkpoint is a one-line error naming it."""
        path = tmp_path / "junk.pth"
        path.write_bytes(b"not a checkpoint")
        with pytest.raises(ValueError, match="cannot be read") as error:
            _vgg(path)
        assert str(path) in str(error.value)
        assert "\n" not in str(error.value)

    def test_options_are_checked(self) -> None:
        """An unknown layer or a malformed hash names the option."""
        with pytest.raises(ValueError, match="'layer'"):
            VGG19Options(layer="relu6_1")
        with pytest.raises(ValueError, match="'sha256'"):
            VGG19Options(sha256="xyz")


@pytest.fixture(scope="module")
def sr_features() -> SRFeatures:
    return build_sr_features(SRFeaturesOptions())


@pytest.fixture(scope="module")
def gravel() -> torch.Tensor:
    """Eight 32x32 crops of the right quarter of 'gravel', a training photo's region that the
    bundled weights were not trained on, in [-1, 1]."""
    (_, photo), *_ = load_source("skimage:gravel", channels=3)
    region = photo[:, :256, -128:] * 2.0 - 1.0
    return torch.stack(
        [
            region[:, top : top + 32, left : left + 32]
            for top in (0, 64, 128, 192)
            for left in (0, 64)
        ]
    )


class TestSRFeatures:
    def test_bundled_file(self, sr_features: SRFeatures) -> None:
        """The bundled file has the recorded hash and the figures and scale the docs quote."""
        path = bundled_sr_features_weights()
        assert file_sha256(path) == SR_FEATURES_SHA256 == sr_features.weights_sha256
        assert path.stat().st_size < 1_000_000
        with safe_open(str(path), framework="pt") as handle:
            stored = json.loads(handle.metadata()[features.SR_FEATURES_METADATA_KEY])
        assert stored["content_scale"] == sr_features.content_scale
        for key, value in SR_FEATURES_FIGURES.items():
            assert stored["figures"][key] == value, key

    def test_conformance(self) -> None:
        """gancore's kit accepts the extractor and its options."""
        gt.check_extractor("sr-features", image_shape=(3, 24, 24))
        gt.check_options_roundtrip("sr-features", kind="extractor")
        gt.check_options_roundtrip("vgg19", kind="extractor")

    def test_shapes(self, sr_features: SRFeatures) -> None:
        """64 channels at H/4; forward pools to [N, 64] at any size and channel count 1 or 3."""
        assert sr_features.feature_map(_images(size=40)).shape == (2, 64, 10, 10)
        assert sr_features(_images(size=40)).shape == (2, 64)
        assert sr_features(_images(channels=1)).shape == (2, 64)
        with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
            sr_features.feature_map(_images(channels=1))

    def test_gradients_reach_the_images_only(self, sr_features: SRFeatures) -> None:
        """The feature map is differentiable in the images; the parameters get no gradient."""
        images = _images().requires_grad_(True)
        sr_features.feature_map(images).square().mean().backward()
        assert images.grad is not None
        assert images.grad.abs().sum() > 0
        assert all(not p.requires_grad and p.grad is None for p in sr_features.parameters())

    def test_deterministic(self, sr_features: SRFeatures) -> None:
        """Two builds give bit-identical features, call after call."""
        again = build_sr_features(SRFeaturesOptions())
        images = _images(size=48)
        assert torch.equal(sr_features.feature_map(images), again.feature_map(images))
        assert torch.equal(sr_features(images), sr_features(images))

    def test_blur_costs_more_than_noise(
        self, sr_features: SRFeatures, gravel: torch.Tensor
    ) -> None:
        """Content distance grows with the loss of detail (x4 > x2 > slight noise), and at equal
        pixel MSE bicubic x4 costs more than white noise: what a super-resolution loss needs."""
        x2 = bicubic_upscale(downscale(gravel, 2), 2)
        x4 = bicubic_upscale(downscale(gravel, 4), 4)
        generator = torch.Generator().manual_seed(0)
        white = torch.randn(gravel.shape, generator=generator)
        target = sr_features.feature_map(gravel)

        def distance(images: torch.Tensor) -> torch.Tensor:
            return (sr_features.feature_map(images) - target).square().mean(dim=(1, 2, 3))

        slight = distance(gravel + 2 / 255 * white)
        assert (distance(x4) > distance(x2)).all()
        assert (distance(x2) > slight).all()
        same_mse = gravel + white * (x4 - gravel).square().mean().sqrt()
        assert distance(x4).mean() > distance(same_mse).mean()

    def test_degradation_head(self, sr_features: SRFeatures, gravel: torch.Tensor) -> None:
        """The training head tells sharp crops from their bicubic x4 reconstructions."""
        x4 = bicubic_upscale(downscale(gravel, 4), 4)
        _, logits = sr_features.head_logits(torch.cat([gravel, x4]))
        predicted = logits.argmax(dim=1)
        assert (predicted[:8] == 0).float().mean() >= 0.75
        assert (predicted[8:] != 0).float().mean() >= 0.75

    def test_content_scale_rule(self, sr_features: SRFeatures) -> None:
        """Over 96x96 crops of several photos, the scaled content MSE against bicubic x4 is of
        the size of the pixel MSE (the rule the script calibrates on all twelve photos; per
        photo the ratio varies)."""
        crops = []
        for name in ("brick", "coffee", "grass", "text"):
            (_, photo), *_ = load_source(f"skimage:{name}", channels=3)
            crops += [photo[:, :96, -96:], photo[:, -96:, -96:]]
        hr = torch.stack(crops) * 2.0 - 1.0
        sr = bicubic_upscale(downscale(hr, 4), 4)
        s = sr_features.content_scale
        content = F.mse_loss(sr_features.feature_map(sr) * s, sr_features.feature_map(hr) * s)
        ratio = float(content / F.mse_loss(sr, hr))
        assert 1 / 2 < ratio < 2

    def test_srgan_task_uses_it(self, sr_features: SRFeatures) -> None:
        """The srgan task builds it by name, takes its scale and feeds it grey images."""
        srgan = Srgan(extractor="sr-features")
        extractor = srgan.content_extractor()
        assert srgan.content_scale(extractor) == sr_features.content_scale
        assert content_features(extractor, _images(channels=1)).shape == (2, 64, 8, 8)

    def test_wrong_sha256(self) -> None:
        """Another hash than the expected one is a one-line error naming file and both hashes."""
        with pytest.raises(ValueError, match=SR_FEATURES_SHA256) as error:
            build_sr_features(SRFeaturesOptions(sha256="0" * 64))
        assert str(bundled_sr_features_weights()) in str(error.value)

    def test_bad_files(self, tmp_path: Path) -> None:
        """Missing file, another format, or a safetensors file without the script's metadata."""
        with pytest.raises(FileNotFoundError, match=r"missing\.safetensors"):
            build_sr_features(SRFeaturesOptions(weights_path=str(tmp_path / "missing.safetensors")))
        with pytest.raises(ValueError, match=r"expected a \.safetensors file"):
            build_sr_features(SRFeaturesOptions(weights_path=str(tmp_path / "weights.pth")))
        bare = tmp_path / "bare.safetensors"
        save_file(dict(SRFeatures().state_dict()), str(bare))
        with pytest.raises(ValueError, match="no 'gan_superres' metadata"):
            build_sr_features(SRFeaturesOptions(weights_path=str(bare), sha256=None))
