"""The task trains, the example run file validates, the command describes a trained run."""

from __future__ import annotations

from pathlib import Path

import pytest
from gan_example.commands import add_arguments, describe_run

import gancore
import gancore.testing as gt

EXAMPLE = Path(__file__).parents[1] / "examples" / "moons-pacgan.toml"


def test_example_run_file_is_valid() -> None:
    """examples/moons-pacgan.toml validates with every gan-example component it names."""
    config = gancore.load_config(EXAMPLE)
    assert config.task.name == "gan-example:pacgan"
    assert config.data.name == "gan-example:two-moons"


@pytest.mark.slow
def test_pacgan_trains_and_describe_run_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two steps of the example run; then `gan describe-run` prints progress and sizes."""
    document = gt.tiny_run(
        task={"name": "pacgan", "packing": 4},
        data={"name": "two-moons", "size": 64},
        generator={"name": "residual-mlp", "hidden": 8, "blocks": 1},
        critic={"name": "residual-mlp", "hidden": 8, "blocks": 1},
        loss={"name": "smoothed-non-saturating"},
        regularizers=[{"name": "r2", "gamma": 0.1}],
        augmenter={"name": "adaptive-noise", "feedback_interval": 1},
        metrics=[{"name": "sliced-wasserstein", "num_samples": 16, "batch_size": 8}],
    )
    document["training"]["metrics_every"] = 2
    result = gt.check_training(document, tmp_path / "run")
    critic = result.critics["critic"]
    assert critic.trunk[0].in_features == 8  # packs of 4 two-dimensional points
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    capsys.readouterr()
    assert describe_run(parser.parse_args([str(tmp_path / "run")])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "step 2, 16 images seen"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "loss/critic",
        "loss/generator",
        "generator",
        "critic",
    ]
