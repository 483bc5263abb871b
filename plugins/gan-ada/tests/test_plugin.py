"""The plugin is installed, loads through its entry point and registers all its names."""

import importlib.metadata

import gancore
import gancore.testing as gt
from gancore.protocols import Augmenter, CriticRegularizer

AUGMENTERS = ("ada", "diffaugment")
NAMES = (
    ("augmenter", "ada"),
    ("augmenter", "diffaugment"),
    ("regularizer", "freeze-d"),
    ("regularizer", "bcr"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        assert "gan-ada" in {ep.name for ep in eps}
        (ep,) = [ep for ep in eps if ep.name == "gan-ada"]
        assert ep.value == "gan_ada.plugin"

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin and reports it loaded, without errors."""
        _, infos = gancore.load_registry()
        (info,) = [i for i in infos if i.name == "gan-ada"]
        assert info.status == "loaded", info.error
        assert info.version == "0.1.0"

    def test_only_this_plugin_and_the_core_are_loaded(self) -> None:
        """The conftest restricts loading to gan-ada: the plugin stands alone on the core."""
        _, infos = gancore.load_registry()
        loaded = {i.name for i in infos if i.status == "loaded"}
        assert loaded <= {"gancore", "gan-ada"}
        assert "gan-ada" in loaded


class TestRegistered:
    def test_registers_these_components(self) -> None:
        """Each component is registered by gan-ada (a one-line description, its qualified name,
        documented options that survive TOML), and nothing else."""
        gt.check_plugin_components("gan-ada", NAMES)

    def test_components_satisfy_their_protocols(self) -> None:
        """Built with default options for 3x16x16 images, each is an Augmenter or a critic
        regularizer."""
        registry, _ = gancore.load_registry()
        context = gancore.BuildContext(data_shape=(3, 16, 16))
        for name in AUGMENTERS:
            spec = registry.get("augmenter", name)
            assert isinstance(spec.build(spec.defaults(), context), Augmenter), name
        for name in ("freeze-d", "bcr"):
            spec = registry.get("regularizer", name)
            reg = spec.build(spec.defaults(), context)
            assert isinstance(reg, CriticRegularizer), name
            assert reg.player == "critic"
            assert reg.interval == 1
