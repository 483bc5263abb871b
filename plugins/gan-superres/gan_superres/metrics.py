"""``sr-quality``: PSNR and SSIM on the luma channel and a feature distance of super-resolved
images, next to the bicubic baseline on the same images.

The conventions are those of the single-image super-resolution literature: SRGAN (Ledig et al.
2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
Sec. 3.1) computes every measure on the Y channel with a 4-pixel strip (its scale factor) removed
from each border; SRCNN (Dong et al. 2014, "Learning a Deep Convolutional Network for Image
Super-Resolution") scores the luminance channel of YCbCr, and its evaluation code shaves
``scale`` pixels off each side. The border is left out because its pixels lack half of their
neighbours when upscaled. Images are measured as the 8-bit images they would be saved as.

- **8 bits first.** Every image (SR, bicubic, HR) in ``[-1, 1]`` becomes the levels
  ``L = round((x + 1) * 127.5)`` in ``0..255``, clamped, rounded to the nearest level (ties to
  even), as if saved as an 8-bit PNG; the SR output is scored as it would be delivered. Photos
  read from 8-bit files get their own levels back exactly.
- **Y** (:func:`rgb_to_y`): ITU-R BT.601 luma with studio swing, as MATLAB's ``rgb2ycbcr``:
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with ``R, G, B = L / 255`` in ``[0, 1]``, so Y lies
  in ``[16, 235]``. A one-channel image of grey value ``v = L / 255`` is the RGB ``(v, v, v)``:
  ``Y = 16 + 219 v`` (the three weights sum to 219). Y itself is kept as float64, not rounded
  again to an integer (MATLAB rounds it when given uint8 input; the difference is at most half a
  level).
- **Border crop**: ``border`` pixels off each of the four sides of Y (default: the scale ``r``).
- **PSNR** (:func:`psnr_y`): ``10 log10(255^2 / MSE)`` dB per image, MSE over the cropped Y.
  Identical images give ``+inf`` there (as scikit-image); the metric caps each image's PSNR at
  :data:`PSNR_CAP` (100 dB, as ``inpaint-quality``) before averaging, so that one flat crop that
  bicubic reproduces exactly (a blank page) does not make the mean infinite.
- **SSIM** (:func:`ssim_y`): Wang et al. 2004, "Image quality assessment: from error visibility
  to structural similarity", Eq. 13, with the settings of their Sec. III-C: local statistics
  under a Gaussian window of sigma 1.5 (11 taps, weights normalized to sum 1, applied
  separably, which equals the 11 x 11 circular window), ``K1 = 0.01``, ``K2 = 0.03``, data range
  ``L = 255`` (``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``), population (weighted, not ``N - 1``)
  variances and covariance,
  ``SSIM = (2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))``.
  The map is computed only where the whole window lies inside the cropped Y ('valid' windows,
  no padding): an ``h x w`` crop gives an ``(h - 10) x (w - 10)`` map, whose mean is the image's
  SSIM. That equals scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)``, which filters the padded image and then averages
  only the interior, 5 pixels in from each side (tested to 1e-6 against it).
- **Feature distance**: per image, the mean over the feature map's elements of
  ``(s phi(SR) - s phi(HR))^2``, where ``phi`` is the extractor's content feature map
  (:func:`gan_superres.task.content_features`: grey images repeated to three channels) and ``s``
  its ``content_scale``: the VGG content loss of SRGAN's training (Ledig et al. 2017), measured
  on the 8-bit images. Lower is better; 0 for identical images.

Every value is computed per image in float64 and averaged over the ``num_images`` images with an
exactly rounded sum (:func:`math.fsum`), so the result does not depend on ``batch_size`` (as long
as the generator and extractor compute each image independently of its batch).

Values: ``psnr``, ``ssim`` (the generator) and ``bicubic_psnr``, ``bicubic_ssim`` (the
baseline); with an extractor also ``feature_distance`` and ``bicubic_feature_distance``. The
``protocol`` holds what changes them: ``scale``, ``border``, ``num_images``, ``seed``,
``image_shape`` (HR ``[C, H, W]``), ``data_sha256`` (the HR and LR images scored, in order),
``low_resolution`` (the dataset's own or ``downscale``), the colour and SSIM conventions, the
extractor's name, weights sha256 and content scale, and the generator kind (EMA or raw).

The metric reads the run's ``task`` (one with a ``scale``: task ``srgan``), its ``generators``
(``"generator"``), ``dataset`` and ``device`` from the metric context (gancore's training loop
and ``gan eval`` provide them). It draws ``num_images`` items of the dataset (a permutation from
``seed``, repeated when the dataset is smaller), makes their low-resolution inputs as the task
does (:func:`gan_superres.task.low_resolution`: the dataset's ``"lr"`` or the antialiased
bicubic ``downscale``), upscales them with the generator (:func:`gan_superres.task.upscale`) and
with :func:`gan_superres.degrade.bicubic_upscale`, and scores both against the HR images.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import gancore  # at run time: option types are read with get_type_hints
from gan_superres.degrade import bicubic_upscale
from gan_superres.task import content_features, low_resolution, upscale

PSNR_CAP = 100.0  # dB: per-image PSNR is capped here before the mean

__all__ = [
    "PSNR_CAP",
    "SSIM_K1",
    "SSIM_K2",
    "SSIM_SIGMA",
    "SSIM_TAPS",
    "Y_WEIGHTS",
    "SRQuality",
    "build_sr_quality",
    "psnr_y",
    "rgb_to_y",
    "ssim_y",
]

PEAK = 255.0  # data range of Y for PSNR and SSIM (8-bit levels)
Y_OFFSET = 16.0  # BT.601 studio swing: black is Y = 16
Y_WEIGHTS = (65.481, 128.553, 24.966)  # R, G, B in [0, 1] -> Y (MATLAB's rgb2ycbcr); sum 219
SSIM_SIGMA = 1.5  # Wang et al. 2004
SSIM_TAPS = 11  # the window's side: radius 5 = int(3.5 sigma + 0.5), as scipy/scikit-image
SSIM_K1, SSIM_K2 = 0.01, 0.03


# -------------------------------------------------------------------------------------------------
# Measures
# -------------------------------------------------------------------------------------------------


def _levels(images: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` -> the 8-bit levels ``0..255``, float64 (rounded to nearest, ties to even)."""
    return ((images.double().clamp(-1.0, 1.0) + 1.0) * 127.5).round()


