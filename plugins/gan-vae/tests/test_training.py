"""Short trainings (slow suite): the VAE learns the held-out digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import gancore
import gancore.testing as gt


@pytest.mark.slow
class TestLearns:
    def test_vae_held_out_elbo_improves(self, tmp_path: Path, runs: Any) -> None:
        """200 steps on 64 digits (8x8) raise the ELBO of digits the run never saw by more than
        50 nats over a one-step model's, and the IWAE bound stays above the ELBO."""
        values = {}
        for steps in (1, 200):
            document = runs.vae(steps, kl_warmup_steps=50)
            document["training"] |= {"batch_size": 16, "log_every": steps}
            document["optimizers"] = {"generator": {"lr": 2e-3}}
            gt.check_training(document, tmp_path / str(steps))
            context = gancore.load_run(tmp_path / str(steps)).context()
            options = {"data": runs.held_out, "num": 200}
            elbo = gt.check_metric("elbo", options, context=context)["elbo"]
            iwae = gt.check_metric("iwae", {**options, "k": 20}, context=context)["log_px"]
            assert iwae >= elbo
            values[steps] = elbo
        assert values[200] > values[1] + 50, values
