"""A plugin's declared range of gancore API versions (``GANCORE_API``) is checked when it loads."""

from __future__ import annotations

import re
import types
from typing import Any

import attrs
import pytest
import torch

import gancore
from tests.conftest import require_test_plugins


@attrs.frozen
class Plain:
    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


def plugin(api: Any = None) -> types.ModuleType:
    """A plugin module registering loss 'plain', declaring ``GANCORE_API = api`` unless None."""
    module = types.ModuleType("gan_demo.plugin")

    @gancore.hookimpl
    def gancore_register_losses(register: gancore.RegisterCallback) -> None:
        register("plain", Plain, description="A loss.")

    module.gancore_register_losses = gancore_register_losses  # type: ignore[attr-defined]
    if api is not None:
        module.GANCORE_API = api  # type: ignore[attr-defined]
    return module


def load(module: object, **env: str) -> tuple[gancore.Registry, gancore.PluginInfo]:
    registry, infos = gancore.load_registry(
        entry_points=False, plugins=[("gan-demo", module)], env=env
    )
    return registry, infos[-1]


class TestDeclaredRange:
    def test_api_version_is_a_version(self) -> None:
        """gancore states its API version as MAJOR.MINOR."""
        assert re.fullmatch(r"\d+\.\d+", gancore.API_VERSION)

    @pytest.mark.parametrize("api", [None, ">=1.0,<2", "~=1.0", "==1.*", ">=0.9"])
    def test_plugin_in_range_or_silent_loads_without_warning(self, api: str | None) -> None:
        """No declaration, or a range holding this API version, loads with no warning at all
        (pytest turns any warning into an error)."""
        registry, info = load(plugin(api))
        assert info.status == "loaded"
        assert registry.get("loss", "plain").provider == "gan-demo"

    def test_plugin_out_of_range_warns_naming_both_versions_and_loads(self) -> None:
        """A range that excludes this API version is a warning naming both; the plugin loads."""
        with pytest.warns(gancore.PluginWarning) as record:
            registry, info = load(plugin(">=2.0,<3"))
        assert [str(w.message) for w in record] == [
            f"gancore plugin 'gan-demo' supports gancore API >=2.0,<3, but this gancore provides "
            f"API {gancore.API_VERSION}; it may fail: install a release of gan-demo made for API "
            f"{gancore.API_VERSION}, or a gancore whose API it supports"
        ]
        assert info.status == "loaded"
        assert registry.get("loss", "plain").provider == "gan-demo"

    def test_strict_mode_makes_it_an_error(self) -> None:
        """GANCORE_STRICT_PLUGINS=1 turns the warning into a PluginError."""
        with pytest.raises(gancore.PluginError) as exc:
            load(plugin(">=2.0,<3"), GANCORE_STRICT_PLUGINS="1")
        assert str(exc.value).startswith(
            "gancore plugin 'gan-demo' supports gancore API >=2.0,<3, but this gancore provides API"
        )
        assert str(exc.value).endswith(" (strict mode)")

    def test_a_new_major_version_warns_about_an_old_plugin(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Under API 2.0, a plugin written for '>=1.0,<2' gets the warning."""
        monkeypatch.setattr(gancore, "API_VERSION", "2.0")
        with pytest.warns(gancore.PluginWarning, match=r"supports gancore API >=1.0,<2, but "):
            load(plugin(">=1.0,<2"))

    @pytest.mark.parametrize("api", ["1.0", "one", "", 1.0, (">=1",)])
    def test_invalid_range_fails_the_plugin(self, api: Any) -> None:
        """A declaration that is not a version specifier fails that plugin, with a warning."""
        with pytest.warns(gancore.PluginWarning) as record:
            registry, info = load(plugin(api))
        message = f"GANCORE_API = {api!r} is not a version range such as '>=1.0,<2'"
        assert [str(w.message) for w in record] == [
            f"gancore plugin 'gan-demo' failed to load: {message}"
        ]
        assert (info.status, info.error) == ("failed", message)
        with pytest.raises(gancore.UnknownComponentError, match="failed to load: GANCORE_API"):
            registry.get("loss", "gan-demo:plain")

    def test_plugin_object_may_declare_it_as_an_attribute(self) -> None:
        """An in-process plugin object (not a module) is checked the same way."""

        class Demo:
            GANCORE_API = ">=3"

            @gancore.hookimpl
            def gancore_register_losses(self, register: gancore.RegisterCallback) -> None:
                register("plain", Plain, description="A loss.")

        with pytest.warns(gancore.PluginWarning, match="supports gancore API >=3, but"):
            load(Demo())

    def test_check_plugin_loads_fails_an_excluded_installed_range(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """gancore.testing's installed-plugin check is strict: an excluded range fails it."""
        require_test_plugins("gancore-test-good")
        import gancore_test_good

        import gancore.testing as gt

        monkeypatch.setattr(gancore_test_good, "GANCORE_API", ">=9", raising=False)
        with pytest.raises(AssertionError, match=r"^plugin 'gancore-test-good': gancore plugin"):
            gt.check_plugin_loads("gancore-test-good")
