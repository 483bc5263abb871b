"""The plugin is installed, loads through its entry point and registers all its names."""

import importlib.metadata

import gancore
import gancore.testing as gt

NAMES = (
    ("generator", "virtual-batchnorm"),
    ("critic", "minibatch-discrimination"),
    ("critic", "pacgan"),
    ("loss", "label-smoothing"),
    ("regularizer", "feature-matching"),
    ("regularizer", "historical-averaging"),
    ("task", "unrolled"),
    ("augmenter", "instance-noise"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        (ep,) = [ep for ep in eps if ep.name == "gan-improved"]
        assert ep.value == "gan_improved.plugin"

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin and reports it loaded, without errors."""
        _, infos = gancore.load_registry()
        (info,) = [i for i in infos if i.name == "gan-improved"]
        assert info.status == "loaded", info.error
        assert info.version == "0.1.0"


class TestRegistered:
    def test_registers_these_components(self) -> None:
        """Each component is registered by gan-improved (a one-line description, its qualified name,
        documented options that survive TOML), and nothing else."""
        gt.check_plugin_components("gan-improved", NAMES)

    def test_components_satisfy_their_protocols(self) -> None:
        """Built with default options, each is an instance of its kind's protocol."""
        from gancore import protocols

        registry, _ = gancore.load_registry()
        loss = registry.get("loss", "label-smoothing")
        assert isinstance(loss.build(loss.defaults()), protocols.Loss)
        spec = registry.get("regularizer", "feature-matching")
        assert isinstance(spec.build(spec.defaults()), protocols.GeneratorLossTerm)
        spec = registry.get("regularizer", "historical-averaging")
        assert isinstance(spec.build(spec.defaults()), protocols.CriticRegularizer)
        spec = registry.get("augmenter", "instance-noise")
        assert isinstance(spec.build(spec.defaults(), None), protocols.Augmenter)
