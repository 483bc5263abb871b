"""The documentation's examples work: the worked task example trains, shown commands parse."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import torch

import gancore
import gancore.testing as gt
from gancore._checkpoint import verify_checkpoint
from gancore._cli import _parser
from gancore._config import parse_override
from tests.conftest import require_test_plugins

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
        assert json.loads((run_dir / "classes.json").read_text()) == {"classes": list("0123456789")}
        checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
        assert checkpoints == ["step-0000015", "step-0000030"]
        for name in checkpoints:
            assert verify_checkpoint(run_dir / "checkpoints" / name) is None
        samples = sorted(p.name for p in (run_dir / "samples").iterdir())
        assert samples == ["reals.png", "step-0000000.png", "step-0000015.png", "step-0000030.png"]
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        train_events = [e for e in events if e["event"] == "train"]
        assert [e["step"] for e in train_events] == [10, 20, 30]
        assert all(e["nonfinite_skipped"] == 0 for e in train_events)
        assert {"loss/critic", "loss/generator", "scores/real"} <= set(train_events[-1])

    @pytest.mark.slow
    @pytest.mark.distributed
    def test_class_conditional_example_trains_on_two_processes(
        self, tmp_path: Path, subprocess_env: dict[str, str]
    ) -> None:
        """The worked example runs data-parallel unchanged, as docs/tasks.md says: under torchrun
        with 2 gloo processes it trains one run (world size 2 in the checkpoint), each rank
        reloads the generator, and both leave through end_processes."""
        (code,) = PYTHON_BLOCK.findall((DOCS / "tasks.md").read_text())
        script = tmp_path / "conditional_digits.py"
        script.write_text(code)
        done = gt.run_processes(
            [str(script), "run.steps=6", "training.sample_every=0"],
            env=subprocess_env | {"OMP_NUM_THREADS": "1"},
            timeout=300,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("6 steps; grids in") == 2, done.stdout  # one line per rank
        last = tmp_path / "runs" / "conditional-digits" / "checkpoints" / "step-0000006"
        assert torch.load(last / "training_state.pt", weights_only=True)["world_size"] == 2


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


# Options of `gan sample` that first-party plugins add (gan-stylegan, gan-conditional, gan-biggan).
PLUGIN_SAMPLE_FLAGS = {
    "--truncation",
    "--truncation-cutoff",
    "--style-mixing",
    "--crossover",
    "--vary-code",
    "--code-steps",
    "--code-range",
    "--truncation-threshold",
}


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
        plugin_commands = {"translate": "gan-cyclegan", "inpaint": "gan-inpaint"}
        registry = gancore.get_registry()
        registered = registry.commands
        parser = _parser(registered, registry.sample_options)
        for command in commands:
            arguments = gan_arguments(command)
            if arguments[0] in plugin_commands and arguments[0] not in registered:
                continue  # a first-party plugin's command, and that plugin is not installed here
            plugin_flags = set(arguments) & PLUGIN_SAMPLE_FLAGS
            if not plugin_flags <= set(registry.sample_options):
                continue  # a plugin's option of gan sample, and that plugin is not installed here
            parser.parse_args(arguments)

    def test_named_examples_exist(self) -> None:
        """Every examples/*.toml the README names exists and validates."""
        named = set(re.findall(r"examples/[\w.-]+\.toml", self.TEXT))
        assert "examples/digits-dcgan.toml" in named
        for name in sorted(named):
            assert (ROOT / name).is_file(), name
            try:
                gancore.load_config(ROOT / name)
            except gancore.ConfigError as exc:  # a plugin's example, that plugin not installed
                if not re.search(r"is gan-[\w-]+ installed\?", str(exc)):
                    raise


# -------------------------------------------------------------------------------------------------
# docs/troubleshooting.md: every quoted error is what gancore prints
# -------------------------------------------------------------------------------------------------

QUOTED_ERROR = re.compile(r"^<!-- error: ([\w-]+) -->\n```text\n(.*?)^```$", re.S | re.M)
BAD_RUN = """
[data]
name = "toy2d"

[generator]
name = "mlp"
latent_dimm = 2

[critic]
name = "mlp"

[loss]
name = "wgan"
"""


def run_gan(args: list[str], monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    """stderr lines of ``gan ARGS`` run in-process with the plugin variables ``env``."""
    import contextlib
    import io
    import warnings

    from gancore._cli import main

    for key in ("GANCORE_LOAD_PLUGINS", "GANCORE_DISABLE_PLUGINS", "GANCORE_STRICT_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    gancore.reset_registry()
    err = io.StringIO()
    # gan prints warnings as one line on stderr (and replaces warnings.showwarning to do so):
    # record them as it does, and restore the warning machinery afterwards
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("always")
        main(args)
    return err.getvalue().splitlines()


def nan_plugin() -> object:
    """A plugin whose loss 'nan-loss' is NaN for both players."""
    import types

    import attrs

    @attrs.frozen
    class NanLoss:
        def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
            return (real.mean() - fake.mean()) * float("nan")

        def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
            return fake.mean() * float("nan")

    @gancore.hookimpl
    def gancore_register_losses(register: gancore.RegisterCallback) -> None:
        register("nan-loss", NanLoss, description="NaN.")

    module = types.ModuleType("nan_plugin")
    module.gancore_register_losses = gancore_register_losses  # type: ignore[attr-defined]
    return module


def scenario(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Produce the output the troubleshooting page quotes under ``name``, in ``tmp_path``."""
    import warnings

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(BAD_RUN)
    builtins_only = {"GANCORE_LOAD_PLUGINS": ""}
    if name == "bad-run-file":
        return run_gan(["config", "validate", "bad.toml"], monkeypatch, **builtins_only)
    if name == "ambiguous-name":
        require_test_plugins("gancore-test-collide")
        args = ["config", "validate", "bad.toml", "--set", "loss.name=hinge"]
        return run_gan(args, monkeypatch, GANCORE_LOAD_PLUGINS="gancore-test-collide")
    if name == "bad-override":
        args = ["train", "bad.toml", "--set", "training.batch_size"]
        return run_gan(args, monkeypatch, **builtins_only)
    if name == "list-as-table":
        (tmp_path / "bad.toml").write_text(
            '[data]\nname = "toy2d"\n[generator]\nname = "mlp"\n[critic]\nname = "mlp"\n'
            '[regularizers]\nname = "r1"\n'
        )
        return run_gan(["config", "validate", "bad.toml"], monkeypatch, **builtins_only)
    if name == "impossible-value":
        args = ["config", "validate", "bad.toml", "--set", "training.batch_size=1000000000000"]
        (tmp_path / "bad.toml").write_text(
            '[data]\nname = "toy2d"\n[generator]\nname = "mlp"\n[critic]\nname = "mlp"\n'
            "[optimizers.critic]\nlr = inf\n"
        )
        return run_gan(args, monkeypatch, **builtins_only)
    if name == "non-finite-data":
        import numpy as np

        np.savez(tmp_path / "points.npz", x=np.array([[0.0, np.nan], [1.0, 2.0]] * 2))
        (tmp_path / "run.toml").write_text(
            '[data]\nname = "npz"\npath = "points.npz"\n[generator]\nname = "mlp"\n'
            '[critic]\nname = "mlp"\n'
        )
        return run_gan(["train", "run.toml", "--run-dir", "o"], monkeypatch, **builtins_only)
    if name == "network-memory":
        (tmp_path / "run.toml").write_text(
            '[data]\nname = "digits"\nresolution = 16\n[generator]\nname = "dcgan"\n'
            '[critic]\nname = "dcgan"\nchannels = 100000\nmax_channels = 100000\n'
        )
        return run_gan(["train", "run.toml", "--run-dir", "o"], monkeypatch, **builtins_only)
    if name == "missing-file":
        return run_gan(["train", "missing.toml"], monkeypatch, **builtins_only)
    if name == "network-shape":
        (tmp_path / "mlp.toml").write_text(
            '[data]\nname = "digits"\nresolution = 8\n[generator]\nname = "mlp"\n'
            '[critic]\nname = "mlp"\n'
        )
        return run_gan(["train", "mlp.toml", "--run-dir", "o"], monkeypatch, **builtins_only)
    if name == "missing-generator":
        (tmp_path / "nogen.toml").write_text('[data]\nname = "toy2d"\n')
        return run_gan(["train", "nogen.toml", "--run-dir", "o"], monkeypatch, **builtins_only)
    if name == "empty-folder":
        (tmp_path / "my-images").mkdir()
        (tmp_path / "run.toml").write_text(
            '[data]\nname = "image-folder"\npath = "my-images"\nresolution = 16\n'
            '[generator]\nname = "dcgan"\n[critic]\nname = "dcgan"\n'
        )
        return run_gan(["train", "run.toml", "--run-dir", "o"], monkeypatch, **builtins_only)
    if name == "run-dir-exists":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "config.toml").write_text("")
        (tmp_path / "good.toml").write_text(
            '[data]\nname = "toy2d"\n[generator]\nname = "mlp"\n[critic]\nname = "mlp"\n'
        )
        return run_gan(["train", "good.toml", "--run-dir", "out"], monkeypatch, **builtins_only)
    if name == "run-dir-in-use":
        from gancore._runlock import RunLock

        (tmp_path / "good.toml").write_text(
            '[data]\nname = "toy2d"\n[generator]\nname = "mlp"\n[critic]\nname = "mlp"\n'
        )
        holder = RunLock(Path("out"))  # another run training into 'out'
        assert holder.acquire() is None
        try:
            return run_gan(["train", "good.toml", "--run-dir", "out"], monkeypatch, **builtins_only)
        finally:
            holder.release()
    if name == "not-a-run":
        (tmp_path / "out").mkdir()
        return run_gan(["train", "--resume", "out"], monkeypatch, **builtins_only)
    if name in ("damaged-manifest", "damaged-best"):
        checkpoint = tmp_path / "out" / "checkpoints" / "step-0000010"
        checkpoint.mkdir(parents=True)
        (tmp_path / "out" / "config.toml").write_text(
            '[data]\nname = "toy2d"\n[generator]\nname = "mlp"\n[critic]\nname = "mlp"\n'
        )
        (checkpoint / "manifest.json").write_text('{"files": ["generators.safetensors"]}')
        if name == "damaged-manifest":
            return run_gan(["train", "--resume", "out"], monkeypatch, **builtins_only)
        (tmp_path / "out" / "checkpoints" / "best.json").write_text("")
        return run_gan(["sample", "out", "--checkpoint", "best"], monkeypatch, **builtins_only)
    if name == "regularizer-misfit":
        pytest.importorskip("gan_stylegan")
        (tmp_path / "run.toml").write_text(
            '[data]\nname = "digits"\nresolution = 8\n[generator]\nname = "dcgan"\n'
            '[critic]\nname = "dcgan"\n[[regularizers]]\nname = "path-length"\n'
        )
        args = ["train", "run.toml", "--run-dir", "o"]
        return run_gan(args, monkeypatch, GANCORE_LOAD_PLUGINS="gan-stylegan")
    if name == "edited-config":
        (tmp_path / "toy.toml").write_text(
            '[run]\nsteps = 2\n[data]\nname = "toy2d"\nsize = 64\n[generator]\nname = "mlp"\n'
            'hidden = 8\n[critic]\nname = "mlp"\n[training]\nbatch_size = 8\n'
        )
        args = ["train", "toy.toml", "--run-dir", "o", "--progress", "lines"]
        run_gan(args, monkeypatch, **builtins_only)
        config = tmp_path / "o" / "config.toml"
        config.write_text(config.read_text().replace("hidden = 8", "hidden = 16", 1))
        return run_gan(["sample", "o"], monkeypatch, **builtins_only)
    if name == "non-finite":
        (tmp_path / "nan.toml").write_text(
            '[run]\nsteps = 10\n[data]\nname = "toy2d"\nsize = 64\n[generator]\nname = "mlp"\n'
            '[critic]\nname = "mlp"\n[loss]\nname = "nan-loss"\n'
            "[training]\nbatch_size = 8\nmax_nonfinite_steps = 3\n"
        )
        loaded = gancore.load_registry(entry_points=False, plugins=[("demo", nan_plugin())], env={})
        from gancore import _plugins

        monkeypatch.setattr(_plugins, "load_registry", lambda **kwargs: loaded)
        return run_gan(["train", "nan.toml", "--run-dir", "o", "--progress", "lines"], monkeypatch)
    if name == "missing-weights":
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        from gancore.metrics.extractors import build_extractor

        gancore.reset_registry(gancore.load_registry(entry_points=False, env={}))
        with pytest.raises(FileNotFoundError) as exc:
            build_extractor("inception-v3")
        return [f"error: {exc.value}"]  # how gan prints a FileNotFoundError
    if name in ("plugin-import", "plugin-import-strict"):
        require_test_plugins("gancore-test-broken")
    if name == "plugin-import":
        return run_gan(["plugins"], monkeypatch, GANCORE_LOAD_PLUGINS="gancore-test-broken")
    if name == "plugin-import-strict":
        env = {"GANCORE_LOAD_PLUGINS": "gancore-test-broken", "GANCORE_STRICT_PLUGINS": "1"}
        return run_gan(["plugins"], monkeypatch, **env)
    if name == "api-range":
        import types

        old = types.ModuleType("gan_old.plugin")
        old.GANCORE_API = ">=2.0,<3"  # type: ignore[attr-defined]
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            gancore.load_registry(entry_points=False, plugins=[("gan-old", old)], env={})
        return [f"warning: {w.message}" for w in record]  # how gan prints a warning
    raise AssertionError(f"no scenario {name!r}")


TROUBLESHOOTING = dict(QUOTED_ERROR.findall((DOCS / "troubleshooting.md").read_text()))
SLOW_SCENARIOS = {"non-finite", "network-shape", "missing-generator", "empty-folder"}


class TestTroubleshooting:
    def test_every_error_block_is_tagged(self) -> None:
        """Each ```text block of the page is a quoted error with a scenario tag."""
        text = (DOCS / "troubleshooting.md").read_text()
        assert len(re.findall(r"^```text$", text, re.M)) == len(TROUBLESHOOTING) >= 14

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param(n, marks=pytest.mark.slow) if n in SLOW_SCENARIOS else n
            for n in sorted(TROUBLESHOOTING)
        ],
    )
    def test_quoted_error_is_what_gan_prints(
        self, name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The scenario prints every quoted line (``...`` standing for any text)."""
        printed = scenario(name, monkeypatch, tmp_path)
        for line in TROUBLESHOOTING[name].splitlines():
            pattern = ".*".join(re.escape(part) for part in line.split("..."))
            assert any(re.fullmatch(pattern, out) for out in printed), (line, printed)


# -------------------------------------------------------------------------------------------------
# docs/writing_plugins.md: the tutorial's commands, run in a fresh virtual environment
# -------------------------------------------------------------------------------------------------


def load_test_module(name: str) -> Any:
    """Another test module of this folder, by file (tests are not a package on sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_docs_{name}", ROOT / "tests" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Offline and fast: no index, no isolated build environment (setuptools is already there).
OFFLINE_PIP = ["--no-build-isolation", "--no-index"]


def console_steps(page: str) -> list[tuple[str, list[str]]]:
    """``($ command, shown output lines)`` of every console block of a page, in order."""
    steps: list[tuple[str, list[str]]] = []
    for block in CONSOLE_BLOCK.findall((DOCS / page).read_text()):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif line.strip():
                steps[-1][1].append(line)
    return steps


class TestWritingPluginsTutorial:
    def test_shown_gan_commands_parse(self) -> None:
        """Every gan command of the tutorial is accepted by gan's parser (plugin commands aside)."""
        commands = [shlex.split(c) for c, _ in console_steps("writing_plugins.md")]
        gan = [c for c in commands if c[0] == "gan"]
        assert len(gan) >= 6
        for command in gan:
            _parser().parse_args(command[1:])

    @pytest.mark.slow
    def test_every_command_runs_and_prints_what_is_shown(self, tmp_path: Path) -> None:
        """From `gan plugin new` to a built wheel: each command succeeds (or fails as shown) and
        prints every line the page shows for it (``...`` matching anything)."""
        scaffold = load_test_module("test_scaffold")
        bin_dir = scaffold.fresh_venv(tmp_path / "venv")
        env = scaffold.venv_env(bin_dir)
        cwd = tmp_path / "work"
        cwd.mkdir()
        steps = console_steps("writing_plugins.md")
        assert [c.split()[0] for c, _ in steps][:3] == ["gan", "cd", "python"]
        for command, shown in steps:
            words = shlex.split(command)
            if words[0] == "cd":
                cwd = cwd / words[1]
                continue
            if words[:4] in (["python", "-m", "pip", "install"], ["python", "-m", "pip", "wheel"]):
                words = [*words[:4], *OFFLINE_PIP, *words[4:]]
            done = subprocess.run(
                words, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
            )
            printed = (done.stdout + done.stderr).splitlines()
            fails = any(line.startswith("error:") for line in shown)
            assert (done.returncode != 0) == fails, (
                command,
                done.stdout[-2000:],
                done.stderr[-2000:],
            )
            for line in shown:
                if line.strip() == "...":
                    continue
                pattern = ".*".join(re.escape(part) for part in line.split("..."))
                assert any(re.fullmatch(pattern, out) for out in printed), (command, line, printed)


# -------------------------------------------------------------------------------------------------
# docs/quickstart.md, docs/plugins/wgan.md
# -------------------------------------------------------------------------------------------------


class TestQuickstart:
    TEXT = (DOCS / "quickstart.md").read_text()

    def test_make_targets_exist(self) -> None:
        """The two commands are targets of the Makefile, as in the README."""
        makefile = (ROOT / "Makefile").read_text()
        for target in re.findall(r"^make (\w+)", self.TEXT, re.M):
            assert re.search(rf"^{target}:", makefile, re.M), target
        assert "make demo" in self.TEXT and "make test" in self.TEXT

    def test_shown_commands_parse(self) -> None:
        """Every shown gan command is accepted by gan's parser."""
        commands = shown_commands("quickstart.md")
        assert len(commands) == 7
        for command in commands:
            _parser().parse_args(gan_arguments(command))

    @pytest.mark.slow
    def test_own_images_run_file_validates_and_trains(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a folder of 8 random PNGs, the page's file validates and its smoke test trains."""
        import numpy as np
        from PIL import Image

        from gancore._cli import main

        (block,) = [b for b in TOML_BLOCK.findall(self.TEXT) if "image-folder" in b]
        monkeypatch.chdir(tmp_path)
        (tmp_path / "my-images.toml").write_text(block)
        (tmp_path / "my-images" / "sub").mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(8):
            pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "my-images" / "sub" / f"{i}.png")
        steps = [shlex.split(line[2:]) for line in self.TEXT.splitlines() if "my-images" in line]
        commands = [c[1:] for c in steps if c[:2] == ["$", "gan"] or c[0] == "gan"]
        assert [c[0] for c in commands] == ["config", "train"]
        for command in commands:
            assert main(command) == 0, command
        assert (tmp_path / "runs" / "my-images" / "checkpoints" / "step-0000002").is_dir()


class TestWganPage:
    def test_recipes_are_valid_run_files(self) -> None:
        """Each TOML recipe of docs/plugins/wgan.md, on the digits, validates."""
        pytest.importorskip("gan_wgan")
        blocks = TOML_BLOCK.findall((DOCS / "plugins" / "wgan.md").read_text())
        assert len(blocks) == 3
        base = {
            "data": {"name": "digits", "resolution": 16},
            "generator": {"name": "dcgan"},
            "critic": {"name": "dcgan", "norm": "layer"},
        }
        for block in blocks:
            config = gancore.parse_config(base | tomllib.loads(block), gancore.get_registry())
            names = {r.name for r in config.regularizers}
            assert names <= {"gan-wgan:wgan-gp", "gan-wgan:weight-clip", "gan-wgan:spectral-norm"}

    def test_every_component_is_on_the_page(self) -> None:
        """Every name gan-wgan registers appears on its page."""
        pytest.importorskip("gan_wgan")
        text = (DOCS / "plugins" / "wgan.md").read_text()
        _, infos = gancore.load_registry(env={"GANCORE_LOAD_PLUGINS": "gan-wgan"})
        (info,) = [i for i in infos if i.name == "gan-wgan"]
        for _, name in info.components:
            assert f"`{name}`" in text, name


# -------------------------------------------------------------------------------------------------
# docs/examples/gan-example-plugin: a third-party plugin on the public API only
# -------------------------------------------------------------------------------------------------

EXAMPLE_PLUGIN = DOCS / "examples" / "gan-example-plugin"


class TestExamplePlugin:
    def test_imports_only_the_public_api(self) -> None:
        """No module of the example imports a private gancore module."""
        for path in sorted(EXAMPLE_PLUGIN.rglob("*.py")):
            for module in re.findall(
                r"^\s*(?:from|import) (gancore[\w.]*)", path.read_text(), re.M
            ):
                assert module in {"gancore", "gancore.protocols", "gancore.testing"}, (path, module)

    def test_loads_in_process_and_every_component_conforms(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Registered in-process, each of its nine components passes its kind's check."""
        import importlib

        import gancore.testing as gt

        monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
        plugin = importlib.import_module("gan_example.plugin")
        try:
            with gt.registered_plugin("gan-example", plugin) as registry:
                _, infos = gancore.load_registry(
                    entry_points=False, plugins=[("gan-example", plugin)], env={}
                )
                kinds = {kind for kind, _ in infos[-1].components}
                assert kinds == {*gancore.protocols.KINDS, "command"}
                gt.check_generator("residual-mlp", data_shape=(1, 8, 8))
                gt.check_critic("residual-mlp", data_shape=(1, 8, 8))
                gt.check_loss("smoothed-non-saturating")
                gt.check_regularizer("r2")
                gt.check_augmenter("adaptive-noise")
                gt.check_dataset("two-moons", {"size": 32})
                gt.check_metric("sliced-wasserstein", {"num_samples": 32, "num_projections": 4})
                gt.check_extractor("pixels")
                for spec in registry.specs():
                    if spec.provider == "gan-example":
                        gt.check_options_roundtrip(spec, kind=spec.kind)
                config = gancore.load_config(EXAMPLE_PLUGIN / "examples" / "moons-pacgan.toml")
                assert config.task.name == "gan-example:pacgan"
        finally:
            for name in [m for m in sys.modules if m.split(".")[0] == "gan_example"]:
                del sys.modules[name]

    @pytest.mark.slow
    def test_installed_it_passes_its_own_tests(self, tmp_path: Path) -> None:
        """Installed into a fresh venv (from a copy, so no build files land in docs/), its own
        suite passes, the entry-point test included."""
        import shutil

        scaffold = load_test_module("test_scaffold")
        copy = tmp_path / "gan-example-plugin"
        shutil.copytree(EXAMPLE_PLUGIN, copy, ignore=shutil.ignore_patterns("__pycache__"))
        bin_dir = scaffold.fresh_venv(tmp_path / "venv")
        scaffold.install(bin_dir, copy)
        shutil.rmtree(copy / "gan_example")  # the tests must use the installed package
        done = subprocess.run(
            [str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=copy,
            env=scaffold.venv_env(bin_dir),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert re.search(r"\b20 passed in\b", done.stdout), done.stdout[-500:]  # none skipped
