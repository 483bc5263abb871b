"""Contextual attention: exact copies, excluded patches, propagation, batching, and the three
formulations (matmul, grouped, loop) computing the same function."""

from __future__ import annotations

import pytest
import torch
from gan_inpaint.attention import (
    IMPLEMENTATIONS,
    SMALLEST_WEIGHT,
    ContextualAttention,
    ContextualAttentionOptions,
    propagate,
)

FORMULATIONS = [name for name in IMPLEMENTATIONS if name != "auto"]
each_formulation = pytest.mark.parametrize("implementation", FORMULATIONS)


def _copied_scene(rate: int, channels: int = 16, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random features where the hole's neighbourhood is an exact copy of a known region.

    In cells of ``rate`` pixels: the hole is rows 6-8, cols 10-12 of a 12 x 16 cell map; the
    region around it (2 cells wider on each side) repeats the region offset by (-4, -8) cells,
    which lies entirely in the known part.
    """
    gen = torch.Generator().manual_seed(seed)
    r = rate
    x = torch.randn(1, channels, 12 * r, 16 * r, generator=gen)
    top, bottom, left, right = 6, 9, 10, 13
    dy, dx = 4, 8
    source = x[
        :, :, (top - dy - 2) * r : (bottom - dy + 2) * r, (left - dx - 2) * r : (right - dx + 2) * r
    ]
    x[:, :, (top - 2) * r : (bottom + 2) * r, (left - 2) * r : (right + 2) * r] = source.clone()
    mask = torch.zeros(1, 1, 12 * r, 16 * r)
    mask[:, :, top * r : bottom * r, left * r : right * r] = 1.0
    return x, mask, torch.tensor([dy * r, dx * r])


class TestCopy:
    @each_formulation
    @pytest.mark.parametrize("rate", [1, 2])
    def test_hole_equal_to_a_background_patch_is_copied(
        self, rate: int, implementation: str
    ) -> None:
        """Where the hole's features equal a known patch, the output equals that patch."""
        x, mask, (dy, dx) = _copied_scene(rate)
        out = ContextualAttention(rate=rate, implementation=implementation)(x, x, mask)
        r = rate
        # the centre cell of the hole: its whole k x k neighbourhood attends to the copy
        ys, xs = slice(7 * r, 8 * r), slice(11 * r, 12 * r)
        expected = x[:, :, 7 * r - dy : 8 * r - dy, 11 * r - dx : 12 * r - dx]
        torch.testing.assert_close(out[:, :, ys, xs], expected, atol=1e-5, rtol=1e-5)

    @each_formulation
    def test_copy_without_propagation_is_close(self, implementation: str) -> None:
        """Without propagation the softmax (scale 10) is softer, the copy still close."""
        x, mask, (dy, dx) = _copied_scene(1, channels=64)
        module = ContextualAttention(rate=1, propagation=1, implementation=implementation)
        out = module(x, x, mask)
        expected = x[:, :, 7 - dy : 8 - dy, 11 - dx : 12 - dx]
        assert (out[:, :, 7:8, 11:12] - expected).abs().max() < 0.05 * expected.abs().max()

    @each_formulation
    def test_weights_peak_on_the_matching_patch(self, implementation: str) -> None:
        """At a hole location the largest weight sits on the patch it copies."""
        x, mask, (dy, dx) = _copied_scene(1)
        module = ContextualAttention(rate=1, implementation=implementation)
        weights = module.attention(x, x, mask)  # [1, L, 12, 16]
        best = int(weights[0, :, 7, 11].argmax())
        assert divmod(best, 16) == (7 - int(dy), 11 - int(dx))
        assert weights[0, best, 7, 11] > 0.999


class TestExclusion:
    @each_formulation
    @pytest.mark.parametrize("rate", [1, 2])
    def test_masked_patches_get_no_weight(self, rate: int, implementation: str) -> None:
        """Patches whose 3x3 window touches the hole get exactly zero weight everywhere."""
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(3, 8, 8 * rate, 10 * rate, generator=gen)
        mask = (torch.rand(3, 1, 8, 10, generator=gen) < 0.2).float()
        mask = mask.repeat_interleave(rate, 2).repeat_interleave(rate, 3)
        weights = ContextualAttention(rate=rate, implementation=implementation).attention(
            x, x, mask
        )
        small = mask[:, :, ::rate, ::rate]
        touched = torch.nn.functional.max_pool2d(small, 3, 1, 1).flatten(1) > 0.5  # [N, L]
        assert touched.any()
        assert torch.all(weights[touched[:, :, None, None].expand_as(weights)] == 0)
        # and every location's weights over the valid patches sum to one
        torch.testing.assert_close(weights.sum(1), torch.ones(3, 8, 10))

    @each_formulation
    def test_no_known_patch_gives_zero_output(self, implementation: str) -> None:
        """An all-hole map has no background: zero weights, zero output, no NaN."""
        x = torch.randn(1, 4, 6, 6, requires_grad=True)
        out = ContextualAttention(rate=1, implementation=implementation)(
            x, x, torch.ones(1, 1, 6, 6)
        )
        assert torch.equal(out, torch.zeros_like(out))
        out.sum().backward()
        assert x.grad is not None
        assert torch.isfinite(x.grad).all()


class TestPropagation:
    def test_sums_along_the_diagonal(self) -> None:
        """Left-right then top-down sums of 3 equal the closed form on a 3x3 map."""
        gen = torch.Generator().manual_seed(2)
        h, w = 3, 3
        s = torch.randn(1, h * w, h, w, generator=gen)
        got = propagate(s, 3, h, w)

        def at(t: torch.Tensor, bh: int, bw: int, fh: int, fw: int) -> float:
            inside = 0 <= bh < h and 0 <= bw < w and 0 <= fh < h and 0 <= fw < w
            return float(t[0, bh * w + bw, fh, fw]) if inside else 0.0

        lr = torch.zeros_like(s)
        for bh in range(h):
            for bw in range(w):
                for fh in range(h):
                    for fw in range(w):
                        lr[0, bh * w + bw, fh, fw] = sum(
                            at(s, bh, bw + i, fh, fw + i) for i in (-1, 0, 1)
                        )
        want = torch.zeros_like(s)
        for bh in range(h):
            for bw in range(w):
                for fh in range(h):
                    for fw in range(w):
                        want[0, bh * w + bw, fh, fw] = sum(
                            at(lr, bh + i, bw, fh + i, fw) for i in (-1, 0, 1)
                        )
        torch.testing.assert_close(got, want)

    def test_size_one_is_identity(self) -> None:
        """propagation = 1 leaves the scores alone."""
        s = torch.randn(2, 16, 4, 4)
        assert torch.equal(propagate(s, 1, 4, 4), s)


class TestBatching:
    @each_formulation
    def test_batch_equals_images_one_by_one(self, implementation: str) -> None:
        """Each image of a batch gets the result it gets alone."""
        gen = torch.Generator().manual_seed(3)
        x = torch.randn(3, 6, 8, 8, generator=gen)
        mask = (torch.rand(3, 1, 8, 8, generator=gen) < 0.3).float()
        module = ContextualAttention(rate=2, implementation=implementation)
        together = module(x, x, mask)
        alone = torch.cat([module(x[i : i + 1], x[i : i + 1], mask[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)

    @each_formulation
    def test_gradients_reach_the_features(self, implementation: str) -> None:
        """Forward and backward run; the features get finite gradients."""
        x = torch.randn(2, 4, 16, 16, requires_grad=True)
        mask = torch.zeros(2, 1, 16, 16)
        mask[:, :, 4:10, 4:10] = 1
        ContextualAttention(implementation=implementation)(x, x, mask).square().sum().backward()
        assert x.grad is not None
        assert torch.isfinite(x.grad).all()
        assert x.grad.abs().sum() > 0


def _scene(rate: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float64 foreground, background ``[4, 5, 8 rate, 6 rate]`` and masks, one kind per image:
    random cells (30 %), a rectangle, no hole, all hole."""
    gen = torch.Generator().manual_seed(seed)
    shape = (4, 5, 8 * rate, 6 * rate)
    foreground = torch.randn(shape, generator=gen, dtype=torch.float64)
    background = torch.randn(shape, generator=gen, dtype=torch.float64)
    cells = torch.zeros(4, 1, 8, 6, dtype=torch.float64)
    cells[0] = (torch.rand(1, 8, 6, generator=gen) < 0.3).double()
    cells[1, :, 2:5, 1:4] = 1.0
    cells[3] = 1.0
    mask = cells.repeat_interleave(rate, 2).repeat_interleave(rate, 3)
    mask[0, :, 0, 0] = 1.0  # a single hole pixel marks its whole cell as hole
    return foreground, background, mask


class TestFormulations:
    @pytest.mark.parametrize("propagation", [1, 3])
    @pytest.mark.parametrize("rate", [1, 2])
    def test_equal_outputs_weights_and_gradients(self, rate: int, propagation: int) -> None:
        """matmul, grouped and loop give the same weights, output and input gradients."""
        foreground, background, mask = _scene(rate, seed=10 * rate + propagation)
        upstream = torch.randn(foreground.shape, generator=torch.Generator().manual_seed(5))
        results = {}
        for implementation in FORMULATIONS:
            module = ContextualAttention(
                rate=rate, propagation=propagation, implementation=implementation
            )
            f = foreground.clone().requires_grad_(True)
            b = background.clone().requires_grad_(True)
            out = module(f, b, mask)
            (out * upstream).sum().backward()
            weights = module.attention(foreground, background, mask)
            results[implementation] = (weights, out.detach(), f.grad, b.grad)
        assert results["loop"][1].abs().amax() > 0.1  # not a trivial comparison of zeros
        assert results["loop"][3].abs().amax() > 0.1
        for implementation in FORMULATIONS:
            for got, want in zip(results[implementation], results["loop"], strict=True):
                torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)

    @each_formulation
    def test_float32_agrees_with_float64(self, implementation: str) -> None:
        """In float32 each formulation stays within rounding of the float64 result."""
        foreground, background, mask = _scene(2, seed=7)
        module = ContextualAttention(implementation=implementation)
        want = module(foreground, background, mask)
        got = module(foreground.float(), background.float(), mask.float())
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)

    @each_formulation
    def test_tiny_weights_are_exactly_zero(self, implementation: str) -> None:
        """float32 weights are either 0 or at least SMALLEST_WEIGHT: no denormal numbers."""
        gen = torch.Generator().manual_seed(8)
        x = 3 * torch.randn(2, 16, 16, 16, generator=gen)
        mask = torch.zeros(2, 1, 16, 16)
        mask[:, :, 4:12, 4:12] = 1.0
        weights = ContextualAttention(implementation=implementation).attention(x, x, mask)
        assert (weights == 0).any()
        assert torch.all((weights == 0) | (weights >= SMALLEST_WEIGHT[torch.float32]))
        torch.testing.assert_close(weights.sum(1), torch.ones(2, 8, 8))

    def test_auto_picks_a_formulation(self) -> None:
        """'auto' resolves to one of the three and gives its result."""
        foreground, background, mask = _scene(2, seed=9)
        auto = ContextualAttention()
        chosen = auto.chosen(background)
        assert chosen in FORMULATIONS
        torch.testing.assert_close(
            auto(foreground, background, mask),
            ContextualAttention(implementation=chosen)(foreground, background, mask),
            rtol=0,
            atol=0,
        )

    def test_from_options_keeps_the_implementation(self) -> None:
        """The options' implementation reaches the module."""
        options = ContextualAttentionOptions(implementation="loop", rate=1)
        module = ContextualAttention.from_options(options)
        assert (module.implementation, module.rate) == ("loop", 1)

    def test_unknown_implementation_is_refused(self) -> None:
        """A misspelled implementation is an error that lists the choices."""
        with pytest.raises(ValueError, match="'implementation' must be in"):
            ContextualAttentionOptions(implementation="conv")
        with pytest.raises(ValueError, match=r"must be one of \['auto', 'matmul'"):
            ContextualAttention(implementation="conv")


class TestPropagateGradient:
    def test_gradcheck(self) -> None:
        """The hand-written backward of the shifted sums matches finite differences."""
        s = torch.randn(2, 12, 3, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: propagate(t, 3, 3, 4), (s,))
        assert torch.autograd.gradcheck(lambda t: propagate(t, 5, 3, 4), (s,))


class TestChecks:
    def test_shape_errors_name_the_shapes(self) -> None:
        """A mask of the wrong shape and a size that is no multiple of rate are refused."""
        x = torch.randn(1, 4, 8, 8)
        with pytest.raises(ValueError, match=r"expected a mask \[1, 1, 8, 8\]"):
            ContextualAttention()(x, x, torch.zeros(1, 1, 4, 4))
        with pytest.raises(ValueError, match="multiple of rate 3"):
            ContextualAttention(rate=3)(x, x, torch.zeros(1, 1, 8, 8))

    def test_options_refuse_even_propagation(self) -> None:
        """An even propagation kernel has no centre."""
        with pytest.raises(ValueError, match="'propagation' must be odd"):
            ContextualAttentionOptions(propagation=2)
