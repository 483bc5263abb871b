"""The ``gan`` command line: exit codes, one-line errors, JSON listings.

Most tests call ``gancore._cli.main`` in-process (fast); two start a real ``python -m gancore``
subprocess to check what a user sees, tracebacks included.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import gancore
from gancore._cli import main
from gancore._config import config_to_dict, parse_config
from gancore.protocols import KINDS
from tests.conftest import require_test_plugins

FIRST_PARTY = [
    "gan-ada",
    "gan-conditional",
    "gan-cyclegan",
    "gan-inpaint",
    "gan-stylegan",
    "gan-wgan",
]

BAD_RUN = """\
[run]
steps = 0
sed = 3

[training]
batch_size = "64"

[critic]
name = "mlpp"
"""

RUN = """\
[run]
name = "toy"
steps = 3

[data]
name = "toy2d"
size = 200

[generator]
name = "mlp"
hidden = 8

[critic]
name = "mlp"
hidden = 8

[loss]
name = "hinge"
"""


def gan(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture
def bad_run(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(BAD_RUN)
    return path


@pytest.fixture
def run_toml(tmp_path: Path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(RUN)
    return path


class TestConfigValidate:
    def test_bad_file_prints_one_error_line_per_problem(
        self, bad_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``gan config validate`` prints each problem on its own ``error:`` line and exits 2."""
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "")  # the built-ins only: a fixed 'available'
        assert gan("config", "validate", str(bad_run)) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.splitlines() == [
            f"error: {bad_run}: run.sed: unknown key (did you mean 'seed'?); [run] accepts: "
            "name, output_dir, seed, steps, trackers",
            f"error: {bad_run}: run.steps: 'steps' must be >= 1 (got 0)",
            f"error: {bad_run}: training.batch_size: expected an integer, got '64' (string)",
            f"error: {bad_run}: data: required section is missing (a table with the name of a "
            "dataset; see `gan components dataset`)",
            f"error: {bad_run}: critic.name: unknown critic 'mlpp' (did you mean 'mlp'?); "
            "available: dcgan, mlp",
        ]

    def test_good_file_is_ok(self, run_toml: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A valid file prints '<file>: ok' and exits 0."""
        assert gan("config", "validate", str(run_toml)) == 0
        assert capsys.readouterr() == (f"{run_toml}: ok\n", "")

    def test_set_overrides_are_validated(
        self, run_toml: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--set`` values are checked with the file's, and a missing '=' is an error."""
        assert gan("config", "validate", str(run_toml), "--set", "run.steps=0", "--set", "x") == 2
        assert capsys.readouterr().err.splitlines() == [
            "error: --set 'x': expected KEY=VALUE, e.g. training.batch_size=32"
        ]
        assert gan("config", "validate", str(run_toml), "--set", "run.steps=0") == 2
        assert capsys.readouterr().err == (
            f"error: {run_toml}: run.steps: 'steps' must be >= 1 (got 0)\n"
        )

    def test_subprocess_shows_no_traceback(
        self, bad_run: Path, subprocess_env: dict[str, str]
    ) -> None:
        """Run as a program, a bad file exits 2 with only ``error:`` lines on stderr."""
        result = subprocess.run(
            [sys.executable, "-m", "gancore", "config", "validate", str(bad_run)],
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=120,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 5
        assert all(line.startswith(f"error: {bad_run}: ") for line in lines)
        assert "Traceback" not in result.stderr


class TestConfigShow:
    def test_prints_resolved_toml_that_validates(
        self, run_toml: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``gan config show`` prints the resolved config with qualified names; it parses back equal."""
        assert gan("config", "show", str(run_toml), "--set", "training.batch_size=16") == 0
        out, err = capsys.readouterr()
        assert err == ""
        document = tomllib.loads(out)
        assert document["loss"] == {"name": "gancore:hinge"}
        assert document["generator"]["name"] == "gancore:mlp"
        assert document["training"]["batch_size"] == 16
        assert document["optimizers"]["critic"]["betas"] == [0.9, 0.999]
        registry = gancore.get_registry()
        original = gancore.load_config(run_toml, ["training.batch_size=16"])
        assert config_to_dict(parse_config(document, registry)) == config_to_dict(original)


class TestPlugins:
    def test_json_lists_the_builtins(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``gan plugins --json`` lists 'gancore' first with its version and every component."""
        assert gan("plugins", "--json") == 0
        plugins = json.loads(capsys.readouterr().out)
        builtin = plugins[0]
        assert set(builtin) == {"name", "version", "module", "status", "error", "components"}
        assert (builtin["name"], builtin["status"], builtin["version"]) == (
            "gancore",
            "loaded",
            gancore.__version__,
        )
        assert ["loss", "hinge"] in builtin["components"]
        assert ["task", "unconditional"] in builtin["components"]
        assert builtin["error"] is None

    def test_json_lists_the_first_party_plugins(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Each installed first-party plugin is listed as loaded, with its version and components."""
        found = {ep.name for ep in importlib.metadata.entry_points(group="gancore")}
        missing = [name for name in FIRST_PARTY if name not in found]
        if missing:
            pytest.skip(f"first-party plugins not installed here: {', '.join(missing)}")
        require_test_plugins("gancore-test-broken")
        assert gan("plugins", "--json") == 0
        plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
        for name in FIRST_PARTY:
            info = plugins[name]
            assert info["status"] == "loaded", info
            assert info["version"] == importlib.metadata.version(name)
            assert info["error"] is None
            kinds = [*KINDS, "command", "sample-option"]
            assert all(kind in kinds and isinstance(n, str) for kind, n in info["components"])
        assert plugins["gancore-test-broken"]["status"] == "disabled"

    def test_text_lists_status_and_errors(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The text listing shows each plugin's version, status, error and components by kind."""
        require_test_plugins("gancore-test-good", "gancore-test-broken")
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gancore-test-good")
        assert gan("plugins") == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == f"gancore {gancore.__version__}: loaded"
        assert "  loss: hinge, least-squares, minimax, non-saturating" in lines
        assert lines[lines.index("gancore-test-good 0.0.1: loaded") + 1] == "  loss: scaled-hinge"
        assert "gancore-test-broken 0.0.1: disabled" in lines

    def test_subprocess_reports_a_broken_plugin_on_one_line(
        self, subprocess_env: dict[str, str]
    ) -> None:
        """A plugin that fails to import is one warning line; the listing still succeeds."""
        require_test_plugins("gancore-test-broken")
        subprocess_env["GANCORE_LOAD_PLUGINS"] = "gancore-test-broken"
        subprocess_env["GANCORE_DISABLE_PLUGINS"] = ""
        result = subprocess.run(
            [sys.executable, "-m", "gancore", "plugins", "--json"],
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == (
            "warning: gancore plugin 'gancore-test-broken' failed to load: ModuleNotFoundError: "
            "No module named 'gancore_test_missing_dependency'\n"
        )
        broken = {p["name"]: p for p in json.loads(result.stdout)}["gancore-test-broken"]
        assert (broken["status"], broken["version"], broken["components"]) == (
            "failed",
            "0.0.1",
            [],
        )
        assert broken["error"] == (
            "ModuleNotFoundError: No module named 'gancore_test_missing_dependency'"
        )


class TestComponents:
    def test_json_describes_each_loss(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``gan components loss --json`` gives name, kind, provider, description and documented options."""
        require_test_plugins("gancore-test-good")
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "gancore-test-good")
        assert gan("components", "loss", "--json") == 0
        losses = json.loads(capsys.readouterr().out)
        assert [(c["qualified_name"], c["kind"]) for c in losses] == [
            ("gancore:hinge", "loss"),
            ("gancore:least-squares", "loss"),
            ("gancore:minimax", "loss"),
            ("gancore:non-saturating", "loss"),
            ("gancore-test-good:scaled-hinge", "loss"),
        ]
        scaled = losses[-1]
        assert scaled == {
            "kind": "loss",
            "name": "scaled-hinge",
            "qualified_name": "gancore-test-good:scaled-hinge",
            "provider": "gancore-test-good",
            "description": "Hinge loss on scaled scores (test plugin).",
            "options": [
                {"name": "scale", "default": 1.0, "type": "float", "doc": "Score multiplier (> 0)."}
            ],
        }
        least_squares = losses[1]
        assert [(o["name"], o["default"]) for o in least_squares["options"]] == [
            ("a", 0.0),
            ("b", 1.0),
            ("c", 1.0),
        ]
        assert all(o["doc"] for o in least_squares["options"])

    def test_every_kind_without_filter(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a kind every registered component is listed."""
        assert gan("components", "--json") == 0
        listed = {(c["kind"], c["qualified_name"]) for c in json.loads(capsys.readouterr().out)}
        assert listed == {(s.kind, s.qualified_name) for s in gancore.get_registry().specs()}

    def test_unknown_kind(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown kind exits 2 with a did-you-mean and the list of kinds."""
        assert gan("components", "los") == 2
        assert capsys.readouterr() == (
            "",
            "error: unknown kind 'los' (did you mean 'loss'?); kinds: generator, critic, loss, "
            "regularizer, augmenter, dataset, metric, extractor, task\n",
        )


class TestTrainSampleEval:
    def test_train_missing_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``gan train`` with a file that does not exist exits 2 with one line."""
        missing = tmp_path / "missing.toml"
        assert gan("train", str(missing)) == 2
        assert capsys.readouterr() == ("", f"error: no such file {str(missing)!r}\n")

    def test_train_without_config(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``gan train`` with neither a file nor --resume says what is missing."""
        assert gan("train") == 2
        assert capsys.readouterr().err == (
            "error: missing CONFIG: gan train RUN.toml (or --resume RUN_DIR)\n"
        )

    def test_train_refuses_a_non_empty_run_dir(
        self, tmp_path: Path, run_toml: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Training into an existing, non-empty run directory is refused, pointing at --resume."""
        run_dir = tmp_path / "existing"
        run_dir.mkdir()
        (run_dir / "notes.txt").write_text("mine")
        assert gan("train", str(run_toml), "--run-dir", str(run_dir)) == 2
        assert capsys.readouterr().err == (
            f"error: run directory {str(run_dir)!r} already exists and is not empty; continue it "
            f"with `gan train --resume {run_dir}`, or choose another --run-dir or run.name\n"
        )
        assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]

    def test_train_refuses_the_default_run_dir(
        self,
        tmp_path: Path,
        run_toml: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The default run directory, run.output_dir/run.name, is protected the same way."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "runs" / "toy").mkdir(parents=True)
        (tmp_path / "runs" / "toy" / "config.toml").write_text("")
        assert gan("train", str(run_toml)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "`gan train --resume runs/toy`" in err

    def test_train_with_config_and_resume(
        self, tmp_path: Path, run_toml: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Giving both a config file and --resume is refused."""
        assert gan("train", str(run_toml), "--resume", str(tmp_path)) == 2
        assert capsys.readouterr().err.startswith("error: give either CONFIG or --resume RUN_DIR")

    @pytest.mark.parametrize("command", ["sample", "eval"])
    def test_not_a_run_directory(
        self, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``gan sample`` and ``gan eval`` on a directory that is not a run exit 2 with one line."""
        (tmp_path / "stuff.txt").write_text("not a run")
        assert gan(command, str(tmp_path)) == 2
        assert capsys.readouterr() == (
            "",
            f"error: {str(tmp_path)!r} is not a run directory (no config.toml)\n",
        )

    def test_resume_of_a_non_run(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``gan train --resume`` of a directory without config.toml exits 2 with one line."""
        assert gan("train", "--resume", str(tmp_path)) == 2
        assert capsys.readouterr().err == (
            f"error: {str(tmp_path)!r} is not a run directory (no config.toml)\n"
        )


class TestEditedConfig:
    """A config.toml edited to another architecture is one line from sample and eval."""

    @pytest.mark.parametrize("command", ["sample", "eval"])
    def test_other_generator_size(
        self, tmp_path: Path, run_toml: Path, command: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A wider generator names the first tensor that differs, both shapes, and the table."""
        run_dir = tmp_path / "run"
        assert gan("train", str(run_toml), "--run-dir", str(run_dir), "--progress", "lines") == 0
        config = run_dir / "config.toml"
        text = config.read_text()
        assert text.count("hidden = 8") == 2  # generator's, then critic's
        config.write_text(text.replace("hidden = 8", "hidden = 16", 1))
        capsys.readouterr()
        assert gan(command, str(run_dir)) == 2
        assert capsys.readouterr().err == (
            "error: checkpoint step-0000003 does not fit config.toml: generator.net.0.weight is "
            "[8, 2] in the checkpoint and [16, 2] in the model, and 6 more tensors disagree "
            "(changed generator options?)\n"
        )

    def test_missing_and_extra_tensors(self, run_toml: Path) -> None:
        """Tensors missing from the checkpoint or extra in it are named too."""
        from torch import nn

        from gancore._inference import weights_misfit

        config = gancore.load_config(run_toml)
        model = {"generator": nn.Linear(2, 3)}
        weight = model["generator"].weight.detach()
        assert weights_misfit(model, {"generator.weight": weight}, config) == (
            "generator.bias is in the model but not in the checkpoint (changed generator options?)"
        )
        bias = model["generator"].bias.detach()
        saved = {"generator.weight": weight, "generator.bias": bias, "generator.x": weight}
        assert weights_misfit({"g": nn.Linear(2, 3)}, {"g.weight": weight}, config) == (
            "g.bias is in the model but not in the checkpoint"
        )
        assert weights_misfit(model, saved, config) == (
            "generator.x is in the checkpoint but not in the model (changed generator options?)"
        )


class TestMain:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``gan --version`` prints the version."""
        assert gan("--version") == 0
        assert capsys.readouterr().out == f"gancore {gancore.__version__}\n"

    def test_no_command_prints_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a command, the help is printed and the exit status is 2."""
        assert gan() == 2
        assert capsys.readouterr().out.startswith("usage: gan ")


class TestCtrlC:
    def test_ctrl_c_outside_training_is_one_line_and_130(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A KeyboardInterrupt while plugins load or a command runs is no traceback."""
        import gancore._cli as cli

        def interrupted(args: object) -> int:
            raise KeyboardInterrupt

        monkeypatch.setitem(cli._COMMANDS, "plugins", interrupted)
        assert cli.main(["plugins"]) == 130
        assert capsys.readouterr().err == "stopped by Ctrl-C (SIGINT)\n"
