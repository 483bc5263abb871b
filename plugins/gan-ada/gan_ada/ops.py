"""The pieces ADA and DiffAugment are built from: random draws, transformation matrices, a
differentiable resampler and a band-splitting filter.

Conventions. Geometric matrices are ``[N, 3, 3]`` float64 homogeneous transforms of pixel
coordinates ``(x, y)`` measured from the image centre (``x`` to the right, ``y`` down, one unit =
one pixel), so a quarter turn maps pixel centres onto pixel centres. Colour matrices are
``[N, 4, 4]`` float64 homogeneous transforms of RGB values in ``[-1, 1]``.

Everything is written from the formulas of Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data", Appendix B.1.
"""

from __future__ import annotations

import math
import statistics

import torch

__all__ = [
    "Draws",
    "band_split",
    "color_brightness",
    "color_contrast",
    "color_hue",
    "color_lumaflip",
    "color_saturation",
    "resample",
    "rotate",
    "scale",
    "translate",
]

LUMA_AXIS = (1.0 / math.sqrt(3.0),) * 3  # the gray axis of RGB space, unit length
SNAP = 1e-6  # source coordinates closer than this to a pixel centre are taken as on it (pixels)


class Draws:
    """Random numbers for ``n`` images: torch's RNG on ``device`` (the global one, or
    ``generator``), or, in deterministic mode, every draw replaced by the ``quantile`` ``q`` of its
    distribution (uniform draws are ``q`` itself, normal draws ``Phi^-1(q)``).

    Whether an op fires is one more uniform draw ``u < probability``, so with a quantile every op
    fires exactly when ``q < probability``.
    """

    def __init__(
        self,
        n: int,
        device: torch.device,
        quantile: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if quantile is not None and not 0.0 < quantile < 1.0:
            raise ValueError(f"'quantile' must be in (0, 1) (got {quantile})")
        self.n = n
        self.device = device
        self.quantile = quantile
        self.generator = generator

    def uniform(self, *shape: int) -> torch.Tensor:
        """U[0, 1), ``[n, *shape]`` float64."""
        if self.quantile is not None:
            return torch.full(
                (self.n, *shape), self.quantile, dtype=torch.float64, device=self.device
            )
        return torch.rand(
            (self.n, *shape), dtype=torch.float64, device=self.device, generator=self.generator
        )

    def normal(self, *shape: int) -> torch.Tensor:
        """N(0, 1), ``[n, *shape]`` float64."""
        if self.quantile is not None:
            value = statistics.NormalDist().inv_cdf(self.quantile)
            return torch.full((self.n, *shape), value, dtype=torch.float64, device=self.device)
        return torch.randn(
            (self.n, *shape), dtype=torch.float64, device=self.device, generator=self.generator
        )

    def integers(self, high: int, *shape: int) -> torch.Tensor:
        """Uniform integers in ``{0, ..., high - 1}`` as float64, ``[n, *shape]``."""
        return torch.floor(self.uniform(*shape) * high).clamp(max=high - 1)

    def fires(self, probability: float) -> torch.Tensor:
        """``[n]`` bool: whether each image gets the op, with ``probability``."""
        return self.uniform() < probability


# -------------------------------------------------------------------------------------------------
# Geometric matrices (pixel coordinates from the image centre)
# -------------------------------------------------------------------------------------------------


def _eye(n: int, size: int, device: torch.device) -> torch.Tensor:
    return torch.eye(size, dtype=torch.float64, device=device).expand(n, size, size).clone()


def translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]``: ``(x, y) -> (x + tx, y + ty)``."""
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]``: ``(x, y) -> (sx * x, sy * y)``."""
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate(theta: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]``: rotation by ``theta`` radians (``x`` towards ``y``)."""
    m = _eye(theta.shape[0], 3, theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


# -------------------------------------------------------------------------------------------------
# Colour matrices (homogeneous RGB)
# -------------------------------------------------------------------------------------------------


def _luma(device: torch.device) -> torch.Tensor:
    """``v v^T`` for the unit gray axis ``v``, as a ``[4, 4]`` matrix acting on RGB only."""
    v = torch.tensor([*LUMA_AXIS, 0.0], dtype=torch.float64, device=device)
    return torch.outer(v, v)


def color_brightness(b: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]``: add ``b`` to every channel."""
    m = _eye(b.shape[0], 4, b.device)
    m[:, 0, 3] = m[:, 1, 3] = m[:, 2, 3] = b
    return m


def color_contrast(c: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]``: multiply every channel by ``c`` (around 0, the middle of ``[-1, 1]``)."""
    m = _eye(c.shape[0], 4, c.device)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = c
    return m


def color_lumaflip(i: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]``: ``I - 2 i v v^T``: for ``i = 1`` the Householder reflection that negates the
    luma component and keeps the chroma; ``i = 0`` the identity."""
    return _eye(i.shape[0], 4, i.device) - 2.0 * i[:, None, None] * _luma(i.device)


def color_hue(theta: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]``: rotation by ``theta`` around the gray axis ``v`` (Rodrigues' formula
    ``cos I + sin [v]x + (1 - cos) v v^T`` on RGB)."""
    n, device = theta.shape[0], theta.device
    v = torch.tensor(LUMA_AXIS, dtype=torch.float64, device=device)
    cross = torch.zeros(3, 3, dtype=torch.float64, device=device)
    cross[0, 1], cross[0, 2], cross[1, 2] = -v[2], v[1], -v[0]
    cross = cross - cross.T  # [v]x, the matrix of v cross (.)
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    rgb = c * torch.eye(3, dtype=torch.float64, device=device) + s * cross
    rgb = rgb + (1.0 - c) * torch.outer(v, v)
    m = _eye(n, 4, device)
    m[:, :3, :3] = rgb
    return m


def color_saturation(s: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]``: ``v v^T + s (I - v v^T)``: keep the luma, scale the chroma by ``s``."""
    luma = _luma(s.device)
    eye = _eye(s.shape[0], 4, s.device)
    m = luma + s[:, None, None] * (eye - luma)
    m[:, 3, 3] = 1.0
    return m


