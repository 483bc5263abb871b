"""The plugin is installed and loads through its entry point."""

import importlib.metadata

import gancore


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        assert "gan-wgan" in {ep.name for ep in eps}
        (ep,) = [ep for ep in eps if ep.name == "gan-wgan"]
        assert ep.value == "gan_wgan.plugin"

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin and reports it loaded, without errors."""
        _, infos = gancore.load_registry()
        (info,) = [i for i in infos if i.name == "gan-wgan"]
        assert info.status == "loaded", info.error
        assert info.version == "0.1.0"
