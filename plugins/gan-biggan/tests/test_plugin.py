"""The plugin is installed with its dependency, loads through its entry point and registers all
its names."""

import importlib.metadata

import gancore
import gancore.testing as gt

NAMES = (
    ("generator", "sagan"),
    ("generator", "biggan"),
    ("generator", "biggan-deep"),
    ("critic", "sagan"),
    ("critic", "biggan"),
    ("critic", "biggan-deep"),
    ("regularizer", "orthogonal"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        (ep,) = [ep for ep in eps if ep.name == "gan-biggan"]
        assert ep.value == "gan_biggan.plugin"

    def test_depends_on_gan_conditional(self) -> None:
        """gan-conditional is a declared dependency, and installed."""
        requires = importlib.metadata.requires("gan-biggan") or []
        assert any(r.startswith("gan-conditional") for r in requires)
        assert importlib.metadata.version("gan-conditional")

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin in strict mode and it registers components."""
        _, info = gt.check_plugin_loads("gan-biggan", module="gan_biggan.plugin")
        assert info.version == "0.1.0"


class TestRegistered:
    def test_registers_these_components(self) -> None:
        """Each component is registered by gan-biggan (a one-line description, its qualified name,
        documented options that survive TOML), and nothing else."""
        gt.check_plugin_components("gan-biggan", NAMES)

    def test_sample_option(self) -> None:
        """`gan sample --truncation-threshold` is registered by gan-biggan."""
        registry, _ = gancore.load_registry()
        assert registry.sample_options["--truncation-threshold"].provider == "gan-biggan"
