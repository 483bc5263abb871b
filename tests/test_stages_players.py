"""Core v2 seams: staged training, player groups beyond generator and critic, tasks without a
critic, and resuming any of them exactly."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import gancore
import gancore.testing
from gancore._config import StageSection
from gancore._errors import CheckpointError, ConfigError
from gancore._stages import Stage, freeze_modules, resize_batch, stage_schedule
from tests.conftest import TOY_CONFIG, load, require_test_plugins, write_toml


@pytest.fixture
def test_plugin() -> None:
    """The test tasks (test-growing, test-q, test-vae) live in gancore-test-good."""
    require_test_plugins("gancore-test-good")


def _critic() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))


GROWING = (
    TOY_CONFIG.replace('[generator]\nname = "mlp"\nlatent_dim = 2\nhidden = 32\ndepth = 2\n', "")
    .replace('[critic]\nname = "mlp"\nhidden = 32\ndepth = 2\n', "")
    .replace("[run]\n", '[task]\nname = "test-growing"\n\n[run]\n')
    + """
ema_half_life_images = 200

[[stages]]
steps = 4

[[stages]]
steps = 4
fade_in = 0.5
options = {grow = true}
"""
).replace("steps = 20", "steps = 8")


def _weights(result: gancore.TrainResult) -> dict[str, torch.Tensor]:
    out = {}
    for group, modules in result.players.items():
        for name, module in modules.items():
            for key, tensor in module.state_dict().items():
                out[f"{group}.{name}.{key}"] = tensor
    for name, module in result.ema.items():
        for key, tensor in module.state_dict().items():
            out[f"ema.{name}.{key}"] = tensor
    return out


def _assert_same(a: gancore.TrainResult, b: gancore.TrainResult) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    assert [k for k in wa if not torch.equal(wa[k], wb[k])] == []


def _records(run_dir: Path, event: str = "train") -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def _straight_and_resumed(
    tmp_path: Path, text: str, stop_at: int, *overrides: str
) -> tuple[gancore.TrainResult, gancore.TrainResult]:
    tmp_path.mkdir(exist_ok=True)
    path = write_toml(tmp_path / "run.toml", text)
    straight = gancore.train(load(path, *overrides), tmp_path / "straight", progress=False)
    first = gancore.testing.train_interrupted(load(path, *overrides), tmp_path / "resumed", stop_at)
    assert first.interrupted and first.step == stop_at
    resumed = gancore.train(load(path, *overrides), tmp_path / "resumed", resume=True)
    return straight, resumed


# -------------------------------------------------------------------------------------------------
# Stages
# -------------------------------------------------------------------------------------------------


class TestStageSchedule:
    def test_lengths_in_steps_and_images(self, tmp_path: Path) -> None:
        """Images become whole iterations of batch * critic_steps; the last runs to run.steps."""
        path = write_toml(tmp_path / "run.toml", TOY_CONFIG)
        config = load(path, "stages=[{steps = 3}, {images = 100}, {name = 'last'}]")
        stages = stage_schedule(config)  # batch 32: 100 images = 4 iterations
        assert [(s.name, s.start, s.end) for s in stages] == [
            ("stage-0", 0, 3),
            ("stage-1", 3, 7),
            ("last", 7, 20),
        ]

    def test_stage_batch_size_sets_its_length(self, tmp_path: Path) -> None:
        """A stage's own batch size turns its images into iterations; the others use training's."""
        path = write_toml(tmp_path / "run.toml", TOY_CONFIG)
        config = load(path, "stages=[{images = 100, batch_size = 10}, {images = 100}, {}]")
        stages = stage_schedule(config)  # 100 images: 10 iterations of 10, 4 of 32
        assert [(s.start, s.end, s.batch_size) for s in stages] == [
            (0, 10, 10),
            (10, 14, 32),
            (14, 20, 32),
        ]

    def test_no_stages_is_one_stage_over_the_run(self, tmp_path: Path) -> None:
        """Without [[stages]], one stage spans the run and alpha is 1."""
        (stage,) = stage_schedule(load(write_toml(tmp_path / "run.toml", TOY_CONFIG)))
        assert (stage.start, stage.end, stage.alpha(0), stage.alpha(19)) == (0, 20, 1.0, 1.0)

    def test_a_stage_past_the_run_is_an_error(self, tmp_path: Path) -> None:
        path = write_toml(tmp_path / "run.toml", TOY_CONFIG)
        with pytest.raises(ConfigError) as info:
            stage_schedule(load(path, "stages=[{steps = 20}, {}]"))
        assert info.value.problems == [
            "stages[1]: starts at iteration 20, at or after run.steps = 20"
        ]

    def test_only_the_last_stage_may_omit_its_length(self, tmp_path: Path) -> None:
        path = write_toml(tmp_path / "run.toml", TOY_CONFIG)
        with pytest.raises(ConfigError) as info:
            stage_schedule(load(path, "stages=[{}, {steps = 2}]"))
        assert info.value.problems == [
            "stages[0]: needs 'steps' or 'images' (only the last may omit them)"
        ]

    def test_steps_and_images_together_is_a_config_error(self, tmp_path: Path) -> None:
        path = write_toml(tmp_path / "run.toml", TOY_CONFIG)
        with pytest.raises(ConfigError) as info:
            load(path, "stages=[{steps = 2, images = 64}]")
        assert info.value.problems == ["stages[0]: 'steps' and 'images' are both set; give one"]

    def test_unknown_stage_key_is_reported(self, tmp_path: Path) -> None:
        path = write_toml(tmp_path / "run.toml", TOY_CONFIG)
        with pytest.raises(ConfigError) as info:
            load(path, "stages=[{stepz = 2}]")
        assert info.value.problems[0].startswith(
            "stages[0].stepz: unknown key (did you mean 'steps'?); a stage accepts: name, steps"
        )

    def test_alpha_ramps_over_the_fade_in(self) -> None:
        """alpha = (t - start) / (fade_in * length) during the fade-in, then 1."""
        stage = Stage(index=1, name="s", start=10, end=30, fade_in=0.5)
        assert [stage.alpha(t) for t in (10, 12, 15, 19, 20, 29)] == [0.0, 0.2, 0.5, 0.9, 1, 1]


class TestStageEffects:
    def test_resize_batch_averages_areas(self) -> None:
        """8x8 -> 4x4 is the mean of each 2x2 block; other keys and 2-D data pass through."""
        x = torch.arange(64.0).view(1, 1, 8, 8)
        out = resize_batch({"x": x, "label": torch.tensor([3])}, 4)
        assert out["x"][0, 0, 0, 0].item() == (0 + 1 + 8 + 9) / 4
        assert out["label"].tolist() == [3]
        points = {"x": torch.ones(5, 2)}
        assert resize_batch(points, 4) is points and resize_batch({"x": x}, None)["x"] is x

    def test_freeze_by_player_and_path(self) -> None:
        """'player.sub.module' switches off requires_grad of that module's parameters only."""
        critic = _critic()
        stage = Stage(index=1, name="s", start=0, end=1, freeze=("critic.0",))
        frozen = freeze_modules(stage, {"critic": critic})
        assert len(frozen) == 2 and not critic[0].weight.requires_grad
        assert critic[2].weight.requires_grad

    def test_unknown_groups_and_players_fail_before_the_run(self, tmp_path: Path) -> None:
        """Stage names are checked before anything is written: one line each."""
        path = write_toml(tmp_path / "run.toml", TOY_CONFIG)
        stages = "stages=[{steps = 2, train = ['critc']}, {lr = {gen = 1e-4}, freeze = ['dis.0']}]"
        with pytest.raises(ConfigError) as info:
            gancore.train(load(path, stages), tmp_path / "run", progress=False)
        assert info.value.problems == [
            "stages[0].train: no player group 'critc'; groups: critic, generator",
            "stages[1].lr: no player group 'gen'; groups: critic, generator",
            "stages[1].freeze: 'dis.0' names no player; players: critic, generator",
        ]
        assert not (tmp_path / "run").exists()

    def test_freezing_an_unknown_module_is_one_line(self) -> None:
        stage = Stage(index=2, name="s", start=0, end=1, freeze=("critic.9",))
        with pytest.raises(ConfigError) as info:
            freeze_modules(stage, {"critic": _critic()})
        assert info.value.problems == ["stages[2].freeze: player 'critic' has no module '9'"]


