"""The plugin is installed, loads through its entry point and registers all its names."""

import importlib.metadata
from pathlib import Path

import pytest
from gan_stylegan.sampling import StyleControls

import gancore
import gancore.testing as gt
from gancore.protocols import Critic, Generator, GeneratorRegularizer


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        assert "gan-stylegan" in {ep.name for ep in eps}
        (ep,) = [ep for ep in eps if ep.name == "gan-stylegan"]
        assert ep.value == "gan_stylegan.plugin"

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin and reports it loaded, without errors."""
        _, infos = gancore.load_registry()
        (info,) = [i for i in infos if i.name == "gan-stylegan"]
        assert info.status == "loaded", info.error
        assert info.version == "0.1.0"

    def test_only_this_plugin_and_the_core_are_loaded(self) -> None:
        """The conftest restricts loading to gan-stylegan: the plugin stands alone on the core."""
        _, infos = gancore.load_registry()
        loaded = {i.name for i in infos if i.status == "loaded"}
        assert loaded <= {"gancore", "gan-stylegan"}
        assert "gan-stylegan" in loaded


NAMES = [
    ("generator", "stylegan"),
    ("generator", "stylegan2"),
    ("critic", "stylegan2"),
    ("regularizer", "path-length"),
]


class TestRegistered:
    def test_registers_these_components(self) -> None:
        """Each component is registered by gan-stylegan (a one-line description, its qualified name,
        documented options that survive TOML), and nothing else."""
        gt.check_plugin_components("gan-stylegan", NAMES)

    def test_registers_the_sample_options(self) -> None:
        """--truncation, --truncation-cutoff, --style-mixing and --crossover of `gan sample`."""
        registry, infos = gancore.load_registry()
        flags = ["--truncation", "--truncation-cutoff", "--style-mixing", "--crossover"]
        assert list(registry.sample_options) == flags
        assert {o.provider for o in registry.sample_options.values()} == {"gan-stylegan"}
        (info,) = [i for i in infos if i.name == "gan-stylegan"]
        assert sorted(n for k, n in info.components if k == "sample-option") == sorted(flags)

    def test_components_satisfy_their_protocols(self) -> None:
        """Built with defaults on 8x8 RGB data: generators, a critic, a generator regularizer."""
        registry, _ = gancore.load_registry()
        context = gancore.BuildContext(data_shape=(3, 8, 8))
        for name in ("stylegan", "stylegan2"):
            spec = registry.get("generator", name)
            generator = spec.build(spec.defaults(), context)
            assert isinstance(generator, Generator)
            assert isinstance(generator, StyleControls)
            assert generator.latent_dim == 512
            assert (generator.truncation_psi, generator.truncation_cutoff) == (1.0, None)
        spec = registry.get("critic", "stylegan2")
        assert isinstance(spec.build(spec.defaults(), context), Critic)
        spec = registry.get("regularizer", "path-length")
        regularizer = spec.build(spec.defaults(), context)
        assert isinstance(regularizer, GeneratorRegularizer)
        assert (regularizer.player, regularizer.interval) == ("generator", 4)

    def test_bad_options_are_one_line_config_errors(self, tmp_path: Path) -> None:
        """Out-of-range options fail validation naming the key, the rule and the value."""
        registry, _ = gancore.load_registry()
        (tmp_path / "run.toml").write_text(
            '[data]\nname = "digits"\n[generator]\nname = "stylegan2"\nstyle_mixing_prob = 1.5\n'
            '[critic]\nname = "stylegan2"\nmbstd_group_size = 0\n'
            '[[regularizers]]\nname = "path-length"\ndecay = 0\n'
        )
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(tmp_path / "run.toml", registry=registry)
        text = str(exc.value)
        for key, value in (
            ("style_mixing_prob", "1.5"),
            ("mbstd_group_size", "0"),
            ("decay", "0"),
        ):
            (line,) = [line for line in text.splitlines() if key in line]
            assert value in line, line
