"""The plugin is installed, loads through its entry point and registers all its names."""

import importlib.metadata

import attrs

import gancore
import gancore.testing as gt

NAMES = (
    ("generator", "pggan"),
    ("critic", "pggan"),
    ("task", "progressive"),
    ("task", "singan"),
    ("dataset", "single-image"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        (ep,) = [ep for ep in eps if ep.name == "gan-progressive"]
        assert ep.value == "gan_progressive.plugin"

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin in strict mode and it registers components."""
        _, info = gt.check_plugin_loads("gan-progressive", module="gan_progressive.plugin")
        assert info.version == "0.1.0"


class TestRegistered:
    def test_registers_every_name(self) -> None:
        """Every component is registered by gan-progressive, with a one-line description."""
        registry, _ = gancore.load_registry()
        for kind, name in NAMES:
            spec = registry.get(kind, name)
            assert spec.provider == "gan-progressive", (kind, name)
            assert spec.description
            assert "\n" not in spec.description
            assert len(spec.description) <= 100

    def test_every_option_is_documented_and_roundtrips(self) -> None:
        """Every option field carries its documentation and the options survive TOML."""
        registry, _ = gancore.load_registry()
        for kind, name in NAMES:
            spec = registry.get(kind, name)
            for field in attrs.fields(spec.options):
                assert field.metadata.get("doc"), (kind, name, field.name)
            gt.check_options_roundtrip(name, kind=kind)
