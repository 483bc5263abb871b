"""Feature extractors for the sample-quality metrics: frozen networks from images to features.

Two are built in:

- ``inception-v3``: the Inception-v3 of FID (the TensorFlow graph of 2015-12-05 used by the
  original FID and IS code, as ported by pytorch-fid and torch-fidelity), in plain PyTorch. 2048-d
  pool3 features, 1008 class logits. Its weights are not shipped: they are read from a local file
  (``weights_path``) and checked against ``sha256``. Nothing is ever downloaded.
- ``digits-classifier``: a small CNN trained on scikit-learn's bundled 8x8 digits by
  ``scripts/train_digits_extractor.py``; its weights ship with gancore. 128-d features, 10 logits.
  Scores computed with it are not FID/KID/IS and are labelled ``fd-digits``, ``kd-digits`` and
  ``is-digits``.

Every extractor takes images ``[N, C, H, W]`` in ``[-1, 1]`` (C = 1 or 3), resizes them to its
``input_size`` with its ``resize_filter`` and returns features ``[N, d]`` (float32); the
``features_and_logits`` method also returns class logits ``[N, K]``.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from PIL import Image
from torch import nn

if TYPE_CHECKING:
    from gancore._registry import Registry

__all__ = [
    "DIGITS_CLASSIFIER_ACCURACY",
    "DIGITS_CLASSIFIER_SHA256",
    "INCEPTION_V3_BYTES",
    "INCEPTION_V3_FILENAME",
    "INCEPTION_V3_SHA256",
    "REQUIRED_ATTRIBUTES",
    "RESIZE_PROTOCOLS",
    "DigitsClassifier",
    "DigitsClassifierOptions",
    "InceptionV3",
    "InceptionV3Options",
    "build_digits_classifier",
    "build_extractor",
    "build_inception_v3",
    "bundled_digits_weights",
    "cache_root",
    "default_weights_dir",
    "file_sha256",
    "load_digits_split",
    "prepare_images",
    "resize_clean",
    "resize_for_protocol",
    "resize_tf1_bilinear",
]

# The FID Inception weights as released with pytorch-fid ("pt_inception-2015-12-05-6726825d.pth";
# torch-fidelity distributes the same bytes as "weights-inception-2015-12-05-6726825d.pth"),
# converted from TensorFlow's 2015-12-05 Inception graph. The file name ends in the first 8 hex
# digits of its sha256 (torch.hub's convention). The full hash and size below are the ones several
# independent projects record for that file; gancore cannot download it to check (nor should it).
# If your file differs, the error shows its hash: check it against your source, then set 'sha256'.
INCEPTION_V3_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_V3_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_V3_BYTES = 95_628_359

# The bundled digits classifier (gancore/assets/digits_classifier.safetensors), written by
# scripts/train_digits_extractor.py; its accuracy on the held-out split of load_digits_split().
DIGITS_CLASSIFIER_SHA256 = "c27c69e876844b12ecb9f575faf3ec2aac5147507c4ee3560be651506e7a9eb0"
DIGITS_CLASSIFIER_ACCURACY = 355 / 360  # 0.9861: 355 of the 360 held-out digits


# -------------------------------------------------------------------------------------------------
# Shared pieces: input preparation, weights files
# -------------------------------------------------------------------------------------------------


def prepare_images(
    images: torch.Tensor, *, input_size: int, channels: int, antialias: bool, who: str
) -> torch.Tensor:
    """Check ``images [N, C, H, W]`` and bring them to ``[N, channels, input_size, input_size]``.

    One-channel images are repeated to three channels when ``channels == 3``. Resizing is bilinear
    with half-pixel centres (``align_corners=False``), with or without antialiasing; images already
    at ``input_size`` are left unchanged. Returns float32.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"{who} expects images [N, C, H, W] with C = 1 or 3 (got {tuple(images.shape)})"
        )
    x = images.to(torch.float32)
    if x.shape[1] != channels:
        if channels != 3:
            raise ValueError(f"{who} expects {channels}-channel images (got {x.shape[1]})")
        x = repeat(x, "n 1 h w -> n c h w", c=3)
    if x.shape[-2:] != (input_size, input_size):
        x = F.interpolate(
            x,
            size=(input_size, input_size),
            mode="bilinear",
            align_corners=False,
            antialias=antialias,
        )
    return x


