"""Performance options and the loop's fast paths: torch.compile, log accumulation, direct calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gancore
from gancore import _fast
from gancore._errors import ConfigError, TrainingError
from gancore._logbuffer import LogBuffer
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
        message = _fast._compile_message("the backward pass", error)
        assert "\n" not in message and message.startswith("training.compile:")
        assert "R1" in message and "training.compile = false" in message

        def failing(loss: torch.Tensor) -> None:
            raise error

        with pytest.raises(TrainingError, match="cannot differentiate through a gradient"):
            _fast.explained(failing)(torch.zeros(()))

    def test_other_errors_pass_through(self) -> None:
        def failing(loss: torch.Tensor) -> None:
            raise ValueError("shapes do not match")

        with pytest.raises(ValueError, match="shapes do not match"):
            _fast.explained(failing)(torch.zeros(()))

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


class TestLogBuffer:
    """The loop's log buffer: sums and counts per name over a log interval."""

    def test_means_per_name_over_the_interval(self) -> None:
        """Each name's mean is over the values logged for it, names sorted."""
        buffer = LogBuffer(torch.device("cpu"))
        buffer.add({"loss/critic": torch.tensor(1.0), "loss/generator": torch.tensor(4.0)})
        buffer.add({"loss/critic": torch.tensor(2.0)})
        buffer.add({"loss/critic": torch.tensor(6.0), "reg/r1": torch.tensor(0.5)})
        names, means = buffer.means()
        assert names == ["loss/critic", "loss/generator", "reg/r1"]
        assert means is not None and means.tolist() == [3.0, 4.0, 0.5]

    def test_folding_into_partial_sums_changes_no_mean(self) -> None:
        """With fold = 3, 10 values are kept as partial sums, and the mean is the same."""
        values = [
            torch.tensor(float(v)) for v in (0.5, -1.0, 2.25, 3.0, 0.0, 1.5, -2.0, 4.0, 1.0, 7.5)
        ]
        kept, folded = LogBuffer(torch.device("cpu")), LogBuffer(torch.device("cpu"), fold=3)
        for value in values:
            kept.add({"x": value})
            folded.add({"x": value})
        assert len(folded._values["x"]) < 3  # folded: bounded however long the interval
        assert folded.means()[1].item() == pytest.approx(kept.means()[1].item(), rel=1e-7)
        assert kept.means()[1].item() == pytest.approx(sum(v.item() for v in values) / 10)

    def test_clear_starts_a_new_interval(self) -> None:
        """After clear, nothing is logged: no names, no means."""
        buffer = LogBuffer(torch.device("cpu"))
        buffer.add({"x": torch.tensor(1.0)})
        buffer.clear()
        assert buffer.means() == ([], None) and len(buffer) == 0

    def test_fold_must_keep_two_values(self) -> None:
        with pytest.raises(ValueError, match=r"'fold' must be >= 2 \(got 1\)"):
            LogBuffer(torch.device("cpu"), fold=1)


class TestDirectCalls:
    def test_plain_accelerator_steps_torch_optimizers_directly(self) -> None:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
        g_opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
        d_opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
        g_wrapped, d_wrapped = accelerator.prepare(g_opt, d_opt)
        steppers, backward = _fast.direct_calls(
            accelerator, {"generator": g_wrapped, "critic": d_wrapped}
        )
        assert steppers == {"generator": g_opt, "critic": d_opt}  # torch's, not the wrappers
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
        steppers, backward = _fast.direct_calls(accelerator, {"generator": g, "critic": d})
        assert steppers == {"generator": g, "critic": d} and backward == accelerator.backward


class TestPrecision:
    def test_fp16_on_a_cpu_is_one_line(self, tmp_path: Path) -> None:
        """fp16 needs CUDA's gradient scaler: on a CPU the run stops before anything is written."""
        toy = write_toml(tmp_path / "toy.toml", TOY_CONFIG)
        with pytest.raises(ConfigError) as info:
            gancore.train(load(toy, "training.precision='fp16'"), tmp_path / "run", progress=False)
        assert info.value.problems == [
            "training.precision: 'fp16' needs a GPU (its gradient scaler is CUDA's; this process "
            "runs on cpu); use 'bf16' or 'no'"
        ]
        assert not (tmp_path / "run").exists()
