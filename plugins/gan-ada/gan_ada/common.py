"""What ``ada`` and ``diffaugment`` share: option fields, colour channel groups, and the paired
application of one random transform to several tensors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import torch
from torch import nn

__all__ = [
    "COLOR_CHANNELS_DOC",
    "GE0",
    "QUANTILE_DOC",
    "ColorGroups",
    "PairedAugmenter",
    "check_color_channels",
    "check_images",
    "check_quantile",
    "color_groups",
    "float_field",
    "map_groups",
]

ColorGroups = tuple[tuple[int, ...], ...]


def check_color_channels(instance: Any, attribute: Any, value: ColorGroups | None) -> None:
    if value is None:
        return
    if not value:
        raise ValueError("'color_channels' must list at least one group (got [])")
    seen: set[int] = set()
    for group in value:
        if len(group) not in (1, 3):
            raise ValueError(
                "'color_channels' must be groups of 1 (gray) or 3 (RGB) channel indices "
                f"(got a group of {len(group)}: {list(group)})"
            )
        for index in group:
            if index < 0 or index in seen:
                raise ValueError(
                    "'color_channels' must hold distinct channel indices >= 0 "
                    f"(got {[list(g) for g in value]})"
                )
            seen.add(index)


def check_quantile(instance: Any, attribute: Any, value: float | None) -> None:
    if value is not None and not 0.0 < value < 1.0:
        raise ValueError(f"'quantile' must be in (0, 1) (got {value})")


def float_field(default: float, doc: str, *validators: Any) -> Any:
    return attrs.field(
        default=default,
        converter=float,
        validator=list(validators) or None,
        metadata={"doc": doc},
    )


GE0 = attrs.validators.ge(0.0)

COLOR_CHANNELS_DOC = (
    "which channels the colour ops (in ada also filter and noise) act on, as groups of 1 (gray) "
    "or 3 (RGB) "
    "channel indices, each group getting the same colour transform, e.g. [[0, 1, 2], [3, 4, 5]] "
    "for two concatenated RGB images or [[0, 1, 2]] for an image followed by a mask; other "
    "channels only get geometric ops and cutout. None = all channels, for 1- or 3-channel data"
)
QUANTILE_DOC = (
    "deterministic mode, for tests and debugging: every random draw is replaced by this "
    "quantile of its distribution (an op fires when quantile < its probability); in (0, 1); "
    "None = random"
)


# -------------------------------------------------------------------------------------------------
# Shared plumbing: colour groups, paired tensors
# -------------------------------------------------------------------------------------------------


def color_groups(
    who: str, channels: int, configured: ColorGroups | None, needed: bool
) -> ColorGroups:
    """Colour groups for ``channels``-channel images: the configured ones (checked against the
    channel count), or the whole image for 1 or 3 channels."""
    if configured is not None:
        too_big = [i for group in configured for i in group if i >= channels]
        if too_big:
            raise ValueError(
                f"{who}: 'color_channels' names channel {too_big[0]} but the images have "
                f"{channels} channels"
            )
        return configured
    if channels in (1, 3):
        return (tuple(range(channels)),)
    if needed:
        raise ValueError(
            f"{who}: colour ops need 1- or 3-channel images (got {channels} channels); set "
            "'color_channels' to the channels they should act on"
        )
    return ()


def map_groups(
    x: torch.Tensor,
    groups: ColorGroups,
    fn: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """``x`` with the channels of each group replaced by ``fn`` of them (differentiably)."""
    if groups == (tuple(range(x.shape[1])),):
        return fn(x)
    parts = list(x.split(1, dim=1))
    for group in groups:
        new = fn(torch.cat([parts[i] for i in group], dim=1))
        for k, i in enumerate(group):
            parts[i] = new[:, k : k + 1]
    return torch.cat(parts, dim=1)


def check_images(who: str, x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"{who}: expected images [N, C, H, W] (got {list(x.shape)})")


class PairedAugmenter(nn.Module):
    """``forward`` and ``augment_together`` on top of a subclass's ``sample_params(n, height, width,
    device)`` and ``transform(x, params, groups)``."""

    name = ""
    _configured_groups: ColorGroups | None = None
    _needs_color = False

    def sample_params(
        self,
        n: int,
        height: int,
        width: int,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> Any:
        raise NotImplementedError

    def transform(
        self, x: torch.Tensor, params: Any, groups: ColorGroups | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def _groups(self, channels: int) -> ColorGroups:
        return color_groups(self.name, channels, self._configured_groups, self._needs_color)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment_together(x)[0]

    def augment_together(
        self, *tensors: torch.Tensor, color: Sequence[bool] | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The same random transform applied to every tensor ``[N, C_k, H, W]``: each image ``n``
        gets the same geometric transform, colour transform and cutout in every tensor.

        ``color[k]`` says whether tensor ``k`` gets the colour ops (and filter, noise); default:
        all do (a pair of images). Pass ``color=(True, False)`` for an image and its mask. A
        coloured tensor needs 1 or 3 channels, or ``color_channels`` to say which are colour.
        """
        if not tensors:
            raise ValueError(f"{self.name}: augment_together needs at least one tensor")
        for t in tensors:
            check_images(self.name, t)
        n, _, h, w = tensors[0].shape
        for t in tensors[1:]:
            if (t.shape[0], t.shape[2], t.shape[3]) != (n, h, w):
                raise ValueError(
                    f"{self.name}: augment_together needs tensors with the same N, H, W "
                    f"(got {list(tensors[0].shape)} and {list(t.shape)})"
                )
        flags = [True] * len(tensors) if color is None else list(color)
        if len(flags) != len(tensors):
            raise ValueError(
                f"{self.name}: 'color' has {len(flags)} entries for {len(tensors)} tensors"
            )
        groups: list[tuple[int, ...]] = []
        offset = 0
        for t, flag in zip(tensors, flags, strict=True):
            if flag:
                groups += [tuple(offset + i for i in g) for g in self._groups(t.shape[1])]
            offset += t.shape[1]
        joined = torch.cat(tensors, dim=1) if len(tensors) > 1 else tensors[0]
        params = self.sample_params(n, h, w, joined.device)
        out = self.transform(joined, params, tuple(groups))
        return tuple(out.split([t.shape[1] for t in tensors], dim=1))
