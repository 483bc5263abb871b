"""gancore's loop against a minimal hand-written PyTorch loop: bit-identical weights.

The hand-written loop is the one ``benchmarks/overhead.py`` times (:func:`hand_train`): the
strongest statement that the framework adds no math, only bookkeeping.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

import gancore
from gancore._config import apply_overrides

ROOT = Path(__file__).resolve().parent.parent


def _overhead() -> ModuleType:
    # The benchmark scripts import their siblings (_machine.py) as top-level modules, as they do
    # when run as `python benchmarks/overhead.py`.
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.append(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("overhead", ROOT / "benchmarks" / "overhead.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("overhead", module)
    spec.loader.exec_module(module)
    return module


overhead = _overhead()


def _state(*modules: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{i}.{k}": t for i, m in enumerate(modules) for k, t in m.state_dict().items()}


def _gancore(case: str, steps: int, tmp: Path, overrides: tuple[str, ...] = ()) -> dict:
    document = apply_overrides(tomllib.loads(overhead.case_toml(case, steps)), overrides)
    config = gancore.parse_config(document, gancore.get_registry())
    result = gancore.train(config, tmp / "run", progress=False)
    return _state(result.generators["generator"], result.critics["critic"])


def _hand(case: str, steps: int, r1: tuple[float, int] | None = None) -> dict:
    spec = overhead.CASES[case]
    dataset, generator, critic = overhead.build_case(case)
    overhead.hand_train(
        dataset,
        generator,
        critic,
        steps=steps,
        batch_size=spec["batch_size"],
        lr=spec["lr"],
        betas=spec["betas"],
        r1=r1 if r1 is not None else spec["r1"],
    )
    return _state(generator, critic)


def _assert_identical(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not different, f"weights differ: {different}"


def test_mlp_weights_are_bit_identical_to_the_hand_written_loop(tmp_path: Path) -> None:
    """Same networks, data order, latents and Adam steps: every weight equal to the last bit."""
    torch.set_num_threads(1)
    ours = _gancore("mlp-tiny", 6, tmp_path)
    theirs = _hand("mlp-tiny", 6)
    _assert_identical(ours, theirs)
    # The comparison can fail: the trained weights moved away from the initial ones.
    initial = _state(*overhead.build_case("mlp-tiny")[1:])
    assert any(not torch.equal(ours[k], initial[k]) for k in ours)
    # ... and one step fewer by hand is told apart.
    short = _hand("mlp-tiny", 5)
    assert any(not torch.equal(ours[k], short[k]) for k in ours)


@pytest.mark.slow
def test_lazy_r1_matches_the_hand_written_loop(tmp_path: Path) -> None:
    """Lazy R1 every 2 steps (its own Adam step on 2 x penalty, lr and betas corrected by 2/3)."""
    torch.set_num_threads(1)
    overrides = ("regularizers=[{name='r1', gamma=0.5, interval=2}]",)
    ours = _gancore("mlp-tiny", 5, tmp_path, overrides)
    _assert_identical(ours, _hand("mlp-tiny", 5, r1=(0.5, 2)))


@pytest.mark.slow
def test_every_step_r1_matches_the_hand_written_loop(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    overrides = ("regularizers=[{name='r1', gamma=0.5, interval=1}]",)
    ours = _gancore("mlp-tiny", 4, tmp_path, overrides)
    _assert_identical(ours, _hand("mlp-tiny", 4, r1=(0.5, 1)))


@pytest.mark.slow
def test_dcgan_weights_are_bit_identical_to_the_hand_written_loop(tmp_path: Path) -> None:
    """Convolutions, batch norm and lazy R1 through the loop: still bit-identical on CPU."""
    torch.set_num_threads(1)
    ours = _gancore("dcgan32", 4, tmp_path)
    _assert_identical(ours, _hand("dcgan32", 4))
