"""Pictures: image grids, 2-D scatter plots and training curves, written as PNG files."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageDraw, ImageFont

__all__ = ["save_curves", "save_grid", "save_samples", "save_scatter"]


def _atomic_save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def save_grid(
    images: torch.Tensor,
    path: Path,
    columns: int | None = None,
    pad: int = 2,
    *,
    row_names: Sequence[str] | None = None,
    header: str | None = None,
) -> None:
    """Images ``[N, C, H, W]`` in ``[-1, 1]`` (C = 1 or 3) as one PNG grid, ``columns`` wide.

    ``row_names`` (one per row, e.g. class names) are written in a margin left of the rows and
    ``header`` in a strip above the grid; the images themselves keep their place and pixels.
    """
    images = images.detach().float().cpu().clamp(-1, 1)
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"cannot draw images with {c} channels (expected 1 or 3)")
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    blank = torch.full((rows * columns - n, c, h, w), -1.0)
    images = torch.nn.functional.pad(torch.cat([images, blank]), (pad, pad, pad, pad), value=-1.0)
    grid = rearrange(images, "(r k) c h w -> (r h) (k w) c", r=rows, k=columns)
    array = ((grid + 1) * 127.5).round().to(torch.uint8).numpy()
    image = Image.fromarray(array[..., 0] if c == 1 else array, mode="L" if c == 1 else "RGB")
    if max(image.size) < 256:  # small images (8x8 digits) are unreadable at 1:1
        scale = math.ceil(256 / max(image.size))
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    if row_names is not None or header:
        image = _labelled(image, rows, row_names, header)
    _atomic_save(image, path)


# Longest label drawn; longer class names are cut with an ellipsis.
_LABEL_CHARS = 24


def _labelled(
    image: Image.Image, rows: int, row_names: Sequence[str] | None, header: str | None
) -> Image.Image:
    """``image`` on a larger black canvas: ``row_names`` left of its ``rows`` rows, ``header``
    above it, in white with Pillow's default font."""
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(image)

    def size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return int(right - left), int(bottom - top)

    def short(text: str) -> str:
        return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "\u2026"

    names = [short(str(n)) for n in row_names or ()]
    margin = max((size(n)[0] for n in names), default=-8) + 8
    strip = size(header)[1] + 8 if header else 0
    canvas = Image.new(image.mode, (image.width + margin, image.height + strip), 0)
    canvas.paste(image, (margin, strip))
    draw = ImageDraw.Draw(canvas)
    white = 255 if image.mode == "L" else (255, 255, 255)
    row_height = image.height / rows
    for row, name in enumerate(names[:rows]):
        centre = strip + (row + 0.5) * row_height
        draw.text((4, centre - size(name)[1] / 2), name, fill=white, font=font)
    if header:
        draw.text((4, 4), header, fill=white, font=font)
    return canvas


def save_scatter(
    points: torch.Tensor, path: Path, reference: torch.Tensor | None = None, title: str = ""
) -> None:
    """2-D points ``[N, 2]`` (orange) over reference data (grey) as a PNG scatter plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if reference is not None:
        ref = reference.detach().float().cpu().numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="data", rasterized=True)
    pts = points.detach().float().cpu().numpy()
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="tab:orange", label="generated", rasterized=True)
    if reference is not None:
        lo = np.minimum(ref.min(0), np.percentile(pts, 1, axis=0))
        hi = np.maximum(ref.max(0), np.percentile(pts, 99, axis=0))
        margin = 0.15 * (hi - lo)
        ax.set_xlim(lo[0] - margin[0], hi[0] + margin[0])
        ax.set_ylim(lo[1] - margin[1], hi[1] + margin[1])
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def save_samples(
    samples: torch.Tensor,
    path: Path,
    columns: int | None = None,
    reference: torch.Tensor | None = None,
    title: str = "",
    *,
    row_names: Sequence[str] | None = None,
    header: str | None = None,
) -> None:
    """A grid for images ``[N, C, H, W]``, a scatter plot for points ``[N, 2]``.

    ``row_names`` and ``header`` label the grid (see :func:`save_grid`); a scatter plot shows
    ``header`` after its ``title``.
    """
    if samples.dim() == 4:
        save_grid(samples, path, columns, row_names=row_names, header=header)
    elif samples.dim() == 2 and samples.shape[1] == 2:
        save_scatter(samples, path, reference, f"{title}, {header}" if header else title)
    else:
        raise ValueError(
            f"cannot draw samples of shape {tuple(samples.shape)} (expected [N, C, H, W] or [N, 2])"
        )


def save_curves(metrics_file: Path, path: Path, keys: Sequence[str] | None = None) -> None:
    """Training curves from metrics.jsonl: one panel per loss/metric series, against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[float], list[float]]] = {}
    for line in metrics_file.read_text().splitlines():
        record = json.loads(line)
        for key, value in record.items():
            if (
                key in ("step", "images_seen", "event", "time_s")
                or not isinstance(value, int | float)
                or isinstance(value, bool)
            ):
                continue
            if keys is not None and key not in keys:
                continue
            if key.startswith(("sec_per", "images_per", "nonfinite")):
                continue
            xs, ys = series.setdefault(key, ([], []))
            xs.append(record["step"])
            ys.append(float(value))
    if not series:
        return
    groups: dict[str, list[str]] = {}
    for key in series:
        groups.setdefault(key.split("/")[0] if "/" in key else key.split(".")[0], []).append(key)
    fig, axes = plt.subplots(len(groups), 1, figsize=(7, 2.4 * len(groups)), dpi=100, squeeze=False)
    for ax, (group, members) in zip(axes[:, 0], sorted(groups.items()), strict=True):
        for key in sorted(members):
            xs, ys = series[key]
            ax.plot(xs, ys, label=key, marker="o" if len(xs) < 20 else None, markersize=3)
        ax.set_ylabel(group)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
