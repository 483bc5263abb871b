"""The plugin is installed, loads through its entry point and registers all its names."""

import importlib.metadata

import attrs

import gancore
import gancore.testing as gt

NAMES = (
    ("generator", "concat"),
    ("generator", "conditional-batchnorm"),
    ("critic", "concat"),
    ("critic", "projection"),
    ("task", "conditional"),
    ("task", "acgan"),
    ("task", "infogan"),
    ("metric", "class-accuracy"),
    ("metric", "intra-fid"),
    ("metric", "code-accuracy"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        (ep,) = [ep for ep in eps if ep.name == "gan-conditional"]
        assert ep.value == "gan_conditional.plugin"

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin in strict mode and it registers components."""
        _, info = gt.check_plugin_loads("gan-conditional", module="gan_conditional.plugin")
        assert info.version == "0.1.0"


class TestRegistered:
    def test_registers_every_name(self) -> None:
        """Every component is registered by gan-conditional, with a one-line description."""
        registry, _ = gancore.load_registry()
        for kind, name in NAMES:
            spec = registry.get(kind, name)
            assert spec.provider == "gan-conditional", (kind, name)
            assert spec.description
            assert "\n" not in spec.description
            assert len(spec.description) <= 100

    def test_every_option_is_documented(self) -> None:
        """Every option field carries its documentation and the options round-trip."""
        registry, _ = gancore.load_registry()
        for kind, name in NAMES:
            spec = registry.get(kind, name)
            for field in attrs.fields(spec.options):
                assert field.metadata.get("doc"), (kind, name, field.name)
