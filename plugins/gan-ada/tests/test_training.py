"""gan-ada inside gancore's loop: examples, logging and exact resume of p, R1 through the
augmentation, and Freeze-D on a critic that declares blocks."""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import gancore
import gancore.testing

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

SHORT = ["training.sample_every=0", "training.checkpoint_every=0", "metrics=[]"]

TINY = """
[run]
name = "tiny-ada"
seed = 0
steps = 6

[data]
name = "digits"
resolution = 8
limit = 48

[generator]
name = "dcgan"
latent_dim = 8
channels = 8

[critic]
name = "dcgan"
channels = 8
norm = "none"

[loss]
name = "non-saturating"

[augmenter]
name = "ada"
p = 0.2
interval = 1
speed_images = 200

[[regularizers]]
name = "r1"
gamma = 1.0

[optimizers.generator]
lr = 1e-3
betas = [0.0, 0.99]

[optimizers.critic]
lr = 1e-3
betas = [0.0, 0.99]

[training]
batch_size = 8
critic_steps = 2
log_every = 1
sample_every = 0
checkpoint_every = 0
"""


def _records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "train"]


ADA_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("ada*.toml")) or ["(none found)"]
# Examples that start from another run ([init]) train in test_recipes.py, after their base run.
FROM_SCRATCH = [e for e in ADA_EXAMPLES if "\n[init]" not in (EXAMPLES / e).read_text()]


@pytest.mark.parametrize("example", ADA_EXAMPLES)
def test_example_validates(example: str) -> None:
    """Each examples/ada*.toml loads as a valid config that names a gan-ada augmenter."""
    assert example != "(none found)"
    config = gancore.load_config(EXAMPLES / example)
    assert config.augmenter.name in ("ada", "diffaugment", "gan-ada:ada", "gan-ada:diffaugment")


@pytest.mark.slow
@pytest.mark.parametrize("example", FROM_SCRATCH)
def test_example_trains(example: str, tmp_path: Path) -> None:
    """Each examples/ada*.toml without [init] trains for two steps as written (short intervals)."""
    assert example != "(none found)"
    config = gancore.load_config(EXAMPLES / example, ["run.steps=2", *SHORT])
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.step == 2


class TestAdaInTheLoop:
    def test_logs_p_and_r_t_and_moves_p(self, tmp_path: Path) -> None:
        """Every log record carries augment/p and augment/r_t; p moves by images / speed per
        adjustment (R1's second derivatives flow through the augmentation without error)."""
        (tmp_path / "run.toml").write_text(TINY)
        config = gancore.load_config(tmp_path / "run.toml")
        result = gancore.train(config, tmp_path / "run", progress=False)
        records = _records(tmp_path / "run")
        assert len(records) == 6
        for record in records:
            assert 0.0 <= record["augment/p"] <= 1.0
            assert -1.0 <= record["augment/r_t"] <= 1.0
            assert math.isfinite(record["reg/r1"])
        # 12 adjustments of 8 images each; every one moves p by 8 / 200 (or stops at a bound)
        steps = [
            round((b["augment/p"] - a["augment/p"]) / 0.04) for a, b in itertools.pairwise(records)
        ]
        assert all(abs(s) <= 2 for s in steps)
        assert result.step == 6

    @pytest.mark.slow
    def test_resume_continues_p_exactly(self, tmp_path: Path) -> None:
        """6 steps straight equal 3 + stop + resume + 3: the same p trajectory and critic."""
        (tmp_path / "run.toml").write_text(TINY)
        config = gancore.load_config(tmp_path / "run.toml", ["training.checkpoint_every=3"])
        straight = gancore.train(config, tmp_path / "straight", progress=False)
        gancore.testing.train_interrupted(config, tmp_path / "resumed", after=3)
        resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
        p_straight = [r["augment/p"] for r in _records(tmp_path / "straight")]
        p_resumed = [r["augment/p"] for r in _records(tmp_path / "resumed")]
        assert p_straight == p_resumed
        assert len(set(p_straight)) > 1  # p did move
        assert straight.checkpoint is not None
        assert resumed.checkpoint is not None
        a = load_file(str(straight.checkpoint / "critics.safetensors"))
        b = load_file(str(resumed.checkpoint / "critics.safetensors"))
        for key in a:
            assert torch.equal(a[key], b[key]), key


# -------------------------------------------------------------------------------------------------
# Freeze-D on a critic that declares blocks
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class BlockCriticOptions:
    width: int = attrs.field(default=8, metadata={"doc": "feature maps"})


class BlockCritic(nn.Module):
    """8x8 images -> scores [N], in three declared blocks."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)),
                nn.Sequential(nn.Conv2d(width, width, 4, 2, 1), nn.LeakyReLU(0.2)),
                nn.Sequential(nn.Flatten(), nn.Linear(width * 4, 1)),
            ]
        )

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x.squeeze(1)


class _CriticPlugin:
    @gancore.hookimpl
    def gancore_register_critics(self, register: gancore.RegisterCallback) -> None:
        register(
            "block-critic",
            lambda options, context: BlockCritic(context.data_shape[0], options.width),
            options=BlockCriticOptions,
            description="Test: a critic that declares three blocks.",
        )


@pytest.mark.slow
class TestFreezeDInTheLoop:
    def _config(self, tmp_path: Path, blocks: int) -> gancore.RunConfig:
        env = dict(os.environ) | {"GANCORE_LOAD_PLUGINS": "gan-ada,block-critic"}
        registry, _ = gancore.load_registry(plugins=[("block-critic", _CriticPlugin())], env=env)
        (tmp_path / "run.toml").write_text(TINY)
        return gancore.load_config(
            tmp_path / "run.toml",
            [
                "critic={name='block-critic'}",
                f"regularizers=[{{name='freeze-d', blocks={blocks}}}]",
                "run.steps=3",
            ],
            registry=registry,
        )

    def test_frozen_blocks_keep_their_weights(self, tmp_path: Path) -> None:
        """With blocks = 2, the first two blocks are the same after 1 and after 3 steps (the same
        seed builds the same critic) and stay out of training; the head keeps training."""
        config = self._config(tmp_path, 2)
        one = gancore.testing.train_interrupted(config, tmp_path / "one", after=1)
        three = gancore.train(config, tmp_path / "three", progress=False)
        assert (one.step, three.step) == (1, 3)
        before, after = one.critics["critic"], three.critics["critic"]
        for i in range(3):
            for p0, p1 in zip(
                before.blocks[i].parameters(),  # type: ignore[index]
                after.blocks[i].parameters(),  # type: ignore[index]
                strict=True,
            ):
                assert p1.requires_grad == (i >= 2)
                assert torch.equal(p0, p1) == (i < 2), i

    def test_too_many_blocks_stops_the_run(self, tmp_path: Path) -> None:
        """Asking for more blocks than the critic declares fails before training."""
        config = self._config(tmp_path, 5)
        with pytest.raises(ValueError, match="declares only 3 blocks"):
            gancore.train(config, tmp_path / "run", progress=False)
