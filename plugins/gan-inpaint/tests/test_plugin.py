"""The plugin is installed, loads through its entry point and registers its components."""

import importlib.metadata

import gancore
import gancore.testing as gt

NAMES = (
    ("generator", "deepfill"),
    ("generator", "context-encoder"),
    ("critic", "deepfill"),
    ("task", "inpaint"),
    ("task", "context-encoder"),
    ("dataset", "skimage-patches"),
    ("metric", "inpaint-quality"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        assert "gan-inpaint" in {ep.name for ep in eps}
        (ep,) = [ep for ep in eps if ep.name == "gan-inpaint"]
        assert ep.value == "gan_inpaint.plugin"

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin and reports it loaded, without errors."""
        _, infos = gancore.load_registry()
        (info,) = [i for i in infos if i.name == "gan-inpaint"]
        assert info.status == "loaded", info.error
        assert info.version == "0.1.0"

    def test_registers_these_components(self) -> None:
        """Each component is registered by gan-inpaint (a one-line description, its qualified
        name, documented options that survive TOML), and nothing else."""
        gt.check_plugin_components("gan-inpaint", NAMES)

    def test_command_is_registered(self) -> None:
        """`gan inpaint` is a plugin command of gan-inpaint."""
        registry, _ = gancore.load_registry()
        assert registry.commands["inpaint"].provider == "gan-inpaint"
