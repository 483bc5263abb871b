"""The recipes examples/improved-*.toml: they train as written, and a short run already spreads
over the ring (the full runs are measured by benchmarks/mode_coverage.py, docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

import gancore

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
RECIPES = sorted(p.name for p in EXAMPLES.glob("improved-*.toml"))


def test_there_are_recipes() -> None:
    assert {"improved-pacgan.toml", "improved-unrolled.toml"} <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_as_written(recipe: str, tmp_path: Path) -> None:
    """Two steps of the file as written (short intervals), on its own dataset."""
    config = gancore.load_config(
        EXAMPLES / recipe,
        ["run.steps=2", "training.sample_every=0", "training.checkpoint_every=0", "metrics=[]"],
    )
    assert config.data.spec.name == "toy2d"
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.step == 2


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_short_run_reaches_most_ring_modes(recipe: str, tmp_path: Path) -> None:
    """A tenth of the budget (500 steps, the learning rate decaying over them) on a held-out
    ring (10 modes, radius 1.5, centre (0.5, -0.5)) already reaches at least 6 of its 10 modes.
    Schedules counted in images (instance noise's annealing, the EMA's half-life) are shortened
    in proportion."""
    overrides = [
        "run.steps=500",
        "data={name='toy2d', mixture='ring', ring_modes=10, radius=1.5, center=[0.5, -0.5]}",
        "training.sample_every=0",
        "training.checkpoint_every=0",
        "training.metrics_every=0",
    ]
    written = gancore.load_config(EXAMPLES / recipe)
    if written.augmenter is not None and written.augmenter.name.endswith("instance-noise"):
        anneal = written.augmenter.options.anneal_images * 500 // written.run.steps
        overrides.append(f"augmenter.anneal_images={anneal}")
    if written.training.ema_half_life_images is not None:
        half_life = written.training.ema_half_life_images * 500 / written.run.steps
        overrides.append(f"training.ema_half_life_images={half_life}")
    config = gancore.load_config(EXAMPLES / recipe, overrides)
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.metrics["mode-coverage.num_modes"] == 10
    assert result.metrics["mode-coverage.modes_covered"] >= 6