# How a metric brings images to its extractor's input (the metric option ``resize``):
# - "extractor": the extractor resizes images in [-1, 1] itself, with its own filter (inception-v3:
#   bilinear, half-pixel centres, no antialias, as pytorch-fid); what gancore always did;
# - "tf-legacy": the TensorFlow-era FID code (TTUR, the StyleGAN/BigGAN evaluation code,
#   torch-fidelity): 8-bit pixels resized by TF1's ``resize_bilinear`` (no half-pixel offset, no
#   antialias), then ``(p - 128) / 128`` as in the Inception graph;
# - "clean": clean-fid's "clean" mode: 8-bit pixels, each channel resized as a float image by
#   Pillow's bicubic filter (antialiased when shrinking), clipped to [0, 255], ``(p - 128) / 128``.
RESIZE_PROTOCOLS = ("extractor", "tf-legacy", "clean")


def resize_tf1_bilinear(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """TensorFlow 1's ``tf.image.resize_bilinear(align_corners=False)`` of ``pixels [N, C, H, W]``.

    Output pixel ``i`` samples input coordinate ``i * in / out`` (no half-pixel offset; the scale
    in float32, as TF computes it), between rows ``floor`` and ``floor + 1`` clamped to the last
    row, weights linear in the fraction; columns first, then rows. No antialiasing: shrinking skips
    pixels (aliasing). Returns float32.
    """
    x = pixels.to(torch.float32)

    def taps(size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = torch.tensor(size_in / size_out, dtype=torch.float32, device=x.device)
        where = torch.arange(size_out, dtype=torch.float32, device=x.device) * scale
        low = where.floor().clamp(max=size_in - 1)
        high = (low + 1).clamp(max=size_in - 1)
        return low.long(), high.long(), where - low

    left, right, across = taps(x.shape[-1], width)
    rows = x[..., left] + (x[..., right] - x[..., left]) * across
    top, bottom, down = taps(x.shape[-2], height)
    upper, lower = rows[..., top, :], rows[..., bottom, :]
    return upper + (lower - upper) * rearrange(down, "h -> h 1")


def resize_clean(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """clean-fid's resize of ``pixels [N, C, H, W]`` (values 0..255): every channel of every image
    as a Pillow float image (mode ``F``), ``Image.resize`` with the bicubic filter (its support
    widens with the scale when shrinking: antialiased), clipped to ``[0, 255]``. float32."""
    planes = pixels.detach().to("cpu", torch.float32).numpy()
    out = np.empty((*planes.shape[:2], height, width), dtype=np.float32)
    for n, image in enumerate(planes):
        for c, plane in enumerate(image):
            resized = Image.fromarray(plane, mode="F").resize(
                (width, height), Image.Resampling.BICUBIC
            )
            out[n, c] = np.asarray(resized, dtype=np.float32)
    return torch.from_numpy(out.clip(0.0, 255.0)).to(pixels.device)


def resize_for_protocol(images: torch.Tensor, protocol: str, input_size: int) -> torch.Tensor:
    """``images [N, C, H, W]`` in ``[-1, 1]`` (already rounded to 256 levels) as the extractor
    should see them under ``protocol`` (:data:`RESIZE_PROTOCOLS`): unchanged for "extractor";
    for "tf-legacy" and "clean", 8-bit pixels ``p = (x + 1) * 127.5`` resized to
    ``input_size`` x ``input_size`` by :func:`resize_tf1_bilinear` or :func:`resize_clean`, then
    ``(p - 128) / 128``, the Inception graph's own scaling."""
    if protocol == "extractor":
        return images
    if protocol not in RESIZE_PROTOCOLS:
        raise ValueError(
            f"resize must be one of {', '.join(map(repr, RESIZE_PROTOCOLS))} (got {protocol!r})"
        )
    pixels = ((images.to(torch.float32).clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    resize = resize_tf1_bilinear if protocol == "tf-legacy" else resize_clean
    return (resize(pixels, input_size, input_size) - 128.0) / 128.0


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or from a torch file loaded with ``weights_only=True``."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return dict(state)


def _verified_state_dict(
    path: Path, expected_sha256: str | None, *, who: str, missing_hint: str
) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict in ``path`` and the file's sha256, after checking it against the expected."""
    if not path.is_file():
        raise FileNotFoundError(f"{who} weights not found at '{path}': {missing_hint}")
    actual = file_sha256(path)
    if expected_sha256 is not None and actual != expected_sha256.lower():
        raise ValueError(
            f"{who} weights '{path}' have sha256 {actual} but {expected_sha256} was expected: "
            "another or a damaged file; use the right one, or if you trust this file set "
            "'weights_sha256' (a metric option) to its hash"
        )
    return _read_state_dict(path), actual


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path, who: str) -> None:
    """Load ``state`` into ``module``; every key must match."""
    # BatchNorm counters are not part of every exported file; they do not affect eval outputs.
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{who} weights '{path}' do not fit the network: missing keys "
            f"{result.missing_keys[:3]}, unexpected keys {result.unexpected_keys[:3]}"
        )


def _freeze(module: nn.Module) -> None:
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)


# -------------------------------------------------------------------------------------------------
# inception-v3
# -------------------------------------------------------------------------------------------------


class _ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, the TF graph's) and ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _Conv(NamedTuple):
    """One ``_ConvBN`` of a branch: its state-dict name and its shape."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int | tuple[int, int]
    stride: int = 1
    padding: int | tuple[int, int] = 0


class _Branch(NamedTuple):
    """One parallel path of an Inception block: optional pooling, a chain of convolutions, then
    optionally a fork of two convolutions on the chain's output whose results are concatenated."""

    pool: str | None  # "avg": 3x3/1, padding 1 not counted; "max": 3x3/1 pad 1; "max2": 3x3/2
    chain: Sequence[_Conv]
    fork: tuple[_Conv, _Conv] | None = None


class _InceptionBlock(nn.Module):
    """Parallel branches whose outputs are concatenated along channels, in the listed order."""

    def __init__(self, branches: Sequence[_Branch]) -> None:
        super().__init__()
        self.branches = list(branches)
        for branch in self.branches:
            for spec in [*branch.chain, *(branch.fork or ())]:
                self.add_module(spec.name, _ConvBN(*spec[1:]))

    def _conv(self, spec: _Conv, x: torch.Tensor) -> torch.Tensor:
        return self.get_submodule(spec.name)(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for branch in self.branches:
            y = x
            if branch.pool == "avg":  # TF's average pool ignores the padding
                y = F.avg_pool2d(y, 3, stride=1, padding=1, count_include_pad=False)
            elif branch.pool == "max":
                y = F.max_pool2d(y, 3, stride=1, padding=1)
            elif branch.pool == "max2":
                y = F.max_pool2d(y, 3, stride=2)
            for spec in branch.chain:
                y = self._conv(spec, y)
            if branch.fork is not None:
                y = torch.cat([self._conv(branch.fork[0], y), self._conv(branch.fork[1], y)], 1)
            outputs.append(y)
        return torch.cat(outputs, dim=1)


def _block_35(c: int, pool_channels: int) -> _InceptionBlock:
    """35x35 block (Mixed_5b-d): 64 + 64 + 96 + pool_channels output channels."""
    return _InceptionBlock(
        [
            _Branch(None, [_Conv("branch1x1", c, 64, 1)]),
            _Branch(None, [_Conv("branch5x5_1", c, 48, 1), _Conv("branch5x5_2", 48, 64, 5, 1, 2)]),
            _Branch(
                None,
                [
                    _Conv("branch3x3dbl_1", c, 64, 1),
                    _Conv("branch3x3dbl_2", 64, 96, 3, 1, 1),
                    _Conv("branch3x3dbl_3", 96, 96, 3, 1, 1),
                ],
            ),
            _Branch("avg", [_Conv("branch_pool", c, pool_channels, 1)]),
        ]
    )


def _reduce_35_to_17(c: int) -> _InceptionBlock:
    """Grid reduction 35 -> 17 (Mixed_6a): 384 + 96 + c output channels."""
    return _InceptionBlock(
        [
            _Branch(None, [_Conv("branch3x3", c, 384, 3, 2)]),
            _Branch(
                None,
                [
                    _Conv("branch3x3dbl_1", c, 64, 1),
                    _Conv("branch3x3dbl_2", 64, 96, 3, 1, 1),
                    _Conv("branch3x3dbl_3", 96, 96, 3, 2),
                ],
            ),
            _Branch("max2", []),
        ]
    )


def _block_17(c: int, mid: int) -> _InceptionBlock:
    """17x17 block with factorised 7x7 convolutions (Mixed_6b-e): 4 x 192 output channels."""
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) of 1x7 and 7x1
    return _InceptionBlock(
        [
            _Branch(None, [_Conv("branch1x1", c, 192, 1)]),
            _Branch(
                None,
                [
                    _Conv("branch7x7_1", c, mid, 1),
                    _Conv("branch7x7_2", mid, mid, row[0], 1, row[1]),
                    _Conv("branch7x7_3", mid, 192, col[0], 1, col[1]),
                ],
            ),
            _Branch(
                None,
                [
                    _Conv("branch7x7dbl_1", c, mid, 1),
                    _Conv("branch7x7dbl_2", mid, mid, col[0], 1, col[1]),
                    _Conv("branch7x7dbl_3", mid, mid, row[0], 1, row[1]),
                    _Conv("branch7x7dbl_4", mid, mid, col[0], 1, col[1]),
                    _Conv("branch7x7dbl_5", mid, 192, row[0], 1, row[1]),
                ],
            ),
            _Branch("avg", [_Conv("branch_pool", c, 192, 1)]),
        ]
    )


def _reduce_17_to_8(c: int) -> _InceptionBlock:
    """Grid reduction 17 -> 8 (Mixed_7a): 320 + 192 + c output channels."""
    return _InceptionBlock(
        [
            _Branch(None, [_Conv("branch3x3_1", c, 192, 1), _Conv("branch3x3_2", 192, 320, 3, 2)]),
            _Branch(
                None,
                [
                    _Conv("branch7x7x3_1", c, 192, 1),
                    _Conv("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
                    _Conv("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)),
                    _Conv("branch7x7x3_4", 192, 192, 3, 2),
                ],
            ),
            _Branch("max2", []),
        ]
    )


def _block_8(c: int, pool: str) -> _InceptionBlock:
    """8x8 block with split 1x3/3x1 outputs (Mixed_7b-c): 320 + 768 + 768 + 192 = 2048 channels.

    The TF graph pools by average in Mixed_7b and by max in Mixed_7c (torchvision uses average in
    both, which is one of the differences that make its features unusable for FID).
    """

    def split(prefix: str) -> tuple[_Conv, _Conv]:
        return (
            _Conv(f"{prefix}a", 384, 384, (1, 3), 1, (0, 1)),
            _Conv(f"{prefix}b", 384, 384, (3, 1), 1, (1, 0)),
        )

    return _InceptionBlock(
        [
            _Branch(None, [_Conv("branch1x1", c, 320, 1)]),
            _Branch(None, [_Conv("branch3x3_1", c, 384, 1)], split("branch3x3_2")),
            _Branch(
                None,
                [_Conv("branch3x3dbl_1", c, 448, 1), _Conv("branch3x3dbl_2", 448, 384, 3, 1, 1)],
                split("branch3x3dbl_3"),
            ),
            _Branch(pool, [_Conv("branch_pool", c, 192, 1)]),
        ]
    )


class InceptionV3(nn.Module):
    """The FID Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture"), in
    the variant of TensorFlow's 2015-12-05 graph that FID (Heusel et al. 2017) and IS (Salimans et
    al. 2016) were defined with.

    Differences from torchvision's ``inception_v3``: average pools exclude padding, Mixed_7c pools
    by max, and the classifier has 1008 outputs. Module names follow the released state dicts
    (``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ``fc.weight``, ...), so
    the pytorch-fid / torch-fidelity files load as they are.

    Input: images ``[N, C, H, W]`` in ``[-1, 1]``, C = 1 (repeated to 3 channels) or 3 (RGB).
    They are resized to 299x299 by bilinear interpolation with half-pixel centres and no
    antialiasing (``F.interpolate(..., mode="bilinear", align_corners=False)``, as pytorch-fid
    does; torch-fidelity and the TF code resize uint8 images with TF1's bilinear, which differs:
    a metric's ``resize = "tf-legacy"`` does that resize before this network sees the images). ``[-1, 1]`` is the range the graph expects (its ``(x - 128) / 128`` of 8-bit pixels).

    ``forward`` returns the 2048-d pool3 features; ``features_and_logits`` also returns the 1008
    logits ``pool3 @ fc.weight^T`` without the bias, the scores the original IS code used.

    A fresh instance has random weights; :func:`build_inception_v3` loads the real ones.
    """

    input_size = 299
    resize_filter = "bilinear"  # align_corners=False, no antialias
    name = "inception-v3"
    feature_dim = 2048
    num_classes = 1008

    def __init__(self) -> None:
        super().__init__()
        self.weights_sha256 = "random-init"
        # Stem: 299 -> 149 -> 147 -> 147 -> pool 73 -> 73 -> 71 -> pool 35
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        # 35x35: 192 -> 256 -> 288 -> 288; then 17x17: 768 channels; then 8x8: 1280 -> 2048.
        self.Mixed_5b = _block_35(192, pool_channels=32)
        self.Mixed_5c = _block_35(256, pool_channels=64)
        self.Mixed_5d = _block_35(288, pool_channels=64)
        self.Mixed_6a = _reduce_35_to_17(288)
        self.Mixed_6b = _block_17(768, mid=128)
        self.Mixed_6c = _block_17(768, mid=160)
        self.Mixed_6d = _block_17(768, mid=160)
        self.Mixed_6e = _block_17(768, mid=192)
        self.Mixed_7a = _reduce_17_to_8(768)
        self.Mixed_7b = _block_8(1280, pool="avg")
        self.Mixed_7c = _block_8(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)  # 1008 classes: the graph's 1000 + background + 7 unused
        _freeze(self)

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool3 features ``[N, 2048]`` and bias-free logits ``[N, 1008]``, float32."""
        x = prepare_images(images, input_size=299, channels=3, antialias=False, who=self.name)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b):
            x = block(x)
        for block in (self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b):
            x = block(x)
        x = self.Mixed_7c(x)
        features = x.mean(dim=(2, 3))  # global average pool: "pool3"
        return features, features @ self.fc.weight.T

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[0]


@attrs.frozen(kw_only=True)
class InceptionV3Options:
    """Options of the ``inception-v3`` extractor."""

    weights_path: str | None = attrs.field(
        default=None,
        metadata={
            "doc": "local file with the FID Inception state dict (.pth loaded with "
            f"weights_only=True, or .safetensors), e.g. '{INCEPTION_V3_FILENAME}'; None = "
            f"$GANCORE_CACHE/weights/{INCEPTION_V3_FILENAME} (GANCORE_CACHE defaults to "
            "~/.cache/gancore). Never downloaded"
        },
    )
    sha256: str | None = attrs.field(
        default=INCEPTION_V3_SHA256,
        metadata={
            "doc": "expected sha256 of the weights file (64 hex digits); None = do not check "
            "(the file's hash is still recorded with every result)"
        },
    )


def cache_root() -> Path:
    """gancore's cache folder: ``$GANCORE_CACHE`` if set, else ``~/.cache/gancore``.

    It holds ``weights/`` (extractor weights you put there) and ``reference-stats/`` (cached
    features of real data, see :mod:`gancore.metrics.cache`).
    """
    configured = os.environ.get("GANCORE_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "gancore"


def default_weights_dir() -> Path:
    """Where extractors look for weights files when no ``weights_path`` is given:
    ``cache_root() / "weights"``."""
    return cache_root() / "weights"


def build_inception_v3(options: InceptionV3Options, context: Any = None) -> InceptionV3:
    """An :class:`InceptionV3` with weights from ``options.weights_path``, verified by sha256."""
    path = Path(options.weights_path or default_weights_dir() / INCEPTION_V3_FILENAME).expanduser()
    expected = options.sha256 or "not checked"
    hint = (
        f"expected the FID Inception state dict '{INCEPTION_V3_FILENAME}' "
        f"({INCEPTION_V3_BYTES:,} bytes, sha256 {expected}) released with pytorch-fid; copy it "
        "there, or set 'weights_path' (a metric option) to where it is; gancore never downloads "
        "weights"
    )
    state, digest = _verified_state_dict(
        path, options.sha256, who="inception-v3", missing_hint=hint
    )
    model = InceptionV3()
    _load_into(model, state, path, "inception-v3")
    model.weights_sha256 = digest
    _freeze(model)
    return model


# -------------------------------------------------------------------------------------------------
# digits-classifier
# -------------------------------------------------------------------------------------------------


class DigitsClassifier(nn.Module):
    """A small CNN classifying scikit-learn's 8x8 digits, used as a feature extractor.

    Input: images ``[N, 1, H, W]`` in ``[-1, 1]`` (pixel value ``v / 8 - 1`` of the 0..16 originals,
    as gancore's ``digits`` dataset makes them), resized to 16x16 by bilinear interpolation with
    half-pixel centres and antialiasing (the filter the ``digits`` dataset upsamples with).
    Three-channel images are averaged to one channel.

    Network: three 3x3 convolutions with ReLU (32, 64, 128 channels; 2x2 max pools after the first
    two: 16 -> 8 -> 4), global average pool -> 128-d features, linear -> 10 logits. Trained by
    ``scripts/train_digits_extractor.py`` (about a minute on one CPU thread); held-out accuracy
    98.6 % (355 of the 360 images of the 20 % split of :func:`load_digits_split`, measured by the
    script; :data:`DIGITS_CLASSIFIER_ACCURACY`). The features are only meaningful for digit-like
    1-channel images.
    """

    input_size = 16
    resize_filter = "bilinear-antialias"  # align_corners=False, antialias=True
    name = "digits-classifier"
    feature_dim = 128
    num_classes = 10

    def __init__(self) -> None:
        super().__init__()
        self.weights_sha256 = "random-init"
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc = nn.Linear(128, 10)

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``[N, 128]`` and logits ``[N, 10]``, float32."""
        if images.ndim == 4 and images.shape[1] == 3:
            images = images.mean(dim=1, keepdim=True)
        x = prepare_images(images, input_size=16, channels=1, antialias=True, who=self.name)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        features = F.relu(self.conv3(x)).mean(dim=(2, 3))
        return features, self.fc(features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[0]


@attrs.frozen(kw_only=True)
class DigitsClassifierOptions:
    """Options of the ``digits-classifier`` extractor."""

    weights_path: str | None = attrs.field(
        default=None,
        metadata={
            "doc": "weights file (.safetensors or .pth); None = the copy bundled with gancore"
        },
    )
    sha256: str | None = attrs.field(
        default=DIGITS_CLASSIFIER_SHA256,
        metadata={"doc": "expected sha256 of the weights file; None = do not check"},
    )


def bundled_digits_weights() -> Path:
    """Path of the digits-classifier weights shipped in ``gancore/assets``."""
    return Path(str(resources.files("gancore") / "assets" / "digits_classifier.safetensors"))


def build_digits_classifier(
    options: DigitsClassifierOptions, context: Any = None
) -> DigitsClassifier:
    """A :class:`DigitsClassifier` with the bundled (or given) weights, verified by sha256."""
    path = Path(options.weights_path or bundled_digits_weights()).expanduser()
    hint = (
        "the bundled file is missing from this installation; reinstall gancore or run "
        "scripts/train_digits_extractor.py and set 'weights_path'"
    )
    state, digest = _verified_state_dict(
        path, options.sha256, who="digits-classifier", missing_hint=hint
    )
    model = DigitsClassifier()
    _load_into(model, state, path, "digits-classifier")
    model.weights_sha256 = digest
    _freeze(model)
    return model


def load_digits_split(
    seed: int = 0, test_fraction: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as ``(train_images, train_labels, test_images, test_labels)``.

    Images ``[n, 1, 8, 8]`` float32 in ``[-1, 1]`` (``v / 8 - 1``), labels int64; a stratified split
    with ``seed``. The default split is the one the bundled classifier was trained and scored on.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().unsqueeze(1) / 8.0 - 1.0
    labels = torch.from_numpy(bunch.target).long()
    train, test = train_test_split(
        list(range(len(labels))),
        test_size=test_fraction,
        random_state=seed,
        stratify=bunch.target,
    )
    train_rows, test_rows = torch.tensor(train), torch.tensor(test)
    return images[train_rows], labels[train_rows], images[test_rows], labels[test_rows]


# -------------------------------------------------------------------------------------------------
# Building an extractor by its registered name
# -------------------------------------------------------------------------------------------------

# The attributes every extractor must have, so that a result can state its protocol.
REQUIRED_ATTRIBUTES = ("input_size", "resize_filter", "weights_sha256")

_BUILT: OrderedDict[tuple[Any, ...], nn.Module] = OrderedDict()
_BUILT_LIMIT = 4  # extractors kept built (an Inception-v3 is about 95 MB)


def build_extractor(
    name: str,
    *,
    weights_path: str | None = None,
    weights_sha256: str | None = None,
    registry: Registry | None = None,
) -> nn.Module:
    """The extractor registered as ``name`` (kind ``extractor``) in ``registry``, with verified
    weights.

    ``registry`` is the one the run was parsed with (a metric built by a run passes its build
    context's); ``None``, for scripts and notebooks, is the process-wide registry
    (:func:`gancore.get_registry`). ``weights_path`` and ``weights_sha256`` override the
    extractor's ``weights_path`` and ``sha256`` options; ``None`` keeps its defaults. The built
    module is frozen (eval mode, no gradients) and cached per extractor and options, so a metric
    evaluated every few thousand steps loads and hashes its weights once. Raises
    :class:`gancore.UnknownComponentError` for an unknown name, FileNotFoundError for a missing
    weights file, ValueError for a wrong hash or an extractor that lacks ``input_size``,
    ``resize_filter`` or ``weights_sha256``.
    """
    if registry is None:
        from gancore._plugins import get_registry

        registry = get_registry()
    spec = registry.get("extractor", name)
    fields = {f.name for f in attrs.fields(spec.options)}
    changes: dict[str, Any] = {}
    for option, value in (("weights_path", weights_path), ("sha256", weights_sha256)):
        if value is None:
            continue
        if option not in fields:
            raise ValueError(
                f"extractor {spec.qualified_name!r} has no {option!r} option, so the metric's "
                f"{'weights_path' if option == 'weights_path' else 'weights_sha256'!r} cannot be used"
            )
        changes[option] = value
    options = spec.options(**changes)
    key = (spec.qualified_name, spec.factory, options)
    if key in _BUILT:
        _BUILT.move_to_end(key)
        return _BUILT[key]
    module = spec.build(options, None)
    if not isinstance(module, nn.Module):
        raise ValueError(
            f"extractor {spec.qualified_name!r} (plugin {spec.provider!r}): factory returned "
            f"{type(module).__name__}, expected a torch.nn.Module"
        )
    missing = [a for a in REQUIRED_ATTRIBUTES if getattr(module, a, None) is None]
    if missing:
        raise ValueError(
            f"extractor {spec.qualified_name!r} (plugin {spec.provider!r}) lacks "
            f"{', '.join(missing)}; a FeatureExtractor states its input size, resize filter and "
            "weights hash so that results can carry their protocol"
        )
    if not getattr(module, "name", None):
        # results are labelled with the registered name (a plain attribute, not a tensor)
        module.name = spec.name  # type: ignore[assignment]
    _freeze(module)
    _BUILT[key] = module
    while len(_BUILT) > _BUILT_LIMIT:
        _BUILT.popitem(last=False)
    return module
