"""Feature extractors for SRGAN's content loss and for perceptual distances: ``vgg19`` and
``sr-features``.

Both are registered under the core's ``extractor`` kind, so a metric can use them like
``inception-v3``, and both give the ``srgan`` task what its content loss needs
(:func:`gan_superres.task.content_features`):

- ``feature_map(images)``: spatial features ``[N, C', h', w']`` of images ``[N, 3, H, W]`` in
  ``[-1, 1]`` at their own size (nothing is resized); parameters are frozen, gradients flow to
  the images.
- ``content_scale``: the factor ``s`` the task multiplies both feature maps by before the
  content MSE, so that ``MSE(s phi(SR), s phi(HR))`` is of the size of a pixel MSE.
- ``forward(images)``: the feature map's global average ``[N, C']`` after resizing the images to
  ``input_size`` (``resize_filter``: bilinear, half-pixel centres, antialiased), as every core
  extractor does; ``input_size``, ``resize_filter`` and ``weights_sha256`` state the protocol.

**vgg19** (Simonyan & Zisserman 2015) is the loss network of SRGAN (Ledig et al. 2017): the 16
3x3 convolutions of VGG19 in the module layout of torchvision's ``vgg19().features`` (indices
0..36: conv/ReLU pairs, max pools at 4, 9, 18, 27, 36), so the state dict torchvision released
(``vgg19-dcbb9e9d.pth``, ImageNet, about 548 MB; keys ``features.N.weight``/``bias``, the
``classifier.*`` keys are ignored) loads as it is. Images go from ``[-1, 1]`` to ``[0, 1]``, then
are standardised with ImageNet's channel means and deviations. ``layer`` picks the feature map:
``relu5_4`` (the paper's VGG54: the 4th convolution's activation of block 5, before its pool;
512 channels at ``H / 16``), ``relu2_2`` (VGG22: 128 channels at ``H / 2``), any other
``reluB_K``, or ``convB_K`` (the same convolution before its ReLU, as ESRGAN uses). Its
``content_scale`` is the paper's ``1 / 12.75`` ("to obtain VGG losses of a scale that is
comparable to the MSE loss"). The weights are read from a local file only (``weights_path``,
default ``$GANCORE_CACHE/weights/vgg19-dcbb9e9d.pth``) and their sha256 must begin with
``dcbb9e9d``, the hash prefix in the released file's name (torch.hub's convention), unless
``sha256`` names another. Nothing is downloaded. ``input_size`` 224 (ImageNet's).

**sr-features** is a small VGG-style network trained and bundled with this plugin (288 KB), the
offline stand-in for VGG19, whose weights cannot be fetched everywhere. Three blocks of two 3x3
convolutions with ReLU (16, 32 and 64 channels; 2x2 max pools between blocks); the content map is
the last block's activation, 64 channels at ``H / 4`` (receptive field 32 pixels); images enter in
``[-1, 1]`` as they are. ``scripts/train_sr_features.py`` trained it (2,500 steps, about two
minutes on two CPU cores, deterministic) on random 32x32 crops of the left three quarters of the
twelve default training photos (:data:`gan_superres.datasets.TRAIN_PHOTOS`; the held-out photos
chelsea, rocket, camera and coins were never read), each crop in three versions, with two linear
heads on the logarithm of the globally pooled features (so that they compare energies as ratios,
whatever a crop's contrast) and the objective ``0.3 CE(photo) + CE(degradation)``:

- *which photo* the crop comes from (12 classes): texture and colour statistics;
- *how it was degraded* (3 classes): sharp, or bicubic down and up by 2, or by 4
  (:mod:`gan_superres.degrade`): features that respond to lost detail, which is what a
  super-resolution content loss must see. (At weight 1 the photo task crowded this one out.)

On 1,800 crops of the right quarters (never trained on) the bundled weights name the photo with
accuracy 0.874 (chance 0.083) and the degradation with 0.899 (chance 0.333); read as sharp or not,
0.959. Some crops cannot be told apart at all: parts of retina, moon, clock and cell are as soft as
their bicubic x2 versions. :data:`SR_FEATURES_FIGURES` holds these figures; the file's metadata
keeps them with the training settings.

Its ``content_scale`` follows one rule: ``s = sqrt(pixel MSE / feature MSE)`` over the same pairs
of 96x96 high-resolution crops (8 per held-out quarter) and their bicubic x4 reconstructions
(each crop downscaled by 4 and upscaled again), so that the scaled content MSE of a bicubic result
equals its pixel MSE in ``[-1, 1]`` (0.0100 there): the two losses start on one scale, as the
paper's ``1 / 12.75`` intends for VGG. Measured: ``s = 0.004964`` (the features are large). The
rule holds over all the crops together; per photo the ratio of content to pixel MSE ranges from
about 0.1 (astronaut, brick) to 4 (cell), the content loss weighing detail unlike pixels. On the
same crops white noise of the same pixel MSE costs 0.0045 in scaled content MSE, less than half of
the blur's 0.0100: the features penalise lost detail more than equally strong noise, unlike the
pixel MSE. ``input_size`` 96 (SRGAN's crop size). The bundled file's sha256 is
:data:`SR_FEATURES_SHA256`, verified on load; the script stores the architecture and the scale in
the file's metadata, so a file it trains with other settings loads too (set ``sha256``).
"""

