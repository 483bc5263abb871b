"""Whole runs: a BigGAN in gan-conditional's conditional task (orthogonal regularization, two
critic steps, EMA), exact resume, `gan sample --truncation-threshold`, and two gloo processes
with synchronized batch norm."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import torch

import gancore
import gancore.testing as gt
from gancore._cli import main

# The digits at 8x8: one generator block (z = 2 chunks of 2), a critic down to 4x4.
TINY: dict[str, Any] = {
    "run": {"name": "tiny-biggan", "seed": 1, "steps": 4},
    "data": {"name": "digits", "resolution": 8, "limit": 200},
    "task": {"name": "conditional", "fake_labels": "uniform"},
    "generator": {
        "name": "biggan",
        "latent_dim": 4,
        "channels": 2,
        "embed_dim": 4,
        "attention_resolution": 8,
    },
    "critic": {
        "name": "projection",
        "inner": {"name": "biggan", "channels": 2, "attention_resolution": 4},
    },
    "loss": {"name": "hinge"},
    "regularizers": [{"name": "orthogonal"}],
    "optimizers": {
        "generator": {"lr": 1e-4, "betas": [0.0, 0.999]},
        "critic": {"lr": 4e-4, "betas": [0.0, 0.999]},
    },
    "training": {
        "batch_size": 16,
        "critic_steps": 2,
        "ema_half_life_images": 100,
        "log_every": 1,
        "sample_every": 4,
        "checkpoint_every": 4,
        "num_samples": 20,
    },
}


def _document(**changes: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(TINY))
    for section, values in changes.items():
        document[section].update(values)
    return document


def _train_events(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "train"]


@pytest.mark.slow
class TestConditionalBigGAN:
    def test_trains_with_the_orthogonal_penalty(self, tmp_path: Path) -> None:
        """The run trains, logs the orthogonal penalty at every step, and keeps an EMA."""
        gt.check_training(TINY, tmp_path / "run")
        events = _train_events(tmp_path / "run")
        assert all(e["reg/orthogonal"] > 0 for e in events)
        weights, _ = gancore.load_checkpoint(
            gancore.find_checkpoint(tmp_path / "run" / "checkpoints")
        )
        assert "generator.shared.weight" in weights["ema"]

    def test_exact_resume(self, tmp_path: Path) -> None:
        """2 steps, stop, resume to 4 gives the weights (spectral norm vectors, running
        statistics, EMA) of 4 straight."""
        document = _document(training={"checkpoint_every": 2, "sample_every": 0})
        registry = gancore.get_registry()
        gancore.train(
            gancore.parse_config(document, registry), tmp_path / "straight", progress=False
        )
        config = gancore.parse_config(document, registry)
        gt.train_interrupted(config, tmp_path / "resumed", after=2)
        gt.train_interrupted(config, tmp_path / "resumed", after=100, resume=True)
        straight, _ = gancore.load_checkpoint(
            gancore.find_checkpoint(tmp_path / "straight" / "checkpoints")
        )
        resumed, _ = gancore.load_checkpoint(
            gancore.find_checkpoint(tmp_path / "resumed" / "checkpoints")
        )
        assert any(k.endswith("_u") for k in straight["critics"])  # spectral norm's vectors
        for group in ("generators", "critics", "ema"):
            assert straight[group].keys() == resumed[group].keys()
            for key, value in straight[group].items():
                assert torch.equal(value, resumed[group][key]), (group, key)

    def test_sample_with_truncation_threshold(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`gan sample --truncation-threshold` writes a grid; a bad value is one line."""
        gancore.train(
            gancore.parse_config(_document(training={"sample_every": 0}), gancore.get_registry()),
            tmp_path / "run",
            progress=False,
        )
        out = tmp_path / "t.png"
        args = ["sample", str(tmp_path / "run"), "--out", str(out)]
        assert main([*args, "--truncation-threshold", "0.5"]) == 0
        assert out.is_file()
        capsys.readouterr()
        assert main([*args, "--truncation-threshold", "0"]) == 2
        assert capsys.readouterr().err == "error: --truncation-threshold: must be > 0 (got 0)\n"


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_with_synchronized_batch_norm(tmp_path: Path) -> None:
    """BigGAN (conditional batch norm, spectral norm, self-attention) in 2 gloo processes with
    synchronized batch norm: both ranks end identical, and within float tolerance of one process
    on the same global batch."""
    document = _document(
        run={"steps": 3},
        training={"sync_batchnorm": True, "sample_every": 0, "checkpoint_every": 0},
    )
    document["regularizers"] = [{"name": "orthogonal"}]
    config = tmp_path / "run.toml"
    config.write_bytes(tomli_w.dumps(document).encode())
    assert tomllib.loads(config.read_text())["training"]["sync_batchnorm"] is True
    env = {"GANCORE_LOAD_PLUGINS": "gan-conditional,gan-biggan"}
    rank0, rank1 = gt.train_processes(config, tmp_path / "two", env=env, timeout=300)
    (single,) = gt.train_processes(config, tmp_path / "one", processes=1, env=env, timeout=300)
    assert "generators.generator.blocks.0.norm1.bn.running_mean" in rank0
    # The last block's output biases feed only the output batch norm: their true gradient is 0,
    # its rounding noise differs between 1 and 2 processes, and Adam's first steps turn any noise
    # into steps of size lr. They (and the output norm's running mean, which is their sum) are
    # left out of the comparison with one process.
    noise = (
        "generator.blocks.0.conv2.bias",
        "generator.blocks.0.shortcut.bias",
        "generator.out_norm.running_mean",
    )
    worst = 0.0
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
        if rank0[key].is_floating_point() and not key.endswith(noise):
            worst = max(worst, (rank0[key] - single[key]).abs().max().item())
    assert worst < 1e-5
    # The comparison can fail: per-process batch statistics give other running statistics.
    plain0, _ = gt.train_processes(
        config,
        tmp_path / "plain",
        overrides=["training.sync_batchnorm=false"],
        env=env,
        timeout=300,
    )
    key = "generators.generator.blocks.0.norm1.bn.running_var"
    assert (plain0[key] - single[key]).abs().max().item() > 1e-4
