"""The metrics: Hungarian matching, and each metric on a trained tiny run's context."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gan_conditional.metrics import matched_accuracy

import gancore
import gancore.testing as gt


class TestMatchedAccuracy:
    def test_permuted_codes_score_one(self) -> None:
        """Codes that are a relabelling of the classes match perfectly."""
        classes = np.array([0, 1, 2, 2, 1, 0])
        codes = np.array([2, 0, 1, 1, 0, 2])
        accuracy, matching = matched_accuracy(codes, classes)
        assert accuracy == 1.0
        assert matching == [1, 2, 0]

    def test_one_to_one(self) -> None:
        """Two codes cannot both take the same class: the best one-to-one assignment counts."""
        codes = np.array([0, 0, 0, 1, 1, 1])
        predicted = np.array([0, 0, 0, 0, 0, 1])
        accuracy, matching = matched_accuracy(codes, predicted)
        assert matching == [0, 1]
        assert accuracy == pytest.approx(4 / 6)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two-step conditional and InfoGAN runs on 8x8 digits."""
    root = tmp_path_factory.mktemp("metrics")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCORE_LOAD_PLUGINS", "gan-conditional")
        gancore.reset_registry()
        registry = gancore.get_registry()
        data = {"name": "digits", "resolution": 8}
        conditional = gt.tiny_run(
            2,
            task={"name": "conditional"},
            data=data,
            generator={
                "name": "concat",
                "latent_dim": 4,
                "inner": {"name": "dcgan", "channels": 4},
            },
            critic={"name": "projection", "inner": {"name": "dcgan", "channels": 4}},
        )
        infogan = gt.tiny_run(
            2,
            task={"name": "infogan", "continuous": 0},
            data=data,
            generator={"name": "dcgan", "latent_dim": 12, "channels": 4},
            critic={"name": "dcgan", "channels": 4},
        )
        for name, document in (("conditional", conditional), ("infogan", infogan)):
            document["training"]["sample_every"] = 0  # no sample grid, no curves: no plotting
            gancore.train(gancore.parse_config(document, registry), root / name, progress=False)
        gancore.reset_registry()
    return {"conditional": root / "conditional", "infogan": root / "infogan"}


class TestMetrics:
    def test_class_accuracy(self, runs: dict[str, Path]) -> None:
        """Mean of per-class accuracies in [0, 1], every class reported, with its protocol."""
        context = gancore.load_run(runs["conditional"]).context()
        result = gt.check_metric(
            "class-accuracy", {"num_per_class": 4, "batch_size": 3}, context=context
        )
        per_class = [result[f"accuracy/{k}"] for k in range(10)]
        assert result["accuracy"] == pytest.approx(np.mean(per_class))
        assert result["protocol"]["extractor"] == "digits-classifier"
        again = gt.check_metric(
            "class-accuracy", {"num_per_class": 4, "batch_size": 4}, context=context
        )
        assert again["accuracy"] == result["accuracy"]  # batch size changes no sample

    def test_class_accuracy_of_one_class(self, runs: dict[str, Path]) -> None:
        """A per-class context (gan eval --per-class) scores only its class."""
        context = gancore.load_run(runs["conditional"]).context(label=7)
        result = gt.check_metric("class-accuracy", {"num_per_class": 4}, context=context)
        assert result["accuracy"] == result["accuracy/7"]
        assert "accuracy/3" not in result

    def test_intra_fid(self, runs: dict[str, Path]) -> None:
        """Mean over classes of non-negative per-class distances."""
        context = gancore.load_run(runs["conditional"]).context()
        options = {"num_per_class": 8, "num_real_per_class": 8}
        result = gt.check_metric("intra-fid", options, context=context)
        per_class = [result[f"intra-fd-digits/{k}"] for k in range(10)]
        assert min(per_class) >= 0
        assert result["intra-fd-digits"] == pytest.approx(np.mean(per_class))

    def test_code_accuracy(self, runs: dict[str, Path]) -> None:
        """At least chance after matching (1/10), at most 1; the matching is one-to-one."""
        context = gancore.load_run(runs["infogan"]).context()
        result = gt.check_metric("code-accuracy", {"num": 50}, context=context)
        assert 0.1 <= result["accuracy"] <= 1.0
        matched = [result[f"class-of-code/{i}"] for i in range(10)]
        taken = [c for c in matched if c >= 0]
        assert len(taken) == len(set(taken))

    def test_needs_the_loop_context(self) -> None:
        """On a context without a task it says what it needs."""
        with pytest.raises(ValueError, match="needs the training loop's metric context"):
            gt.check_metric("class-accuracy", {"num_per_class": 2})