@pytest.mark.usefixtures("test_plugin")
class TestStagedTraining:
    def test_growing_network_resumes_exactly_across_the_boundary(self, tmp_path: Path) -> None:
        """Stopped before, at and after the stage boundary: the same weights and EMA as straight."""
        straight = gancore.train(
            load(write_toml(tmp_path / "run.toml", GROWING)), tmp_path / "straight", progress=False
        )
        assert len(straight.generators["generator"].blocks) == 1  # grown at the boundary
        for stop_at in (3, 4, 6):
            _, resumed = _straight_and_resumed(tmp_path / f"at{stop_at}", GROWING, stop_at)
            _assert_same(straight, resumed)

    def test_stage_batch_sizes_draw_log_and_resume_exactly(self, tmp_path: Path) -> None:
        """Batches of 8 then 16: the stream goes on where it was, images_seen counts both sizes,
        and stopping before, at or after the change resumes exactly."""
        text = TOY_CONFIG.replace("steps = 20", "steps = 8") + (
            "\n[[stages]]\nsteps = 4\nbatch_size = 8\n\n[[stages]]\nbatch_size = 16\n"
        )
        path = write_toml(tmp_path / "run.toml", text)
        gancore.train(load(path, "training.log_every=1"), tmp_path / "run", progress=False)
        records = _records(tmp_path / "run")
        assert [r["images_seen"] for r in records] == [8, 16, 24, 32, 48, 64, 80, 96]
        for stop_at in (3, 4, 6):
            straight, resumed = _straight_and_resumed(tmp_path / f"at{stop_at}", text, stop_at)
            _assert_same(straight, resumed)
        _, saved = gancore.load_checkpoint(tmp_path / "run" / "checkpoints" / "step-0000008")
        assert saved["loop"]["images_drawn"] == 96

    def test_stage_and_alpha_are_logged_and_saved(self, tmp_path: Path) -> None:
        """Records carry stage and stage/alpha; the checkpoint holds the stage."""
        path = write_toml(tmp_path / "run.toml", GROWING)
        gancore.train(load(path, "training.log_every=1"), tmp_path / "run", progress=False)
        records = _records(tmp_path / "run")
        assert [r["stage"] for r in records] == [0, 0, 0, 0, 1, 1, 1, 1]
        # record at step t is written after iteration t - 1: stage 1 spans iterations 4..7,
        # fade-in over 2 iterations: alpha 0 at iteration 4, 0.5 at 5, then 1
        assert [r["stage/alpha"] for r in records] == [1, 1, 1, 1, 0.0, 0.5, 1.0, 1.0]
        _, saved = gancore.load_checkpoint(tmp_path / "run" / "checkpoints" / "step-0000008")
        assert saved["loop"]["stage"] == 1

    def test_sampling_a_grown_run_rebuilds_its_stage(self, tmp_path: Path) -> None:
        """load_run grows the networks to the checkpoint's stage before loading weights."""
        path = write_toml(tmp_path / "run.toml", GROWING)
        result = gancore.train(load(path), tmp_path / "run", progress=False)
        loaded = gancore.load_run(tmp_path / "run")
        ours = loaded.generators["generator"].state_dict()
        theirs = result.ema["generator"].state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)

    def test_two_stage_toy_with_training_groups_and_lr(self, tmp_path: Path) -> None:
        """Stage 0 trains only the critic, stage 1 both with its own lr; exact resume at 3-5."""
        text = TOY_CONFIG.replace("steps = 20", "steps = 8") + (
            "\n[[stages]]\nsteps = 4\ntrain = ['critic']\n\n"
            "[[stages]]\nreset_optimizers = true\nlr = {generator = 5e-4}\n"
        )
        path = write_toml(tmp_path / "run.toml", text)
        config = load(path)
        built = gancore.train(config, tmp_path / "first", progress=False)
        state = gancore.load_checkpoint(tmp_path / "first" / "checkpoints" / "step-0000008")[1]
        assert state["loop"]["updates"] == {"critic": 8, "generator": 4}
        assert state["optimizers"]["generator"]["param_groups"][0]["lr"] == 5e-4
        assert built.step == 8
        for stop_at in (3, 4, 5):
            straight, resumed = _straight_and_resumed(tmp_path / f"at{stop_at}", text, stop_at)
            _assert_same(straight, resumed)

    def test_frozen_modules_do_not_move(self, tmp_path: Path) -> None:
        """A stage that freezes the critic's first layer leaves it as the stage found it."""
        text = TOY_CONFIG.replace("steps = 20", "steps = 6") + (
            "\n[[stages]]\nsteps = 3\n\n[[stages]]\nfreeze = ['critic.net.0']\n"
        )
        path = write_toml(tmp_path / "run.toml", text)
        first = gancore.testing.train_interrupted(load(path), tmp_path / "run", 3)
        critic = first.critics["critic"]
        before = {k: t.clone() for k, t in critic.state_dict().items()}
        after = gancore.train(load(path), tmp_path / "run", resume=True).critics["critic"]
        moved = {k for k, t in after.state_dict().items() if not torch.equal(t, before[k])}
        assert moved and not any(k.startswith("net.0.") for k in moved)


