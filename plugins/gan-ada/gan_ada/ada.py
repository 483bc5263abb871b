"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data").

``ada``: a pipeline of ops, each applied to each image independently with probability ``p``;
geometric ops are composed into one matrix and the image is resampled once, colour ops are
composed into one 4x4 matrix. An adaptive controller moves ``p`` from the overfitting heuristic
``r_t = E[sign(D(x_real))]`` that gancore's loop reports every ``interval`` critic steps.

The augmenter is an ``nn.Module``, differentiable in the images (gradients of any order reach the
input); it works on 1- and 3-channel images (and on other channel counts when ``color_channels``
says which channels are colour), and :meth:`~gan_ada.common.PairedAugmenter.augment_together`
applies one random transform to several tensors (an image and its mask).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import attrs
import torch

from gan_ada import ops
from gan_ada.common import (
    COLOR_CHANNELS_DOC,
    GE0,
    QUANTILE_DOC,
    ColorGroups,
    PairedAugmenter,
    check_color_channels,
    check_images,
    check_quantile,
    float_field,
    map_groups,
)
from gan_ada.ops import Draws

__all__ = [
    "COLOR_OPS",
    "GEOMETRIC_OPS",
    "OPS",
    "PIPELINES",
    "AdaOptions",
    "AdaptiveAugment",
    "AugmentParams",
    "build_ada",
]

GEOMETRIC_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
PIXEL_OPS = ("filter", "noise", "cutout")
OPS = GEOMETRIC_OPS + COLOR_OPS + PIXEL_OPS  # the paper's order, in which ops are applied

