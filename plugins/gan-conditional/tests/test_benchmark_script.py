"""benchmarks/conditional.py: every model's run document parses, ``--set`` changes one key."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import gancore

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.append(str(ROOT / "benchmarks"))  # for its _machine helper
    spec = importlib.util.spec_from_file_location(
        "conditional_benchmark", ROOT / "benchmarks" / "conditional.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_model_parses(bench: ModuleType) -> None:
    registry = gancore.get_registry()
    for model in bench.MODELS:
        config = gancore.parse_config(bench.document(model, 0, 10), registry)
        assert config.run.steps == 10
    sat = gancore.parse_config(bench.document("infogan-sat", 0, 10), registry).task.options
    assert (sat.real_marginal_weight, sat.real_entropy_weight) == (1.0, 0.3)
    assert sat.real_consistency_weight == 1.0


def test_set(bench: ModuleType) -> None:
    sets = [
        bench.parse_set("task.real_consistency_weight=0.3"),
        bench.parse_set("optimizers.generator.lr=1e-3"),
        bench.parse_set("training.note=plain-word"),
    ]
    base = bench.document("infogan-real", 1, 10)
    changed = bench.with_sets(base, sets)
    assert changed["task"]["real_consistency_weight"] == 0.3
    assert changed["optimizers"]["generator"]["lr"] == 1e-3
    assert changed["training"]["note"] == "plain-word"
    assert "real_consistency_weight" not in base["task"]  # the model's document is not changed
    with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
        bench.parse_set("task.real_consistency_weight")
