"""The plugin is installed, loads through its entry point and registers all its names."""

import importlib.metadata

import gancore
from gancore.protocols import CriticRegularizer, Loss

REGULARIZERS = ("dragan", "drift", "spectral-norm", "weight-clip", "wgan-gp", "wgan-lp")


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

    def test_only_this_plugin_and_the_core_are_loaded(self) -> None:
        """The conftest restricts loading to gan-wgan: the plugin stands alone on the core."""
        _, infos = gancore.load_registry()
        loaded = {i.name for i in infos if i.status == "loaded"}
        assert loaded <= {"gancore", "gan-wgan"}
        assert "gan-wgan" in loaded


class TestRegistered:
    def test_registers_every_name(self) -> None:
        """The loss and every regularizer are registered by gan-wgan, with one-line descriptions."""
        registry, _ = gancore.load_registry()
        specs = [registry.get("loss", "wgan")] + [
            registry.get("regularizer", name) for name in REGULARIZERS
        ]
        for spec in specs:
            assert spec.provider == "gan-wgan", spec
            assert spec.description
            assert "\n" not in spec.description
            assert len(spec.description) <= 100

    def test_components_satisfy_their_protocols(self) -> None:
        """Built with default options, each is a Loss or a critic regularizer."""
        registry, _ = gancore.load_registry()
        loss = registry.get("loss", "wgan")
        assert isinstance(loss.build(loss.defaults()), Loss)
        for name in REGULARIZERS:
            spec = registry.get("regularizer", name)
            reg = spec.build(spec.defaults())
            assert isinstance(reg, CriticRegularizer), name
            assert reg.player == "critic"
            assert reg.interval == 1

    def test_every_option_is_documented(self) -> None:
        """Every option field carries its documentation."""
        import attrs

        registry, _ = gancore.load_registry()
        for name in REGULARIZERS:
            for field in attrs.fields(registry.get("regularizer", name).options):
                assert field.metadata.get("doc"), (name, field.name)

    def test_qualified_names_resolve(self) -> None:
        """Each name is reachable as gan-wgan:<name> too."""
        registry, _ = gancore.load_registry()
        assert registry.get("regularizer", "gan-wgan:wgan-gp").name == "wgan-gp"