from __future__ import annotations

import json
import pickle
import re
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gancore.metrics.extractors import default_weights_dir, file_sha256, prepare_images

__all__ = [
    "HEAD_EPSILON",
    "SR_FEATURES_FIGURES",
    "SR_FEATURES_METADATA_KEY",
    "SR_FEATURES_SHA256",
    "VGG19",
    "VGG19_BYTES",
    "VGG19_FILENAME",
    "VGG19_LAYERS",
    "VGG19_SHA256_PREFIX",
    "SRFeatures",
    "SRFeaturesOptions",
    "VGG19Options",
    "build_sr_features",
    "build_vgg19",
    "bundled_sr_features_weights",
]

# torchvision's released ImageNet VGG19 (IMAGENET1K_V1). The name ends in the first 8 hex digits
# of the file's sha256 (torch.hub's convention); the full hash cannot be checked offline here, so
# the default check is that prefix. The size is the one torchvision documents (548.1 MB).
VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_SHA256_PREFIX = "dcbb9e9d"
VGG19_BYTES = 548_100_000  # approximate: only shown in messages

# The bundled sr-features weights (gan_superres/assets/sr_features.safetensors), written by
# scripts/train_sr_features.py, and the figures it printed for them.
SR_FEATURES_SHA256 = "40e1d42e5f100af47c13ceeaff1924bf62daf6abfd46b38c64525e70f0796180"
SR_FEATURES_FIGURES = {
    "photo_accuracy": 0.8739,  # 12 photos, chance 0.083
    "degradation_accuracy": 0.8989,  # sharp / bicubic x2 / bicubic x4, chance 0.333
    "sharp_vs_degraded_accuracy": 0.9594,  # that head's answer read as sharp or not, chance 0.5
    "content_scale": 0.004964,
    "pixel_mse_x4": 0.01002,  # 96x96 held-out crops against bicubic x4, [-1, 1]
    "content_mse_noise": 0.004503,  # white noise of the same pixel MSE, scaled content MSE
}
SR_FEATURES_METADATA_KEY = "gan_superres"  # one JSON value: safetensors orders keys freely

HEAD_EPSILON = 1e-2  # the training heads read log(pooled features + HEAD_EPSILON)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_HEX = re.compile(r"[0-9a-f]{8,64}")


# -------------------------------------------------------------------------------------------------
# Shared pieces: checked images, verified weights files
# -------------------------------------------------------------------------------------------------


def _check_images(images: torch.Tensor, who: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"{who}.feature_map expects images [N, 3, H, W] in [-1, 1] (got "
            f"{tuple(images.shape)}); repeat grey images to 3 channels"
        )


def _check_sha256(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, str) and _HEX.fullmatch(value.lower())):
        raise ValueError(
            f"'{attribute.name}' must be a sha256 in hex, all 64 digits or its first 8 or more, "
            f"or None (got {value!r})"
        )


