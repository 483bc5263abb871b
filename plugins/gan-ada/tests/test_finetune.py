"""The transfer-learning recipe of docs/plugins/ada.md, end to end: a trained base run, then
[init] + ADA + Freeze-D on a small set, run as the page shows it (shortened with --set)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import gancore

ROOT = Path(__file__).resolve().parents[3]
PAGE = ROOT / "docs" / "plugins" / "ada.md"
RECIPE = PAGE.read_text().split("**Transfer learning**", 1)[1].split("**A known strength**")[0]

# Every command of the recipe, made tiny: 2 steps of a narrow DCGAN on small batches.
SHORT = [
    "run.steps=2",
    "generator.latent_dim=8",
    "generator.channels=8",
    "critic.channels=8",
    "training.batch_size=8",
    "training.log_every=1",
    "training.sample_every=0",
    "training.checkpoint_every=0",
]
# The base run only: a quick metric, and a learning rate that takes it far from its
# initialization in two steps (so that "started from the base run" is visible in the weights).
BASE_ONLY = [
    "metrics.0.num_generated=16",
    "optimizers.generator.lr=1e-2",
    "optimizers.critic.lr=1e-2",
]


def _commands() -> list[list[str]]:
    (block,) = re.findall(r"^```console\n(.*?)^```$", RECIPE, re.S | re.M)
    return [shlex.split(line[2:]) for line in block.splitlines() if line.startswith("$ ")]


def _weights(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    (checkpoint,) = sorted((run_dir / "checkpoints").glob("step-*"))
    return {p.stem: load_file(str(p)) for p in checkpoint.glob("*.safetensors")}


def _is_part_of(part: Any, whole: Any) -> bool:
    """Every key of ``part`` is in ``whole`` with the same value (tables recursively)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            k in whole and _is_part_of(v, whole[k]) for k, v in part.items()
        )
    if isinstance(part, list) and part and isinstance(part[0], dict):
        return (
            isinstance(whole, list)
            and len(part) == len(whole)
            and all(_is_part_of(p, w) for p, w in zip(part, whole, strict=True))
        )
    return bool(part == whole)


class TestTransferRecipe:
    def test_shown_keys_are_the_example_file(self) -> None:
        """The page's TOML block is part of examples/finetune-digits.toml, and the file validates."""
        (block,) = re.findall(r"^```toml\n(.*?)^```$", RECIPE, re.S | re.M)
        assert _is_part_of(
            tomllib.loads(block),
            tomllib.loads((ROOT / "examples/finetune-digits.toml").read_text()),
        )
        config = gancore.load_config(ROOT / "examples/finetune-digits.toml")
        assert config.init is not None
        assert config.init.from_ == "runs/digits-dcgan"

    def test_fine_tuning_keeps_the_frozen_block_and_starts_from_the_base(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The two commands run; the fine-tuned critic's frozen block equals the base run's, the
        other blocks moved, and the generator started from the base run's weights."""
        from gancore._cli import main
        from gancore._train import build_run

        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("GANCORE_CACHE", str(tmp_path / "cache"))
        (tmp_path / "examples").symlink_to(ROOT / "examples")
        commands = _commands()
        assert [c[:3] for c in commands] == [
            ["gan", "train", "examples/digits-dcgan.toml"],
            ["gan", "train", "examples/finetune-digits.toml"],
        ]
        for command, extra in zip(commands, (BASE_ONLY, []), strict=True):
            overrides = [arg for key in [*SHORT, *extra] for arg in ("--set", key)]
            assert main([*command[1:], *overrides, "--progress", "lines"]) == 0, command

        base, tuned = tmp_path / "runs" / "digits-dcgan", tmp_path / "runs" / "finetune-digits"
        report = json.loads((tuned / "init.json").read_text())
        assert report["source"] == "runs/digits-dcgan/checkpoints/step-0000002"
        assert (report["missing"], report["unexpected"], report["mismatched"]) == ([], [], [])
        source, after = _weights(base), _weights(tuned)
        assert len(report["matched"]) == sum(len(t) for t in source.values())
        shown = f"init: loaded {len(report['matched'])} of {len(report['matched'])} tensors from"
        assert shown in " ".join(RECIPE.split())
        assert shown + " runs/digits-dcgan/checkpoints/step-0000002" in capsys.readouterr().err

        # Freeze-D, blocks = 1: the dcgan critic's first block is its first convolution, net.0.
        critic_before, critic_after = source["critics"], after["critics"]
        for key in ("critic.net.0.weight", "critic.net.0.bias"):
            assert torch.equal(critic_after[key], critic_before[key]), key
        for key in ("critic.net.2.weight", "critic.net.3.weight", "critic.net.5.weight"):
            assert not torch.equal(critic_after[key], critic_before[key]), key

        # The generator moved two small steps (lr 2e-4) from the base run's weights, which are far
        # (two steps at lr 1e-2) from the initialization a run of this seed starts from.
        config = gancore.load_config(ROOT / "examples/finetune-digits.toml", SHORT)
        fresh = build_run(config).generators["generator"].state_dict()
        for key in ("net.0.weight", "net.3.weight", "net.6.weight"):
            trained = source["generators"][f"generator.{key}"]
            tuned_w = after["generators"][f"generator.{key}"]
            assert (tuned_w - trained).abs().max() < 1e-3 < (fresh[key] - trained).abs().max()

        records = [json.loads(line) for line in (tuned / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records if r["event"] == "train"] == [1, 2]
        assert all("augment/p" in r for r in records if r["event"] == "train")


class TestFreezeDOnResume:
    def test_adding_freeze_d_on_resume_fails_before_the_run_changes(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Tried as a new user would: `--resume --set` adding freeze-d cannot load the critic's
        optimizer state; one line, exit 2, every file as it was, and the run still resumes."""
        from gancore._cli import main

        run = tmp_path / "run"
        example = str(ROOT / "examples" / "digits-dcgan.toml")
        short = [arg for key in [*SHORT, BASE_ONLY[0]] for arg in ("--set", key)]
        assert main(["train", example, "--run-dir", str(run), *short]) == 0
        files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        capsys.readouterr()
        freeze = "regularizers=[{name = 'freeze-d', blocks = 1}]"
        assert main(["train", "--resume", str(run), "--set", freeze, "--set", "run.steps=4"]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
        assert line.startswith("error: checkpoint ")
        assert "does not fit the run's config" in line
        assert "the run directory is unchanged" in line
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files
        assert main(["train", "--resume", str(run), "--set", "run.steps=3"]) == 0
        assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3