# -------------------------------------------------------------------------------------------------
# Players
# -------------------------------------------------------------------------------------------------

Q_RUN = (
    GROWING.split("[[stages]]")[0].replace("test-growing", "test-q")
    + "\n[optimizers.q]\nlr = 1e-3\n"
)
VAE_RUN = """
[run]
name = "vae"
steps = 8

[task]
name = "test-vae"

[data]
name = "toy2d"
mixture = "ring"
size = 500

[optimizers.generator]
lr = 1e-3

[optimizers.encoder]
lr = 1e-3

[training]
batch_size = 32
log_every = 2
checkpoint_every = 4
sample_every = 4
"""


@pytest.mark.usefixtures("test_plugin")
class TestPlayers:
    def test_extra_player_trains_checkpoints_and_resumes_exactly(self, tmp_path: Path) -> None:
        """The Q head has its own optimizer, moves, is saved under its group, resumes exactly."""
        straight, resumed = _straight_and_resumed(tmp_path, Q_RUN, 3)
        _assert_same(straight, resumed)
        q = straight.players["q"]["q"]
        fresh = gancore.testing.train_interrupted(
            load(write_toml(tmp_path / "q.toml", Q_RUN)), tmp_path / "one", 1
        )
        assert not torch.equal(q[0].weight, fresh.players["q"]["q"][0].weight)
        weights, state = gancore.load_checkpoint(
            tmp_path / "straight" / "checkpoints" / "step-0000008"
        )
        assert set(weights) == {"generators", "critics", "q", "ema"}
        assert set(state["optimizers"]) == {"generator", "critic", "q"}
        assert "loss/code" in _records(tmp_path / "straight")[-1]

    def test_vae_without_critic_trains_samples_and_resumes(self, tmp_path: Path) -> None:
        """No critic phase: the generator phase draws the batches; ELBO falls; exact resume."""
        straight, resumed = _straight_and_resumed(tmp_path, VAE_RUN, 4)
        _assert_same(straight, resumed)
        assert straight.critics == {} and set(straight.players) == {"generator", "encoder"}
        records = _records(tmp_path / "straight")
        assert records[-1]["images_seen"] == 8 * 32  # one batch per iteration
        assert "loss/critic" not in records[-1] and records[-1]["loss/kl"] >= 0
        assert (tmp_path / "straight" / "samples" / "step-0000008.png").is_file()
        loaded = gancore.load_run(tmp_path / "straight")
        assert loaded.generate(16, seed=1).shape == (16, 2)

    def test_missing_and_extra_optimizer_tables(self, tmp_path: Path) -> None:
        """A declared group needs its table; a table for no group is an error; both at once."""
        text = VAE_RUN.replace("[optimizers.encoder]", "[optimizers.critic]")
        with pytest.raises(ConfigError) as info:
            load(write_toml(tmp_path / "run.toml", text))
        assert info.value.problems == [
            "optimizers.critic: task 'test-vae' has no player group 'critic'; its groups: "
            "encoder, generator",
            "optimizers.encoder: required table is missing (task 'test-vae' trains player "
            "group 'encoder'; add an [optimizers.encoder] table)",
        ]

    def test_critic_regularizer_without_a_critic_is_one_line(self, tmp_path: Path) -> None:
        path = write_toml(tmp_path / "run.toml", VAE_RUN + '\n[[regularizers]]\nname = "r1"\n')
        with pytest.raises(ConfigError) as info:
            gancore.train(load(path), tmp_path / "run", progress=False)
        assert info.value.problems == [
            "regularizers: 'r1' regularizes the critic, and task 'test-vae' has no critic"
        ]
        assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("test_plugin")
