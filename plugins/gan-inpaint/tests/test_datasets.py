"""skimage-patches: photos bundled with scikit-image, cut into patches."""

from __future__ import annotations

import pytest
import torch
from gan_inpaint.datasets import SkimagePatches, SkimagePatchesOptions


class TestSkimagePatches:
    def test_items_in_range_and_shape(self) -> None:
        """Patches are [C, size, size] in [-1, 1], one photo repeated for grey."""
        data = SkimagePatches(SkimagePatchesOptions(images=("camera",), size=16, scale=0.125))
        assert data.shapes == {"x": (3, 16, 16)}
        item = data[0]["x"]
        assert item.shape == (3, 16, 16)
        assert item.min() >= -1
        assert item.max() <= 1
        assert torch.equal(item[0], item[1])  # a grey photo: equal channels
        assert torch.equal(data.get_batch([0, 1])["x"][1], data[1]["x"])

    def test_splits_are_disjoint_and_cover_all(self) -> None:
        """Train and test patches come from separate regions; together they are in 'all'."""
        options = {"images": ("astronaut",), "size": 16, "scale": 0.125, "stride": 16}
        train = SkimagePatches(SkimagePatchesOptions(split="train", **options))  # type: ignore[arg-type]
        test = SkimagePatches(SkimagePatchesOptions(split="test", **options))  # type: ignore[arg-type]
        assert len(train) > 0
        assert len(test) > 0
        flat_train = {tuple(p.flatten().tolist()) for p in train.patches}
        assert not any(tuple(p.flatten().tolist()) in flat_train for p in test.patches)

    def test_grey_channel(self) -> None:
        """channels = 1 converts colour photos to luminance."""
        data = SkimagePatches(
            SkimagePatchesOptions(images=("coffee",), size=16, scale=0.1, channels=1)
        )
        assert data[0]["x"].shape == (1, 16, 16)

    def test_errors(self) -> None:
        """Unknown photos and patches that do not fit are refused."""
        with pytest.raises(ValueError, match="must name scikit-image's bundled photos"):
            SkimagePatchesOptions(images=("lena",))
        with pytest.raises(ValueError, match="no 64x64 patch fits the 'test' split"):
            SkimagePatches(
                SkimagePatchesOptions(images=("camera",), size=64, scale=0.1, split="test")
            )

    def test_limit_and_rest_partition_the_split(self) -> None:
        """'limit' keeps a seeded subset in the original order; 'rest' is its complement."""
        options = {"images": ("camera", "coffee"), "size": 16, "scale": 0.125, "stride": 8}
        full = SkimagePatches(SkimagePatchesOptions(**options))  # type: ignore[arg-type]
        part = SkimagePatches(SkimagePatchesOptions(limit=10, seed=3, **options))  # type: ignore[arg-type]
        rest = SkimagePatches(SkimagePatchesOptions(limit=10, seed=3, rest=True, **options))  # type: ignore[arg-type]
        assert len(part) == 10
        assert len(rest) == len(full) - 10
        index = {tuple(p.flatten().tolist()): i for i, p in enumerate(full.patches)}
        picked = [index[tuple(p.flatten().tolist())] for p in part.patches]
        others = [index[tuple(p.flatten().tolist())] for p in rest.patches]
        assert picked == sorted(picked)  # original order
        assert sorted(picked + others) == list(range(len(full)))
        assert part.sources == [full.sources[i] for i in picked]
        again = SkimagePatches(SkimagePatchesOptions(limit=10, seed=3, **options))  # type: ignore[arg-type]
        assert torch.equal(again.patches, part.patches)
        other_seed = SkimagePatches(SkimagePatchesOptions(limit=10, seed=4, **options))  # type: ignore[arg-type]
        assert not torch.equal(other_seed.patches, part.patches)

    def test_limit_errors(self) -> None:
        """A limit above the split's size, an empty rest and rest without limit are refused."""
        options = {"images": ("camera",), "size": 16, "scale": 0.125, "stride": 16}
        n = len(SkimagePatches(SkimagePatchesOptions(**options)))  # type: ignore[arg-type]
        with pytest.raises(
            ValueError,
            match=f"'limit' is {n + 1} but only {n} patches are available in the 'train' split",
        ):
            SkimagePatches(SkimagePatchesOptions(limit=n + 1, **options))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=f"'rest' is empty: 'limit' keeps all {n} patches"):
            SkimagePatches(SkimagePatchesOptions(limit=n, rest=True, **options))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'rest' needs 'limit'"):
            SkimagePatches(SkimagePatchesOptions(rest=True, **options))  # type: ignore[arg-type]
