"""Mask generators, the local critic's window and user masks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from gan_inpaint.masks import (
    MaskOptions,
    center_masks,
    crop,
    draw_masks,
    local_boxes,
    rectangle_masks,
    stroke_masks,
)
from PIL import Image

import gancore


def _extent(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a mask's hole, bottom/right exclusive."""
    rows = mask[0].any(dim=1).nonzero().flatten()
    cols = mask[0].any(dim=0).nonzero().flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class TestRectangles:
    @pytest.mark.parametrize("size", [(32, 32), (64, 48)])
    def test_in_bounds_with_the_configured_sizes(self, size: tuple[int, int]) -> None:
        """Each hole is one filled rectangle inside the margins, box size minus at most the
        jitter per dimension."""
        h, w = size
        options = MaskOptions(
            kind="rectangle", rectangle_size=0.5, rectangle_jitter=0.25, margin=0.125
        )
        masks = rectangle_masks(options, 200, h, w, torch.Generator().manual_seed(0))
        assert masks.shape == (200, 1, h, w)
        assert set(masks.unique().tolist()) <= {0.0, 1.0}
        box_h, box_w = round(0.5 * h), round(0.5 * w)
        heights, widths = set(), set()
        for m in masks:
            top, bottom, left, right = _extent(m)
            assert float(m.sum()) == (bottom - top) * (right - left)  # a full rectangle
            assert top >= round(0.125 * h)
            assert bottom <= h - round(0.125 * h)
            assert left >= round(0.125 * w)
            assert right <= w - round(0.125 * w)
            assert box_h - round(0.25 * h) <= bottom - top <= box_h
            assert box_w - round(0.25 * w) <= right - left <= box_w
            heights.add(bottom - top)
            widths.add(right - left)
        assert len(heights) > 3
        assert len(widths) > 3

    def test_no_jitter_gives_the_box(self) -> None:
        """With jitter 0 every hole is exactly the box."""
        options = MaskOptions(kind="rectangle", rectangle_size=0.25, rectangle_jitter=0.0)
        masks = rectangle_masks(options, 20, 32, 32, torch.Generator().manual_seed(1))
        assert torch.all(masks.sum(dim=(1, 2, 3)) == 64)

    def test_center(self) -> None:
        """The centre mask is the centred square (Context Encoders' protocol)."""
        masks = center_masks(MaskOptions(kind="center", rectangle_size=0.5), 2, 16, 16)
        assert _extent(masks[0]) == (4, 12, 4, 12)
        assert float(masks[0].sum()) == 64


class TestStrokes:
    def test_in_bounds_and_nonempty(self) -> None:
        """Stroke masks are binary, the image size, with a hole and known pixels left."""
        masks = stroke_masks(
            MaskOptions(kind="strokes"), 64, 64, 64, torch.Generator().manual_seed(2)
        )
        assert masks.shape == (64, 1, 64, 64)
        assert set(masks.unique().tolist()) <= {0.0, 1.0}
        per = masks.mean(dim=(1, 2, 3))
        assert torch.all(per > 0)
        assert torch.all(per < 1)

    def test_one_segment_has_the_configured_width(self) -> None:
        """One 2-vertex stroke of width w covers the pixels within w/2 of its segment: its area is
        about length * w + pi (w/2)^2, and no hole pixel is farther than w/2 from it."""
        width = 8 / 64
        options = MaskOptions(
            kind="strokes",
            strokes=(1, 1),
            vertices=(2, 2),
            stroke_width=(width, width),
            stroke_length=(0.3, 0.3),
        )
        gen = torch.Generator().manual_seed(3)
        masks = stroke_masks(options, 32, 64, 64, gen)
        radius = width * 64 / 2
        for m in masks:
            area = float(m.sum())
            full = 0.3 * 64 * 2 * radius + math.pi * radius**2  # unclamped capsule
            assert 0.3 * full < area <= full * 1.15
            ys, xs = m[0].nonzero(as_tuple=True)
            spread = max(int(ys.max() - ys.min()), int(xs.max() - xs.min()))
            assert spread <= 0.3 * 64 + 2 * radius + 1

    def test_stroke_counts_are_used(self) -> None:
        """More strokes cover more of the image on average."""
        gen = torch.Generator().manual_seed(4)
        few = stroke_masks(MaskOptions(kind="strokes", strokes=(1, 1)), 200, 32, 32, gen).mean()
        many = stroke_masks(MaskOptions(kind="strokes", strokes=(4, 4)), 200, 32, 32, gen).mean()
        assert many > 2 * few