class TestResumeWithChangedConfig:
    def test_changed_networks_fail_before_the_run_changes(self, tmp_path: Path) -> None:
        """--resume --set that changes the model: one-line error, files untouched, resumable."""
        path = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        gancore.testing.train_interrupted(load(path), tmp_path / "run", 10)
        files = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
        config = gancore.load_config(tmp_path / "run" / "config.toml", ["critic.hidden=16"])
        with pytest.raises(CheckpointError) as info:
            gancore.train(config, tmp_path / "run", resume=True)
        message = str(info.value)
        assert "\n" not in message and "does not fit the run's config" in message
        assert "the run directory is unchanged" in message
        after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
        assert after == files
        resumed = gancore.train(
            gancore.load_config(tmp_path / "run" / "config.toml"), tmp_path / "run", resume=True
        )
        assert resumed.step == 20

    def test_stage_section_round_trips_through_the_resolved_config(self, tmp_path: Path) -> None:
        """config.toml of a staged run loads back to the same stages."""
        config = load(write_toml(tmp_path / "run.toml", GROWING))
        again = gancore.parse_config(
            tomllib.loads(gancore.config_to_toml(config)), gancore.get_registry()
        )
        assert again.stages == config.stages
        assert again.stages[1] == StageSection(steps=4, fade_in=0.5, options={"grow": True})


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.usefixtures("test_plugin")
class TestTwoProcesses:
    @pytest.mark.parametrize("run", ["growing", "q"])
    def test_two_gloo_processes_match_one(
        self, run: str, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """Across a stage boundary that grows the generator (networks re-prepared for DDP), and
        with a third player group: both ranks end identical, and equal to one process."""
        text = {"growing": GROWING, "q": Q_RUN}[run]
        config = write_toml(tmp_path / "run.toml", text)
        rank0, rank1 = gancore.testing.train_processes(
            config, tmp_path / "two", env=subprocess_env, timeout=300
        )
        (single,) = gancore.testing.train_processes(
            config, tmp_path / "one", processes=1, env=subprocess_env
        )
        expected = {"growing": "generators.generator.blocks.0.0.weight", "q": "q.q.0.weight"}[run]
        assert expected in rank0 and rank0.keys() == rank1.keys() == single.keys()
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), key
            torch.testing.assert_close(rank0[key], single[key], rtol=1e-4, atol=1e-5)


