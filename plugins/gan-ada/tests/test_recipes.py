"""The recipes of benchmarks/ada.py as examples: ada-limited-digits.toml is the benchmark's ADA
run, bcr-limited-digits.toml its bCR run, and ada-transfer-digits.toml runs from a fresh
checkout after the base run its header names (both commands taken from the file, shortened with
--set)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import gancore

ROOT = Path(__file__).resolve().parents[3]
LIMITED = ROOT / "examples" / "ada-limited-digits.toml"
TRANSFER = ROOT / "examples" / "ada-transfer-digits.toml"
BCR = ROOT / "examples" / "bcr-limited-digits.toml"

# Two steps of a narrow DCGAN on small batches, no samples, a quick metric.
SHORT = [
    "run.steps=2",
    "generator.latent_dim=8",
    "generator.channels=8",
    "critic.channels=8",
    "training.batch_size=8",
    "training.log_every=1",
    "training.sample_every=0",
    "training.checkpoint_every=0",
    "metrics.0.num_generated=16",
]


def _benchmark() -> ModuleType:
    """benchmarks/ada.py as a module (its folder on sys.path for its ``_machine`` import)."""
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("ada_benchmark", ROOT / "benchmarks" / "ada.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _header_commands(example: Path) -> list[list[str]]:
    """The ``gan ...`` command lines of an example's header comment, comments cut off."""
    lines = [line.lstrip("#").strip() for line in example.read_text().splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith("gan ")]


def _assert_is_benchmark_case(example: Path, augmenter: str, steps: int) -> dict[str, Any]:
    """The example's data, networks, loss, optimizers, augmenter and regularizers (either may be
    absent, then in both), batch, EMA and steps are those of the benchmark's ``augmenter`` case
    on 100 digits. Returns the example as TOML."""
    case = {
        "experiment": "limited",
        "subset": 100,
        "augmenter": augmenter,
        "aug": augmenter,
        "seed": 0,
        "steps": steps,
        "eval_every": steps // 10,
        "speed_images": 10_000,
    }
    expected = _benchmark().run_document(case)
    written = tomllib.loads(example.read_text())
    keys = ("data", "generator", "critic", "loss", "optimizers", "augmenter", "regularizers")
    for key in keys:
        assert written.get(key) == expected.get(key), key
    for key in ("batch_size", "ema_half_life_images", "ema_rampup"):
        assert written["training"][key] == expected["training"][key], key
    assert written["run"]["steps"] == expected["run"]["steps"]
    return written


class TestLimitedExample:
    def test_is_the_benchmarks_ada_run(self) -> None:
        """Data, networks, loss, optimizers, batch, EMA and augmenter are the benchmark's
        ``ada`` case on 100 digits."""
        written = _assert_is_benchmark_case(LIMITED, "ada", steps=4000)
        assert written["augmenter"]["name"] == "ada"
        config = gancore.load_config(LIMITED)
        assert config.data.options.limit == 100


class TestBcrExample:
    def test_is_the_benchmarks_bcr_run(self) -> None:
        """bcr-limited-digits.toml is the benchmark's ``bcr`` case on 100 digits: same data,
        networks, optimizers, batch, EMA and steps, the bcr regularizer, no augmenter."""
        written = _assert_is_benchmark_case(BCR, "bcr", steps=6000)
        assert "augmenter" not in written
        config = gancore.load_config(BCR)
        (regularizer,) = config.regularizers
        assert regularizer.name.endswith("bcr")
        assert regularizer.options.xflip is False


class TestTransferExample:
    def test_two_commands_from_a_fresh_checkout(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The header's two commands run in an empty folder; the base run sees only 0-4, the
        fine-tuning run 5-9, loads every tensor of the base run, and keeps the frozen block."""
        from gancore._cli import main

        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("GANCORE_CACHE", str(tmp_path / "cache"))
        (tmp_path / "examples").symlink_to(ROOT / "examples")
        commands = _header_commands(TRANSFER)
        assert [c[:3] for c in commands] == [
            ["gan", "train", "examples/digits-dcgan.toml"],
            ["gan", "train", "examples/ada-transfer-digits.toml"],
        ]
        # the base run learns fast, so that "started from the base run" shows in the weights
        base_only = ["optimizers.generator.lr=1e-2", "optimizers.critic.lr=1e-2"]
        for command, extra in zip(commands, (base_only, []), strict=True):
            overrides = [arg for key in [*SHORT, *extra] for arg in ("--set", key)]
            assert main([*command[1:], *overrides, "--progress", "lines"]) == 0, command

        base, tuned = tmp_path / "runs" / "digits-dcgan", tmp_path / "runs" / "ada-transfer-digits"
        base_classes = tomllib.loads((base / "config.toml").read_text())["data"]["classes"]
        tuned_classes = tomllib.loads((tuned / "config.toml").read_text())["data"]["classes"]
        assert (base_classes, tuned_classes) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])

        report = json.loads((tuned / "init.json").read_text())
        assert report["source"] == "runs/digits-dcgan/checkpoints/step-0000002"
        assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])

        def weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
            (checkpoint,) = sorted((run / "checkpoints").glob("step-*"))
            return {p.stem: load_file(str(p)) for p in checkpoint.glob("*.safetensors")}

        source, after = weights(base), weights(tuned)
        assert len(report["matched"]) == sum(len(t) for t in source.values())
        # Freeze-D, blocks = 1: the dcgan critic's first convolution keeps the base weights.
        for key in ("critic.net.0.weight", "critic.net.0.bias"):
            assert torch.equal(after["critics"][key], source["critics"][key]), key
        moved = "critic.net.2.weight"
        assert not torch.equal(after["critics"][moved], source["critics"][moved])
        records = [json.loads(line) for line in (tuned / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in records if r["event"] == "train"]
        assert [r["step"] for r in train] == [1, 2]
        assert all("augment/p" in r for r in train)


class TestSkimageDomain:
    def test_limited_patches_and_their_rest(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``--domain skimage``: the runs train on the first N photo patches of a seeded shuffle,
        the critic is read on the rest, FD is taken against all of them with sr-features."""
        pytest.importorskip("gan_inpaint")  # the patches' dataset (tox's 'all' env has it)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gan-ada,gan-inpaint")
        gancore.reset_registry()
        bench = _benchmark()
        case = {
            "experiment": "skimage",
            "subset": 100,
            "augmenter": "ada",
            "aug": "ada",
            "seed": 1,
            "steps": 4000,
            "eval_every": 400,
            "speed_images": 10_000,
        }
        assert bench.case_key(case) == "skimage-100-ada-s1"
        assert bench.is_limited("skimage")
        assert bench.is_limited("skimage-none")
        assert bench.domain_of("skimage-none") == "skimage"
        assert bench.domain_of("limited-none") == "digits"
        document = bench.run_document(case)
        patches = {"name": "skimage-patches", "size": 32, "scale": 0.5, "stride": 16}
        assert document["data"] == {**patches, "limit": 100, "seed": 0}
        assert bench.data_table(case, held_out=True) == {
            **patches,
            "limit": 100,
            "seed": 0,
            "rest": True,
        }
        assert bench.reference_table(case) == patches
        config = gancore.parse_config(document, gancore.get_registry(), source="case")
        assert config.data.options.limit == 100
        train = bench.build_dataset(bench.data_table(case, held_out=False))
        held = bench.build_dataset(bench.data_table(case, held_out=True))
        every = bench.build_dataset(bench.reference_table(case))
        assert (len(train), len(held), len(every)) == (100, 1110, 1210)
        assert train.shapes == {"x": (3, 32, 32)}
