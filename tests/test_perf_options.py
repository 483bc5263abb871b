"""Performance options and the loop's fast paths: torch.compile, log accumulation, direct calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gancore
from gancore import _train
from gancore._errors import ConfigError, TrainingError
from tests.conftest import TOY_CONFIG, load, write_toml


def _train_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "train"]


class TestCompileOption:
    def test_defaults_to_eager(self, tmp_path: Path) -> None:
        config = load(write_toml(tmp_path / "toy.toml", TOY_CONFIG))
        assert config.training.compile is False

    @pytest.mark.parametrize("value", ["true", "'default'", "'reduce-overhead'", "'max-autotune'"])
    def test_accepts_torch_modes(self, tmp_path: Path, value: str) -> None:
        config = load(write_toml(tmp_path / "toy.toml", TOY_CONFIG), f"training.compile={value}")
        assert config.training.compile == (True if value == "true" else value.strip("'"))

    def test_unknown_mode_is_one_line_naming_the_key(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as info:
            load(write_toml(tmp_path / "toy.toml", TOY_CONFIG), "training.compile='fast'")
        (line,) = [p for p in info.value.problems if "compile" in p]
        assert line.startswith("training.compile: expected one of False, True, 'default'")
        assert "got 'fast'" in line

    def test_double_backward_failure_is_one_clear_line(self) -> None:
        error = RuntimeError(
            "torch.compile with aot_autograd does not currently support double backward"
        )
        message = _train._compile_message("the backward pass", error)
        assert "\n" not in message and message.startswith("training.compile:")
        assert "R1" in message and "training.compile = false" in message

        def failing(loss: torch.Tensor) -> None:
            raise error

        with pytest.raises(TrainingError, match="cannot differentiate through a gradient"):
            _train._explained(failing)(torch.zeros(()))

    def test_other_errors_pass_through(self) -> None:
        def failing(loss: torch.Tensor) -> None:
            raise ValueError("shapes do not match")

        with pytest.raises(ValueError, match="shapes do not match"):
            _train._explained(failing)(torch.zeros(()))

    @pytest.mark.slow
    # torch.jit (imported by inductor) and dynamo internals warn; pytest makes warnings errors.
    @pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
    def test_compiled_training_matches_eager(self, tmp_path: Path) -> None:
        """Compiled players train to the same weights as eager ones (up to kernel rounding)."""
        toy = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        settings = ("run.steps=3", "training.log_every=1")
        eager = gancore.train(load(toy, *settings), tmp_path / "eager", progress=False)
        compiled = gancore.train(
            load(toy, *settings, "training.compile=true"), tmp_path / "compiled", progress=False
        )
        for name in ("generator", "critic"):
            ours = (compiled.generators | compiled.critics)[name].state_dict()
            theirs = (eager.generators | eager.critics)[name].state_dict()
            for key in theirs:
                torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-5)
        assert len(_train_records(tmp_path / "compiled")) == 3


class TestLogAccumulation:
    @pytest.mark.slow
    def test_folded_partial_sums_log_the_same_means(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Folding the kept values into partial sums (long log intervals) changes no mean."""
        toy = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        settings = ("run.steps=10", "training.log_every=10", "training.sample_every=0")
        gancore.train(load(toy, *settings), tmp_path / "kept", progress=False)
        monkeypatch.setattr(_train, "_LOG_FOLD", 3)
        gancore.train(load(toy, *settings), tmp_path / "folded", progress=False)
        (kept,) = _train_records(tmp_path / "kept")
        (folded,) = _train_records(tmp_path / "folded")
        losses = [k for k in kept if k.startswith(("loss/", "scores/"))]
        assert len(losses) >= 3
        for key in losses:
            assert folded[key] == pytest.approx(kept[key], rel=1e-6, abs=1e-7)

    def test_sum_of_logged_values(self) -> None:
        values = [torch.tensor(0.5), torch.tensor(0.25), torch.tensor(-1.0)]
        assert _train._sum(values, torch.device("cpu")).item() == -0.25
        assert _train._sum(values[:1], torch.device("cpu")).item() == 0.5


class TestDirectCalls:
    def test_plain_accelerator_steps_torch_optimizers_directly(self) -> None:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
        g_opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
        d_opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
        g_wrapped, d_wrapped = accelerator.prepare(g_opt, d_opt)
        g_step, d_step, backward = _train._direct_calls(accelerator, g_wrapped, d_wrapped)
        assert g_step is g_opt and d_step is d_opt  # the torch optimizers, not the wrappers
        x = torch.ones(3, requires_grad=True)
        backward((x * 2.0).sum())
        assert torch.equal(x.grad, torch.full((3,), 2.0))

    def test_wrappers_are_kept_when_they_do_something(self) -> None:
        class Scaled:
            scaler = object()  # a loss scaler (fp16): Accelerate's step must run
            gradient_accumulation_steps = 1
            distributed_type = "NO"

            def backward(self, loss: torch.Tensor) -> None: ...

        accelerator = Scaled()
        g, d = object(), object()
        g_step, d_step, backward = _train._direct_calls(accelerator, g, d)
        assert g_step is g and d_step is d and backward == accelerator.backward
