"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): colour, translation and cutout on every image the critic sees, with no adaptation; a
non-adaptive alternative to ``ada``."""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["DiffAugment", "DiffAugmentOptions", "DiffAugmentParams", "build_diffaugment"]

DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")


def _check_policy(instance: Any, attribute: Any, value: tuple[str, ...]) -> None:
    unknown = [name for name in value if name not in DIFFAUGMENT_POLICIES]
    if unknown:
        raise ValueError(
            f"'policy' must name parts among {', '.join(DIFFAUGMENT_POLICIES)} (got {unknown[0]!r})"
        )


@attrs.frozen(kw_only=True)
class DiffAugmentOptions:
    """Options of ``diffaugment``. Defaults from Zhao et al. 2020 (Sec. 3)."""

    policy: tuple[str, ...] = attrs.field(
        default=DIFFAUGMENT_POLICIES,
        validator=_check_policy,
        metadata={
            "doc": "parts applied to every image, in this order whatever the list's order: "
            "'color' (brightness, saturation, contrast), 'translation', 'cutout'"
        },
    )
    translation_ratio: float = float_field(
        0.125, "translation: up to this fraction of the size, zero padded; >= 0", GE0
    )
    cutout_ratio: float = float_field(
        0.5, "cutout: side of the zeroed square, fraction of the size; >= 0", GE0
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


@dataclass
class DiffAugmentParams:
    """One draw of DiffAugment for ``n`` images: ``brightness``, ``saturation``, ``contrast``
    ``[n]``, integer ``shift`` ``[n, 2]`` (pixels, x then y) and ``cutout_corner`` ``[n, 2]``
    (pixels), each ``None`` when its part is off."""

    brightness: torch.Tensor | None = None
    saturation: torch.Tensor | None = None
    contrast: torch.Tensor | None = None
    shift: torch.Tensor | None = None
    cutout_corner: torch.Tensor | None = None


class DiffAugment(PairedAugmenter):
    """DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
    Training", Sec. 3): every image gets, in order,

    - ``color``: brightness ``+ U(-0.5, 0.5)``, saturation (deviation from the channel mean times
      ``U(0, 2)``), contrast (deviation from the image mean times ``U(0.5, 1.5)``);
    - ``translation``: an integer shift of up to ``translation_ratio`` of the size per axis,
      uniform, zero padded;
    - ``cutout``: a square of side ``cutout_ratio`` of the size at a uniform position, zeroed.

    No adaptation: ``feedback_interval = 0``.
    """

    name = "diffaugment"

    def __init__(
        self, options: DiffAugmentOptions, data_shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        self.options = options
        self.policy = tuple(p for p in DIFFAUGMENT_POLICIES if p in options.policy)
        self._configured_groups = options.color_channels
        self._needs_color = "color" in self.policy
        if data_shape is not None:
            if len(data_shape) != 3:
                shape = "x".join(map(str, data_shape)) or "none"
                raise ValueError(
                    f"diffaugment: expected image data of shape (C, H, W) (got {shape})"
                )
            self._groups(data_shape[0])

    feedback_interval = 0  # fixed: never asks for feedback

    def feedback(self, real_sign_mean: float, images: int) -> None:
        """Ignored: nothing adapts."""

    def sample_params(
        self,
        n: int,
        height: int,
        width: int,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> DiffAugmentParams:
        """Draw the parameters for ``n`` images of ``height x width``."""
        o = self.options
        draws = Draws(n, torch.device(device), o.quantile, generator)
        params = DiffAugmentParams()
        if "color" in self.policy:
            params.brightness = draws.uniform() - 0.5
            params.saturation = draws.uniform() * 2.0
            params.contrast = draws.uniform() + 0.5
        if "translation" in self.policy:
            sx, sy = int(width * o.translation_ratio + 0.5), int(height * o.translation_ratio + 0.5)
            shift_x, shift_y = draws.integers(2 * sx + 1) - sx, draws.integers(2 * sy + 1) - sy
            params.shift = torch.stack([shift_x, shift_y], dim=1)
        if "cutout" in self.policy:
            cw, ch = int(width * o.cutout_ratio + 0.5), int(height * o.cutout_ratio + 0.5)
            # top-left corner such that the square's centre is uniform over the pixels
            cx = draws.integers(width) - cw // 2
            cy = draws.integers(height) - ch // 2
            params.cutout_corner = torch.stack([cx, cy], dim=1)
        return params

    def transform(
        self, x: torch.Tensor, params: DiffAugmentParams, groups: ColorGroups | None = None
    ) -> torch.Tensor:
        """``x`` ``[N, C, H, W]`` transformed by ``params``."""
        check_images(self.name, x)
        if groups is None:
            groups = self._groups(x.shape[1])
        if params.brightness is not None:
            assert params.saturation is not None
            assert params.contrast is not None
            b, s, c = (
                t.to(x.dtype)[:, None, None, None]
                for t in (
                    params.brightness,
                    params.saturation,
                    params.contrast,
                )
            )

            def color(g: torch.Tensor) -> torch.Tensor:
                g = g + b
                mean = g.mean(dim=1, keepdim=True)
                g = (g - mean) * s + mean
                mean = g.mean(dim=(1, 2, 3), keepdim=True)
                return (g - mean) * c + mean

            x = map_groups(x, groups, color)
        if params.shift is not None:
            inverse = ops.translate(-params.shift[:, 0], -params.shift[:, 1])
            x = ops.resample(x, inverse, padding="zeros")
        if params.cutout_corner is not None:
            o = self.options
            _, _, h, w = x.shape
            cw, ch = int(w * o.cutout_ratio + 0.5), int(h * o.cutout_ratio + 0.5)
            j = torch.arange(w, device=x.device, dtype=torch.float64)
            i = torch.arange(h, device=x.device, dtype=torch.float64)
            left, top = params.cutout_corner[:, 0, None], params.cutout_corner[:, 1, None]
            inside_x = (j[None] >= left) & (j[None] < left + cw)
            inside_y = (i[None] >= top) & (i[None] < top + ch)
            inside = inside_y[:, :, None] & inside_x[:, None, :]
            x = x * (~inside)[:, None].to(x.dtype)
        return x


def build_diffaugment(options: DiffAugmentOptions, context: Any) -> DiffAugment:
    """``diffaugment`` for image data of shape ``(C, H, W)``."""
    return DiffAugment(options, tuple(context.data_shape))
