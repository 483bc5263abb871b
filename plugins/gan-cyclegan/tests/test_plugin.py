"""The plugin is installed, loads through its entry point and registers all its names."""

import importlib.metadata

import gancore
import gancore.testing as gt
from gancore.protocols import Dataset, Task

NAMES = (
    ("generator", "resnet"),
    ("generator", "unet"),
    ("critic", "patchgan"),
    ("task", "cyclegan"),
    ("task", "pix2pix"),
    ("dataset", "unpaired"),
    ("dataset", "paired"),
    ("dataset", "digits-translation"),
    ("generator", "stargan"),
    ("critic", "stargan"),
    ("task", "stargan"),
    ("dataset", "digits-domains"),
    ("dataset", "attribute-images"),
    ("generator", "pix2pixhd"),
    ("critic", "pix2pixhd"),
    ("task", "pix2pixhd"),
    ("dataset", "synthetic-scenes"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        assert "gan-cyclegan" in {ep.name for ep in eps}
        (ep,) = [ep for ep in eps if ep.name == "gan-cyclegan"]
        assert ep.value == "gan_cyclegan.plugin"

    def test_plugin_loads(self) -> None:
        """gancore finds the plugin and reports it loaded, without errors."""
        _, infos = gancore.load_registry()
        (info,) = [i for i in infos if i.name == "gan-cyclegan"]
        assert info.status == "loaded", info.error
        assert info.version == "0.1.0"


class TestRegistered:
    def test_registers_these_components(self) -> None:
        """Each component is registered by gan-cyclegan (a one-line description, its qualified name,
        documented options that survive TOML), and nothing else."""
        gt.check_plugin_components("gan-cyclegan", NAMES)

    def test_registers_the_translate_command(self) -> None:
        """`gan translate` is a plugin command of gan-cyclegan."""
        registry, _ = gancore.load_registry()
        command = registry.commands["translate"]
        assert command.provider == "gan-cyclegan"
        assert command.configure is not None

    def test_tasks_and_datasets_satisfy_their_protocols(self) -> None:
        """Built with defaults, the tasks are Tasks and the synthetic pair is a Dataset."""
        registry, _ = gancore.load_registry()
        for name in ("cyclegan", "pix2pix", "stargan", "pix2pixhd"):
            spec = registry.get("task", name)
            assert isinstance(spec.build(spec.defaults(), None), Task), name
        # Built as a run builds it: its build context resolves gancore's digits in `registry`.
        document = {"data": {"name": "digits-translation", "limit": 4}}
        assert isinstance(gancore.parse_config(document, registry).data.build(None), Dataset)
