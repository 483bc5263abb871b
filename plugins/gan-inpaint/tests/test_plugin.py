"""The plugin is installed, loads through its entry point and registers its components."""

import importlib.metadata

import gancore


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

    def test_names_are_registered(self) -> None:
        """Every component of the plugin is registered under its name, provided by gan-inpaint."""
        registry, _ = gancore.load_registry()
        expected = {
            "generator": "deepfill",
            "critic": "deepfill",
            "task": "inpaint",
            "dataset": "skimage-patches",
            "metric": "inpaint-quality",
        }
        for kind, name in expected.items():
            spec = registry.get(kind, name)
            assert spec.provider == "gan-inpaint", (kind, name)

    def test_command_is_registered(self) -> None:
        """`gan inpaint` is a plugin command of gan-inpaint."""
        registry, _ = gancore.load_registry()
        assert registry.commands["inpaint"].provider == "gan-inpaint"