def rgb_to_y(images: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``[N, H, W]`` in ``[16, 235]`` (float64) of images ``[N, C, H, W]`` in
    ``[-1, 1]`` with C = 3 (RGB) or 1 (grey), after rounding them to 8 bits.

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for ``R, G, B`` in ``[0, 1]`` (MATLAB's
    ``rgb2ycbcr``); a grey value ``v`` is the RGB ``(v, v, v)``, i.e. ``Y = 16 + 219 v``.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"rgb_to_y expects images [N, C, H, W] with C = 1 or 3 (got {tuple(images.shape)})"
        )
    rgb = _levels(images).expand(-1, 3, -1, -1) / PEAK
    weights = torch.tensor(Y_WEIGHTS, dtype=torch.float64, device=images.device)
    return Y_OFFSET + torch.einsum("nchw,c->nhw", rgb, weights)


def _cropped_y(
    sr: torch.Tensor, hr: torch.Tensor, border: int, who: str, smallest: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Y of both images with ``border`` pixels off every side, after checking the shapes."""
    if sr.shape != hr.shape:
        raise ValueError(
            f"{who}: the SR images {tuple(sr.shape)} and HR images {tuple(hr.shape)} must have "
            "the same shape"
        )
    if border < 0:
        raise ValueError(f"{who}: 'border' must be >= 0 (got {border})")
    h, w = sr.shape[-2:]
    if min(h, w) - 2 * border < smallest:
        raise ValueError(
            f"{who}: {w}x{h} images with a border of {border} leave "
            f"{w - 2 * border}x{h - 2 * border} pixels; at least {smallest}x{smallest} are needed"
        )
    inner = (slice(None), slice(border, h - border), slice(border, w - border))
    return rgb_to_y(sr)[inner], rgb_to_y(hr)[inner]


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, border: int) -> torch.Tensor:
    """PSNR in dB ``[N]`` (float64) on the luma of 8-bit images, ``border`` pixels cropped from
    every side: ``10 log10(255^2 / MSE)``; ``+inf`` for identical crops."""
    a, b = _cropped_y(sr, hr, border, "psnr_y", 1)
    mse = (a - b).square().mean(dim=(1, 2))
    return 10.0 * torch.log10(PEAK**2 / mse)


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    """The 1-D window of :data:`SSIM_TAPS` taps, sigma :data:`SSIM_SIGMA`, summing to 1."""
    x = torch.arange(SSIM_TAPS, dtype=torch.float64, device=device) - SSIM_TAPS // 2
    taps = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return taps / taps.sum()


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, border: int) -> torch.Tensor:
    """Mean SSIM ``[N]`` (float64, Wang et al. 2004) on the luma of 8-bit images, ``border`` pixels
    cropped from every side; statistics from 'valid' 11 x 11 Gaussian windows (module doc)."""
    a, b = _cropped_y(sr, hr, border, "ssim_y", SSIM_TAPS)
    # the five local moments as channels, blurred by one separable, grouped 'valid' convolution
    moments = torch.stack([a, b, a * a, b * b, a * b], dim=1)  # [N, 5, h, w]
    taps = _gaussian_taps(a.device)
    blurred = F.conv2d(moments, taps.view(1, 1, -1, 1).expand(5, 1, -1, 1), groups=5)
    blurred = F.conv2d(blurred, taps.view(1, 1, 1, -1).expand(5, 1, 1, -1), groups=5)
    mu_a, mu_b, aa, bb, ab = blurred.unbind(dim=1)
    var_a = aa - mu_a.square()  # population (weighted) moments: E[a^2] - E[a]^2
    var_b = bb - mu_b.square()
    cov = ab - mu_a * mu_b
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2)
    )
    return ssim_map.mean(dim=(1, 2))


def _feature_distance(
    extractor: nn.Module, scale: float, sr: torch.Tensor, hr_features: torch.Tensor
) -> torch.Tensor:
    """Per image ``mean((s phi(SR) - s phi(HR))^2)`` ``[N]`` float64, ``phi(HR)`` given."""
    features = content_features(extractor, sr).double()
    return ((features - hr_features) * scale).square().flatten(1).mean(dim=1).cpu()


# -------------------------------------------------------------------------------------------------
# The metric
# -------------------------------------------------------------------------------------------------


def _extractor_name(value: str | None) -> str:
    """``None`` (from Python) means the same as ``""`` (from TOML): no feature distance."""
    return "" if value is None else value


def _positive(minimum: int) -> list[Any]:
    return [attrs.validators.instance_of(int), attrs.validators.ge(minimum)]


def _load(dataset: Any, rows: Sequence[int]) -> dict[str, torch.Tensor]:
    """Items ``rows`` of ``dataset`` stacked on the CPU as float32 (``get_batch`` when it has one)."""
    get_batch = getattr(dataset, "get_batch", None)
    if callable(get_batch):
        batch: Mapping[str, torch.Tensor] = get_batch(rows)
    else:
        items = [dataset[i] for i in rows]
        batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
    return {key: batch[key].float().cpu() for key in ("x", "lr") if key in batch}


METHODS = ("model", "bicubic")


@attrs.frozen(kw_only=True)
class SRQuality:
    """PSNR and SSIM on Y (8 bits, border cropped) and the content-feature distance of the
    generator's super-resolved images and of bicubic upscaling, against the HR images."""

    num_images: int = attrs.field(
        default=64,
        validator=_positive(1),
        metadata={"doc": "images scored (a seeded draw from the dataset); >= 1"},
    )
    batch_size: int = attrs.field(
        default=16,
        validator=_positive(1),
        metadata={"doc": "images per generator and extractor call; >= 1 (memory, not result)"},
    )
    seed: int = attrs.field(
        default=0,
        validator=_positive(0),
        metadata={"doc": "seed of the permutation the images are drawn from; >= 0"},
    )
    border: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(_positive(0)),
        metadata={
            "doc": "pixels cropped from each side of Y before PSNR and SSIM; >= 0; None = the "
            "task's scale factor (the convention of the SR literature)"
        },
    )
    extractor: str = attrs.field(
        default="sr-features",
        converter=_extractor_name,
        validator=attrs.validators.instance_of(str),
        metadata={
            "doc": "registered extractor whose content feature map gives 'feature_distance' "
            "(one with feature_map(): 'sr-features', 'vgg19'); '' = no feature distance"
        },
    )
    weights_path: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={"doc": "the extractor's local weights file; None = the extractor's default"},
    )
    weights_sha256: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={"doc": "expected sha256 of that file; None = the extractor's known hash"},
    )

    # Not an option: the registry the run was parsed with, in which ``extractor`` is resolved
    # (:func:`build_sr_quality` sets it); None, for a metric made in code, is the process-wide one.
    _registry: gancore.Registry | None = attrs.field(
        default=None,
        init=False,
        eq=False,
        repr=False,
        metadata={"doc": "the run's registry, from the build context (not a TOML key)"},
    )

    def bound(self, registry: gancore.Registry | None) -> SRQuality:
        """This metric, resolving its extractor in ``registry`` (a copy; options unchanged)."""
        copy = attrs.evolve(self)
        object.__setattr__(copy, "_registry", registry)  # frozen: set once, on a fresh copy
        return copy

    def value_keys(self) -> list[str]:
        """Names of the values :meth:`evaluate` returns (beside ``"protocol"``)."""
        keys = ["psnr", "ssim", "bicubic_psnr", "bicubic_ssim"]
        if self.extractor:
            keys += ["feature_distance", "bicubic_feature_distance"]
        return keys

    def load_extractor(self) -> nn.Module | None:
        """The configured extractor with verified weights, or None without one."""
        if not self.extractor:
            return None
        from gancore.metrics import build_extractor

        extractor = build_extractor(
            self.extractor,
            weights_path=self.weights_path,
            weights_sha256=self.weights_sha256,
            registry=self._registry,
        )
        if not callable(getattr(extractor, "feature_map", None)):
            raise ValueError(
                f"sr-quality: extractor {self.extractor!r} has no feature_map() (spatial content "
                "features); use 'sr-features' or 'vgg19', or extractor = '' for no feature distance"
            )
        return extractor

    def _context_parts(self, context: Any) -> tuple[int, nn.Module]:
        """The task's scale and the generator, or a one-line error naming what is missing."""
        task = getattr(context, "task", None)
        generators = getattr(context, "generators", None)
        if task is None or generators is None or "generator" not in generators:
            raise ValueError(
                "sr-quality: the metric context must provide the run's 'task' and 'generators' "
                "with a 'generator' (gancore's training loop and `gan eval` do)"
            )
        scale = getattr(task, "scale", None)
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(
                f"sr-quality: needs a super-resolution task with a 'scale' (task 'srgan'); the "
                f"run's task {type(task).__name__} has none"
            )
        return scale, generators["generator"]

    @torch.no_grad()
    def evaluate(self, context: Any) -> dict[str, Any]:
        """Score the context's generator; see the module docstring for the values."""
        scale, generator = self._context_parts(context)
        border = scale if self.border is None else self.border
        device = torch.device(context.device)
        extractor = self.load_extractor()
        content_scale = 1.0
        if extractor is not None:
            extractor = extractor.to(device)
            content_scale = float(getattr(extractor, "content_scale", 1.0))
        dataset = context.dataset
        if len(dataset) == 0:
            raise ValueError("sr-quality: the dataset is empty")
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed))
        if self.num_images > len(order):
            order = order.repeat(math.ceil(self.num_images / len(order)))
        order = order[: self.num_images]

        values: dict[str, list[float]] = {}
        # sha256 of the HR and of the LR images, in order (which data, exactly), one stream each
        # so that the hash does not depend on the batching
        digests = {"x": hashlib.sha256(), "lr": hashlib.sha256()}
        shape: tuple[int, ...] = ()
        paired = False
        for start in range(0, self.num_images, self.batch_size):
            batch = _load(dataset, order[start : start + self.batch_size].tolist())
            hr = batch["x"]
            lr = low_resolution(batch, scale)
            paired = "lr" in batch
            shape = tuple(hr.shape[1:])
            digests["x"].update(hr.numpy().tobytes())
            digests["lr"].update(lr.numpy().tobytes())
            upscaled = {
                "model": upscale(generator, lr.to(device)).float().cpu(),
                "bicubic": bicubic_upscale(lr, scale),
            }
            if upscaled["model"].shape != hr.shape:
                raise ValueError(
                    f"sr-quality: the generator made images {tuple(upscaled['model'].shape[1:])} "
                    f"from inputs {tuple(lr.shape[1:])}, but the HR images are {shape} (scale "
                    f"{scale})"
                )
            hr_features = None
            if extractor is not None:
                # the images as 8-bit files would hold them, as PSNR and SSIM see them
                hr8 = (_levels(hr) / 127.5 - 1.0).float().to(device)
                hr_features = content_features(extractor, hr8).double()
            for method, images in upscaled.items():
                prefix = "" if method == "model" else f"{method}_"
                scores = {
                    "psnr": psnr_y(images, hr, border).clamp(max=PSNR_CAP),
                    "ssim": ssim_y(images, hr, border),
                }
                if extractor is not None and hr_features is not None:
                    images8 = (_levels(images) / 127.5 - 1.0).float().to(device)
                    scores["feature_distance"] = _feature_distance(
                        extractor, content_scale, images8, hr_features
                    )
                for key, per_image in scores.items():
                    values.setdefault(prefix + key, []).extend(per_image.tolist())

        # an exactly rounded sum: the mean does not depend on how the images were batched
        result: dict[str, Any] = {
            key: math.fsum(per_image) / self.num_images for key, per_image in values.items()
        }
        digest = hashlib.sha256(digests["x"].digest() + digests["lr"].digest())
        digest.update(json.dumps({"shape": list(shape), "count": self.num_images}).encode())
        result["protocol"] = {
            "metric": "sr-quality",
            "scale": scale,
            "border": border,
            "num_images": self.num_images,
            "seed": self.seed,
            "image_shape": list(shape),
            "data_sha256": digest.hexdigest(),
            "low_resolution": "dataset 'lr'" if paired else "downscale: bicubic-antialias",
            "quantize_8bit": True,
            "color": "Y, ITU-R BT.601 (rgb2ycbcr), 16-235",
            "ssim": (
                f"gaussian sigma {SSIM_SIGMA}, {SSIM_TAPS} taps, K1 {SSIM_K1}, K2 {SSIM_K2}, "
                f"data range {PEAK:g}, valid windows, population covariance"
            ),
            "extractor": str(getattr(extractor, "name", self.extractor)) if extractor else None,
            "extractor_weights_sha256": (
                str(getattr(extractor, "weights_sha256", "")) if extractor else None
            ),
            "content_scale": content_scale if extractor is not None else None,
            "generator": getattr(context, "generator_kind", None),
            "truncation": getattr(context, "truncation", None),
        }
        return result


def build_sr_quality(options: SRQuality, context: gancore.BuildContext) -> SRQuality:
    """The factory of ``sr-quality``: the options (the metric itself), resolving its
    ``extractor`` in the registry of ``context`` (the run's), not a process-wide one."""
    return options.bound(getattr(context, "registry", None))