# The pipelines of the paper's Figure 4 (b = blit, g = geometric, c = color, f = filter,
# n = noise, c = cutout).
_BLIT = ("xflip", "rotate90", "xint")
_GEOM = ("scale", "rotate", "aniso", "xfrac")
PIPELINES: dict[str, tuple[str, ...]] = {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": COLOR_OPS,
    "filter": ("filter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
    "bg": _BLIT + _GEOM,
    "bgc": _BLIT + _GEOM + COLOR_OPS,
    "bgcf": _BLIT + _GEOM + COLOR_OPS + ("filter",),
    "bgcfn": _BLIT + _GEOM + COLOR_OPS + ("filter", "noise"),
    "bgcfnc": _BLIT + _GEOM + COLOR_OPS + ("filter", "noise", "cutout"),
}
_CHANNEL_OPS = frozenset((*COLOR_OPS, "filter", "noise"))  # ops that need colour channels

# The warning when p stays near p_max: within NEAR_MAX of it for NEAR_MAX_SHARE * speed_images
# consecutive real images.
NEAR_MAX = 0.01
NEAR_MAX_SHARE = 0.1


def _check_ops(instance: Any, attribute: Any, value: tuple[str, ...] | None) -> None:
    if value is None:
        return
    unknown = [name for name in value if name not in OPS]
    if unknown:
        raise ValueError(f"'ops' must name ops among {', '.join(OPS)} (got {unknown[0]!r})")
    if len(set(value)) != len(value):
        raise ValueError(f"'ops' must not repeat an op (got {list(value)})")


def _check_p(instance: Any, attribute: Any, value: float) -> None:
    # Options are validated key by key (instance may be None): p <= p_max is checked at build.
    p_max = getattr(instance, "p_max", 1.0)
    if not 0.0 <= value <= p_max:
        raise ValueError(f"'p' must be in [0, p_max = {p_max}] (got {value})")


@attrs.frozen(kw_only=True)
class AdaOptions:
    """Options of ``ada``. Defaults from Karras et al. 2020 (Appendix B.1, C.2)."""

    pipeline: str = attrs.field(
        default="bgc",
        validator=attrs.validators.in_(tuple(PIPELINES)),
        metadata={
            "doc": "ops of the paper's pipelines: 'bgc' (blit, geometric, colour; the paper's "
            f"default), or one of {', '.join(repr(k) for k in PIPELINES if k != 'bgc')}"
        },
    )
    ops: tuple[str, ...] | None = attrs.field(
        default=None,
        validator=_check_ops,
        metadata={
            "doc": "explicit list of ops instead of 'pipeline', applied in the paper's order "
            f"whatever the list's order; names: {', '.join(OPS)}; None = the pipeline's"
        },
    )
    p: float = float_field(
        0.0,
        "initial augmentation probability (the fixed one when adaptive = false); 0 to p_max",
        _check_p,
    )
    adaptive: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={"doc": "adjust p from r_t = E[sign(D(real))]; false = fixed p"},
    )
    target: float = float_field(
        0.6,
        "value of r_t the controller aims at; -1 to 1 (the paper's 0.6)",
        attrs.validators.ge(-1.0),
        attrs.validators.le(1.0),
    )
    interval: int = attrs.field(
        default=4,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "critic steps between adjustments of p; >= 1 (the paper's 4)"},
    )
    speed_images: int = attrs.field(
        default=500_000,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "real images over which p can move from 0 to 1; >= 1 (the paper's 500k; "
            "100k for transfer learning)"
        },
    )
    p_max: float = float_field(
        1.0,
        "upper bound of p; 0 to 1 (a warning is given when p stays near it)",
        attrs.validators.gt(0.0),
        attrs.validators.le(1.0),
    )
    # Strengths of the ops (the paper's values); fractions are of the image size.
    xint_max: float = float_field(
        0.125, "integer translation: up to this fraction of the size; >= 0", GE0
    )
    scale_std: float = float_field(0.2, "isotropic scale 2^N(0, scale_std^2); >= 0", GE0)
    rotate_max: float = float_field(1.0, "rotation U(-rotate_max, rotate_max) * pi; >= 0", GE0)
    aniso_std: float = float_field(0.2, "anisotropic scale 2^N(0, aniso_std^2); >= 0", GE0)
    xfrac_std: float = float_field(
        0.125, "fractional translation N(0, xfrac_std^2) * size; >= 0", GE0
    )
    brightness_std: float = float_field(0.2, "brightness offset N(0, brightness_std^2); >= 0", GE0)
    contrast_std: float = float_field(0.5, "contrast factor 2^N(0, contrast_std^2); >= 0", GE0)
    hue_max: float = float_field(1.0, "hue rotation U(-hue_max, hue_max) * pi; >= 0", GE0)
    saturation_std: float = float_field(
        1.0, "saturation factor 2^N(0, saturation_std^2); >= 0", GE0
    )
    filter_std: float = float_field(1.0, "filter: band gains 2^N(0, filter_std^2); >= 0", GE0)
    noise_std: float = float_field(0.1, "noise: std |N(0, noise_std^2)| per image; >= 0", GE0)
    cutout_size: float = float_field(
        0.5,
        "cutout: side of the zeroed square, fraction of the size; 0 to 1",
        GE0,
        attrs.validators.le(1.0),
    )
    color_channels: ColorGroups | None = attrs.field(
        default=None, validator=check_color_channels, metadata={"doc": COLOR_CHANNELS_DOC}
    )
    quantile: float | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(float),
        validator=check_quantile,
        metadata={"doc": QUANTILE_DOC},
    )

    def resolved_ops(self) -> tuple[str, ...]:
        """The enabled ops, in the paper's order."""
        chosen = set(self.ops if self.ops is not None else PIPELINES[self.pipeline])
        return tuple(name for name in OPS if name in chosen)


# -------------------------------------------------------------------------------------------------
# ADA
# -------------------------------------------------------------------------------------------------


@dataclass
class AugmentParams:
    """One draw of the pipeline for ``n`` images.

    ``fired[op]`` ``[n]`` bool says which images got each enabled op (``rotate``: before or after
    the anisotropic scale; ``filter``: ``[n, 4]``, each band's gain fires on its own).
    ``geometry`` ``[n, 3, 3]`` maps output to input pixel coordinates (``None``: no geometric op
    fired); ``color`` ``[n, 4, 4]`` is the colour matrix; ``band_gains`` ``[n, 4]``, ``noise_std``
    ``[n]`` and ``cutout_center`` ``[n, 2]`` (fractions of the size, ``NaN`` where cutout did not
    fire) are the other ops' parameters.
    """

    fired: dict[str, torch.Tensor] = field(default_factory=dict)
    geometry: torch.Tensor | None = None
    color: torch.Tensor | None = None
    band_gains: torch.Tensor | None = None
    noise_std: torch.Tensor | None = None
    cutout_center: torch.Tensor | None = None
    draws: Draws | None = None


