"""Tests of the built-in datasets: toy2d, digits, image-folder and npz."""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

import gancore
from gancore.builtin.datasets import (
    DigitsOptions,
    ImageFolderOptions,
    NpzOptions,
    Toy2dOptions,
    build_digits,
    build_image_folder,
    build_npz,
    build_toy2d,
)
from gancore.protocols import Dataset

# sha256 of toy2d's grid, seed 0, 1,000 points (float32): the draw before mixture weights existed.
GRID_SEED0_SHA256 = "1160c84d28427db9020fb11dfb98a06960b474a9eb9ad74a7b8ca08914e24874"


def _per_mode_std(points: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Per-coordinate standard deviation of the points around their nearest mode, [M, 2]."""
    points = points.double()
    nearest = torch.cdist(points, modes).argmin(dim=1)
    return torch.stack([points[nearest == m].std(dim=0) for m in range(len(modes))])


class TestToy2d:
    def test_ring_protocol(self) -> None:
        """The ring has 8 modes at angles 2*pi*i/8 on the unit circle with std 0.01."""
        dataset = build_toy2d(Toy2dOptions(mixture="ring", size=40_000), None)
        expected = torch.tensor(
            [[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)],
            dtype=torch.float64,
        )
        torch.testing.assert_close(dataset.modes, expected, rtol=0.0, atol=1e-15)
        assert dataset.mode_std == 0.01
        std = _per_mode_std(dataset.points, expected)
        torch.testing.assert_close(std, torch.full_like(std, 0.01), rtol=0.05, atol=0.0)

    def test_grid_protocol(self) -> None:
        """The grid has 25 modes at exactly {-4, -2, 0, 2, 4}^2 with std 0.05."""
        dataset = build_toy2d(Toy2dOptions(mixture="grid", size=50_000), None)
        coordinates = (-4.0, -2.0, 0.0, 2.0, 4.0)
        expected = torch.tensor(list(itertools.product(coordinates, coordinates)))
        assert dataset.modes is not None
        assert torch.equal(dataset.modes, expected.double())
        assert dataset.mode_std == 0.05
        std = _per_mode_std(dataset.points, expected.double())
        torch.testing.assert_close(std, torch.full_like(std, 0.05), rtol=0.06, atol=0.0)

    def test_wgan_gp_rescaled_sets(self) -> None:
        """8gaussians and 25gaussians are WGAN-GP's sets divided by 1.414 and 2.828."""
        eight = build_toy2d(Toy2dOptions(mixture="8gaussians", size=100), None)
        assert eight.modes is not None
        expected_radius = torch.full((8,), 2.0 / 1.414, dtype=torch.float64)
        torch.testing.assert_close(eight.modes.norm(dim=1), expected_radius)
        assert eight.mode_std == 0.02 / 1.414
        twenty_five = build_toy2d(Toy2dOptions(mixture="25gaussians", size=100), None)
        assert twenty_five.modes is not None
        assert twenty_five.modes.shape == (25, 2)
        assert float(twenty_five.modes.max()) == 4.0 / 2.828
        assert twenty_five.mode_std == 0.05 / 2.828

    def test_overrides(self) -> None:
        """radius, ring_modes, grid_side, spacing and std replace the protocol defaults."""
        ring = build_toy2d(
            Toy2dOptions(mixture="ring", size=10, radius=3, ring_modes=4, std=0.5), None
        )
        assert ring.modes is not None
        torch.testing.assert_close(
            ring.modes,
            torch.tensor([[3.0, 0.0], [0.0, 3.0], [-3.0, 0.0], [0.0, -3.0]], dtype=torch.float64),
        )
        assert ring.mode_std == 0.5
        grid = build_toy2d(Toy2dOptions(mixture="grid", size=10, grid_side=2, spacing=1), None)
        assert grid.modes is not None
        assert grid.modes.tolist() == [[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]

    def test_override_for_other_mixture(self) -> None:
        """An override that does not apply to the mixture is rejected, naming both."""
        with pytest.raises(ValueError, match="toy2d") as exc:
            Toy2dOptions(mixture="grid", radius=2.0)
        assert (
            str(exc.value) == "toy2d: 'radius' applies only to mixture 'ring' (got mixture 'grid')"
        )

    def test_seed_determinism(self) -> None:
        """The same seed gives identical points; another seed gives different ones."""
        first = build_toy2d(Toy2dOptions(mixture="grid", size=500, seed=3), None)
        again = build_toy2d(Toy2dOptions(mixture="grid", size=500, seed=3), None)
        other = build_toy2d(Toy2dOptions(mixture="grid", size=500, seed=4), None)
        assert torch.equal(first.points, again.points)
        assert not torch.equal(first.points, other.points)

    def test_items(self) -> None:
        """Items are float32 points under 'x' matching shapes; out-of-range indices raise."""
        dataset = build_toy2d(Toy2dOptions(size=10), None)
        assert isinstance(dataset, Dataset)
        assert dataset.shapes == {"x": (2,)}
        assert len(dataset) == 10
        item = dataset[9]
        assert item["x"].shape == (2,)
        assert item["x"].dtype == torch.float32
        assert torch.equal(dataset[-1]["x"], item["x"])
        with pytest.raises(IndexError, match="toy2d: index 10 out of range for 10 items"):
            dataset[10]

    def test_unweighted_draw_is_pinned(self) -> None:
        """Without weights, points are the draw every earlier run used (rng.integers, then the
        noise): the first ring point and a hash of 1,000 grid points are fixed."""
        ring = build_toy2d(Toy2dOptions(mixture="ring", size=1000, seed=0), None)
        rng = np.random.default_rng(0)
        which = rng.integers(8, size=1000)
        noise = rng.standard_normal((1000, 2)) * 0.01
        angle = 2 * math.pi * which[0] / 8
        first = np.array([math.cos(angle), math.sin(angle)]) + noise[0]
        assert ring.points[0].tolist() == first.astype(np.float32).tolist()
        grid = build_toy2d(Toy2dOptions(mixture="grid", size=1000, seed=0), None)
        digest = hashlib.sha256(grid.points.numpy().tobytes()).hexdigest()
        assert digest == GRID_SEED0_SHA256

    def test_mode_weights(self) -> None:
        """Every mixture with modes has float64 weights summing to 1: 1/M unless weights are set;
        swissroll has none."""
        for mixture, count in (("ring", 8), ("grid", 25), ("8gaussians", 8), ("25gaussians", 25)):
            dataset = build_toy2d(Toy2dOptions(mixture=mixture, size=10), None)
            assert dataset.mode_weights is not None
            assert dataset.mode_weights.dtype == torch.float64
            assert torch.equal(
                dataset.mode_weights, torch.full((count,), 1 / count, dtype=torch.float64)
            )
        assert build_toy2d(Toy2dOptions(mixture="swissroll", size=10), None).mode_weights is None

    def test_weights(self) -> None:
        """weights are normalized for the user and each mode gets its share of the points."""
        options = Toy2dOptions(mixture="ring", ring_modes=4, size=40_000, weights=[1, 2, 3, 4])
        assert options.weights == (1.0, 2.0, 3.0, 4.0)
        dataset = build_toy2d(options, None)
        assert dataset.mode_weights is not None
        assert dataset.mode_weights.tolist() == [0.1, 0.2, 0.3, 0.4]
        assert dataset.modes is not None
        nearest = torch.cdist(dataset.points.double(), dataset.modes).argmin(dim=1)
        shares = torch.bincount(nearest, minlength=4).double() / 40_000
        # Binomial standard error at n = 40,000 is at most 0.0025; allow 4 of them.
        torch.testing.assert_close(shares, dataset.mode_weights, rtol=0.0, atol=0.01)
        _ = build_toy2d(Toy2dOptions(mixture="25gaussians", size=10, weights=[1.0] * 25), None)

    def test_weights_errors(self) -> None:
        """Weights of the wrong count, on swissroll, or not positive are one line naming them."""
        with pytest.raises(ValueError, match="toy2d") as exc:
            Toy2dOptions(mixture="grid", grid_side=3, weights=[1.0, 2.0])
        assert str(exc.value) == (
            "toy2d: 'weights' must have one number per mode: 9 for mixture 'grid' (got 2)"
        )
        with pytest.raises(ValueError, match="toy2d") as exc:
            Toy2dOptions(mixture="swissroll", weights=[1.0])
        assert str(exc.value) == "toy2d: 'weights' does not apply to mixture 'swissroll' (no modes)"
        for bad in ([], [1.0, 0.0], [1.0, -2.0], [1.0, math.inf], ["a", 1.0]):
            with pytest.raises(ValueError, match="'weights' must be") as exc:
                Toy2dOptions(mixture="ring", ring_modes=2, weights=bad)
            assert str(exc.value) == (
                "'weights' must be a non-empty list of finite numbers > 0, one per mode "
                f"(got {[float(v) if not isinstance(v, str) else v for v in bad]!r})"
            )

    def test_weights_in_a_config(self) -> None:
        """A config with a wrong weights count is one line naming data and the key."""
        document = {
            "run": {"name": "x"},
            "data": {"name": "toy2d", "weights": [1, 2]},
            "generator": {"name": "mlp"},
            "critic": {"name": "mlp"},
            "loss": {"name": "gancore:non-saturating"},
        }
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.parse_config(document, gancore.get_registry())
        assert exc.value.problems == [
            "data: toy2d: 'weights' must have one number per mode: 8 for mixture 'ring' (got 2)"
        ]

    def test_center(self) -> None:
        """center moves every ring and grid centre; the points move with them."""
        plain = build_toy2d(Toy2dOptions(mixture="ring", size=100, radius=2, ring_modes=4), None)
        moved = build_toy2d(
            Toy2dOptions(mixture="ring", size=100, radius=2, ring_modes=4, center=[1, -3]), None
        )
        assert plain.modes is not None and moved.modes is not None
        offset = torch.tensor([1.0, -3.0], dtype=torch.float64)
        assert torch.equal(moved.modes, plain.modes + offset)
        torch.testing.assert_close(moved.points, plain.points + offset.float())
        grid = build_toy2d(
            Toy2dOptions(mixture="grid", size=10, grid_side=2, spacing=1, center=(10, 0)), None
        )
        assert grid.modes is not None
        assert grid.modes.tolist() == [[9.5, -0.5], [9.5, 0.5], [10.5, -0.5], [10.5, 0.5]]

    def test_center_errors(self) -> None:
        """center is for ring and grid only and must be two finite numbers."""
        with pytest.raises(ValueError, match="toy2d") as exc:
            Toy2dOptions(mixture="8gaussians", center=[1.0, 1.0])
        assert str(exc.value) == (
            "toy2d: 'center' applies only to mixtures 'ring' and 'grid' (got mixture '8gaussians')"
        )
        for bad in ([1.0], [1.0, 2.0, 3.0], [math.nan, 0.0]):
            with pytest.raises(ValueError, match="'center' must be") as exc:
                Toy2dOptions(mixture="grid", center=bad)
            assert str(exc.value) == f"'center' must be two finite numbers [x, y] (got {bad!r})"

    def test_std_for_ring_and_grid(self) -> None:
        """std sets the spread of both ring and grid Gaussians."""
        for mixture in ("ring", "grid"):
            dataset = build_toy2d(Toy2dOptions(mixture=mixture, size=20_000, std=0.02), None)
            assert dataset.mode_std == 0.02
            assert dataset.modes is not None
            std = _per_mode_std(dataset.points, dataset.modes)
            torch.testing.assert_close(std, torch.full_like(std, 0.02), rtol=0.12, atol=0.0)

    def test_swissroll(self) -> None:
        """Swiss roll has no modes; noise-free, it lies at radius t / 7.5, t in [1.5pi, 4.5pi]."""
        dataset = build_toy2d(Toy2dOptions(mixture="swissroll", size=2000, std=1e-12), None)
        assert dataset.modes is None
        assert dataset.mode_std is None
        radius = dataset.points.double().norm(dim=1) * 7.5
        assert float(radius.min()) >= 1.5 * math.pi - 1e-4
        assert float(radius.max()) <= 4.5 * math.pi + 1e-4


class TestDigits:
    def test_default(self) -> None:
        """The default is all 1,797 images, 1x16x16, in [-1, 1], blank pixels at -1."""
        dataset = build_digits(DigitsOptions(), None)
        assert len(dataset) == 1797
        assert dataset.shapes == {"x": (1, 16, 16), "label": ()}
        assert isinstance(dataset, Dataset)
        images = dataset.images
        assert images.shape == (1797, 1, 16, 16)
        assert images.dtype == torch.float32
        assert float(images.min()) == -1.0
        assert float(images.max()) <= 1.0
        assert dataset.modes is None
        assert dataset.labels.shape == (1797,)

    def test_native_resolution(self) -> None:
        """At resolution 8 the images are the raw values mapped by v / 8 - 1."""
        dataset = build_digits(DigitsOptions(resolution=8), None)
        raw = torch.from_numpy(load_digits().images).float()
        assert torch.equal(dataset[5]["x"], raw[5].unsqueeze(0) / 8.0 - 1.0)
        assert float(dataset.images.max()) == 1.0

    def test_xflip(self) -> None:
        """xflip doubles the dataset; index n + i is image i mirrored left-right."""
        plain = build_digits(DigitsOptions(), None)
        mirrored = build_digits(DigitsOptions(xflip=True), None)
        assert len(mirrored) == 2 * 1797
        assert torch.equal(mirrored[3]["x"], plain[3]["x"])
        assert torch.equal(mirrored[1797 + 3]["x"], plain[3]["x"].flip(-1))
        assert int(mirrored.labels[1797 + 3]) == int(plain.labels[3])

    def test_classes(self) -> None:
        """classes keeps only the listed digits (TOML lists become tuples); labels are their
        positions in the sorted selection and the class names are the kept digits."""
        dataset = build_digits(DigitsOptions(classes=[7, 0]), None)
        targets = load_digits().target[np.isin(load_digits().target, (0, 7))]
        assert dataset.options.classes == (7, 0)
        assert dataset.classes == ("0", "7")
        assert len(dataset) == len(targets) == 178 + 179
        assert dataset.labels.tolist() == [0 if t == 0 else 1 for t in targets]
        assert [int(dataset[i]["label"]) for i in range(3)] == dataset.labels[:3].tolist()

    def test_all_classes_are_named(self) -> None:
        """Without a selection the classes are '0'..'9' and each label is the item's digit."""
        dataset = build_digits(DigitsOptions(resolution=8, xflip=True), None)
        assert dataset.classes == tuple("0123456789")
        targets = torch.from_numpy(load_digits().target)
        assert torch.equal(dataset.labels, torch.cat([targets, targets]))
        assert torch.equal(dataset.get_batch([5, 1797 + 5])["label"], targets[[5, 5]])

    def test_limit(self) -> None:
        """limit keeps a seeded subset of that size; the same seed gives the same subset."""
        first = build_digits(DigitsOptions(limit=100, seed=1, classes=(3,)), None)
        again = build_digits(DigitsOptions(limit=100, seed=1, classes=(3,)), None)
        other = build_digits(DigitsOptions(limit=100, seed=2, classes=(3,)), None)
        assert len(first) == 100
        assert set(first.labels.tolist()) == {0}  # the only class kept, '3'
        assert first.classes == ("3",)
        assert torch.equal(first.images, again.images)
        assert not torch.equal(first.images, other.images)
        with pytest.raises(ValueError, match="digits") as exc:
            build_digits(DigitsOptions(limit=500, classes=(3,)), None)
        assert str(exc.value) == "digits: 'limit' is 500 but only 183 images are available"

    def test_rest_is_the_complement_of_limit(self) -> None:
        """rest keeps exactly the images limit leaves out: disjoint, together all of them."""
        options = {"resolution": 8, "limit": 1500, "seed": 3}
        seen = build_digits(DigitsOptions(**options), None)
        rest = build_digits(DigitsOptions(**options, rest=True), None)
        every = build_digits(DigitsOptions(resolution=8), None)
        assert (len(seen), len(rest)) == (1500, 297)
        rows = {im.numpy().tobytes(): i for i, im in enumerate(every.images)}
        seen_rows = {rows[im.numpy().tobytes()] for im in seen.images}
        rest_rows = {rows[im.numpy().tobytes()] for im in rest.images}
        assert not seen_rows & rest_rows
        assert len(seen_rows | rest_rows) == len({im.numpy().tobytes() for im in every.images})
        with pytest.raises(ValueError, match="rest") as exc:
            build_digits(DigitsOptions(rest=True), None)
        assert str(exc.value) == "digits: 'rest' needs 'limit' (the images it leaves out)"
        with pytest.raises(ValueError, match="rest") as exc:
            build_digits(DigitsOptions(limit=1797, rest=True), None)
        assert str(exc.value) == "digits: 'rest' is empty: 'limit' keeps all 1797 images"

    def test_limited_indices_is_public_and_the_digits_selection(self) -> None:
        """gancore.limited_indices: the seeded subset in original order, its complement, and the
        exact subset digits keeps (so every dataset's 'limit' means the same thing)."""
        import numpy as np

        picked = gancore.limited_indices(range(10, 30), 5, seed=7, who="mine")
        rest = gancore.limited_indices(range(10, 30), 5, seed=7, rest=True, who="mine")
        assert len(picked) == 5
        assert picked.tolist() == sorted(picked.tolist())
        assert sorted(picked.tolist() + rest.tolist()) == list(range(10, 30))
        assert gancore.limited_indices([4, 2], None, who="mine").tolist() == [4, 2]
        expected = np.sort(np.random.default_rng(7).permutation(np.arange(10, 30))[:5])
        assert picked.tolist() == expected.tolist()
        full = build_digits(DigitsOptions(resolution=8), None)
        some = build_digits(DigitsOptions(resolution=8, limit=50, seed=4), None)
        index = gancore.limited_indices(range(1797), 50, seed=4, who="digits")
        assert torch.equal(some.images, full.images[torch.as_tensor(index)])
        with pytest.raises(ValueError, match="mine") as exc:
            gancore.limited_indices(range(3), 4, who="mine", items="crops", where=" in the set")
        assert str(exc.value) == "mine: 'limit' is 4 but only 3 crops are available in the set"

    def test_invalid_options(self) -> None:
        """Bad resolutions and classes are rejected in attrs' voice."""
        with pytest.raises(ValueError, match="resolution") as exc:
            DigitsOptions(resolution=12)
        assert str(exc.value) == "'resolution' must be a power of two in [8, 256] (got 12)"
        with pytest.raises(ValueError, match="classes") as exc:
            DigitsOptions(classes=(1, 10))
        assert str(exc.value) == (
            "'classes' must be a non-empty tuple of distinct digits 0..9 (got (1, 10))"
        )


def _write_images(folder: Path) -> None:
    """A wide RGB image (red | green | blue thirds), a gray L image and one in a subfolder."""
    wide = np.zeros((20, 40, 3), dtype=np.uint8)
    wide[:, :10, 0] = 255
    wide[:, 10:30, 1] = 255
    wide[:, 30:, 2] = 255
    Image.fromarray(wide).save(folder / "b_wide.png")
    Image.fromarray(np.full((10, 10), 128, dtype=np.uint8)).save(folder / "a_gray.PNG")
    (folder / "sub").mkdir()
    Image.fromarray(np.zeros((9, 9, 3), dtype=np.uint8)).save(folder / "sub" / "c.bmp")
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(folder / ".hidden.png")


class TestImageFolder:
    def test_listing(self, tmp_path: Path) -> None:
        """Image files are listed sorted, case-insensitively, recursively, without hidden files."""
        _write_images(tmp_path)
        dataset = build_image_folder(ImageFolderOptions(path=str(tmp_path), resolution=8), None)
        names = [path.relative_to(tmp_path).as_posix() for path in dataset.files]
        assert names == ["a_gray.PNG", "b_wide.png", "sub/c.bmp"]
        flat = ImageFolderOptions(path=str(tmp_path), resolution=8, recursive=False)
        assert len(build_image_folder(flat, None)) == 2

    def test_center_crop(self, tmp_path: Path) -> None:
        """Center crop keeps the middle square: the green third of the wide image, exactly."""
        _write_images(tmp_path)
        dataset = build_image_folder(ImageFolderOptions(path=str(tmp_path), resolution=8), None)
        assert isinstance(dataset, Dataset)
        assert dataset.shapes == {"x": (3, 8, 8)}
        image = dataset[1]["x"]
        assert image.shape == (3, 8, 8)
        assert image.dtype == torch.float32
        expected = torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, 8, 8)
        assert torch.equal(image, expected)

    def test_no_crop(self, tmp_path: Path) -> None:
        """crop 'none' squeezes the whole image: red on the left, blue on the right."""
        _write_images(tmp_path)
        options = ImageFolderOptions(path=str(tmp_path), resolution=8, crop="none")
        image = build_image_folder(options, None)[1]["x"]
        assert image.shape == (3, 8, 8)
        assert float(image[0, 4, 0]) > 0.9  # red
        assert float(image[1, 4, 0]) < -0.9
        assert float(image[2, 4, 7]) > 0.9  # blue
        assert float(image[1, 4, 7]) < -0.9
        assert float(image.min()) >= -1.0
        assert float(image.max()) <= 1.0

    def test_channels(self, tmp_path: Path) -> None:
        """Gray images become 3 equal channels; channels 1 converts RGB to luma."""
        _write_images(tmp_path)
        rgb = build_image_folder(ImageFolderOptions(path=str(tmp_path), resolution=8), None)
        assert torch.equal(rgb[0]["x"], torch.full((3, 8, 8), 128.0) / 127.5 - 1.0)
        gray = build_image_folder(
            ImageFolderOptions(path=str(tmp_path), resolution=8, channels=1), None
        )
        assert gray.shapes == {"x": (1, 8, 8)}
        green_luma = gray[1]["x"]  # ITU-R 601-2: 0.587 * 255 = 149.7
        torch.testing.assert_close(
            green_luma, torch.full((1, 8, 8), 149.685 / 127.5 - 1.0), rtol=0.0, atol=1 / 127.5
        )

    def test_sixteen_bit(self, tmp_path: Path) -> None:
        """16-bit grayscale maps to 8 bits by value / 257 instead of clipping at 255."""
        Image.fromarray(np.full((8, 8), 40_000, dtype=np.uint16)).save(tmp_path / "deep.png")
        dataset = build_image_folder(
            ImageFolderOptions(path=str(tmp_path), resolution=8, channels=1), None
        )
        assert torch.equal(dataset[0]["x"], torch.full((1, 8, 8), 156.0) / 127.5 - 1.0)

    def test_xflip(self, tmp_path: Path) -> None:
        """xflip doubles the dataset; index n + i is image i mirrored left-right."""
        _write_images(tmp_path)
        options = ImageFolderOptions(path=str(tmp_path), resolution=8, crop="none", xflip=True)
        dataset = build_image_folder(options, None)
        assert len(dataset) == 6
        assert torch.equal(dataset[3 + 1]["x"], dataset[1]["x"].flip(-1))

    def test_cache(self, tmp_path: Path) -> None:
        """With cache on, an image read once is served from memory after its file is gone."""
        _write_images(tmp_path)
        dataset = build_image_folder(ImageFolderOptions(path=str(tmp_path), resolution=8), None)
        first = dataset[2]["x"]
        (tmp_path / "sub" / "c.bmp").unlink()
        assert torch.equal(dataset[2]["x"], first)

    def test_empty_folder(self, tmp_path: Path) -> None:
        """A folder without images is rejected at construction, listing the extensions."""
        (tmp_path / "readme.txt").write_text("nothing here")
        with pytest.raises(ValueError, match="image-folder") as exc:
            build_image_folder(ImageFolderOptions(path=str(tmp_path)), None)
        assert str(exc.value) == (
            f"image-folder: no images found in '{tmp_path}' (looked for .png, .jpg, .jpeg, .bmp, "
            ".webp, .gif, .tif, .tiff)"
        )

    def test_missing_and_unset_path(self, tmp_path: Path) -> None:
        """A missing folder and an empty path are rejected at construction; no path at config load."""
        with pytest.raises(gancore.ConfigError) as exc_config:
            gancore.parse_config(
                {
                    "run": {"name": "x"},
                    "data": {"name": "image-folder"},
                    "generator": {"name": "dcgan"},
                    "critic": {"name": "dcgan"},
                    "loss": {"name": "gancore:hinge"},
                },
                gancore.get_registry(),
            )
        assert exc_config.value.problems == [
            "data.path: required key is missing (expected a string)"
        ]
        missing = tmp_path / "nope"
        with pytest.raises(FileNotFoundError) as exc:
            build_image_folder(ImageFolderOptions(path=str(missing)), None)
        assert str(exc.value) == f"image-folder: folder '{missing}' does not exist"
        with pytest.raises(ValueError, match="image-folder") as exc_empty:
            build_image_folder(ImageFolderOptions(path=""), None)
        assert str(exc_empty.value) == "image-folder: 'path' is empty; set it to a folder of images"

    def test_corrupt_file(self, tmp_path: Path) -> None:
        """A corrupt file raises when read, with a one-line message naming the file."""
        _write_images(tmp_path)
        corrupt = tmp_path / "broken.jpg"
        corrupt.write_bytes(b"this is not a jpeg")
        dataset = build_image_folder(ImageFolderOptions(path=str(tmp_path), resolution=8), None)
        index = list(dataset.files).index(corrupt)
        with pytest.raises(ValueError, match="image-folder") as exc:
            dataset[index]
        message = str(exc.value)
        assert message.startswith(f"image-folder: cannot read '{corrupt}': ")
        assert "\n" not in message


class TestImageFolderLabels:
    def test_one_class_per_subfolder(self, tmp_path: Path) -> None:
        """Sorted subfolders are the classes; every item carries its folder's index as 'label'."""
        _write_classes(tmp_path)
        options = ImageFolderOptions(
            path=str(tmp_path), resolution=8, channels=1, labels="subfolders"
        )
        dataset = build_image_folder(options, None)
        assert isinstance(dataset, Dataset)
        assert dataset.classes == ("cat", "dog")
        assert dataset.shapes == {"x": (1, 8, 8), "label": ()}
        names = [path.relative_to(tmp_path).as_posix() for path in dataset.files]
        assert names == ["cat/a.png", "dog/b.png", "dog/puppies/c.png"]
        assert dataset.labels.tolist() == [0, 1, 1]
        items = [dataset[i] for i in range(3)]
        assert [item["label"].dtype for item in items] == [torch.int64] * 3
        assert [item["label"].shape for item in items] == [()] * 3
        assert [int(item["label"]) for item in items] == [0, 1, 1]
        # each image is one flat gray value: 10 for the cat, 200 and 220 for the dogs
        expected = torch.tensor([10.0, 200.0, 220.0]) / 127.5 - 1.0
        assert torch.equal(torch.stack([item["x"][0, 0, 0] for item in items]), expected)

    def test_subfolders_not_searched(self, tmp_path: Path) -> None:
        """recursive = false reads only the images directly inside each class folder."""
        _write_classes(tmp_path)
        options = ImageFolderOptions(
            path=str(tmp_path), resolution=8, labels="subfolders", recursive=False
        )
        dataset = build_image_folder(options, None)
        assert [path.name for path in dataset.files] == ["a.png", "b.png"]
        assert dataset.labels.tolist() == [0, 1]

    def test_xflip_keeps_labels(self, tmp_path: Path) -> None:
        """Mirrored items keep the label of their image."""
        _write_classes(tmp_path)
        options = ImageFolderOptions(
            path=str(tmp_path), resolution=8, labels="subfolders", xflip=True
        )
        dataset = build_image_folder(options, None)
        assert dataset.labels.tolist() == [0, 1, 1, 0, 1, 1]
        assert int(dataset[3]["label"]) == 0

    def test_without_labels(self, tmp_path: Path) -> None:
        """The default, labels 'none', reads the same folder as unlabelled images."""
        _write_classes(tmp_path)
        dataset = build_image_folder(ImageFolderOptions(path=str(tmp_path), resolution=8), None)
        assert (dataset.classes, dataset.labels) == (None, None)
        assert dataset.shapes == {"x": (3, 8, 8)}
        assert set(dataset[0]) == {"x"}

    def test_folder_without_subfolders(self, tmp_path: Path) -> None:
        """A folder with no class folders is rejected in one line."""
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "a.png")
        options = ImageFolderOptions(path=str(tmp_path), labels="subfolders")
        with pytest.raises(ValueError, match="no subfolders") as exc:
            build_image_folder(options, None)
        assert str(exc.value) == (
            f"image-folder: labels = 'subfolders' but '{tmp_path}' has no subfolders "
            "(expected one folder of images per class)"
        )

    def test_empty_class_folder(self, tmp_path: Path) -> None:
        """A class folder without images is rejected, naming it."""
        _write_classes(tmp_path)
        (tmp_path / "eel").mkdir()
        (tmp_path / "eel" / "notes.txt").write_text("no images")
        options = ImageFolderOptions(path=str(tmp_path), labels="subfolders")
        with pytest.raises(ValueError, match="'eel'") as exc:
            build_image_folder(options, None)
        assert str(exc.value) == (
            f"image-folder: class folder 'eel' in '{tmp_path}' has no images (looked for .png, "
            ".jpg, .jpeg, .bmp, .webp, .gif, .tif, .tiff)"
        )

    def test_images_beside_class_folders(self, tmp_path: Path) -> None:
        """Images directly in the folder, beside the class folders, are rejected, naming one."""
        _write_classes(tmp_path)
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "stray.png")
        options = ImageFolderOptions(path=str(tmp_path), labels="subfolders")
        with pytest.raises(ValueError, match="outside the class folders") as exc:
            build_image_folder(options, None)
        assert str(exc.value) == (
            f"image-folder: labels = 'subfolders' but '{tmp_path}' also holds 1 image(s) "
            "outside the class folders (first: 'stray.png'); move them into a class folder"
        )

    def test_invalid_option(self) -> None:
        """labels accepts only 'none' and 'subfolders'."""
        with pytest.raises(ValueError, match="'labels' must be in"):
            ImageFolderOptions(path="x", labels="folders")