class TestDraw:
    def test_both_is_the_union(self) -> None:
        """'both' draws a rectangle and strokes from the same stream and takes their union."""
        options = MaskOptions(kind="both")
        both = draw_masks(options, 8, 32, 32, torch.Generator().manual_seed(5))
        gen = torch.Generator().manual_seed(5)
        box = rectangle_masks(options, 8, 32, 32, gen)
        strokes = stroke_masks(options, 8, 32, 32, gen)
        assert torch.equal(both, torch.maximum(box, strokes))

    def test_seeded_draws_repeat(self) -> None:
        """The same seed draws the same masks."""
        a = draw_masks(MaskOptions(), 4, 16, 16, torch.Generator().manual_seed(6))
        b = draw_masks(MaskOptions(), 4, 16, 16, torch.Generator().manual_seed(6))
        assert torch.equal(a, b)

    def test_folder_masks(self, tmp_path: Path) -> None:
        """User masks: white is hole, resized by nearest neighbour, picked from the folder."""
        pixels = np.zeros((8, 8), dtype=np.uint8)
        pixels[2:6, 0:4] = 255
        Image.fromarray(pixels).save(tmp_path / "a.png")
        options = MaskOptions(kind="folder", folder=str(tmp_path))
        masks = draw_masks(options, 3, 16, 16, torch.Generator().manual_seed(7))
        want = torch.zeros(16, 16)
        want[4:12, 0:8] = 1.0
        for m in masks:
            assert torch.equal(m[0], want)

    def test_option_errors(self) -> None:
        """Bad mask options are refused with the key and the value."""
        with pytest.raises(ValueError, match="kind 'folder' needs 'folder'"):
            MaskOptions(kind="folder")
        with pytest.raises(ValueError, match="'folder' applies only to kind 'folder'"):
            MaskOptions(folder="x")
        with pytest.raises(ValueError, match=r"'strokes' must be a pair \[min, max\]"):
            MaskOptions(strokes=(3, 1))

    def test_config_errors_are_one_line_per_key(self, tmp_path: Path) -> None:
        """In a run file, [task.masks] problems name the key path."""
        run = tmp_path / "run.toml"
        run.write_text(
            '[data]\nname = "digits"\n[task]\nname = "inpaint"\n[task.masks]\nkind = "circle"\n'
            "rectangle_size = 1.5\n"
        )
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(run)
        text = str(exc.value)
        assert "task.masks.kind" in text
        assert "task.masks.rectangle_size" in text


class TestLocalWindow:
    def test_window_contains_the_rectangle(self) -> None:
        """The local window (half the side) contains every DeepFill rectangle hole."""
        options = MaskOptions(kind="rectangle")
        masks = rectangle_masks(options, 50, 32, 32, torch.Generator().manual_seed(8))
        boxes = local_boxes(masks, (16, 16))
        for m, (top, left) in zip(masks, boxes.tolist(), strict=True):
            t, b, lo, r = _extent(m)
            assert 0 <= top <= t
            assert b <= top + 16 <= 32
            assert 0 <= left <= lo
            assert r <= left + 16 <= 32

    def test_crop_gathers_each_window(self) -> None:
        """crop takes each image's own window."""
        images = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6)
        boxes = torch.tensor([[0, 1], [3, 2]])
        got = crop(images, boxes, (3, 2))
        assert torch.equal(got[0], images[0, :, 0:3, 1:3])
        assert torch.equal(got[1], images[1, :, 3:6, 2:4])

    def test_window_is_clamped_and_centred(self) -> None:
        """A hole at the corner gets the corner window; no hole gets the centre."""
        mask = torch.zeros(2, 1, 10, 10)
        mask[0, :, 0:2, 8:10] = 1.0
        assert local_boxes(mask, (4, 4)).tolist() == [[0, 6], [3, 3]]
