"""The documentation's examples work: the worked task example trains, shown commands parse."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import gancore
from gancore._checkpoint import verify_checkpoint
from gancore._cli import _parser
from gancore._config import parse_override

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"

# Blocks fenced as ```python are runnable; sketches are fenced as ```py and never run.
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```$", re.S | re.M)
TOML_BLOCK = re.compile(r"^```toml\n(.*?)^```$", re.S | re.M)


def shown_commands(page: str) -> list[list[str]]:
    """The ``$ ...`` lines of a page's console blocks, split as a shell would."""
    text = (DOCS / page).read_text()
    return [
        shlex.split(line[2:])
        for block in CONSOLE_BLOCK.findall(text)
        for line in block.splitlines()
        if line.startswith("$ ")
    ]


def gan_arguments(command: list[str]) -> list[str]:
    """The arguments ``gan`` receives: after ``gan``, or after ``-m gancore`` for launchers."""
    if command[0] == "gan":
        return command[1:]
    if command[0] in ("torchrun", "accelerate") and "-m" in command:
        at = command.index("-m")
        assert command[at + 1] == "gancore", command
        return command[at + 2 :]
    raise AssertionError(f"not a gan command: {shlex.join(command)}")


class TestTasksExample:
    @pytest.mark.slow
    def test_class_conditional_example_trains(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """The worked example of docs/tasks.md trains, samples, logs and checkpoints."""
        (code,) = PYTHON_BLOCK.findall((DOCS / "tasks.md").read_text())
        script = tmp_path / "conditional_digits.py"
        script.write_text(code)
        overrides = [
            "run.steps=30",
            "training.log_every=10",
            "training.sample_every=15",
            "training.checkpoint_every=15",
        ]
        done = subprocess.run(
            [sys.executable, str(script), *overrides],
            cwd=tmp_path,
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "30 steps" in done.stdout and "sevens (8, 1, 8, 8)" in done.stdout, done.stdout

        run_dir = tmp_path / "runs" / "conditional-digits"
        config = tomllib.loads((run_dir / "config.toml").read_text())
        assert config["task"]["name"] == "conditional-digits:class-conditional"
        assert config["run"]["steps"] == 30
        checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
        assert checkpoints == ["step-0000015", "step-0000030"]
        for name in checkpoints:
            assert verify_checkpoint(run_dir / "checkpoints" / name) is None
        samples = sorted(p.name for p in (run_dir / "samples").iterdir())
        assert samples == ["step-0000015.png", "step-0000030.png"]
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        train_events = [e for e in events if e["event"] == "train"]
        assert [e["step"] for e in train_events] == [10, 20, 30]
        assert all(e["nonfinite_skipped"] == 0 for e in train_events)
        assert {"loss/critic", "loss/generator", "scores/real"} <= set(train_events[-1])


class TestTrainingCommands:
    def test_every_shown_command_parses(self) -> None:
        """Each command line in docs/training.md is accepted by gan's argument parser."""
        commands = shown_commands("training.md")
        assert len(commands) >= 15, "the console blocks of docs/training.md were not found"
        parser = _parser()
        for command in commands:
            args = gan_arguments(command)
            try:
                parsed = parser.parse_args(args)
            except SystemExit as exc:  # argparse reports and exits
                pytest.fail(f"gan rejects `{shlex.join(command)}` (exit {exc.code})")
            assert parsed.command in {"train", "sample", "eval", "config"}, command
            for text in getattr(parsed, "overrides", []):
                parse_override(text)

    def test_shown_run_files_and_overrides_are_valid(self) -> None:
        """Every shown training run (file plus --set) is a valid config; validate shows errors."""
        checked = 0
        for command in shown_commands("training.md"):
            parsed = _parser().parse_args(gan_arguments(command))
            if parsed.command not in ("train", "config") or parsed.config is None:
                continue
            if parsed.command == "config" and parsed.config_command == "validate":
                with pytest.raises(gancore.ConfigError) as exc:  # the page shows the errors
                    gancore.load_config(ROOT / parsed.config, parsed.overrides)
                assert "training.batch_size" in str(exc.value)
                continue
            gancore.load_config(ROOT / parsed.config, parsed.overrides)
            checked += 1
        assert checked >= 8


class TestConceptsRunFile:
    def test_run_file_example_is_valid(self) -> None:
        """The run file shown in docs/concepts.md validates."""
        blocks = [
            b for b in TOML_BLOCK.findall((DOCS / "concepts.md").read_text()) if "[data]" in b
        ]
        assert len(blocks) == 1
        config = gancore.parse_config(tomllib.loads(blocks[0]), gancore.get_registry())
        assert config.regularizers[0].name == "gancore:r1"


class TestReadme:
    TEXT = (ROOT / "README.md").read_text()

    def test_run_file_tour_is_valid(self) -> None:
        """The run file the README tours validates as shown."""
        blocks = [b for b in TOML_BLOCK.findall(self.TEXT) if "[run]" in b]
        assert len(blocks) == 1
        config = gancore.parse_config(tomllib.loads(blocks[0]), gancore.get_registry())
        assert (config.generator.name, config.loss.name) == (
            "gancore:dcgan",
            "gancore:non-saturating",
        )
        assert [r.name for r in config.regularizers] == ["gancore:r1"]

    def test_shown_commands_parse(self) -> None:
        """Every `gan ...` command in the README's table and blocks parses."""
        commands = [
            shlex.split(line.strip("`").split(" [")[0])
            for line in re.findall(r"`((?:gan|torchrun|accelerate) [^`]*)`", self.TEXT)
        ]
        placeholders = {"N": "16", "S": "0", "K=V": "run.steps=5", "NAME": "fid"}
        commands = [[placeholders.get(word, word) for word in c] for c in commands]
        assert len(commands) >= 8
        parser = _parser()
        for command in commands:
            parser.parse_args(gan_arguments(command))

    def test_named_examples_exist(self) -> None:
        """Every examples/*.toml the README names exists and validates."""
        named = set(re.findall(r"examples/[\w.-]+\.toml", self.TEXT))
        assert "examples/digits-dcgan.toml" in named
        for name in sorted(named):
            gancore.load_config(ROOT / name)