# -------------------------------------------------------------------------------------------------
# Resampling
# -------------------------------------------------------------------------------------------------


def _fold(index: torch.Tensor, size: int, padding: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Integer pixel indices mapped into ``[0, size)``: symmetric extension (``reflect``: the edge
    pixel repeated, period ``2 * size``), or clamped with a validity mask (``zeros``)."""
    if padding == "zeros":
        valid = (index >= 0) & (index < size)
        return index.clamp(0, size - 1), valid
    m = torch.remainder(index, 2 * size)
    return torch.where(m >= size, 2 * size - 1 - m, m), None


def resample(x: torch.Tensor, inverse: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """``out[n, :, p] = x[n, :, inverse[n] @ p]``, bilinear, for every output pixel ``p``.

    ``inverse`` ``[N, 3, 3]`` maps output pixel coordinates (from the centre) to input ones.
    Outside the image, ``reflect`` samples the symmetric extension (mirror with the edge pixel
    repeated), ``zeros`` samples zeros. Source coordinates within ``1e-6`` pixels of a pixel
    centre are snapped onto it, so flips, quarter turns and integer translations copy pixels
    exactly. The output is a fixed linear map of ``x`` built from ``gather``, so gradients of any
    order flow to ``x``.
    """
    n, c, h, w = x.shape
    device = x.device
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=device) - (h - 1) / 2,
        torch.arange(w, dtype=torch.float64, device=device) - (w - 1) / 2,
        indexing="ij",
    )
    points = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones_like(xs).reshape(-1)])
    source = inverse.to(device=device, dtype=torch.float64) @ points  # [N, 3, H*W]
    sx, sy = source[:, 0] + (w - 1) / 2, source[:, 1] + (h - 1) / 2

    def split(coord: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base = torch.floor(coord + SNAP)  # within SNAP below a pixel centre: that pixel
        frac = coord - base
        frac = frac.masked_fill(frac.abs() < SNAP, 0.0)  # within SNAP above: that pixel too
        return base.long(), frac

    x0, fx = split(sx)
    y0, fy = split(sy)
    # Taps along an axis whose coordinates all sit on pixel centres are skipped: flips, quarter
    # turns and integer shifts cost one gather.
    taps_x = [(0, 1.0 - fx)] + ([(1, fx)] if bool(fx.any()) else [])
    taps_y = [(0, 1.0 - fy)] + ([(1, fy)] if bool(fy.any()) else [])
    folded_x = {dx: _fold(x0 + dx, w, padding) for dx, _ in taps_x}
    folded_y = {dy: _fold(y0 + dy, h, padding) for dy, _ in taps_y}
    flat = x.reshape(n, c, h * w)
    out = None
    for dy, wy in taps_y:
        iy, valid_y = folded_y[dy]
        for dx, wx in taps_x:
            ix, valid_x = folded_x[dx]
            weight = wy * wx  # [N, H*W]
            if valid_x is not None and valid_y is not None:
                weight = weight * (valid_x & valid_y)
            index = (iy * w + ix)[:, None, :].expand(n, c, h * w)
            tap = flat.gather(2, index) * weight[:, None, :].to(x.dtype)
            out = tap if out is None else out + tap
    assert out is not None
    return out.reshape(n, c, h, w)


# -------------------------------------------------------------------------------------------------
# Frequency bands
# -------------------------------------------------------------------------------------------------

BAND_SIGMAS = (1.0, 2.0, 4.0)  # Gaussian blurs that split an image into 4 octave-like bands
BAND_POWER = (10.0 / 13, 1.0 / 13, 1.0 / 13, 1.0 / 13)  # expected power, lowest band first


def _blur_matrix(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """``[size, size]`` float64: a 1-D Gaussian blur of standard deviation ``sigma`` pixels
    (taps within ``3 sigma``) over the symmetric extension of the signal, as a matrix."""
    radius = math.ceil(3 * sigma)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    rows = torch.arange(size, device=device)[:, None].expand(size, taps.numel())
    cols, _ = _fold(rows + taps.long()[None, :], size, "reflect")
    matrix = torch.zeros(size, size, dtype=torch.float64, device=device)
    return matrix.index_put_((rows, cols), kernel.expand(size, -1).clone(), accumulate=True)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with symmetric padding (the edge pixel repeated), as two
    matrix products: a fixed linear map of ``x``."""
    _, _, h, w = x.shape
    rows = _blur_matrix(h, sigma, x.device).to(x.dtype)
    cols = _blur_matrix(w, sigma, x.device).to(x.dtype)
    return rows @ x @ cols.T  # [H, H] @ [N, C, H, W] @ [W, W], broadcast over N, C


def band_split(x: torch.Tensor) -> list[torch.Tensor]:
    """Four bands that sum to ``x``, lowest first: ``blur_4``, ``blur_2 - blur_4``,
    ``blur_1 - blur_2``, ``x - blur_1`` (blur_s: Gaussian of standard deviation s pixels)."""
    blurred = [_blur(x, s) for s in BAND_SIGMAS]  # sigma 1, 2, 4
    return [blurred[2], blurred[1] - blurred[2], blurred[0] - blurred[1], x - blurred[0]]
