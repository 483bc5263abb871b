"""gan-stylegan inside gancore's loop: the examples, a short run that learns, exact resume with
the path-length running mean checkpointed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from gan_stylegan.critics import StyleGAN2CriticOptions, build_stylegan2_critic
from safetensors.torch import load_file

import gancore
import gancore.testing as gt

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

TINY = """
[run]
name = "tiny"
seed = 0
steps = {steps}

[data]
name = "digits"
resolution = 8

[generator]
name = "{generator}"
latent_dim = 16
style_dim = 16
mapping_depth = 2
channel_base = 128
channel_max = 16

[critic]
name = "stylegan2"
channel_base = 128
channel_max = 16

[loss]
name = "non-saturating"

[[regularizers]]
name = "r1"
gamma = 0.05
interval = 4

[[regularizers]]
name = "path-length"
interval = 2

[optimizers.generator]
lr = 0.0025
betas = [0.0, 0.99]

[optimizers.critic]
lr = 0.0025
betas = [0.0, 0.99]

[training]
batch_size = 16
ema_half_life_images = 500
log_every = 1
sample_every = 0
checkpoint_every = 0
num_samples = 16
"""


def _config(tmp_path: Path, steps: int, generator: str = "stylegan2") -> gancore.RunConfig:
    (tmp_path / "run.toml").write_text(TINY.format(steps=steps, generator=generator))
    return gancore.load_config(tmp_path / "run.toml")


def _records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "train"]


def _critic_gap(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> float:
    """How well a fresh critic separates ``real`` from ``fake`` after a short fixed training:
    E[D(real)] - E[D(fake)] on held-out halves (a two-sample test: 0 = indistinguishable)."""
    torch.manual_seed(seed)
    critic = build_stylegan2_critic(
        StyleGAN2CriticOptions(channel_base=128, channel_max=16),
        gancore.BuildContext(data_shape=tuple(real.shape[1:])),
    )
    optimizer = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.0, 0.99))
    half = real.shape[0] // 2
    for step in range(40):
        rows = torch.randint(0, half, (16,), generator=torch.Generator().manual_seed(step))
        loss = F.softplus(-critic(real[rows])).mean() + F.softplus(critic(fake[rows])).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (critic(real[half:]).mean() - critic(fake[half:]).mean()).item()


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.glob("stylegan*.toml")) or ["(none found)"]
)
def test_example_validates(example: str) -> None:
    """Each examples/stylegan*.toml is a valid run file naming this plugin's components."""
    assert example != "(none found)"
    config = gancore.load_config(EXAMPLES / example)
    assert config.generator is not None
    assert config.generator.spec.name in ("stylegan", "stylegan2")
    assert config.critic is not None
    assert config.critic.spec.name == "stylegan2"
    names = [c.spec.name for c in config.regularizers]
    assert "r1" in names
    assert "path-length" in names