def _verified_file(path: Path, expected: str | None, *, who: str, missing: str) -> str:
    """The sha256 of ``path`` after checking that the file exists and that its hash begins with
    ``expected`` (a full hash or a prefix; None = not checked)."""
    if not path.is_file():
        raise FileNotFoundError(f"{who} weights not found at '{path}': {missing}")
    actual = file_sha256(path)
    if expected is not None and not actual.startswith(expected.lower()):
        wanted = expected if len(expected) == 64 else f"one beginning with {expected}"
        raise ValueError(
            f"{who} weights '{path}' have sha256 {actual} but {wanted} was expected: another "
            "or a damaged file; use the right one, or if you trust this file set 'sha256' (the "
            "srgan task's or a metric's 'weights_sha256') to its hash"
        )
    return actual


def _read_state_dict(path: Path, who: str) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file loaded with ``weights_only=True``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        OSError,
        RuntimeError,
        ValueError,
        EOFError,
        pickle.UnpicklingError,
        SafetensorError,
    ) as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise ValueError(f"{who} weights '{path}' cannot be read: {first_line}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{who} weights '{path}' hold no state dict (got {type(state).__name__})")
    return state


def _load_exactly(
    module: nn.Module, state: dict[str, torch.Tensor], path: Path, who: str, layout: str
) -> None:
    """Load ``state`` into ``module``: the same keys, the same shapes, else a one-line error."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise ValueError(
            f"{who} weights '{path}' do not fit the network ({layout}): missing keys "
            f"{missing[:3]}{' ...' if len(missing) > 3 else ''}, unexpected keys "
            f"{unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}"
        )
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{who} weights '{path}': '{key}' has shape {tuple(state[key].shape)}, the "
                f"network needs {tuple(value.shape)} ({layout})"
            )
    module.load_state_dict(state)


def _freeze(module: nn.Module) -> None:
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def _pooled(module: Any, images: torch.Tensor) -> torch.Tensor:
    """``images`` resized to the module's ``input_size``, its feature map averaged: ``[N, C']``."""
    x = prepare_images(
        images, input_size=module.input_size, channels=3, antialias=True, who=module.name
    )
    return module.feature_map(x).mean(dim=(2, 3))


# -------------------------------------------------------------------------------------------------
# vgg19
# -------------------------------------------------------------------------------------------------

# (block, convolutions, channels) of VGG19's feature part ("configuration E").
_VGG19_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))


def _vgg19_layer_indices() -> dict[str, int]:
    """``{"conv1_1": 0, "relu1_1": 1, ..., "relu5_4": 35}``: module indices in ``features``."""
    indices: dict[str, int] = {}
    index = 0
    for block, convs, _ in _VGG19_BLOCKS:
        for k in range(1, convs + 1):
            indices[f"conv{block}_{k}"] = index
            indices[f"relu{block}_{k}"] = index + 1
            index += 2
        index += 1  # the block's max pool
    return indices


_VGG19_INDEX = _vgg19_layer_indices()
VGG19_LAYERS = tuple(_VGG19_INDEX)


class VGG19(nn.Module):
    """VGG19's convolutional part, in torchvision's ``features`` layout, up to ``layer``.

    ``feature_map(images [N, 3, H, W] in [-1, 1])`` -> the output of ``layer`` (the modules of
    ``features`` up to and including its index), after mapping the images to ``[0, 1]`` and
    standardising them with ImageNet's mean and deviation. All 16 convolutions are kept, so that
    a whole torchvision state dict loads; the ones after ``layer`` are not run.

    A fresh instance has random weights; :func:`build_vgg19` loads the real ones.
    """

    input_size = 224
    resize_filter = "bilinear-antialias"  # align_corners=False, antialias=True
    content_scale = 1.0 / 12.75  # Ledig et al. 2017: VGG feature maps rescaled by 1/12.75
    mean: torch.Tensor  # [1, 3, 1, 1] buffers, outside the state dict
    std: torch.Tensor

    def __init__(self, layer: str = "relu5_4") -> None:
        super().__init__()
        if layer not in _VGG19_INDEX:
            raise ValueError(f"'layer' must be one of {', '.join(VGG19_LAYERS)} (got {layer!r})")
        self.layer = layer
        self.name = f"vgg19-{layer}"  # results and cached statistics differ per layer
        self.weights_sha256 = "random-init"
        modules: list[nn.Module] = []
        channels = 3
        for _, convs, width in _VGG19_BLOCKS:
            for _ in range(convs):
                modules += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
                channels = width
            modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)  # indices 0..36, as torchvision's
        self.stop = _VGG19_INDEX[layer] + 1
        # not in the state dict, so that it keeps torchvision's keys
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), False)
        _freeze(self)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> ``[0, 1]`` -> ``(x - mean) / std`` per channel (ImageNet's)."""
        return ((images + 1.0) / 2.0 - self.mean) / self.std

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The ``layer`` map ``[N, C', H / 2^p, W / 2^p]`` (``p`` pools before it), float32."""
        _check_images(images, self.name)
        prefix = self.features[: self.stop]  # the modules up to and including ``layer``
        return prefix(self.normalize(images.to(torch.float32)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[N, C']`` of images resized to 224x224."""
        return _pooled(self, images)


@attrs.frozen(kw_only=True)
class VGG19Options:
    """Options of the ``vgg19`` extractor."""

    weights_path: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={
            "doc": f"local file with torchvision's ImageNet VGG19 state dict ('{VGG19_FILENAME}', "
            ".pth loaded with weights_only=True, or .safetensors with the same keys); None = "
            f"$GANCORE_CACHE/weights/{VGG19_FILENAME} (GANCORE_CACHE defaults to "
            "~/.cache/gancore). Never downloaded"
        },
    )
    sha256: str | None = attrs.field(
        default=VGG19_SHA256_PREFIX,
        validator=_check_sha256,
        metadata={
            "doc": "expected sha256 of the weights file, 64 hex digits or its first 8 or more "
            f"(default '{VGG19_SHA256_PREFIX}', the prefix in the released file's name); None = "
            "do not check (the file's hash is still recorded)"
        },
    )
    layer: str = attrs.field(
        default="relu5_4",
        validator=attrs.validators.in_(VGG19_LAYERS),
        metadata={
            "doc": "feature map: 'relu5_4' (the paper's VGG54, 512 channels at H/16), "
            "'relu2_2' (VGG22, 128 channels at H/2), any 'reluB_K', or 'convB_K' (before the "
            "ReLU); B = block 1-5, K = convolution 1-2 (blocks 1-2) or 1-4 (blocks 3-5)"
        },
    )


def build_vgg19(options: VGG19Options, context: Any = None) -> VGG19:
    """A :class:`VGG19` with weights from ``options.weights_path``, verified by sha256."""
    path = Path(options.weights_path or default_weights_dir() / VGG19_FILENAME).expanduser()
    missing = (
        f"expected '{VGG19_FILENAME}', torchvision's ImageNet VGG19 state dict (about "
        f"{VGG19_BYTES / 1e6:.0f} MB, sha256 beginning with {VGG19_SHA256_PREFIX}); copy it "
        "there or set 'weights_path' (the srgan task's or a metric's option) to where it is, or "
        'use extractor = "sr-features" (bundled); weights are never downloaded'
    )
    digest = _verified_file(path, options.sha256, who="vgg19", missing=missing)
    state = _read_state_dict(path, "vgg19")
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    model = VGG19(options.layer)
    layout = "torchvision's vgg19: 'features.0.weight' ... 'features.34.bias'"
    _load_exactly(model, state, path, "vgg19", layout)
    model.weights_sha256 = digest
    _freeze(model)
    return model


# -------------------------------------------------------------------------------------------------
# sr-features
# -------------------------------------------------------------------------------------------------


class SRFeatures(nn.Module):
    """A small VGG-style feature network for super-resolution (see the module docstring).

    ``len(channels)`` blocks of ``convs_per_block`` 3x3 convolutions (zero padding) with ReLU,
    2x2 max pools between blocks; ``feature_map`` is the last block's output
    ``[N, channels[-1], H / 2^(blocks - 1), W / 2^(blocks - 1)]``. Input: ``[-1, 1]`` as it is.
    ``head_logits`` gives the two training heads' scores: which photo ``[N, num_photos]`` and
    which degradation ``[N, num_degradations]`` (0 = sharp, 1 = bicubic x2, 2 = bicubic x4).
    """

    input_size = 96  # SRGAN's high-resolution crops
    resize_filter = "bilinear-antialias"  # align_corners=False, antialias=True
    name = "sr-features"

    def __init__(
        self,
        *,
        channels: tuple[int, ...] = (16, 32, 64),
        convs_per_block: int = 2,
        num_photos: int = 12,
        num_degradations: int = 3,
        content_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.convs_per_block = convs_per_block
        self.content_scale = float(content_scale)
        self.weights_sha256 = "random-init"
        blocks = []
        width = 3
        for out in self.channels:
            layers: list[nn.Module] = []
            for _ in range(convs_per_block):
                layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU()]
                width = out
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.photo_head = nn.Linear(width, num_photos)
        self.degradation_head = nn.Linear(width, num_degradations)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The last block's map ``[N, channels[-1], H / 4, W / 4]`` (3 blocks), float32."""
        _check_images(images, self.name)
        x = images.to(torch.float32)
        for index, block in enumerate(self.blocks):
            if index:
                x = F.max_pool2d(x, 2)
            x = block(x)
        return x

    def head_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Photo logits ``[N, num_photos]`` and degradation logits ``[N, num_degradations]``
        from the pooled feature map of ``images`` at their own size."""
        pooled = self.feature_map(images).mean(dim=(2, 3))
        # logarithms: a linear head then compares energies as ratios, so that it judges detail
        # whatever the crop's contrast
        energies = torch.log(pooled + HEAD_EPSILON)
        return self.photo_head(energies), self.degradation_head(energies)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[N, channels[-1]]`` of images resized to 96x96."""
        return _pooled(self, images)


@attrs.frozen(kw_only=True)
class SRFeaturesOptions:
    """Options of the ``sr-features`` extractor."""

    weights_path: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={
            "doc": "a .safetensors file written by gan-superres's scripts/train_sr_features.py; "
            "None = the copy bundled with gan-superres"
        },
    )
    sha256: str | None = attrs.field(
        default=SR_FEATURES_SHA256,
        validator=_check_sha256,
        metadata={
            "doc": "expected sha256 of the weights file (64 hex digits, or its first 8 or "
            "more); default: the bundled file's; None = do not check"
        },
    )


def bundled_sr_features_weights() -> Path:
    """Path of the sr-features weights shipped in ``gan_superres/assets``."""
    return Path(str(resources.files("gan_superres") / "assets" / "sr_features.safetensors"))


def _architecture(path: Path) -> dict[str, Any]:
    """The hyper-parameters stored in a weights file's metadata by the training script."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if SR_FEATURES_METADATA_KEY not in metadata:
        raise ValueError(
            f"sr-features weights '{path}' have no '{SR_FEATURES_METADATA_KEY}' metadata: not a "
            "file written by scripts/train_sr_features.py"
        )
    stored = json.loads(metadata[SR_FEATURES_METADATA_KEY])
    return {
        "channels": tuple(stored["channels"]),
        "convs_per_block": int(stored["convs_per_block"]),
        "num_photos": len(stored["photos"]),
        "num_degradations": len(stored["degradations"]),
        "content_scale": float(stored["content_scale"]),
    }


def build_sr_features(options: SRFeaturesOptions, context: Any = None) -> SRFeatures:
    """An :class:`SRFeatures` with the bundled (or given) weights, verified by sha256."""
    path = Path(options.weights_path or bundled_sr_features_weights()).expanduser()
    if path.suffix != ".safetensors":
        raise ValueError(
            f"sr-features weights '{path}': expected a .safetensors file written by "
            "scripts/train_sr_features.py (its metadata holds the architecture)"
        )
    missing = (
        "the bundled file is missing from this installation; reinstall gan-superres, or run "
        "plugins/gan-superres/scripts/train_sr_features.py and set 'weights_path'"
    )
    digest = _verified_file(path, options.sha256, who="sr-features", missing=missing)
    model = SRFeatures(**_architecture(path))
    layout = f"SRFeatures(channels={model.channels}, convs_per_block={model.convs_per_block})"
    _load_exactly(model, _read_state_dict(path, "sr-features"), path, "sr-features", layout)
    model.weights_sha256 = digest
    _freeze(model)
    return model
