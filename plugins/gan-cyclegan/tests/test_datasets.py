"""Datasets: unpaired and paired images, and the synthetic digits pair."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gan_cyclegan.datasets import (
    BACKGROUND,
    INK,
    DigitsTranslation,
    PairedImages,
    PairedOptions,
    UnpairedImages,
    UnpairedOptions,
    held_out_error,
    transform_digits,
)
from PIL import Image

import gancore


def _digits_translation(**options: Any) -> DigitsTranslation:
    """A ``digits-translation`` dataset, built as a run builds it (from the run's registry)."""
    document = {"data": {"name": "digits-translation", **options}}
    data: DigitsTranslation = gancore.parse_config(document, gancore.get_registry()).data.build(
        None
    )
    return data


def _write(folder: Path, name: str, value: int, size: tuple[int, int] = (8, 8)) -> None:
    """A grayscale image whose pixel (row, col) is value + col (so crops and flips show)."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = np.arange(size[0], dtype=np.int64)
    pixels = np.broadcast_to(value + cols, (size[1], size[0])).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(folder / name)


def _pixel(value: float) -> int:
    return round((value + 1.0) * 127.5)


class TestUnpaired:
    def test_epoch_is_the_larger_domain(self, tmp_path: Path) -> None:
        """3 A images and 5 B images: 5 items, every image of both domains appears."""
        for i in range(3):
            _write(tmp_path / "a", f"{i}.png", 10 * i)
        for i in range(5):
            _write(tmp_path / "b", f"{i}.png", 100 + 10 * i)
        data = UnpairedImages(
            UnpairedOptions(
                a=str(tmp_path / "a"), b=str(tmp_path / "b"), resolution=8, channels=1, flip=False
            )
        )
        assert len(data) == 5
        assert data.shapes == {"a": (1, 8, 8), "x": (1, 8, 8)}
        seen_a = {_pixel(float(data[i]["a"][0, 0, 0])) for i in range(5)}
        seen_b = {_pixel(float(data[i]["x"][0, 0, 0])) for i in range(5)}
        assert seen_a == {0, 10, 20}
        assert seen_b == {100, 110, 120, 130, 140}

    def test_crop_and_flip_are_deterministic_per_index(self, tmp_path: Path) -> None:
        """Random 4x4 crops of 8x8 images: the same for an index every time, varied across
        indices and repeats; flips mirror columns."""
        _write(tmp_path / "a", "0.png", 0)
        _write(tmp_path / "b", "0.png", 50)
        data = UnpairedImages(
            UnpairedOptions(
                a=str(tmp_path / "a"),
                b=str(tmp_path / "b"),
                resolution=4,
                load_size=8,
                channels=1,
                repeats=16,
            )
        )
        assert len(data) == 16
        first = [data[i]["a"] for i in range(16)]
        assert all(torch.equal(x, data[i]["a"]) for i, x in enumerate(first))
        assert len({tuple(x[0, 0].tolist()) for x in first}) > 2  # different crops and flips
        rows = [[_pixel(v) for v in x[0, 0].tolist()] for x in first]
        assert any(r == sorted(r, reverse=True) and r[0] > r[-1] for r in rows)  # a flipped one
        assert any(r == sorted(r) and r[0] < r[-1] for r in rows)  # an unflipped one

    def test_registered_datasets_as_domains(self) -> None:
        """A domain can be any registered dataset, given as a table."""
        registry, _ = gancore.load_registry()
        document = {
            "data": {
                "name": "unpaired",
                "a": {"name": "digits", "resolution": 8, "classes": [0]},
                "b": {"name": "digits", "resolution": 8, "classes": [1, 7]},
                "resolution": 8,
            }
        }
        data = gancore.parse_config(document, registry).data.build(None)
        assert data.shapes == {"a": (1, 8, 8), "x": (1, 8, 8)}
        assert len(data) == max(178, 182 + 179)  # 178 zeros; 182 ones and 179 sevens

    def test_bad_domain_table_is_one_line_error(self) -> None:
        """A misspelled dataset inside a domain, found when the dataset is built from the run's
        registry, names the key path, the suggestion and the config file."""
        registry, _ = gancore.load_registry()
        document = {"data": {"name": "unpaired", "a": {"name": "digts"}, "b": "folder"}}
        config = gancore.parse_config(document, registry, source="run.toml")
        with pytest.raises(gancore.ConfigError) as exc:
            config.data.build(None)
        (line,) = exc.value.problems
        assert line.startswith("data.a.name: unknown dataset 'digts'")
        assert "did you mean 'digits'" in line
        assert exc.value.source == "run.toml"
        bad_option = {"name": "unpaired", "a": {"name": "digits", "resolutio": 8}, "b": "f"}
        with pytest.raises(gancore.ConfigError, match=r"data\.a\.resolutio: unknown key"):
            gancore.parse_config({"data": bad_option}, registry).data.build(None)

    def test_domain_cannot_be_a_translation_dataset(self) -> None:
        """A domain that is itself 'unpaired' is refused when the config is parsed."""
        registry, _ = gancore.load_registry()
        document = {"data": {"name": "unpaired", "a": {"name": "unpaired"}, "b": "folder"}}
        with pytest.raises(gancore.ConfigError, match=r"data\.a: a domain cannot itself be"):
            gancore.parse_config(document, registry)

    def test_domain_table_needs_the_run_registry(self) -> None:
        """Built directly (no build context), a dataset table is a one-line error, not a
        look-up in a process-wide registry."""
        options = UnpairedOptions(a={"name": "digits"}, b={"name": "digits"}, resolution=8)
        with pytest.raises(ValueError, match="unpaired: a: a dataset table needs the run's"):
            UnpairedImages(options)

    def test_missing_folder(self, tmp_path: Path) -> None:
        """A folder that does not exist is a FileNotFoundError naming it."""
        with pytest.raises(FileNotFoundError, match=r"unpaired: a: folder '.*nope' does not exist"):
            UnpairedImages(UnpairedOptions(a=str(tmp_path / "nope"), b=str(tmp_path)))


class TestPaired:
    def test_side_by_side_pairs_crop_alike(self, tmp_path: Path) -> None:
        """A 16x8 file is A (left) and B (right); both halves get the same crop and flip."""
        _write(tmp_path / "pairs", "0.png", 0, size=(16, 8))  # left cols 0..7, right 8..15
        data = PairedImages(
            PairedOptions(
                path=str(tmp_path / "pairs"), resolution=4, load_size=8, channels=1, repeats=8
            )
        )
        for i in range(8):
            item = data[i]
            assert torch.allclose(
                (item["x"] + 1) * 127.5 - (item["a"] + 1) * 127.5,
                torch.full((1, 4, 4), 8.0),
                atol=1.0,
            )
        swapped = PairedImages(
            PairedOptions(
                path=str(tmp_path / "pairs"),
                resolution=8,
                channels=1,
                flip=False,
                direction="b-to-a",
            )
        )
        assert _pixel(float(swapped[0]["a"][0, 0, 0])) == 8
        assert _pixel(float(swapped[0]["x"][0, 0, 0])) == 0

    def test_two_folders_match_by_name(self, tmp_path: Path) -> None:
        """Files pair by stem whatever their suffix; an unmatched file is an error naming it."""
        _write(tmp_path / "a", "x1.png", 0)
        _write(tmp_path / "b", "x1.bmp", 90)
        data = PairedImages(
            PairedOptions(
                a=str(tmp_path / "a"), b=str(tmp_path / "b"), resolution=8, channels=1, flip=False
            )
        )
        assert _pixel(float(data[0]["x"][0, 0, 0])) == 90
        _write(tmp_path / "a", "x2.png", 0)
        with pytest.raises(
            ValueError, match=re.escape("1 image(s) of 'a' have no partner in 'b' (first: x2.png)")
        ):
            PairedImages(PairedOptions(a=str(tmp_path / "a"), b=str(tmp_path / "b"), resolution=8))

    def test_needs_path_or_both_folders(self) -> None:
        """Only 'a' (without 'b'), or 'path' and 'a' together, are one-line config errors."""
        registry, _ = gancore.load_registry()
        for table in ({"a": "x"}, {"path": "p", "a": "x", "b": "y"}, {}):
            with pytest.raises(gancore.ConfigError, match="give either 'path'"):
                gancore.parse_config({"data": {"name": "paired", **table}}, registry)
        with pytest.raises(gancore.ConfigError, match="'load_size' must be >= 'resolution'"):
            gancore.parse_config(
                {"data": {"name": "paired", "path": "p", "resolution": 64, "load_size": 32}},
                registry,
            )


class TestDigitsTranslation:
    def test_recolor_is_the_known_affine_map(self) -> None:
        """-1 maps to the background colour, +1 to the ink colour, 0 half way."""
        a = torch.tensor([-1.0, 1.0, 0.0]).view(3, 1, 1, 1)
        b = transform_digits(a, "recolor")
        assert torch.allclose(b[0, :, 0, 0], torch.tensor(BACKGROUND))
        assert torch.allclose(b[1, :, 0, 0], torch.tensor(INK))
        assert torch.allclose(b[2, :, 0, 0], (torch.tensor(BACKGROUND) + torch.tensor(INK)) / 2)
        x = torch.randn(2, 1, 4, 4)
        assert torch.equal(transform_digits(x, "invert"), -x)
        assert torch.equal(transform_digits(x, "transpose")[0, 0], x[0, 0].T)

    def test_splits(self) -> None:
        """Held-out digits are paired and disjoint from training; unpaired B is another half."""
        held = _digits_translation(resolution=8, split="held-out", held_out=50)
        assert len(held) == 50
        assert torch.equal(held.images_b, transform_digits(held.images_a, "recolor"))
        unpaired = _digits_translation(resolution=8, held_out=50, limit=40)
        assert len(unpaired) == 20
        assert unpaired.shapes == {"a": (1, 8, 8), "x": (3, 8, 8)}
        targets = transform_digits(unpaired.images_a, "recolor")
        assert not any(torch.equal(t, b) for t in targets for b in unpaired.images_b)
        train = _digits_translation(resolution=8, held_out=50, paired=True)
        flat_held = {tuple(x.flatten().tolist()) for x in held.images_a}
        overlap = sum(tuple(x.flatten().tolist()) in flat_held for x in train.images_a)
        assert len(train) == 1747
        assert overlap < 10

    def test_held_out_error_of_the_ground_truth_is_zero(self) -> None:
        """The exact transform as a generator has zero error; the identity on 'invert' 2 mean|a|."""
        held = _digits_translation(resolution=8, split="held-out", transform="invert", held_out=30)
        negate = torch.nn.Conv2d(1, 1, 1, bias=False)
        torch.nn.init.constant_(negate.weight, -1.0)
        assert held_out_error(negate, held) == 0.0
        identity = torch.nn.Conv2d(1, 1, 1, bias=False)
        torch.nn.init.constant_(identity.weight, 1.0)
        expected = 2 * float(held.images_a.abs().mean())
        assert held_out_error(identity, held) == pytest.approx(expected, rel=1e-5)


def _photos(folder: Path, count: int, seed: int, size: int = 12) -> Path:
    """``count`` random RGB images ``size`` x ``size``: resizing them to another size gives values
    between the 8-bit levels, which is what a cache that rounds would change."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels, mode="RGB").save(folder / f"{i:02d}.png")
    return folder


class TestItemsDoNotDependOnTheCache:
    """An item is the same on its first read, when cached, in a fresh process (empty cache) and
    without a cache: exact resume relies on it (issue 24's fault: the first read was the float
    image, later reads a uint8-rounded copy)."""

    @staticmethod
    def _reads(make: Any, length: int) -> list[list[dict[str, torch.Tensor]]]:
        warm = make(True)
        first = [warm[i] for i in range(length)]
        second = [warm[i] for i in range(length)]  # from the cache
        fresh = make(True)
        reversed_order = [fresh[i] for i in reversed(range(length))][::-1]
        uncached = make(False)
        return [first, second, reversed_order, [uncached[i] for i in range(length)]]

    @staticmethod
    def _assert_equal(reads: list[list[dict[str, torch.Tensor]]]) -> None:
        for other in reads[1:]:
            for a, b in zip(reads[0], other, strict=True):
                assert a.keys() == b.keys()
                for key in a:
                    assert torch.equal(a[key], b[key]), key
        # and the values are the 8-bit levels of an image file
        for item in reads[0]:
            for value in item.values():
                levels = (value + 1.0) * 127.5
                assert torch.allclose(levels, levels.round(), atol=1e-4)

    def test_unpaired_folders(self, tmp_path: Path) -> None:
        """Folders resized from 12 to 10 px and cropped to 8: every read agrees."""
        a, b = _photos(tmp_path / "a", 3, 0), _photos(tmp_path / "b", 4, 1)

        def make(cache: bool) -> UnpairedImages:
            options = UnpairedOptions(
                a=str(a), b=str(b), resolution=8, load_size=10, repeats=2, cache=cache
            )
            return UnpairedImages(options)

        self._assert_equal(self._reads(make, 8))

    def test_paired_folders(self, tmp_path: Path) -> None:
        """Two folders matched by name, resized from 12 to 10 px and cropped to 8."""
        a, b = _photos(tmp_path / "a", 3, 2), _photos(tmp_path / "b", 3, 3)

        def make(cache: bool) -> PairedImages:
            options = PairedOptions(
                a=str(a), b=str(b), resolution=8, load_size=10, repeats=2, cache=cache
            )
            return PairedImages(options)

        self._assert_equal(self._reads(make, 6))

    def test_items_are_copies(self, tmp_path: Path) -> None:
        """Writing into an item (at full size, no crop) does not change the cached image."""
        a, b = _photos(tmp_path / "a", 1, 4, size=8), _photos(tmp_path / "b", 1, 5, size=8)
        data = UnpairedImages(UnpairedOptions(a=str(a), b=str(b), resolution=8, flip=False))
        item = data[0]
        before = item["a"].clone()
        item["a"].fill_(0.0)
        assert torch.equal(data[0]["a"], before)
        paired = PairedImages(PairedOptions(a=str(a), b=str(b), resolution=8, flip=False))
        item = paired[0]
        before = item["x"].clone()
        item["x"].fill_(0.0)
        assert torch.equal(paired[0]["x"], before)
