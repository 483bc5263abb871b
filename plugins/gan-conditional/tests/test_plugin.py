"""The plugin is installed, loads through its entry point and registers all its names."""

import importlib.metadata

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
    def test_registers_these_components(self) -> None:
        """Each component is registered by gan-conditional (a one-line description, its qualified name,
        documented options that survive TOML), and nothing else."""
        gt.check_plugin_components("gan-conditional", NAMES)
