"""Pictures: image grids, 2-D scatter plots and training curves, written as PNG files."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "Panel",
    "curve_panels",
    "read_series",
    "save_curves",
    "save_grid",
    "save_samples",
    "save_scatter",
]


def _atomic_save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def save_grid(
    images: torch.Tensor,
    path: str | Path,
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
    path = Path(path)
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
    points: torch.Tensor,
    path: Path,
    reference: torch.Tensor | None = None,
    title: str = "",
    *,
    label: str = "generated",
) -> None:
    """2-D points ``[N, 2]`` (orange, named ``label`` in the legend) over reference data (grey)
    as a PNG scatter plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if reference is not None:
        ref = reference.detach().float().cpu().numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="data", rasterized=True)
    pts = points.detach().float().cpu().numpy()
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="tab:orange", label=label, rasterized=True)
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


# Keys of metrics.jsonl that are bookkeeping or timings, not results: never plotted.
_NOT_PLOTTED = ("step", "images_seen", "event", "stage")
_NOT_PLOTTED_PREFIXES = ("sec_per", "images_per", "nonfinite")
# Series whose typical sizes differ by more than this factor get panels of their own; a positive
# series whose values span more than this factor is drawn on a log axis.
_SCALE_FACTOR = 30.0


@attrs.frozen
class Panel:
    """One panel of curves.png: a group's series of similar size, on a shared axis."""

    group: str  # the key prefix: "loss" of "loss/critic", "fid" of "fid.fd-digits"
    keys: tuple[str, ...]
    log_scale: bool


def read_series(
    records: Iterable[Mapping[str, Any]], keys: Sequence[str] | None = None
) -> dict[str, tuple[list[float], list[float]]]:
    """``key -> (steps, values)`` of every plotted number in ``records`` (metrics.jsonl lines):
    losses, penalties, augmenter values, learning rates, metric values. Timings and counters are
    left out, and so are missing and non-finite values (``null`` in the file)."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for record in records:
        for key, value in record.items():
            if (
                key in _NOT_PLOTTED
                or key.startswith(_NOT_PLOTTED_PREFIXES)
                or key.endswith("time_s")  # time_s, metrics_time_s: how long, not how well
                or not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or (keys is not None and key not in keys)
            ):
                continue
            xs, ys = series.setdefault(key, ([], []))
            xs.append(record["step"])
            ys.append(float(value))
    return series


def _group(key: str) -> str:
    return key.split("/")[0] if "/" in key else key.split(".")[0]


def _size(values: Sequence[float]) -> float:
    """A series' typical size: the median of its absolute values (a tiny floor for zeros)."""
    return max(float(np.median(np.abs(values))), 1e-12)


def curve_panels(series: Mapping[str, tuple[list[float], list[float]]]) -> list[Panel]:
    """The panels of curves.png: one per group of keys (``loss/``, ``reg/``, ``fid.``), split
    where the typical sizes of its series differ by more than 30x (``reg/r1`` at 0.01 would lie
    flat beside ``reg/path-length`` at 5), each on a log axis when its values are positive and
    span more than 30x."""
    groups: dict[str, list[str]] = {}
    for key in sorted(series):
        groups.setdefault(_group(key), []).append(key)
    panels = []
    for group, members in sorted(groups.items()):
        by_size = sorted(members, key=lambda k: _size(series[k][1]))
        clusters: list[list[str]] = []
        for key in by_size:
            if clusters and _size(series[key][1]) <= _SCALE_FACTOR * _size(
                series[clusters[-1][0]][1]
            ):
                clusters[-1].append(key)
            else:
                clusters.append([key])
        for cluster in clusters:
            values = [y for key in cluster for y in series[key][1]]
            low, high = min(values), max(values)
            panels.append(
                Panel(group, tuple(sorted(cluster)), low > 0 and high > _SCALE_FACTOR * low)
            )
    return panels


def save_curves(metrics_file: Path, path: Path, keys: Sequence[str] | None = None) -> None:
    """Training curves from metrics.jsonl (see :func:`read_series`), against step, one panel per
    group of similar-sized series (see :func:`curve_panels`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = metrics_file.read_text().splitlines()
    series = read_series((json.loads(line) for line in lines if line.strip()), keys)
    if not series:
        return
    panels = curve_panels(series)
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.4 * len(panels)), dpi=100, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        for key in panel.keys:
            xs, ys = series[key]
            ax.plot(xs, ys, label=key, marker="o" if len(xs) < 20 else None, markersize=3)
        if panel.log_scale:
            ax.set_yscale("log")
        ax.set_ylabel(panel.group + (" (log)" if panel.log_scale else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
