"""The mode-coverage benchmark's pure parts: held-out mixtures, recipes, run documents, summaries."""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import gancore
from gancore.builtin.datasets import Toy2dOptions, build_toy2d

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.append(str(ROOT / "benchmarks"))
    path = ROOT / "benchmarks" / "mode_coverage.py"
    spec = importlib.util.spec_from_file_location("mode_coverage_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()


def _arguments(*argv: str) -> argparse.Namespace:
    return bench.parse_arguments(list(argv))


class TestHeldoutMixtures:
    def test_deterministic(self) -> None:
        """The same seed gives the same mixtures; another seed gives others."""
        assert bench.heldout_mixtures(5, 7) == bench.heldout_mixtures(5, 7)
        assert bench.heldout_mixtures(5, 7) != bench.heldout_mixtures(5, 8)
        assert bench.heldout_mixtures(3, 7) == bench.heldout_mixtures(5, 7)[:3]
        assert bench.heldout_mixtures(0, 7) == []

    def test_pinned(self) -> None:
        """Seed 12345 gives these first mixture options (random.Random's stream is stable)."""
        first = bench.heldout_mixtures(1, 12345)[0]
        assert first == {
            "mixture": "ring",
            "ring_modes": 5,
            "radius": 2.563,
            "std": 0.0876,
            "center": [-0.53, -1.23],
            "weights": [1.066, 0.662, 0.624, 0.933, 1.062],
        }

    def test_valid_and_well_separated(self) -> None:
        """Every mixture of 40 builds; nearest centres lie 15 to 80 std apart; weights vary in
        [0.5, 1.5] and match the mode count; rings and grids both occur."""
        mixtures = bench.heldout_mixtures(40, 3)
        assert {m["mixture"] for m in mixtures} == {"ring", "grid"}
        for options in mixtures:
            dataset = build_toy2d(Toy2dOptions(**options, size=10, seed=0), None)
            assert dataset.modes is not None and dataset.mode_std is not None
            modes = dataset.modes
            assert len(options["weights"]) == len(modes)
            assert 5 <= len(modes) <= 25
            assert all(0.5 <= w <= 1.5 for w in options["weights"])
            assert len(set(options["weights"])) > 1  # unequal
            assert all(-2.0 <= c <= 2.0 for c in options["center"])
            distances = [
                math.dist(modes[i].tolist(), modes[j].tolist())
                for i in range(len(modes))
                for j in range(i)
            ]
            # std is rounded to 3 significant digits: allow that much around [15, 80].
            assert 15 * 0.99 <= min(distances) / dataset.mode_std <= 80 * 1.01

    def test_not_the_repository_mixtures(self) -> None:
        """No held-out mixture is a protocol mixture: each is moved off the origin and weighted."""
        for options in bench.heldout_mixtures(20, 0):
            assert options["center"] != [0.0, 0.0]
            assert options["std"] not in (0.01, 0.05)

    def test_perfect_generator_passes(self) -> None:
        """2,500 real points of each mixture give every mode >= 20 high-quality samples."""
        for index, options in enumerate(bench.heldout_mixtures(8, 12345)):
            reference = bench.data_reference(options, 10_000 + index)
            assert reference["modes_covered_20"] == reference["num_modes"]
            assert reference["min_mode_count"] >= 20
            assert reference["kl_weights"] < 0.05

    def test_needs_a_seed(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--heldout without --heldout-seed is a usage error."""
        with pytest.raises(SystemExit) as exc:
            _arguments("--heldout", "3")
        assert exc.value.code == 2
        assert "--heldout N (>= 0) needs --heldout-seed S" in capsys.readouterr().err


class TestRecipes:
    def test_builtins_and_files(self, tmp_path: Path) -> None:
        """Built-ins come first, then files by stem; globs are expanded."""
        (tmp_path / "improved-a.toml").write_text('[loss]\nname = "hinge"\n')
        (tmp_path / "improved-b.toml").write_text('[loss]\nname = "wgan"\n')
        args = _arguments("--builtins", "gan", "--recipes", str(tmp_path / "improved-*.toml"))
        recipes = bench.load_recipes(args)
        assert list(recipes) == ["gan", "improved-a", "improved-b"]
        assert recipes["gan"]["source"] == "builtin"
        assert recipes["improved-b"] == {
            "source": str(tmp_path / "improved-b.toml"),
            "document": {"loss": {"name": "wgan"}},
        }

    def test_errors(self, tmp_path: Path) -> None:
        """A pattern matching nothing, two recipes of one name and no recipe at all stop."""
        with pytest.raises(SystemExit, match="matches no file"):
            bench.load_recipes(_arguments("--recipes", str(tmp_path / "*.toml")))
        (tmp_path / "gan.toml").write_text("")
        with pytest.raises(SystemExit, match="two recipes are named 'gan'"):
            bench.load_recipes(
                _arguments("--builtins", "gan", "--recipes", str(tmp_path / "gan.toml"))
            )
        with pytest.raises(SystemExit, match="no recipes"):
            bench.load_recipes(_arguments("--builtins"))


class TestRunDocument:
    def test_recipe_file_is_kept_but_data_budget_and_metrics(self) -> None:
        """examples/ring-gan.toml on a held-out mixture: its networks, loss and optimizers stay;
        the harness sets data, seed, steps, metrics and bookkeeping; the config parses."""
        recipe = bench.load_recipes(
            _arguments("--builtins", "--recipes", str(ROOT / "examples/ring-gan.toml"))
        )["ring-gan"]["document"]
        options = bench.heldout_mixtures(1, 12345)[0]
        document = bench.run_document(recipe, options, 2, "x", 1000)
        assert document["data"] == {"name": "toy2d", **options, "seed": 2}
        assert document["run"] == {"name": "x", "seed": 2, "steps": 1000}
        assert [m["min_samples"] for m in document["metrics"]] == [1, 20]
        assert {m["seed"] for m in document["metrics"]} == {1002}
        for key in ("generator", "critic", "loss", "optimizers"):
            assert document[key] == recipe[key]
        assert document["training"]["batch_size"] == recipe["training"]["batch_size"]
        assert document["training"]["metrics_every"] == 0
        assert recipe["data"] == {"name": "toy2d", "mixture": "ring"}  # not modified
        config = gancore.parse_config(document, gancore.get_registry())
        assert config.data.options.weights == tuple(options["weights"])
        kept = bench.run_document(recipe, {"mixture": "grid"}, 0, "y", 1000, keep_steps=True)
        assert kept["run"]["steps"] == recipe["run"]["steps"]

    @pytest.mark.parametrize("name", bench.BUILTINS)
    def test_builtins_parse_with_matched_budget(self, name: str) -> None:
        """Every built-in recipe parses and makes the budget's critic updates (the WGAN ones need
        gan-wgan, absent from the core env)."""
        if name != "gan":
            pytest.importorskip("gan_wgan", reason="the WGAN recipes need gan-wgan")
        recipe = bench.builtin_recipe(name, hidden=16, batch=8)
        document = bench.run_document(recipe, {"mixture": "grid"}, 1, name, 1000)
        config = gancore.parse_config(document, gancore.get_registry())
        assert config.run.steps * config.training.critic_steps == 1000


def _row(recipe: str, index: int, covered: int, total: int, kl: float) -> dict[str, Any]:
    return {
        "recipe": recipe,
        "heldout_index": index,
        "modes_covered_20": covered,
        "num_modes": total,
        "kl_weights": kl,
    }


class TestSummaries:
    def test_mean_se(self) -> None:
        """Mean and standard error drop NaNs; one value has no error."""
        assert bench.mean_se([1.0, 2.0, 3.0]) == (2.0, 1.0 / math.sqrt(3))
        assert bench.mean_se([4.0, math.nan]) == (4.0, pytest.approx(math.nan, nan_ok=True))
        assert all(math.isnan(v) for v in bench.mean_se([math.nan]))

    def test_heldout_summary_and_table(self) -> None:
        """A recipe passes a mixture when every mode has >= 20 samples; the table says so."""
        runs = [_row("gan", 0, 8, 8, 0.1), _row("gan", 1, 20, 25, 0.3), _row("pac", 1, 25, 25, 0.1)]
        summary = bench.summarize_heldout(runs, ["gan", "pac"])
        assert summary["gan"]["all_modes_20"] == 1
        assert summary["gan"]["passed"] == [0]
        assert summary["gan"]["kl_weights"]["mean"] == pytest.approx(0.2)
        assert summary["pac"] == {
            "mixtures": 1,
            "all_modes_20": 1,
            "passed": [1],
            "kl_weights": {"mean": 0.1, "se": pytest.approx(math.nan, nan_ok=True)},
        }
        mixtures = bench.heldout_mixtures(2, 5)
        report = {
            "mixtures": mixtures,
            "runs": runs,
            "summary": summary,
            "data_reference": [
                {"modes_covered_20": 8, "num_modes": 8},
                {"modes_covered_20": 25, "num_modes": 25},
            ],
        }
        lines = bench.heldout_table(report, ["gan", "pac"]).splitlines()
        assert lines[2].endswith("| 8/8 ✓ | 20/25 | 1 of 2 |")
        assert lines[3].endswith("| - | 25/25 ✓ | 1 of 1 |")
        assert lines[4] == "| real data (2,500 points) | 8/8 ✓ | 25/25 ✓ | 2 of 2 |"

    def test_main_table(self) -> None:
        """The main table has both coverage bars per mixture and the published rows."""
        rows = [
            {
                "recipe": "gan",
                "mixture": "ring",
                "seed": seed,
                "modes_covered": 8,
                "modes_covered_20": 7 + seed,
                "high_quality_percent": 90.0,
                "kl_uniform": 0.1,
                "cpu_seconds": 10.0,
                "train_seconds": 12.0,
            }
            for seed in (0, 1)
        ]
        summary = bench.summarize(rows, ["gan"])
        assert summary["gan/ring"]["modes_covered_20"] == {"mean": 7.5, "se": 0.5}
        text = bench.table(summary, ["gan"])
        assert "| gan | 8.0 ± 0.0 | 7.5 ± 0.5 | 90.0 ± 0.0 | 0.10 ± 0.00 | - | - | - | - |" in text
        assert "ring: modes ≥20" in text
        assert "| GAN (VEEGAN Table 1) | 1 | - | 99.3 | - | 3.3 | - | 0.5 | - |" in text