class TestPlannedStages:
    """A task that plans its own stages (SinGAN: one per scale of the image's pyramid)."""

    class _Planner:
        def __init__(self, tables: list[dict[str, Any]]) -> None:
            self.tables, self.calls = tables, 0

        def plan_stages(self, config: Any, dataset: Any) -> list[dict[str, Any]]:
            self.calls += 1
            return self.tables

    def test_plan_fills_missing_stages_and_the_length(self, tmp_path: Path) -> None:
        from gancore._stages import planned_stages

        config = load(write_toml(tmp_path / "run.toml", TOY_CONFIG))
        planner = self._Planner(
            [{"steps": 3, "options": {"scale": 0}}, {"steps": 5, "lr": {"generator": 1e-5}}]
        )
        planned = planned_stages(config, planner, None)
        assert planned.run.steps == 8
        assert [s.steps for s in planned.stages] == [3, 5]
        assert planned.stages[1].lr == {"generator": 1e-5}
        assert [(s.start, s.end) for s in stage_schedule(planned)] == [(0, 3), (3, 8)]
        assert planned_stages(config, object(), None) is config  # no plan: unchanged

    def test_stages_in_the_run_file_win(self, tmp_path: Path) -> None:
        from gancore._stages import planned_stages

        config = load(write_toml(tmp_path / "run.toml", GROWING))
        planner = self._Planner([{"steps": 1}])
        assert planned_stages(config, planner, None) is config
        assert planner.calls == 0

    def test_an_invalid_plan_is_the_plugins_error(self, tmp_path: Path) -> None:
        from gancore._errors import PluginError
        from gancore._stages import planned_stages

        config = load(write_toml(tmp_path / "run.toml", TOY_CONFIG))
        with pytest.raises(PluginError) as caught:
            planned_stages(config, self._Planner([{"images": 100}, {"stepz": 2}]), None)
        message = str(caught.value)
        assert message.startswith("task 'unconditional' planned invalid stages: stages[0]: ")
        assert "stages[0]: a planned stage needs 'steps'" in message
        assert "stages[1]" in message and "stepz" in message
