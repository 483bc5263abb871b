"""The examples examples/sagan-digits.toml and examples/biggan-digits.toml: they hold the papers'
settings and train as written (the full runs are measured by benchmarks/biggan.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import gancore

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
RECIPES = ("sagan-digits.toml", "biggan-digits.toml")


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_holds_the_papers_settings(recipe: str) -> None:
    """Hinge loss, TTUR (G 1e-4, D 4e-4, beta1 0), class-conditional digits at 16x16 with
    self-attention on the 8x8 maps, and a class embedding on the projection's scale."""
    config = gancore.load_config(EXAMPLES / recipe)
    assert config.loss.spec.name == "hinge"
    assert config.task.spec.name == "conditional"
    assert config.data.options.resolution == 16
    assert config.critic.options.embed_std == pytest.approx(32**-0.5, rel=0.01)
    assert config.critic.options.inner["attention_resolution"] == 8
    generator, critic = config.optimizers["generator"], config.optimizers["critic"]
    assert (generator.lr, critic.lr) == (1e-4, 4e-4)
    beta2 = 0.9 if recipe.startswith("sagan") else 0.999
    assert tuple(generator.options["betas"]) == tuple(critic.options["betas"]) == (0.0, beta2)


def test_biggan_recipe_extras() -> None:
    """BigGAN: two critic steps, EMA, synchronized batch norm, orthogonal regularization."""
    config = gancore.load_config(EXAMPLES / "biggan-digits.toml")
    assert config.training.critic_steps == 2
    assert config.training.ema_half_life_images is not None
    assert config.training.sync_batchnorm is True
    assert [r.spec.name for r in config.regularizers] == ["orthogonal"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_as_written(recipe: str, tmp_path: Path) -> None:
    """Two steps of the file as written, with its metric."""
    config = gancore.load_config(
        EXAMPLES / recipe,
        ["run.steps=2", "training.sample_every=0", "training.checkpoint_every=0"],
    )
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.step == 2
    assert 0.0 <= result.metrics["class-accuracy.accuracy"] <= 1.0