@pytest.mark.parametrize(("resolution", "channel_base"), [(256, 16384), (1024, 32768)])
def test_paper_presets_build_the_papers_networks(resolution: int, channel_base: int) -> None:
    """The GPU presets build the papers' networks: 2 log2(R) - 2 style inputs, 512 maps up to
    32 px (64 px for config F), then channel_base // r; the critic mirrors the widths."""
    config = gancore.load_config(EXAMPLES / f"stylegan2-ffhq{resolution}.toml")
    context = gancore.BuildContext(data_shape=(3, resolution, resolution))
    with torch.device("meta"):  # shapes only: no memory, no time
        generator = config.generator.build(context)  # type: ignore[union-attr]
        critic = config.critic.build(context)  # type: ignore[union-attr]
    assert generator.num_ws == 2 * (resolution.bit_length() - 1) - 2
    assert generator.latent_dim == generator.style_dim == 512
    assert len(generator.mapping_network.layers) == 8
    widths = [block.to_rgb.conv.in_channels for block in generator.synthesis_network.blocks]
    expected = [min(channel_base // (4 * 2**i), 512) for i in range(len(widths))]
    assert widths == expected
    assert expected[-1] == channel_base // resolution
    assert critic.from_rgb.out_channels == channel_base // resolution
    if resolution == 1024:  # config F: about 30 M generator parameters
        millions = sum(p.numel() for p in generator.parameters()) / 1e6
        assert 29 < millions < 31


@pytest.mark.slow
def test_digits_example_trains(tmp_path: Path) -> None:
    """examples/stylegan2-digits.toml trains two steps as written (short intervals)."""
    config = gancore.load_config(
        EXAMPLES / "stylegan2-digits.toml",
        ["run.steps=2", "training.sample_every=0", "training.checkpoint_every=0"],
    )
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.step == 2
    assert (tmp_path / "run" / "samples").is_dir()


@pytest.mark.slow
def test_short_run_learns_and_writes_samples(tmp_path: Path) -> None:
    """60 steps on 8x8 digits: a fresh critic separates the trained generator's samples from the
    data far less than the untrained generator's, and a sample grid is written."""
    config = _config(tmp_path, steps=60)
    result = gancore.train(config, tmp_path / "run", progress=False)
    assert result.step == 60
    samples = sorted(p.name for p in (tmp_path / "run" / "samples").glob("*.png"))
    assert samples == ["reals.png", "step-0000000.png", "step-0000060.png"]
    records = _records(tmp_path / "run")
    assert records[-1]["nonfinite_skipped"] == 0
    assert any("reg/path-length" in r for r in records)
    assert any("reg/r1" in r for r in records)

    dataset = config.data.build(None)
    real = torch.stack([dataset[i]["x"] for i in range(0, 1024, 2)])  # 512 real digits
    z = torch.randn(512, 16, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    untrained = config.generator.build(gancore.BuildContext(data_shape=(1, 8, 8)))  # type: ignore[union-attr]
    with torch.no_grad():
        before = untrained.eval()(z)
        after = result.generators["generator"].eval()(z)  # the raw weights (the EMA lags)
    gap_before, gap_after = _critic_gap(real, before), _critic_gap(real, after)
    assert gap_before > 3.0
    assert gap_after < 0.4 * gap_before


@pytest.mark.slow
def test_style_gan_v1_trains_with_path_length(tmp_path: Path) -> None:
    """The StyleGAN (v1) generator trains through the loop with both lazy regularizers."""
    result = gancore.train(_config(tmp_path, 4, "stylegan"), tmp_path / "run", progress=False)
    records = _records(tmp_path / "run")
    assert result.step == 4
    assert records[-1]["nonfinite_skipped"] == 0
    assert records[1]["reg/path-length"] > 0


@pytest.mark.slow
def test_resume_is_exact_and_carries_the_path_length_mean(tmp_path: Path) -> None:
    """4 steps straight equal 2 + resume + 2, weights, EMA and the path-length running mean."""
    config = _config(tmp_path, steps=4)
    straight = gancore.train(config, tmp_path / "straight", progress=False)
    gancore.testing.train_interrupted(config, tmp_path / "resumed", after=2)
    half = gancore.find_checkpoint(tmp_path / "resumed" / "checkpoints")
    _, state = gancore.load_checkpoint(half)
    regularizers = [c.spec.name for c in config.regularizers]
    saved_mean = state["regularizers"][regularizers.index("path-length")]["pl_mean"]
    assert saved_mean.item() > 0  # updated at step 2 and saved
    resumed = gancore.train(config, tmp_path / "resumed", resume=True, progress=False)
    assert straight.checkpoint is not None
    assert resumed.checkpoint is not None
    for name in ("generators", "critics", "ema"):
        a = load_file(str(straight.checkpoint / f"{name}.safetensors"))
        b = load_file(str(resumed.checkpoint / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    _, end_a = gancore.load_checkpoint(straight.checkpoint)
    _, end_b = gancore.load_checkpoint(resumed.checkpoint)
    index = regularizers.index("path-length")
    assert torch.equal(
        end_a["regularizers"][index]["pl_mean"], end_b["regularizers"][index]["pl_mean"]
    )
    assert not torch.equal(end_a["regularizers"][index]["pl_mean"], saved_mean)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_gloo_processes_keep_identical_networks_and_path_length_mean(tmp_path: Path) -> None:
    """Under two processes the lazy R1 and path-length gradients are all-reduced and the running
    mean of path lengths is averaged: both ranks end with the same weights and the same mean."""
    (tmp_path / "run.toml").write_text(TINY.format(steps=4, generator="stylegan2"))
    rank0, rank1 = gt.train_processes(
        tmp_path / "run.toml",
        tmp_path / "out",
        env={"GANCORE_LOAD_PLUGINS": "gan-stylegan"},
        timeout=300,
    )
    config = gancore.load_config(tmp_path / "run.toml")
    index = [r.spec.name for r in config.regularizers].index("path-length")
    assert rank0.keys() == rank1.keys()
    assert rank0[f"regularizers.{index}.pl_mean"].item() > 0
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
