"""gan export and gancore.load_generator: one file that samples without the run or its data."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import gancore
from gancore._cli import main
from gancore._export import _plugins
from gancore._inference import load_run
from gancore._train import train
from tests.conftest import MISBEHAVING_TEST_PLUGINS

RUN = """
[run]
name = "tiny"
steps = 2
[data]
name = "npz"
path = "images.npz"
[generator]
name = "dcgan"
latent_dim = 4
channels = 4
[critic]
name = "dcgan"
channels = 4
[training]
batch_size = 4
ema_half_life_images = 8.0
"""


def _add_a_metric(run_dir: Path) -> None:
    """The run's config.toml as if it had been trained with a metric that picks the best
    checkpoint (cheaper than evaluating one)."""
    config = tomllib.loads((run_dir / "config.toml").read_text())
    config["metrics"] = [{"name": "gancore:fid", "extractor": "digits-classifier"}]
    config["training"]["best_metric"] = "fid.fd-digits"
    (run_dir / "config.toml").write_text(tomli_w.dumps(config))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step run with an EMA generator trained on ``images.npz``, which is then deleted; its
    config.toml names a metric."""
    root = tmp_path_factory.mktemp("export")
    project = root / "project"
    project.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, size=(16, 1, 8, 8), dtype=np.uint8)
    np.savez(project / "images.npz", x=pixels)
    (project / "run.toml").write_text(RUN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCORE_DISABLE_PLUGINS", MISBEHAVING_TEST_PLUGINS)
        patch.chdir(project)
        gancore.reset_registry()
        torch.manual_seed(0)
        train(gancore.load_config("run.toml"), root / "run", progress=False)
        _add_a_metric(root / "run")
        gancore.reset_registry()
    (project / "images.npz").unlink()
    return root / "run"


@pytest.fixture
def exported(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run exported, then copied alone into a fresh directory, which is the cwd."""
    assert main(["export", str(trained), "--out", str(tmp_path / "out" / "g.safetensors")]) == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(tmp_path / "out" / "g.safetensors", fresh / "generator.safetensors")
    monkeypatch.chdir(fresh)
    return fresh / "generator.safetensors"


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata())


def _rewrite(path: Path, out: Path, **changes: str) -> Path:
    """``path`` re-saved with metadata keys ``gancore.<key>`` changed."""
    metadata = _metadata(path) | {f"gancore.{k}": v for k, v in changes.items()}
    save_file(load_file(str(path)), str(out), metadata=metadata)
    return out


class TestExport:
    """gan export writes the EMA generator and what rebuilding it needs, and nothing else."""

    def test_metadata(self, exported: Path, trained: Path) -> None:
        """The file holds the EMA weights, the config without metrics, the data record and the
        versions; the data record is the run's data.json."""
        metadata = _metadata(exported)
        assert metadata["gancore.format"] == "generator"
        assert metadata["gancore.format_version"] == "1"
        assert metadata["gancore.generator_kind"] == "ema"
        assert metadata["gancore.checkpoint"] == "step-0000002"
        assert metadata["gancore.run"] == "tiny"
        assert metadata["gancore.version"] == gancore.__version__
        assert json.loads(metadata["gancore.plugins"]) == {}  # built-ins only
        assert metadata["gancore.data"] == (trained / "data.json").read_text()
        config = tomllib.loads(metadata["gancore.config"])
        assert "metrics" not in config and "best_metric" not in config["training"]
        generator = config["generator"]
        assert (generator["name"], generator["latent_dim"], generator["channels"]) == (
            "gancore:dcgan",
            4,
            4,
        )
        weights = load_file(str(exported))
        checkpoint = load_run(trained).checkpoint
        ema = load_file(str(checkpoint / "ema.safetensors"))
        assert weights.keys() == ema.keys()
        assert all(torch.equal(weights[k], ema[k]) for k in weights)

    def test_default_name_and_raw(
        self, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --out the file is RUN_NAME.safetensors here; --raw exports the trained one."""
        monkeypatch.chdir(tmp_path)
        assert main(["export", str(trained), "--raw"]) == 0
        assert _metadata(tmp_path / "tiny.safetensors")["gancore.generator_kind"] == "raw"

    def test_plugins_of_the_components(self, tmp_path: Path) -> None:
        """The plugins recorded are the providers of the config's components, with versions."""
        (tmp_path / "run.toml").write_text(
            RUN.replace("[training]", '[loss]\nname = "wgan"\n[training]')
        )
        versions = {info.name: info.version for info in gancore.plugin_infos()}
        if "gan-wgan" not in versions:
            pytest.skip("gan-wgan is not installed")
        config = gancore.load_config(tmp_path / "run.toml")
        assert _plugins(config) == {"gan-wgan": versions["gan-wgan"]}

    def test_refuses_a_wrong_extension(
        self, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--out must be a .safetensors file: one line, status 2, nothing written."""
        assert main(["export", str(trained), "--out", str(tmp_path / "g.pt")]) == 2
        assert capsys.readouterr().err == (
            f"error: --out: expected a .safetensors file (got '{tmp_path / 'g.pt'}')\n"
        )
        assert not (tmp_path / "g.pt").exists()

    def test_refuses_a_non_run(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A directory without config.toml is named."""
        assert main(["export", str(tmp_path), "--out", str(tmp_path / "g.safetensors")]) == 2
        assert capsys.readouterr().err == (
            f"error: '{tmp_path}' is not a run directory (no config.toml)\n"
        )


class TestLoadGenerator:
    """An exported file samples as its run did, with neither the run directory nor the data."""

    def test_samples_equal_the_runs(self, exported: Path, trained: Path) -> None:
        """load_generator(FILE).generate equals load_run(RUN).generate bit for bit."""
        loaded = gancore.load_generator(exported, device="cpu")
        assert loaded.generator_kind == "ema"
        expected = load_run(trained).generate(6, seed=3)
        assert torch.equal(loaded.generate(6, seed=3), expected)

    def test_gan_sample_of_the_file_equals_gan_sample_of_the_run(
        self, exported: Path, trained: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """gan sample FILE in a fresh directory writes the pixels gan sample RUN writes."""
        assert not (trained.parent / "project" / "images.npz").exists()
        assert main(["sample", exported.name, "--num", "4", "--seed", "7"]) == 0
        assert capsys.readouterr().out == "wrote samples/sample-7.png\n"
        assert main(["sample", str(trained), "--num", "4", "--seed", "7", "--out", "run.png"]) == 0
        ours = np.asarray(Image.open("samples/sample-7.png"))
        theirs = np.asarray(Image.open("run.png"))
        assert ours.shape == theirs.shape and (ours == theirs).all()

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is one ConfigError naming it."""
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_generator(tmp_path / "gone.safetensors")
        assert str(exc.value) == f"no such file '{tmp_path / 'gone.safetensors'}'"

    def test_not_an_export(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A safetensors file without gancore's metadata says how to make an export."""
        save_file({"w": torch.zeros(2)}, str(tmp_path / "w.safetensors"))
        assert main(["sample", str(tmp_path / "w.safetensors")]) == 2
        assert capsys.readouterr().err == (
            f"error: '{tmp_path / 'w.safetensors'}' is a safetensors file but not an exported "
            "gancore generator (no 'gancore.format = generator' in its metadata); write one "
            "with `gan export RUN`\n"
        )

    def test_a_run_file_is_not_an_export(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Another kind of file (a run's TOML) is refused by its extension, in one line."""
        (tmp_path / "run.toml").write_text(RUN)
        assert main(["sample", str(tmp_path / "run.toml")]) == 2
        assert capsys.readouterr().err == (
            f"error: '{tmp_path / 'run.toml'}' is not an exported generator (expected a "
            ".safetensors file written by `gan export`, or a run directory)\n"
        )

    def test_garbage_with_the_right_extension(self, tmp_path: Path) -> None:
        """A file that is not safetensors at all is named, no traceback."""
        (tmp_path / "x.safetensors").write_bytes(b"not a tensor file")
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_generator(tmp_path / "x.safetensors")
        assert str(exc.value).startswith(
            f"'{tmp_path / 'x.safetensors'}' is not a safetensors file ("
        )

    def test_missing_plugin_is_named(self, exported: Path, tmp_path: Path) -> None:
        """A plugin the file needs and that is not installed is named, with how to install it."""
        other = _rewrite(exported, tmp_path / "p.safetensors", plugins='{"gan-nowhere": "1.2"}')
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_generator(other)
        assert str(exc.value) == (
            f"'{other}' needs plugin 'gan-nowhere' (1.2 when exported), which is not installed; "
            "pip install gan-nowhere"
        )

    def test_disabled_plugin_is_named(
        self, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A plugin that is installed but disabled is named as disabled."""
        if "gan-wgan" not in {info.name for info in gancore.plugin_infos()}:
            pytest.skip("gan-wgan is not installed")
        other = _rewrite(exported, tmp_path / "p.safetensors", plugins='{"gan-wgan": "0.1.0"}')
        monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", f"{MISBEHAVING_TEST_PLUGINS},gan-wgan")
        gancore.reset_registry()
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_generator(other)
        assert str(exc.value) == (
            f"'{other}' needs plugin 'gan-wgan' (0.1.0 when exported), which is disabled "
            "(GANCORE_DISABLE_PLUGINS or GANCORE_LOAD_PLUGINS)"
        )

    def test_newer_format_is_refused(self, exported: Path, tmp_path: Path) -> None:
        """A file from a newer export format asks for a newer gancore."""
        other = _rewrite(exported, tmp_path / "n.safetensors", format_version="2")
        with pytest.raises(gancore.ConfigError, match="export format version 2 is newer"):
            gancore.load_generator(other)

    def test_weights_that_do_not_fit(self, exported: Path, tmp_path: Path) -> None:
        """Weights that do not fit the generator the metadata describes are one line."""
        weights = load_file(str(exported))
        first = sorted(weights)[0]
        weights[first] = torch.zeros(3)
        bad = tmp_path / "bad.safetensors"
        save_file(weights, str(bad), metadata=_metadata(exported))
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_generator(bad)
        assert str(exc.value).startswith(
            f"bad.safetensors: the weights do not fit the generator its metadata describes: "
            f"{first} is [3] in the checkpoint"
        )

    def test_checkpoint_and_raw_options_of_a_file(
        self, exported: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--checkpoint and --raw, which choose inside a run, are refused for a file."""
        assert main(["sample", exported.name, "--checkpoint", "best"]) == 2
        assert main(["sample", exported.name, "--raw"]) == 2
        err = capsys.readouterr().err.splitlines()
        assert err == [
            f"error: --checkpoint: '{exported.name}' is an exported generator, with one checkpoint",
            f"error: --raw: '{exported.name}' holds the ema generator only; export the trained "
            "one with `gan export --raw`",
        ]

    def test_neither_run_nor_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A path that does not exist is one line saying what was expected."""
        assert main(["sample", str(tmp_path / "nothing")]) == 2
        assert capsys.readouterr().err == (
            f"error: no such run directory or exported generator '{tmp_path / 'nothing'}'\n"
        )


class TestDocsPage:
    """docs/using_a_trained_model.md: its Python runs, its commands parse, its errors are real."""

    PAGE = Path(__file__).parents[1] / "docs" / "using_a_trained_model.md"

    def test_python_example_runs(self, exported: Path) -> None:
        """The load_generator example samples the exported file and writes its grid."""
        (block,) = re.findall(r"^```python\n(.*?)^```$", self.PAGE.read_text(), re.S | re.M)
        exported.rename(exported.with_name("digits.safetensors"))
        exec(compile(block, str(self.PAGE), "exec"), {})
        assert Path("digits.png").is_file()

    def test_shown_commands_parse(self) -> None:
        """Every `$ gan ...` line parses with gan's parser and the installed plugins."""
        from gancore._cli import _parser

        registry = gancore.get_registry()
        parser = _parser(registry.commands, registry.sample_options)
        lines = re.findall(r"^\$ gan (.*)$", self.PAGE.read_text(), re.M)
        assert len(lines) >= 5
        for line in lines:
            parser.parse_args(shlex.split(line))

    def test_quoted_errors_are_what_load_generator_says(
        self, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The page's error lines, reproduced with the page's file names."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / "run.toml").write_text(RUN)
        save_file({"w": torch.zeros(1)}, str(tmp_path / "weights.safetensors"))
        plugins = '{"gan-stylegan": "0.1.0"}'
        _rewrite(exported, tmp_path / "stylegan2.safetensors", plugins=plugins)
        monkeypatch.setattr(
            "gancore._plugins.plugin_infos",
            lambda: [i for i in gancore.plugin_infos() if i.name != "gan-stylegan"],
        )
        text = " ".join(self.PAGE.read_text().split())
        for name in ("digits", "run.toml", "weights", "stylegan2"):
            path = name if name.endswith(".toml") else f"{name}.safetensors"
            with pytest.raises(gancore.ConfigError) as exc:
                gancore.load_generator(path)
            assert str(exc.value) in text
