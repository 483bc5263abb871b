"""inpaint-quality and its baselines."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import ClassVar

import pytest
import torch
from gan_inpaint.masks import MaskOptions
from gan_inpaint.metrics import InpaintQuality, mean_fill, nearest_patch_fill, quality, ssim_map
from gan_inpaint.task import Inpaint


class TestMeasures:
    def test_closed_forms(self) -> None:
        """An error of 0.2 (0.1 in [0, 1]) in the hole: L1 0.1, L2 0.01, PSNR 20 dB; the image
        values are scaled by the hole's share."""
        target = torch.zeros(1, 3, 8, 8)
        mask = torch.zeros(1, 1, 8, 8)
        mask[..., :4, :] = 1.0  # half the image
        completed = target + 0.2 * mask
        q = quality(completed, target, mask)
        assert math.isclose(float(q["hole_l1"]), 0.1, rel_tol=1e-6)
        assert math.isclose(float(q["hole_l2"]), 0.01, rel_tol=1e-6)
        assert math.isclose(float(q["hole_psnr"]), 20.0, rel_tol=1e-6)
        assert math.isclose(float(q["image_l1"]), 0.05, rel_tol=1e-6)
        assert math.isclose(float(q["image_psnr"]), 10 * math.log10(1 / 0.005), rel_tol=1e-6)

    def test_ssim_is_one_for_identical_images(self) -> None:
        """SSIM of an image with itself is 1 everywhere, below 1 for a noisy copy."""
        a = torch.rand(2, 3, 16, 16, dtype=torch.float64)
        torch.testing.assert_close(ssim_map(a, a), torch.ones_like(a))
        assert float(ssim_map(a, (a + 0.1 * torch.randn_like(a)).clamp(0, 1)).mean()) < 0.99

    def test_perfect_completion(self) -> None:
        """Filling with the truth gives zero error and SSIM 1."""
        target = torch.rand(2, 1, 8, 8) * 2 - 1
        q = quality(target, target, torch.ones(2, 1, 8, 8))
        assert float(q["hole_l1"].max()) == 0.0
        torch.testing.assert_close(q["hole_ssim"], torch.ones(2, dtype=torch.float64))


class TestBaselines:
    def test_mean_fill(self) -> None:
        """Hole pixels get the mean of the known pixels, per channel; known pixels stay."""
        image = torch.tensor([[[[1.0, 3.0], [5.0, 0.0]], [[2.0, 2.0], [8.0, 0.0]]]])
        mask = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]])
        filled = mean_fill(image, mask)
        assert filled[0, 0, 1, 1] == 3.0
        assert filled[0, 1, 1, 1] == 4.0
        assert torch.equal(filled[..., 0, :], image[..., 0, :])

    def test_nearest_patch_restores_a_periodic_texture(self) -> None:
        """On a stripe pattern, outside-in patch copying restores the hole exactly."""
        cols = torch.arange(16) % 4
        image = ((cols[None, :].expand(16, 16).float() / 3) * 2 - 1)[None, None]
        mask = torch.zeros(1, 1, 16, 16)
        mask[..., 5:10, 6:11] = 1.0
        filled = nearest_patch_fill(image, mask, 3)
        torch.testing.assert_close(filled, image)
        assert float(mean_fill(image, mask).sub(image).abs().max()) > 0.3


class TestMetric:
    def _context(self) -> SimpleNamespace:
        """A context whose 'generator' fills every hole with zeros (grey)."""
        images = torch.rand(10, 1, 8, 8) * 2 - 1

        class Grey(torch.nn.Module):
            def forward(self, inputs: torch.Tensor) -> torch.Tensor:
                return torch.zeros_like(inputs[:, :1])

        class Data:
            shapes: ClassVar[dict[str, tuple[int, ...]]] = {"x": (1, 8, 8)}

            def __len__(self) -> int:
                return 10

            def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
                return {"x": images[i]}

        return SimpleNamespace(
            task=Inpaint(masks=MaskOptions(kind="center")),
            generators={"generator": Grey()},
            dataset=Data(),
            device=torch.device("cpu"),
        )

    def test_reports_model_and_baselines_with_protocol(self) -> None:
        """Values for the model and both baselines, with the protocol that made them."""
        context = self._context()
        metric = InpaintQuality(num_images=10, batch_size=10, seed=0)
        result = metric.evaluate(context)
        for prefix in ("", "mean_fill_", "nearest_patch_"):
            for key in ("hole_l1", "hole_l2", "hole_psnr", "hole_ssim", "image_ssim"):
                assert f"{prefix}{key}" in result
        assert result["hole_fraction"] == 0.25
        assert result["protocol"]["masks"] == {"kind": "center", "rectangle_size": 0.5}
        assert result["protocol"]["num_images"] == 10
        # grey (0 in [-1, 1], 0.5 in [0, 1]) against uniform values: E|u - 0.5| = 0.25
        assert 0.15 < result["hole_l1"] < 0.35

    def test_batch_size_does_not_change_the_result(self) -> None:
        """Random masks and image draws give equal values and protocols with batch sizes 3, 64
        and 100 (masks come in fixed seed blocks)."""
        context = self._context()
        context.task = Inpaint(masks=MaskOptions(kind="rectangle"))
        results = [
            InpaintQuality(num_images=70, batch_size=b, seed=4, baselines=("mean-fill",)).evaluate(
                context
            )
            for b in (3, 64, 100)
        ]
        assert 0 < results[0]["hole_fraction"] < 1
        for other in results[1:]:
            assert other.keys() == results[0].keys()
            for key, value in results[0].items():
                if isinstance(value, float):
                    assert other[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
                else:
                    assert other[key] == value, key

    def test_needs_the_task_and_generators(self) -> None:
        """A context without the run's task is refused with a one-line reason."""
        with pytest.raises(ValueError, match="must provide the run's 'task' and 'generators'"):
            InpaintQuality().evaluate(SimpleNamespace(dataset=None, device=None))

    def test_option_errors(self) -> None:
        """Unknown baselines and even patch sizes are refused."""
        with pytest.raises(ValueError, match="'baselines' must be a list of"):
            InpaintQuality(baselines=("blur",))
        with pytest.raises(ValueError, match="'patch_size' must be odd"):
            InpaintQuality(patch_size=4)
