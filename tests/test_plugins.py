"""Plugin loading through entry points, with the real test distributions under tests/plugins/.

gancore-test-good registers loss 'scaled-hinge' and tasks 'test-conditional', 'test-growing',
'test-q' and 'test-vae'; gancore-test-broken
fails on import with a missing dependency; gancore-test-collide registers a second loss 'hinge'.
conftest.py disables the two misbehaving ones unless a test clears or changes
``GANCORE_DISABLE_PLUGINS``.
"""

from __future__ import annotations

import importlib.metadata
import types
from pathlib import Path

import pytest
import torch

import gancore
from tests.conftest import require_test_plugins

GOOD = "gancore-test-good"
BROKEN = "gancore-test-broken"
COLLIDE = "gancore-test-collide"
IMPORT_ERROR = "ModuleNotFoundError: No module named 'gancore_test_missing_dependency'"
BROKEN_WARNING = f"gancore plugin '{BROKEN}' failed to load: {IMPORT_ERROR}"

RUN = """
[data]
name = "toy2d"

[generator]
name = "mlp"

[critic]
name = "mlp"
"""


def run_file(tmp_path: Path, loss_table: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(RUN + "\n[loss]\n" + loss_table + "\n")
    return path


def infos_by_name() -> dict[str, gancore.PluginInfo]:
    return {info.name: info for info in gancore.plugin_infos()}


class TestEntryPoints:
    def test_good_plugin_is_found(self) -> None:
        """gancore-test-good loads through its entry point with its version and components."""
        require_test_plugins(GOOD)
        info = infos_by_name()[GOOD]
        assert (info.status, info.version, info.module, info.error) == (
            "loaded",
            "0.0.1",
            "gancore_test_good",
            None,
        )
        assert info.components == [
            ("loss", "scaled-hinge"),
            ("task", "test-conditional"),
            ("task", "test-growing"),
            ("task", "test-q"),
            ("task", "test-vae"),
        ]
        spec = gancore.get_registry().get("loss", "scaled-hinge")
        assert (spec.qualified_name, spec.description) == (
            "gancore-test-good:scaled-hinge",
            "Hinge loss on scaled scores (test plugin).",
        )

    def test_plugin_component_is_usable_in_a_config(self, tmp_path: Path) -> None:
        """A TOML config names 'scaled-hinge' with an option, and the built loss computes it."""
        require_test_plugins(GOOD)
        config = gancore.load_config(run_file(tmp_path, 'name = "scaled-hinge"\nscale = 2.0'))
        assert config.loss.name == "gancore-test-good:scaled-hinge"
        loss = config.loss.build()
        real, fake = torch.tensor([0.25, 1.0]), torch.tensor([-0.25, 0.5])
        # relu(1 - 2*real) = [0.5, 0], relu(1 + 2*fake) = [0.5, 2]: means 0.25 + 1.25
        assert loss.critic_loss(real, fake).item() == pytest.approx(1.5)
        assert loss.generator_loss(fake).item() == pytest.approx(-0.25)

    def test_plugin_option_is_validated(self, tmp_path: Path) -> None:
        """The plugin's own attrs validator rejects a bad option with the key path."""
        require_test_plugins(GOOD)
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(run_file(tmp_path, 'name = "scaled-hinge"\nscale = 0'))
        assert exc.value.problems == ["loss.scale: 'scale' must be > 0 (got 0.0)"]

    def test_builtin_plugin_is_listed_first(self) -> None:
        """The built-ins are the plugin 'gancore', with gancore's version, listed first."""
        info = gancore.plugin_infos()[0]
        assert (info.name, info.status, info.version, info.module) == (
            "gancore",
            "loaded",
            gancore.__version__,
            "gancore.builtin.plugin",
        )
        assert ("loss", "hinge") in info.components

    def test_process_registry_is_cached_until_reset(self) -> None:
        """``get_registry`` loads once; ``reset_registry`` makes the next call load again."""
        first = gancore.get_registry()
        assert gancore.get_registry() is first
        gancore.reset_registry()
        assert gancore.get_registry() is not first


class TestBrokenPlugin:
    def test_import_error_is_a_warning_naming_the_plugin(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With nothing disabled, the broken plugin warns with its import error and the others load."""
        require_test_plugins(GOOD, BROKEN, COLLIDE)
        monkeypatch.delenv("GANCORE_DISABLE_PLUGINS")
        with pytest.warns(gancore.PluginWarning) as record:
            registry, infos = gancore.load_registry()
        assert [str(w.message) for w in record] == [BROKEN_WARNING]
        by_name = {info.name: info for info in infos}
        assert (by_name[BROKEN].status, by_name[BROKEN].error) == ("failed", IMPORT_ERROR)
        assert by_name[BROKEN].version == "0.0.1"
        assert by_name[BROKEN].components == []
        assert (by_name[GOOD].status, by_name[COLLIDE].status) == ("loaded", "loaded")
        assert registry.failed == {BROKEN: IMPORT_ERROR}
        assert registry.get("loss", "scaled-hinge").provider == GOOD

    def test_strict_mode_raises(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``GANCORE_STRICT_PLUGINS=1`` turns the broken plugin into a ``PluginError``."""
        require_test_plugins(BROKEN)
        monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", COLLIDE)
        monkeypatch.setenv("GANCORE_STRICT_PLUGINS", "1")
        with pytest.raises(gancore.PluginError) as exc:
            gancore.get_registry()
        assert str(exc.value) == BROKEN_WARNING + " (strict mode)"

    @pytest.mark.parametrize("value", ["0", "", "no"])
    def test_strict_mode_off_values(self, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
        """Values other than 1/true/yes/on leave strict mode off."""
        require_test_plugins(BROKEN)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", BROKEN)
        monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", "")
        monkeypatch.setenv("GANCORE_STRICT_PLUGINS", value)
        with pytest.warns(gancore.PluginWarning, match="gancore_test_missing_dependency"):
            gancore.get_registry()

    def test_config_error_shows_the_stored_import_error(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A config naming a missing component while a plugin failed shows that plugin's error."""
        require_test_plugins(GOOD, BROKEN)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", f"{GOOD},{BROKEN}")
        monkeypatch.delenv("GANCORE_DISABLE_PLUGINS")
        path = run_file(tmp_path, 'name = "wasserstein"')
        with (
            pytest.warns(gancore.PluginWarning, match=BROKEN),
            pytest.raises(gancore.ConfigError) as exc,
        ):
            gancore.load_config(path)
        assert exc.value.problems == [
            "loss.name: unknown loss 'wasserstein'; available: hinge, least-squares, minimax, "
            f"non-saturating, scaled-hinge; plugin '{BROKEN}' failed to load: {IMPORT_ERROR}"
        ]

    def test_qualified_name_of_the_failed_plugin(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Asking for a component of the failed plugin by qualified name explains why it is missing."""
        require_test_plugins(BROKEN)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", BROKEN)
        monkeypatch.delenv("GANCORE_DISABLE_PLUGINS")
        path = run_file(tmp_path, f'name = "{BROKEN}:fancy"')
        with (
            pytest.warns(gancore.PluginWarning, match=BROKEN),
            pytest.raises(gancore.ConfigError) as exc,
        ):
            gancore.load_config(path)
        assert exc.value.problems == [
            f"loss.name: unknown loss '{BROKEN}:fancy': plugin '{BROKEN}' failed to load: "
            + IMPORT_ERROR
        ]


class TestCollidingPlugin:
    @pytest.fixture(autouse=True)
    def _enable_collide(self, monkeypatch: pytest.MonkeyPatch) -> None:
        require_test_plugins(COLLIDE)
        monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", BROKEN)

    def test_short_name_is_ambiguous_in_config(self, tmp_path: Path) -> None:
        """``name = "hinge"`` is an error listing both qualified names."""
        with pytest.raises(gancore.ConfigError) as exc:
            gancore.load_config(run_file(tmp_path, 'name = "hinge"'))
        assert exc.value.problems == [
            "loss.name: loss name 'hinge' is ambiguous: it is registered by several plugins; "
            "use one of 'gancore-test-collide:hinge', 'gancore:hinge'"
        ]

    def test_qualified_names_pick_each_hinge(self, tmp_path: Path) -> None:
        """Each qualified name builds its own plugin's hinge loss."""
        zeros = torch.zeros(3)
        ours = gancore.load_config(run_file(tmp_path, 'name = "gancore:hinge"')).loss
        theirs = gancore.load_config(
            run_file(tmp_path, 'name = "gancore-test-collide:hinge"\nmargin = 3.0')
        ).loss
        assert (ours.name, theirs.name) == ("gancore:hinge", "gancore-test-collide:hinge")
        # relu(1 - 0) + relu(1 + 0) = 2 and relu(3 - 0) + relu(3 + 0) = 6
        assert ours.build().critic_loss(zeros, zeros).item() == 2.0
        assert theirs.build().critic_loss(zeros, zeros).item() == 6.0

    def test_collision_is_not_a_failure(self) -> None:
        """Colliding names load both plugins without a warning or a failure."""
        info = infos_by_name()[COLLIDE]
        assert (info.status, info.components) == ("loaded", [("loss", "hinge")])
        assert gancore.get_registry().failed == {}


class TestPluginSelection:
    def test_empty_load_list_loads_only_builtins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``GANCORE_LOAD_PLUGINS=""`` disables every installed plugin; the built-ins still load."""
        require_test_plugins(GOOD, BROKEN, COLLIDE)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", "")
        infos = gancore.plugin_infos()
        assert infos[0].name == "gancore"
        assert {i.name: i.status for i in infos[1:]} == {
            ep.name: "disabled" for ep in importlib.metadata.entry_points(group="gancore")
        }
        assert {spec.provider for spec in gancore.get_registry().specs()} == {"gancore"}

    def test_load_list_selects_one(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``GANCORE_LOAD_PLUGINS=gancore-test-good`` loads only that plugin (and the built-ins)."""
        require_test_plugins(GOOD, BROKEN)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", GOOD)
        monkeypatch.delenv("GANCORE_DISABLE_PLUGINS")  # no warning: broken is never imported
        loaded = [i.name for i in gancore.plugin_infos() if i.status == "loaded"]
        assert loaded == ["gancore", GOOD]
        assert {s.provider for s in gancore.get_registry().specs()} == {"gancore", GOOD}

    def test_load_list_accepts_blanks(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Names in the lists are separated by commas; blanks and empty items are ignored."""
        require_test_plugins(GOOD, COLLIDE)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", f" {GOOD} , ,{COLLIDE}")
        monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", f"{BROKEN} ,")
        loaded = [i.name for i in gancore.plugin_infos() if i.status == "loaded"]
        assert loaded == ["gancore", COLLIDE, GOOD]

    def test_disable_list_skips(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A plugin in ``GANCORE_DISABLE_PLUGINS`` is not imported and has status 'disabled'."""
        require_test_plugins(GOOD)
        monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", f"{BROKEN},{COLLIDE},{GOOD}")
        info = infos_by_name()[GOOD]
        assert (info.status, info.version, info.error, info.components) == (
            "disabled",
            "0.0.1",
            None,
            [],
        )
        with pytest.raises(gancore.UnknownComponentError, match=r"^unknown loss 'scaled-hinge'"):
            gancore.get_registry().get("loss", "scaled-hinge")

    def test_disable_wins_over_load(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A plugin both selected and disabled stays disabled."""
        require_test_plugins(GOOD)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", GOOD)
        monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", GOOD)
        assert infos_by_name()[GOOD].status == "disabled"

    def test_selection_applies_to_in_process_plugins(self) -> None:
        """The env lists select in-process plugins by name too."""
        module = types.ModuleType("empty_plugin")
        _, infos = gancore.load_registry(
            entry_points=False,
            plugins=[("in-process", module)],
            env={"GANCORE_LOAD_PLUGINS": ""},
        )
        assert [(i.name, i.status, i.version) for i in infos] == [
            ("gancore", "loaded", gancore.__version__),
            ("in-process", "disabled", None),
        ]


class TestMisspelledHook:
    def test_misspelled_hook_fails_the_plugin_with_a_suggestion(self) -> None:
        """A ``hookimpl`` whose name is not a gancore hook fails its plugin, suggesting the right name."""

        class Plugin:
            @gancore.hookimpl
            def gancore_register_lossses(self, register: gancore.RegisterCallback) -> None:
                raise AssertionError("never called")

        with pytest.warns(gancore.PluginWarning) as record:
            registry, infos = gancore.load_registry(
                entry_points=False, plugins=[("typo", Plugin())]
            )
        error = (
            "'gancore_register_lossses' is not a gancore hook "
            "(did you mean 'gancore_register_losses'?)"
        )
        assert [str(w.message) for w in record] == [
            f"gancore plugin 'typo' failed to load: {error}"
        ]
        assert (infos[-1].name, infos[-1].status, infos[-1].error) == ("typo", "failed", error)
        assert registry.failed == {"typo": error}

    def test_misspelled_hook_is_an_error_in_strict_mode(self) -> None:
        """In strict mode a misspelled hook raises instead of being silently ignored."""
        module = types.ModuleType("typo_module")

        @gancore.hookimpl
        def gancore_register_generator(register: gancore.RegisterCallback) -> None:
            raise AssertionError("never called")

        module.gancore_register_generator = gancore_register_generator  # type: ignore[attr-defined]
        with pytest.raises(gancore.PluginError) as exc:
            gancore.load_registry(
                entry_points=False,
                plugins=[("typo", module)],
                env={"GANCORE_STRICT_PLUGINS": "true"},
            )
        assert str(exc.value) == (
            "gancore plugin 'typo' failed to load: 'gancore_register_generator' is not a gancore "
            "hook (did you mean 'gancore_register_generators'?) (strict mode)"
        )

    def test_unmarked_functions_are_ignored(self) -> None:
        """Functions without ``hookimpl`` are not hook implementations, whatever their name."""
        module = types.ModuleType("helpers")
        module.gancore_register_lossses = lambda register: None  # type: ignore[attr-defined]
        module.helper = lambda: None  # type: ignore[attr-defined]
        _, infos = gancore.load_registry(entry_points=False, plugins=[("helpers", module)])
        assert (infos[-1].status, infos[-1].module) == ("loaded", "helpers")


class TestPluginInfo:
    def test_info_carries_version_and_components(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Each loaded plugin's info has its distribution version and its (kind, name) pairs."""
        require_test_plugins(GOOD, COLLIDE)
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", f"{GOOD},{COLLIDE}")
        monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", "")
        by_name = infos_by_name()
        loaded = [(n, i.version, i.components) for n, i in by_name.items() if i.status == "loaded"]
        assert loaded[1:] == [
            (COLLIDE, "0.0.1", [("loss", "hinge")]),
            (
                GOOD,
                "0.0.1",
                [
                    ("loss", "scaled-hinge"),
                    ("task", "test-conditional"),
                    ("task", "test-growing"),
                    ("task", "test-q"),
                    ("task", "test-vae"),
                ],
            ),
        ]
        assert by_name["gancore"].components == [
            ("generator", "dcgan"),
            ("generator", "mlp"),
            ("critic", "dcgan"),
            ("critic", "mlp"),
            ("loss", "hinge"),
            ("loss", "least-squares"),
            ("loss", "minimax"),
            ("loss", "non-saturating"),
            ("regularizer", "r1"),
            ("augmenter", "hflip"),
            ("augmenter", "none"),
            ("dataset", "digits"),
            ("dataset", "image-folder"),
            ("dataset", "npz"),
            ("dataset", "toy2d"),
            ("metric", "density-coverage"),
            ("metric", "fid"),
            ("metric", "is"),
            ("metric", "kid"),
            ("metric", "mode-coverage"),
            ("metric", "precision-recall"),
            ("extractor", "digits-classifier"),
            ("extractor", "inception-v3"),
            ("task", "unconditional"),
        ]

    def test_entry_point_plugins_are_loaded_in_name_order(self) -> None:
        """Installed plugins are loaded one by one, sorted by entry-point name."""
        names = [i.name for i in gancore.plugin_infos()[1:]]
        assert names == sorted({ep.name for ep in importlib.metadata.entry_points(group="gancore")})


FIRST_PARTY = (
    "gan-ada",
    "gan-conditional",
    "gan-cyclegan",
    "gan-inpaint",
    "gan-stylegan",
    "gan-wgan",
)


class TestFirstPartyTogether:
    """Run in tox's `all` env, where every first-party plugin is installed beside the core."""

    def test_no_two_first_party_distributions_register_the_same_name(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Short names stay unambiguous when gancore and all five plugins are installed together."""
        present = {ep.name for ep in importlib.metadata.entry_points(group="gancore")}
        missing = [name for name in FIRST_PARTY if name not in present]
        if missing:
            pytest.skip(f"not installed here: {', '.join(missing)}")
        monkeypatch.setenv("GANCORE_LOAD_PLUGINS", ",".join(FIRST_PARTY))
        registry, infos = gancore.load_registry()
        assert {i.name: i.status for i in infos if i.name in FIRST_PARTY} == dict.fromkeys(
            FIRST_PARTY, "loaded"
        )
        providers: dict[tuple[str, str], list[str]] = {}
        for spec in registry.specs():
            providers.setdefault((spec.kind, spec.name), []).append(spec.provider)
        assert {key: p for key, p in providers.items() if len(p) > 1} == {}