class TestNpz:
    def test_uint8_images(self, tmp_path: Path) -> None:
        """uint8 images map 0 -> -1 and 255 -> 1; [N, H, W] gains a channel axis."""
        path = tmp_path / "data.npz"
        pixels = np.zeros((3, 4, 4), dtype=np.uint8)
        pixels[:, :, 2:] = 255
        np.savez(path, x=pixels)
        dataset = build_npz(NpzOptions(path=str(path)), None)
        assert isinstance(dataset, Dataset)
        assert len(dataset) == 3
        assert dataset.shapes == {"x": (1, 4, 4)}
        item = dataset[0]["x"]
        assert item.dtype == torch.float32
        assert item[0, :, :2].eq(-1.0).all()
        assert item[0, :, 2:].eq(1.0).all()
        assert dataset.modes is None
        assert dataset.mode_std is None

    def test_vectors_with_modes(self, tmp_path: Path) -> None:
        """Float vectors are used as is; 'modes' and 'mode_std' are exposed for mode coverage."""
        path = tmp_path / "mixture.npz"
        points = np.array([[0.5, 3.0], [-7.0, 0.25]])
        np.savez(path, points=points, modes=np.array([[0.0, 0.0]]), mode_std=np.array(0.1))
        dataset = build_npz(NpzOptions(path=str(path), key="points"), None)
        assert dataset.shapes == {"x": (2,)}
        assert dataset[1]["x"].tolist() == [-7.0, 0.25]
        assert dataset.modes is not None
        assert dataset.modes.dtype == torch.float64
        assert dataset.modes.tolist() == [[0.0, 0.0]]
        assert dataset.mode_std == pytest.approx(0.1)

    def test_mode_weights(self, tmp_path: Path) -> None:
        """Weights come from the option or the archive's 'mode_weights', normalized; equal
        without either."""
        path = tmp_path / "mixture.npz"
        modes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        np.savez(path, x=np.zeros((4, 2)), modes=modes, mode_std=np.array(0.1))
        plain = build_npz(NpzOptions(path=str(path)), None)
        assert plain.mode_weights is not None
        assert torch.equal(plain.mode_weights, torch.full((3,), 1 / 3, dtype=torch.float64))
        option = build_npz(NpzOptions(path=str(path), weights=[2, 1, 1]), None)
        assert option.mode_weights is not None
        assert option.mode_weights.tolist() == [0.5, 0.25, 0.25]
        np.savez(
            path, x=np.zeros((4, 2)), modes=modes, mode_std=np.array(0.1), mode_weights=[1, 1, 2]
        )
        stored = build_npz(NpzOptions(path=str(path)), None)
        assert stored.mode_weights is not None
        assert stored.mode_weights.dtype == torch.float64
        assert stored.mode_weights.tolist() == [0.25, 0.25, 0.5]

    def test_mode_weights_errors(self, tmp_path: Path) -> None:
        """Weights twice, without modes, of the wrong count or not positive are one line."""
        path = tmp_path / "mixture.npz"
        modes = np.array([[0.0, 0.0], [1.0, 0.0]])
        np.savez(path, x=np.zeros((4, 2)), modes=modes, mode_std=np.array(0.1), mode_weights=[1, 2])
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path), weights=[1, 2]), None)
        assert str(exc.value) == (
            f"npz: '{path}' holds 'mode_weights' and the option 'weights' is set too; give the "
            "weights once"
        )
        np.savez(path, x=np.zeros((4, 2)))
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path), weights=[1, 2]), None)
        assert str(exc.value) == (
            f"npz: option 'weights' needs the archive's 'modes' and 'mode_std', which '{path}' "
            "lacks"
        )
        np.savez(path, x=np.zeros((4, 2)), modes=modes, mode_std=np.array(0.1))
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path), weights=[1, 2, 3]), None)
        assert str(exc.value) == (
            "npz: option 'weights' must have one number per mode: 2, as 'modes' has "
            "(got shape (3,))"
        )
        np.savez(
            path, x=np.zeros((4, 2)), modes=modes, mode_std=np.array(0.1), mode_weights=[1.0, 0.0]
        )
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == (
            f"npz: 'mode_weights' in '{path}' must be finite numbers > 0 (got [1.0, 0.0])"
        )

    def test_missing_key(self, tmp_path: Path) -> None:
        """A missing key is rejected with the available keys listed."""
        path = tmp_path / "data.npz"
        np.savez(path, images=np.zeros((2, 4, 4), dtype=np.uint8), labels=np.zeros(2))
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == f"npz: no array 'x' in '{path}' (available: 'images', 'labels')"

    def test_float_images_out_of_range(self, tmp_path: Path) -> None:
        """Float images outside [-1, 1] are rejected with the range found."""
        path = tmp_path / "data.npz"
        np.savez(path, x=np.full((2, 1, 4, 4), 255.0, dtype=np.float32))
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == (
            f"npz: float images in array 'x' in '{path}' must lie in [-1, 1] (got [255, 255]); "
            "store uint8 for [0, 255] images"
        )

    def test_bad_arrays(self, tmp_path: Path) -> None:
        """Wrong ranks, integer dtypes and half-given modes are rejected."""
        path = tmp_path / "data.npz"
        np.savez(path, x=np.zeros(5), y=np.zeros((2, 2), dtype=np.int64))
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == (
            f"npz: array 'x' in '{path}' must have shape [N, C, H, W], [N, H, W] or [N, D] "
            "with N >= 1 (got shape (5,))"
        )
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path), key="y"), None)
        assert str(exc.value) == (
            f"npz: array 'y' in '{path}' must be uint8 or floating point (got int64)"
        )
        np.savez(path, x=np.zeros((2, 2)), modes=np.zeros((1, 2)))
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == f"npz: '{path}' must hold both 'modes' and 'mode_std', or neither"

    def test_damaged_archives(self, tmp_path: Path) -> None:
        """A file that is no zip archive, or a cut or garbled one, is one line naming the file."""
        path = tmp_path / "data.npz"
        path.write_bytes(b"PK\x03\x04 garbage after a zip signature")
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == f"npz: cannot read '{path}': File is not a zip file"
        path.write_bytes(b"\x00\x01 random bytes")
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == (
            f"npz: cannot read '{path}': not a .npz archive (it does not start with a zip "
            "header; first bytes b'\\x00\\x01 ran')"
        )

    @pytest.mark.parametrize("shape", [(3, 2), (3, 1, 2, 2)])
    def test_non_finite_values(self, tmp_path: Path, shape: tuple[int, ...]) -> None:
        """NaN or inf in float data is refused at load with the file and the count."""
        path = tmp_path / "data.npz"
        values = np.zeros(shape, dtype=np.float64)
        values.flat[0], values.flat[3], values.flat[4] = np.nan, np.inf, -np.inf
        np.savez(path, x=values)
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == (
            f"npz: array 'x' in '{path}' holds 3 non-finite values (NaN or inf) of "
            f"{values.size}; every value must be a finite number"
        )

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a FileNotFoundError naming it."""
        missing = tmp_path / "nope.npz"
        with pytest.raises(FileNotFoundError) as exc:
            build_npz(NpzOptions(path=str(missing)), None)
        assert str(exc.value) == f"npz: file '{missing}' does not exist"

    def test_labels(self, tmp_path: Path) -> None:
        """A 'labels' array gives items a 'label' and the dataset 'classes' ("0".."K-1" with
        K = max + 1) and 'labels'; get_batch agrees with per-item access."""
        path = tmp_path / "data.npz"
        pixels = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
        np.savez(path, x=pixels, labels=np.array([2, 0, 2, 1], dtype=np.uint8))
        dataset = build_npz(NpzOptions(path=str(path)), None)
        assert dataset.shapes == {"x": (1, 2, 2), "label": ()}
        assert dataset.classes == ("0", "1", "2")
        assert dataset.labels is not None
        assert dataset.labels.dtype == torch.int64
        assert dataset.labels.tolist() == [2, 0, 2, 1]
        item = dataset[3]
        assert item["label"].dtype == torch.int64
        assert item["label"].shape == ()
        assert int(item["label"]) == 1
        batch = dataset.get_batch([3, 0])
        assert batch["label"].tolist() == [1, 2]
        assert torch.equal(batch["x"][0], item["x"])

    def test_class_names(self, tmp_path: Path) -> None:
        """'class_names' names the classes, also those no item has; modes stay intact."""
        path = tmp_path / "data.npz"
        np.savez(
            path,
            x=np.zeros((3, 2)),
            labels=np.array([0, 0, 1]),
            class_names=np.array(["cat", "dog", "eel"]),
            modes=np.array([[0.0, 0.0]]),
            mode_std=np.array(0.1),
        )
        dataset = build_npz(NpzOptions(path=str(path)), None)
        assert dataset.classes == ("cat", "dog", "eel")
        assert dataset.mode_std == pytest.approx(0.1)
        assert dataset.mode_weights is not None
        assert dataset.mode_weights.tolist() == [1.0]
        assert dataset[2]["label"].item() == 1

    def test_without_labels(self, tmp_path: Path) -> None:
        """No 'labels' array: no 'label' key, classes and labels None."""
        path = tmp_path / "data.npz"
        np.savez(path, x=np.zeros((2, 3)))
        dataset = build_npz(NpzOptions(path=str(path)), None)
        assert dataset.classes is None
        assert dataset.labels is None
        assert set(dataset[0]) == {"x"}
        assert set(dataset.get_batch([0, 1])) == {"x"}

    @pytest.mark.parametrize(
        ("arrays", "message"),
        [
            (
                {"labels": np.array([0, 1])},
                "'labels' in '{path}' must have shape [N] = [3], one label per item of 'x' "
                "(got shape (2,))",
            ),
            (
                {"labels": np.zeros((3, 1), dtype=np.int64)},
                "'labels' in '{path}' must have shape [N] = [3], one label per item of 'x' "
                "(got shape (3, 1))",
            ),
            (
                {"labels": np.array([0.0, 1.0, 1.0])},
                "'labels' in '{path}' must be integers 0..K-1 (got dtype float64)",
            ),
            (
                {"labels": np.array([0, -1, 1])},
                "'labels' in '{path}' must be >= 0 (got minimum -1)",
            ),
            (
                {"labels": np.array([0, 2, 1]), "class_names": np.array(["a", "b"])},
                "'labels' in '{path}' must be < 2, the number of 'class_names' (got maximum 2)",
            ),
            (
                {"labels": np.array([0, 1, 1]), "class_names": np.array([1, 2])},
                "'class_names' in '{path}' must be a 1-D array of strings [K] (got dtype int64, "
                "shape (2,))",
            ),
            (
                {"labels": np.array([0, 1, 1]), "class_names": np.array(["a", "b", "a"])},
                "'class_names' in '{path}' must hold K distinct, non-empty names (repeats ['a'])",
            ),
            (
                {"labels": np.array([0, 1, 1]), "class_names": np.array(["a", ""])},
                "'class_names' in '{path}' must hold K distinct, non-empty names (holds an empty "
                "name)",
            ),
            (
                {"class_names": np.array(["a", "b"])},
                "'{path}' holds 'class_names' but no 'labels'; add the labels [N] or drop the names",
            ),
        ],
    )
    def test_bad_labels(self, tmp_path: Path, arrays: dict[str, Any], message: str) -> None:
        """Bad 'labels' / 'class_names' arrays are one-line errors naming the array and file."""
        path = tmp_path / "data.npz"
        np.savez(path, x=np.zeros((3, 2)), **arrays)
        with pytest.raises(ValueError, match="npz") as exc:
            build_npz(NpzOptions(path=str(path)), None)
        assert str(exc.value) == "npz: " + message.format(path=path)


class TestGetBatch:
    """The vectorised fast path returns exactly what per-item access returns."""

    @pytest.mark.parametrize(
        "dataset",
        [
            "toy",
            "digits",
        ],
    )
    def test_get_batch_equals_stacked_items(self, dataset: str) -> None:
        """get_batch(indices) equals stacking dataset[i] for the same indices."""
        from gancore.builtin.datasets import (
            DigitsOptions,
            Toy2dOptions,
            build_digits,
            build_toy2d,
        )

        if dataset == "toy":
            ds = build_toy2d(Toy2dOptions(mixture="grid", size=50), None)
        else:
            ds = build_digits(DigitsOptions(resolution=8, limit=20, xflip=True), None)
        indices = [0, 3, len(ds) - 1, 7, len(ds) // 2 + 1]
        batch = ds.get_batch(indices)
        assert batch.keys() == ds[0].keys()
        for key in batch:
            assert torch.equal(batch[key], torch.stack([ds[i][key] for i in indices]))


def _write_classes(folder: Path) -> None:
    """Class folders 'dog' (one image and one in a nested folder) and 'cat' (one image), plus a
    text file beside them and a hidden folder, which are ignored."""
    for relative, value in (("dog/b.png", 200), ("dog/puppies/c.png", 220), ("cat/a.png", 10)):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(folder / relative)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".cache").mkdir()
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(folder / ".cache" / "x.png")