class AdaptiveAugment(PairedAugmenter):
    """ADA: the paper's augmentation pipeline with an adaptive probability ``p`` (Karras et al.
    2020, "Training Generative Adversarial Networks with Limited Data", Sec. 2-3, Appendix B).

    Every enabled op fires for each image independently with probability ``p`` (the two
    rotations with ``1 - sqrt(1 - p)`` each, so that some rotation fires with ``p``). Geometric
    ops compose into one matrix and the image is resampled once (bilinear, symmetric-reflection
    padding; see :func:`gan_ada.ops.resample`); colour ops compose into one 4x4 matrix.

    Controller: every ``interval`` critic steps the loop reports ``r_t = E[sign(D(x_real))]`` over
    ``images`` real images; ``p <- clip(p + sign(r_t - target) * images / speed_images, 0,
    p_max)``. State (``p``, the last ``r_t``, counters) is in ``state_dict`` (extra state), so
    checkpoints carry it and resuming continues ``p`` exactly.
    """

    name = "ada"

    def __init__(self, options: AdaOptions, data_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.options = options
        self.ops = options.resolved_ops()
        self._configured_groups = options.color_channels
        self._needs_color = any(op in _CHANNEL_OPS for op in self.ops)
        if data_shape is not None:
            if len(data_shape) != 3:
                shape = "x".join(map(str, data_shape)) or "none"
                raise ValueError(f"ada: expected image data of shape (C, H, W) (got {shape})")
            self._groups(data_shape[0])  # fail at build time, not at the first step
        if options.p > options.p_max:
            raise ValueError(f"ada: 'p' = {options.p} must be <= p_max = {options.p_max}")
        self.p = options.p
        self.r_t: float | None = None
        self.adjustments = 0
        self.images_adjusted = 0
        self.near_max_images = 0
        self.warned = False

    # -- the Augmenter protocol -------------------------------------------------------------------

    @property
    def feedback_interval(self) -> int:
        return self.options.interval if self.options.adaptive else 0

    def feedback(self, real_sign_mean: float, images: int) -> None:
        """Record ``r_t``; when adaptive, ``p += sign(r_t - target) * images / speed_images``,
        clipped to ``[0, p_max]``."""
        o = self.options
        self.r_t = float(real_sign_mean)
        if not o.adaptive:
            return
        direction = (self.r_t > o.target) - (self.r_t < o.target)  # sign(r_t - target)
        self.p = min(max(self.p + direction * images / o.speed_images, 0.0), o.p_max)
        self.adjustments += 1
        self.images_adjusted += images
        self.near_max_images = self.near_max_images + images if self.p >= o.p_max - NEAR_MAX else 0
        if not self.warned and self.near_max_images >= NEAR_MAX_SHARE * o.speed_images:
            self.warned = True
            warnings.warn(
                f"ada: p has stayed at p_max = {o.p_max} for {self.near_max_images} real images "
                f"(r_t = {self.r_t:.3f} > target {o.target}): the critic overfits even at full "
                "augmentation, and augmentations may leak into generated images (the paper sees "
                "leaks as p approaches 0.8); add data, lower 'target' or lower 'p_max'",
                RuntimeWarning,
                stacklevel=2,
            )

    def log_values(self) -> dict[str, float]:
        """``p`` and the last ``r_t``, logged by the loop as ``augment/p`` and ``augment/r_t``."""
        values = {"p": self.p}
        if self.r_t is not None:
            values["r_t"] = self.r_t
        return values

    # -- checkpoint state -------------------------------------------------------------------------

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        r_t = math.nan if self.r_t is None else self.r_t
        return {
            "p": torch.tensor(self.p, dtype=torch.float64),
            "r_t": torch.tensor(r_t, dtype=torch.float64),
            "adjustments": torch.tensor(self.adjustments, dtype=torch.int64),
            "images_adjusted": torch.tensor(self.images_adjusted, dtype=torch.int64),
            "near_max_images": torch.tensor(self.near_max_images, dtype=torch.int64),
            "warned": torch.tensor(self.warned),
        }

    def set_extra_state(self, state: Any) -> None:
        self.p = float(state["p"])
        r_t = float(state["r_t"])
        self.r_t = None if math.isnan(r_t) else r_t
        self.adjustments = int(state["adjustments"])
        self.images_adjusted = int(state["images_adjusted"])
        self.near_max_images = int(state["near_max_images"])
        self.warned = bool(state["warned"])

    # -- the pipeline -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(self.name, x)
        if self.p == 0.0:
            return x  # no op can fire
        return self.augment_together(x)[0]

    def sample_params(
        self,
        n: int,
        height: int,
        width: int,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> AugmentParams:
        """Draw which ops fire and their parameters for ``n`` images of ``height x width``."""
        o, p, enabled = self.options, self.p, set(self.ops)
        draws = Draws(n, torch.device(device), o.quantile, generator)
        params = AugmentParams(draws=draws)
        fired = params.fired

        def fires(op: str, probability: float = p) -> torch.Tensor:
            mask = draws.fires(probability)
            fired[op] = mask
            return mask.double()

        # Geometric ops; the inverse of the composed transform is built in the same order:
        # forward M = M_k ... M_1, so M^-1 = M_1^-1 ... M_k^-1.
        inverse = None

        def then(m_inverse: torch.Tensor) -> None:
            nonlocal inverse
            inverse = m_inverse if inverse is None else inverse @ m_inverse

        if "xflip" in enabled:
            i = draws.integers(2) * fires("xflip")
            then(ops.scale(1.0 - 2.0 * i, torch.ones_like(i)))  # self-inverse
        if "rotate90" in enabled:
            i = draws.integers(4) * fires("rotate90")
            then(ops.rotate(-i * (math.pi / 2)))
        if "xint" in enabled:
            on = fires("xint")[:, None]
            t = (draws.uniform(2) * 2.0 - 1.0) * o.xint_max * on
            then(ops.translate(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height)))
        if "scale" in enabled:
            s = torch.exp2(draws.normal() * o.scale_std * fires("scale"))
            then(ops.scale(1.0 / s, 1.0 / s))
        # Two rotations, each with 1 - sqrt(1 - p): some rotation fires with probability p.
        p_rot = 1.0 - math.sqrt(max(0.0, 1.0 - p))
        rotate_pre = rotate_post = None
        if "rotate" in enabled:
            rotate_pre = fires("rotate", p_rot)
            theta = (draws.uniform() * 2.0 - 1.0) * math.pi * o.rotate_max * rotate_pre
            then(ops.rotate(-theta))
        if "aniso" in enabled:
            s = torch.exp2(draws.normal() * o.aniso_std * fires("aniso"))
            then(ops.scale(1.0 / s, s))
        if "rotate" in enabled:
            rotate_post = fires("rotate", p_rot)
            theta = (draws.uniform() * 2.0 - 1.0) * math.pi * o.rotate_max * rotate_post
            then(ops.rotate(-theta))
            assert rotate_pre is not None
            fired["rotate"] = (rotate_pre + rotate_post) > 0
        if "xfrac" in enabled:
            on = fires("xfrac")[:, None]
            t = draws.normal(2) * o.xfrac_std * on
            then(ops.translate(-t[:, 0] * width, -t[:, 1] * height))
        if inverse is not None and any(
            bool(fired[op].any()) for op in GEOMETRIC_OPS if op in fired
        ):
            params.geometry = inverse

        # Colour ops: C = C_k ... C_1.
        color = None

        def after(m: torch.Tensor) -> None:
            nonlocal color
            color = m if color is None else m @ color

        if "brightness" in enabled:
            after(ops.color_brightness(draws.normal() * o.brightness_std * fires("brightness")))
        if "contrast" in enabled:
            after(
                ops.color_contrast(torch.exp2(draws.normal() * o.contrast_std * fires("contrast")))
            )
        if "lumaflip" in enabled:
            after(ops.color_lumaflip(draws.integers(2) * fires("lumaflip")))
        if "hue" in enabled:
            theta = (draws.uniform() * 2.0 - 1.0) * math.pi * o.hue_max * fires("hue")
            after(ops.color_hue(theta))
        if "saturation" in enabled:
            after(
                ops.color_saturation(
                    torch.exp2(draws.normal() * o.saturation_std * fires("saturation"))
                )
            )
        if color is not None and any(bool(fired[op].any()) for op in COLOR_OPS if op in fired):
            params.color = color

        if "filter" in enabled:
            # Each band's gain 2^N(0, std^2) fires with p; after each, the gains are renormalised
            # so that the expected power (BAND_POWER) is preserved.
            gains = torch.ones(n, 4, dtype=torch.float64, device=draws.device)
            power = torch.tensor(ops.BAND_POWER, dtype=torch.float64, device=draws.device)
            bands_fired = []
            for band in range(4):
                on = draws.fires(p)
                bands_fired.append(on)
                t = torch.ones_like(gains)
                t[:, band] = torch.exp2(draws.normal() * o.filter_std * on.double())
                t = t / (power * t.square()).sum(dim=1, keepdim=True).sqrt()
                gains = gains * t
            fired["filter"] = torch.stack(bands_fired, dim=1)  # [n, 4]: one per band
            if bool(fired["filter"].any()):
                params.band_gains = gains
        if "noise" in enabled:
            std = draws.normal().abs() * o.noise_std * fires("noise")
            if bool(fired["noise"].any()):
                params.noise_std = std
        if "cutout" in enabled:
            on = fires("cutout").bool()
            center = draws.uniform(2)
            if bool(on.any()):
                params.cutout_center = torch.where(on[:, None], center, torch.nan)
        return params

    def transform(
        self, x: torch.Tensor, params: AugmentParams, groups: ColorGroups | None = None
    ) -> torch.Tensor:
        """``x`` ``[N, C, H, W]`` transformed by ``params``; colour ops act on ``groups``
        (default: the configured ``color_channels``, or all of a 1- or 3-channel image)."""
        check_images(self.name, x)
        if groups is None:
            groups = self._groups(x.shape[1])
        if params.geometry is not None:
            x = ops.resample(x, params.geometry, padding="reflect")
        if params.color is not None:
            matrix = params.color
            x = map_groups(x, groups, lambda g: _color_transform(g, matrix))
        if params.band_gains is not None:
            gains = params.band_gains.to(x.dtype)

            def filtered(g: torch.Tensor) -> torch.Tensor:
                bands = ops.band_split(g)
                out = gains[:, 0, None, None, None] * bands[0]
                for i in range(1, len(bands)):
                    out = out + gains[:, i, None, None, None] * bands[i]
                return out

            x = map_groups(x, groups, filtered)
        if params.noise_std is not None:
            std = params.noise_std.to(x.dtype)[:, None, None, None]
            draws = params.draws or Draws(x.shape[0], x.device)
            fields: dict[int, torch.Tensor] = {}  # one noise field per group size, shared

            def add_noise(g: torch.Tensor) -> torch.Tensor:
                if g.shape[1] not in fields:
                    fields[g.shape[1]] = draws.normal(*g.shape[1:]).to(g.device, g.dtype)
                return g + std * fields[g.shape[1]]

            x = map_groups(x, groups, add_noise)
        if params.cutout_center is not None:
            x = x * _cutout_mask(params.cutout_center, self.options.cutout_size, x)
        return x


def _color_transform(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply the ``[N, 4, 4]`` colour matrix to RGB ``x`` ``[N, 3, H, W]``, or, for gray ``x``
    ``[N, 1, H, W]``, to the RGB image ``(g, g, g)`` and take the mean of the result: ``g' = a g +
    b`` with ``a`` the mean row sum of the 3x3 part and ``b`` the mean offset. Brightness,
    contrast and luma flip act on gray images as on the luma; hue and saturation fix the gray
    axis, so they leave gray images unchanged."""
    m = matrix.to(x.dtype)
    if x.shape[1] == 3:
        return torch.einsum("nij,njhw->nihw", m[:, :3, :3], x) + m[:, :3, 3, None, None]
    a = m[:, :3, :3].sum(dim=(1, 2)) / 3.0
    b = m[:, :3, 3].mean(dim=1)
    return a[:, None, None, None] * x + b[:, None, None, None]


def _cutout_mask(center: torch.Tensor, size: float, x: torch.Tensor) -> torch.Tensor:
    """``[N, 1, H, W]``: 0 inside the square of side ``size`` (fraction of the image) centred at
    ``center`` ``[N, 2]`` (fractions; ``NaN`` = no cutout), 1 elsewhere. Pixel ``(i, j)`` is inside
    when its centre ``((j + 0.5) / W, (i + 0.5) / H)`` is within ``size / 2`` on both axes."""
    _, _, h, w = x.shape
    u = (torch.arange(w, dtype=torch.float64, device=x.device) + 0.5) / w
    v = (torch.arange(h, dtype=torch.float64, device=x.device) + 0.5) / h
    cx, cy = center[:, 0, None], center[:, 1, None]
    inside_x = (u[None, :] - cx).abs() < size / 2  # NaN compares False: no cutout
    inside_y = (v[None, :] - cy).abs() < size / 2
    inside = inside_y[:, :, None] & inside_x[:, None, :]
    return (~inside)[:, None].to(x.dtype)


def build_ada(options: AdaOptions, context: Any) -> AdaptiveAugment:
    """``ada`` for image data of shape ``(C, H, W)``."""
    return AdaptiveAugment(options, tuple(context.data_shape))
