"""The ``elbo`` and ``iwae`` metrics on a trained tiny VAE, through the loop's metric context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import gancore
import gancore.testing as gt


class TestMetrics:
    def test_elbo_conforms_on_held_out_data(self, trained: dict[str, Path], runs: Any) -> None:
        """On the digits the run never saw: finite values, elbo = -(reconstruction + kl)."""
        context = gancore.load_run(trained["vae"]).context()
        result = gt.check_metric("elbo", {"num": 6, "data": runs.held_out}, context=context)
        assert result["elbo"] == pytest.approx(-(result["reconstruction"] + result["kl"]))
        assert result["protocol"]["num_images"] == 6
        assert result["protocol"]["data"]["rest"] is True

    def test_iwae_is_at_least_the_elbo(self, trained: dict[str, Path], runs: Any) -> None:
        """log p(x) by IWAE with k = 50 is above the ELBO on the same images."""
        context = gancore.load_run(trained["vae"]).context()
        elbo = gt.check_metric("elbo", {"num": 6, "samples": 50}, context=context)
        iwae = gt.check_metric("iwae", {"num": 6, "k": 50}, context=context)
        assert iwae["log_px"] >= elbo["elbo"]
        assert iwae["protocol"]["data"] == "the run's dataset (training data)"

    def test_batch_size_changes_no_value(self, trained: dict[str, Path]) -> None:
        context = gancore.load_run(trained["vae"]).context()
        a = gt.check_metric("iwae", {"num": 7, "k": 3, "batch_size": 2}, context=context)
        b = gt.check_metric("iwae", {"num": 7, "k": 3, "batch_size": 7}, context=context)
        assert a["log_px"] == pytest.approx(b["log_px"], abs=1e-9)

    def test_needs_a_vae_run(self, trained: dict[str, Path]) -> None:
        context = gancore.load_run(trained["began"]).context()
        with pytest.raises(ValueError, match="metric 'elbo': needs a run of task 'vae'"):
            gt.check_metric("elbo", {"num": 2}, context=context)

    def test_num_beyond_the_data(self, trained: dict[str, Path], runs: Any) -> None:
        context = gancore.load_run(trained["vae"]).context()
        with pytest.raises(ValueError, match="'num' is 5000 but the data holds 1733 images"):
            gt.check_metric("elbo", {"num": 5000, "data": runs.held_out}, context=context)
