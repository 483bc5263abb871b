"""The plugin is installed, loads through its entry point, registers its components, and they
pass gancore's conformance kit."""

import importlib.metadata
from pathlib import Path

import pytest

import gancore
import gancore.testing as gt

NAMES = (
    ("generator", "srresnet"),
    ("critic", "srgan"),
    ("task", "srgan"),
    ("dataset", "sr-images"),
    ("extractor", "vgg19"),
    ("extractor", "sr-features"),
    ("metric", "sr-quality"),
)


class TestInstalled:
    def test_entry_point_is_declared(self) -> None:
        """The distribution declares one entry point in the gancore group, named after itself."""
        eps = importlib.metadata.entry_points(group="gancore")
        (ep,) = [ep for ep in eps if ep.name == "gan-superres"]
        assert ep.value == "gan_superres.plugin"

    def test_plugin_loads(self) -> None:
        _, infos = gancore.load_registry()
        (info,) = [i for i in infos if i.name == "gan-superres"]
        assert info.status == "loaded", info.error
        assert info.version == "0.1.0"

    def test_registers_these_components(self) -> None:
        """Each component has a one-line description, a qualified name and documented options
        that survive TOML; nothing else is registered."""
        gt.check_plugin_components("gan-superres", NAMES)

    def test_command_is_registered(self) -> None:
        registry, _ = gancore.load_registry()
        assert registry.commands["upscale"].provider == "gan-superres"


class TestConformance:
    @pytest.mark.parametrize("scale", [2, 4])
    def test_generator(self, scale: int) -> None:
        gt.check_generator(
            "srresnet",
            {"blocks": 2, "channels": 8},
            data_shape=(3, 16, 16),
            input_shape=(3, 16 // scale, 16 // scale),
        )

    def test_critic(self) -> None:
        gt.check_critic("srgan", {"channels": 4, "dense": 16}, data_shape=(3, 32, 32))

    def test_dataset(self) -> None:
        gt.check_dataset("sr-images", {"images": ["skimage:camera"], "size": 64})

    def test_task_trains(self, tmp_path: Path) -> None:
        """Four steps of the planned stages (2 MSE, 1 adversarial, 1 at lr/10) in the loop."""
        result = gt.check_task(
            {"name": "srgan", "scale": 2, "content_weight": 0.0},
            tmp_path / "run",
            steps=4,
            data={"name": "sr-images", "images": ["skimage:camera"], "size": 32},
            generator={"name": "srresnet", "blocks": 1, "channels": 4},
            critic={"name": "srgan", "channels": 2, "dense": 4},
            loss={"name": "non-saturating"},
        )
        assert result.step == 4
