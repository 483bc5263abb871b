"""The degradation that makes low-resolution inputs, and the bicubic baseline.

SRGAN (Ledig et al. 2017, Sec. 3) obtains the low-resolution image ``I_LR`` by applying a Gaussian
filter to the high-resolution ``I_HR`` and downsampling by the factor ``r``; the benchmarks of the
field (Set5, Set14, BSD100) use MATLAB's ``imresize`` with its antialiased bicubic kernel. Ours:

- **downscale**: bicubic with antialiasing (Keys kernel, ``a = -0.5``, the kernel stretched by
  ``r`` so that it low-passes, as MATLAB's ``imresize`` and PIL's ``BICUBIC`` do), an ``H x W``
  image to ``H / r x W / r`` (the sides must be multiples of ``r``), values clamped to the data
  range ``[-1, 1]``. It is a pure function of the pixels: the same image always gives the same
  input, whatever the batch, process or device order.
- **bicubic upscaling**, the baseline every table reports: the same ``a = -0.5`` kernel (nothing
  to low-pass when enlarging), ``h x w`` to ``r h x r w``, clamped. Both equal PIL's ``BICUBIC``
  resize to float precision (tests); torch's plain ``bicubic`` would use ``a = -0.75``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["SCALES", "bicubic_upscale", "check_divisible", "downscale"]

SCALES = (2, 4)  # the factors SRResNet's x2 sub-pixel blocks build (one or two)


def check_divisible(height: int, width: int, scale: int, what: str = "image") -> None:
    """A one-line error unless both sides are multiples of ``scale``."""
    if height % scale or width % scale:
        raise ValueError(
            f"{what} of {width}x{height} pixels: both sides must be multiples of the scale "
            f"factor {scale}"
        )


def downscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """``[N, C, H, W]`` in ``[-1, 1]`` -> ``[N, C, H / scale, W / scale]``: antialiased bicubic."""
    h, w = image.shape[-2:]
    check_divisible(h, w, scale)
    small = F.interpolate(
        image.float(),
        size=(h // scale, w // scale),
        mode="bicubic",
        antialias=True,
        align_corners=False,
    )
    return small.clamp(-1.0, 1.0).to(image.dtype)


def bicubic_upscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """``[N, C, h, w]`` -> ``[N, C, h * scale, w * scale]``: bicubic, clamped to ``[-1, 1]``."""
    h, w = image.shape[-2:]
    big = F.interpolate(
        image.float(),
        size=(h * scale, w * scale),
        mode="bicubic",
        antialias=True,
        align_corners=False,
    )
    return big.clamp(-1.0, 1.0).to(image.dtype)
