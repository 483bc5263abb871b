"""``gan plugin new NAME``: the generated distribution is complete, installable and passes its own
tests as generated."""

from __future__ import annotations

import importlib
import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import gancore
import gancore.testing as gt
from gancore._cli import main
from gancore._scaffold import new_plugin, plugin_files

EXPECTED_FILES = [
    "README.md",
    "constraints.txt",
    "examples/noise-ring.toml",
    "gan_noise/__init__.py",
    "gan_noise/losses.py",
    "gan_noise/plugin.py",
    "gan_noise/py.typed",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/test_losses.py",
    "tests/test_plugin.py",
    "tox.ini",
]


def fresh_venv(where: Path) -> Path:
    """A new virtual environment at ``where`` that sees this interpreter's packages (gancore,
    torch, pytest, pip, setuptools) through a .pth file, so installing into it is fast and offline.
    It gets a ``gan`` script of its own, which sees what is installed into it. Returns its bin/."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    (own_site,) = (where / "lib").glob("python*/site-packages")
    lines = [f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages()]
    (own_site / "_gancore_dev.pth").write_text("".join(lines))
    gan = where / "bin" / "gan"
    gan.write_text(
        f"#!{where / 'bin' / 'python'}\nimport sys\n\nfrom gancore._cli import main\n\n"
        "sys.exit(main())\n"
    )
    gan.chmod(0o755)
    return where / "bin"


def install(bin_dir: Path, project: Path, *flags: str) -> None:
    """``pip install`` ``project`` into the venv, offline: no index, no build isolation."""
    done = subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            *flags,
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def venv_env(bin_dir: Path) -> dict[str, str]:
    """The environment of a shell in the venv: its bin/ first, plugin variables cleared."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANCORE_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class TestFiles:
    def test_generates_a_complete_distribution(self) -> None:
        """pyproject with the entry point, the package, README, tests, an example and tox.ini."""
        files = plugin_files("gan-noise")
        assert sorted(files) == EXPECTED_FILES
        project = tomllib.loads(files["pyproject.toml"])["project"]
        assert project["name"] == "gan-noise"
        assert project["entry-points"]["gancore"] == {"gan-noise": "gan_noise.plugin"}
        assert f"gancore>={gancore.__version__.rsplit('.', 1)[0]}" in project["dependencies"]
        for path, text in files.items():
            assert "$" not in text.replace("$$", ""), path
            if path.endswith(".py"):
                compile(text, path, "exec")
        assert 'GANCORE_API = ">=1.0,<2"' in files["gan_noise/plugin.py"]
        assert "gancore.testing" in files["tests/test_losses.py"]
        assert "env_list = py" in files["tox.ini"]

    def test_tox_pins_torch_as_the_project_does(self) -> None:
        """tox.ini gives pip constraints.txt, which pins torch to the build gancore runs with."""
        import configparser

        import torch

        files = plugin_files("gan-noise")
        tox = configparser.ConfigParser(interpolation=None)
        tox.read_string(files["tox.ini"])
        set_env = [line.strip() for line in tox["testenv"]["set_env"].splitlines()]
        assert "PIP_CONSTRAINT = {toxinidir}/constraints.txt" in set_env
        pins = [line for line in files["constraints.txt"].splitlines() if not line.startswith("#")]
        assert pins == [f"torch=={torch.__version__}"]
        # the project's own tox.ini passes its constraints the same way
        ours = configparser.ConfigParser(interpolation=None)
        ours.read(Path(__file__).parents[1] / "tox.ini")
        assert "PIP_CONSTRAINT = {toxinidir}/constraints.txt" in [
            line.strip() for line in ours["testenv"]["set_env"].splitlines()
        ]

    def test_tests_register_the_plugin_as_the_docs_recommend(self) -> None:
        """tests/conftest.py uses gancore.testing.plugin_fixture, the setup writing_plugins.md
        shows, and the docs quote that conftest line for line."""
        conftest = plugin_files("gan-noise")["tests/conftest.py"]
        assert 'registry = gt.plugin_fixture("gan-noise", plugin, autouse=True)' in conftest
        assert "GANCORE_LOAD_PLUGINS" not in conftest
        docs = (Path(__file__).parents[1] / "docs" / "writing_plugins.md").read_text()
        code = conftest.split('"""', 2)[2].strip()
        assert f"```py\n{code}\n```" in docs

    def test_names_follow_the_distribution(self) -> None:
        """The package is the name with '_', the loss is named after the name without 'gan-'."""
        files = plugin_files("gan-toy-losses2")
        assert "gan_toy_losses2/plugin.py" in files
        assert '"toy-losses2-hinge"' in files["gan_toy_losses2/plugin.py"]
        assert "examples/toy-losses2-ring.toml" in files
        assert 'lossy = "lossy.plugin"' in plugin_files("lossy")["pyproject.toml"]

    @pytest.mark.parametrize("name", ["Gan-Noise", "gan_noise", "gan--noise", "-gan", "2gan", ""])
    def test_invalid_names_are_refused(self, name: str) -> None:
        """A name that is not kebab-case is a one-line config error."""
        with pytest.raises(gancore.ConfigError) as exc:
            plugin_files(name)
        assert str(exc.value) == (
            f"NAME: {name!r} is not a plugin name; use lowercase kebab-case like 'gan-noise' "
            "(letters, digits and single hyphens, starting with a letter)"
        )

    @pytest.mark.parametrize("name", ["gancore", "class"])
    def test_reserved_names_are_refused(self, name: str) -> None:
        """gancore's own name and Python keywords cannot be packages."""
        with pytest.raises(gancore.ConfigError, match=f"try 'gan-{name}'"):
            plugin_files(name)

    def test_generated_code_is_lint_clean(self, tmp_path: Path) -> None:
        """ruff finds nothing in the generated files, formatted or not (when ruff is here)."""
        ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
        if not Path(ruff).exists():
            pytest.skip("ruff is not installed here")
        root = new_plugin("gan-noise", tmp_path)
        for command in (["check", "--select", "E,F,W,I,B,UP,SIM,RUF"], ["format", "--check"]):
            done = subprocess.run(
                [ruff, *command, "--no-cache", "--line-length", "100", "."],
                cwd=root,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stdout + done.stderr


class TestCommand:
    def test_gan_plugin_new_writes_the_folder(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`gan plugin new NAME --dir DIR` writes DIR/NAME and says what to do next."""
        assert main(["plugin", "new", "gan-noise", "--dir", str(tmp_path)]) == 0
        root = tmp_path / "gan-noise"
        written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        assert written == EXPECTED_FILES
        out = capsys.readouterr().out.splitlines()
        assert out == [
            f"created {root}: {', '.join(EXPECTED_FILES)}",
            f"next: cd {root} && python -m pip install -e . && python -m pytest",
        ]

    def test_existing_folder_and_bad_name_exit_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An existing folder or an invalid name is one error line and exit status 2."""
        (tmp_path / "gan-noise").mkdir()
        assert main(["plugin", "new", "gan-noise", "--dir", str(tmp_path)]) == 2
        assert main(["plugin", "new", "Noise", "--dir", str(tmp_path)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"error: {str(tmp_path / 'gan-noise')!r} already exists; choose another NAME or --dir",
            "error: NAME: 'Noise' is not a plugin name; use lowercase kebab-case like 'gan-noise' "
            "(letters, digits and single hyphens, starting with a letter)",
        ]


class TestGeneratedPlugin:
    def test_loads_in_process_and_its_loss_conforms(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without installing: the generated hooks register the loss, which passes the checks,
        and the example run file validates with it."""
        root = new_plugin("gan-noise", tmp_path)
        monkeypatch.syspath_prepend(str(root))
        plugin = importlib.import_module("gan_noise.plugin")
        try:
            with gt.registered_plugin("gan-noise", plugin) as registry:
                assert registry.get("loss", "noise-hinge").provider == "gan-noise"
                gt.check_loss("noise-hinge", {"margin": 0.5})
                gt.check_options_roundtrip("noise-hinge", kind="loss")
                config = gancore.load_config(root / "examples" / "noise-ring.toml")
                assert config.loss.name == "gan-noise:noise-hinge"
        finally:
            for name in [m for m in sys.modules if m.split(".")[0] == "gan_noise"]:
                del sys.modules[name]

    @pytest.mark.slow
    def test_installs_in_a_fresh_venv_and_passes_its_tests(self, tmp_path: Path) -> None:
        """Generated, installed (not editable) into a new venv, its own test suite passes."""
        root = new_plugin("gan-noise", tmp_path)
        bin_dir = fresh_venv(tmp_path / "venv")
        install(bin_dir, root)
        done = subprocess.run(
            [str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=root,
            env=venv_env(bin_dir),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "7 passed" in done.stdout
