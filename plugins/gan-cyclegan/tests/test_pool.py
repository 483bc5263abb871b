"""The image history pool (Shrivastava et al. 2017; Zhu et al. 2017, Sec. 4)."""

from __future__ import annotations

import math

import pytest
import torch
from gan_cyclegan.pool import ImagePool


def _images(values: range | list[int]) -> torch.Tensor:
    """Constant 1x2x2 images, each filled with its value (so an image says who it is)."""
    return torch.tensor([float(v) for v in values]).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def _ids(images: torch.Tensor) -> list[int]:
    return [int(v) for v in images[:, 0, 0, 0]]


def _stored(pool: ImagePool) -> set[int]:
    assert pool.images is not None
    return set(_ids(pool.images[: pool.count]))


class TestImagePool:
    def test_returns_inputs_while_filling(self) -> None:
        """Until it holds `size` images, the pool returns every input unchanged and stores it."""
        torch.manual_seed(0)
        pool = ImagePool(5)
        assert _ids(pool.query(_images(range(3)))) == [0, 1, 2]
        assert _ids(pool.query(_images(range(3, 5)))) == [3, 4]
        assert _stored(pool) == {0, 1, 2, 3, 4}

    def test_fills_within_one_batch(self) -> None:
        """A batch that overflows the pool: the first images fill it, the rest are drawn."""
        torch.manual_seed(0)
        pool = ImagePool(3)
        out = _ids(pool.query(_images(range(3))))
        assert out == [0, 1, 2]
        assert pool.count == 3

    def test_swaps_with_probability_one_half(self) -> None:
        """Once full, a stored image comes back with probability 0.5 (measured over 4,000 draws),
        the new image takes its slot, and otherwise the new image comes back and the pool keeps
        its contents."""
        torch.manual_seed(0)
        pool = ImagePool(50)
        pool.query(_images(range(50)))
        draws, swapped = 4000, 0
        for value in range(1000, 1000 + draws):
            before = _stored(pool)
            (out,) = _ids(pool.query(_images([value])))
            after = _stored(pool)
            if out == value:  # the new image: the pool is unchanged
                assert after == before
            else:  # a stored image: it left the pool and the new one came in
                swapped += 1
                assert out in before
                assert after == (before - {out}) | {value}
            assert pool.count == 50
        # Binomial(4000, 0.5): std 31.6; 4 std either way
        assert abs(swapped - draws / 2) < 4 * math.sqrt(draws * 0.25)

    def test_size_zero_passes_through(self) -> None:
        """pool_size = 0 returns the batch itself, detached."""
        x = torch.randn(4, 1, 2, 2, requires_grad=True)
        out = ImagePool(0).query(x)
        assert torch.equal(out, x)
        assert not out.requires_grad

    def test_state_round_trip(self) -> None:
        """state_dict/load_state_dict restore the contents; both pools then answer alike."""
        torch.manual_seed(0)
        pool = ImagePool(4)
        pool.query(_images(range(3)))
        state = pool.state_dict()
        assert state["count"] == 3
        assert state["images"].shape == (3, 1, 2, 2)
        copy = ImagePool(4)
        copy.load_state_dict(state)
        torch.manual_seed(1)
        first = pool.query(_images(range(10, 16)))
        torch.manual_seed(1)
        second = copy.query(_images(range(10, 16)))
        assert torch.equal(first, second)
        with pytest.raises(ValueError, match="holds 3 images, the pool only 2"):
            ImagePool(2).load_state_dict(state)
