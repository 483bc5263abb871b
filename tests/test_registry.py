"""The registry: registration through hooks, validation, provenance, lookups and their errors.

Every test builds its own registry from in-process plugin objects with entry points switched off,
so the results do not depend on which distributions are installed.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import torch

import gancore

BUILTIN_LOSSES = ["hinge", "least-squares", "minimax", "non-saturating"]
AVAILABLE_LOSSES = "hinge, least-squares, minimax, non-saturating"


@attrs.frozen(kw_only=True)
class ConstantLoss:
    """A loss that is its own options: the mean score times ``weight``."""

    weight: float = attrs.field(default=1.0, metadata={"doc": "Multiplier."})

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        return self.weight * (fake_scores.mean() - real_scores.mean())

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        return -self.weight * fake_scores.mean()


@attrs.frozen(kw_only=True)
class ScaleOptions:
    """Options of a component built by a factory."""

    scale: int = attrs.field(default=3, metadata={"doc": "A number."})


def plugin_module(name: str, **hooks: Callable[..., None]) -> types.ModuleType:
    """A module-like plugin whose attributes are the given hook implementations."""
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, function)
    return module


def loss_plugin(*names: str, description: str = "A test loss.") -> types.ModuleType:
    """A plugin module registering ``ConstantLoss`` under each of ``names``."""

    @gancore.hookimpl
    def gancore_register_losses(register: gancore.RegisterCallback) -> None:
        for name in names:
            register(name, ConstantLoss, description=description)

    return plugin_module("loss_plugin", gancore_register_losses=gancore_register_losses)


def load(*plugins: tuple[str, object]) -> tuple[gancore.Registry, list[gancore.PluginInfo]]:
    return gancore.load_registry(entry_points=False, plugins=list(plugins))


def load_failing(
    name: str, plugin: object, *others: tuple[str, object]
) -> tuple[gancore.Registry, gancore.PluginInfo]:
    """Load ``plugin`` expecting it to fail; return the registry and its PluginInfo."""
    with pytest.warns(gancore.PluginWarning) as record:
        registry, infos = load((name, plugin), *others)
    assert len(record) == 1
    info = next(i for i in infos if i.name == name)
    assert info.status == "failed"
    assert str(record[0].message) == f"gancore plugin {name!r} failed to load: {info.error}"
    return registry, info


def registration_error(register_call: Callable[[gancore.RegisterCallback], None]) -> str:
    """The stored error of a plugin whose loss hook makes ``register_call(register)``."""

    @gancore.hookimpl
    def gancore_register_losses(register: gancore.RegisterCallback) -> None:
        register_call(register)

    plugin = plugin_module("bad", gancore_register_losses=gancore_register_losses)
    registry, info = load_failing("bad", plugin)
    assert info.error is not None
    assert registry.failed == {"bad": info.error}
    return info.error


PREFIX = "gancore_register_losses raised PluginError: plugin 'bad', hook gancore_register_losses: "


class TestLoadRegistry:
    def test_module_plugin_registers_under_its_name(self) -> None:
        """A module-like plugin's component is found by its short and its qualified name."""
        registry, infos = load(("demo", loss_plugin("constant")))
        spec = registry.get("loss", "constant")
        assert spec == registry.get("loss", "demo:constant")
        assert (spec.kind, spec.name, spec.provider) == ("loss", "constant", "demo")
        assert spec.qualified_name == "demo:constant"
        assert spec.description == "A test loss."
        assert spec.factory is ConstantLoss
        assert spec.options is ConstantLoss
        assert [(i.name, i.status, i.components) for i in infos][1:] == [
            ("demo", "loaded", [("loss", "constant")])
        ]

    def test_class_instance_plugin_registers(self) -> None:
        """Methods marked with ``hookimpl`` on a class instance are hook implementations."""

        class Plugin:
            @gancore.hookimpl
            def gancore_register_losses(self, register: gancore.RegisterCallback) -> None:
                register("constant", ConstantLoss, description="From a method.")

        registry, infos = load(("from-class", Plugin()))
        spec = registry.get("loss", "constant")
        assert spec.provider == "from-class"
        assert spec.description == "From a method."
        assert (
            infos[-1].module
            == f"{__name__}.TestLoadRegistry.test_class_instance_plugin_registers.<locals>.Plugin"
        )

    def test_builtins_are_registered_by_gancore(self) -> None:
        """The built-in components come from the plugin named 'gancore', like any other plugin."""
        registry, infos = load()
        assert [(i.name, i.status) for i in infos] == [("gancore", "loaded")]
        assert registry.names("loss") == BUILTIN_LOSSES + [f"gancore:{n}" for n in BUILTIN_LOSSES]
        assert {spec.provider for spec in registry.specs()} == {"gancore"}
        assert registry.get("critic", "dcgan").qualified_name == "gancore:dcgan"

    def test_specs_are_sorted_by_name_within_a_kind(self) -> None:
        """``specs(kind)`` lists one kind sorted by name, then provider."""
        registry, _ = load(("zed", loss_plugin("aaa", "hinge")))
        assert [s.qualified_name for s in registry.specs("loss")] == [
            "zed:aaa",
            "gancore:hinge",
            "zed:hinge",
            "gancore:least-squares",
            "gancore:minimax",
            "gancore:non-saturating",
        ]

    def test_description_is_stripped(self) -> None:
        """Surrounding blanks of a one-line description are dropped."""
        registry, _ = load(("demo", loss_plugin("constant", description="  Padded.  ")))
        assert registry.get("loss", "constant").description == "Padded."

    def test_unknown_kind_in_lookup_is_a_key_error(self) -> None:
        """Kinds are a closed set: asking for another kind is a programming error."""
        registry, _ = load()
        with pytest.raises(KeyError):
            registry.get("lost", "hinge")


class TestComponentSpec:
    def test_self_options_component_is_its_options(self) -> None:
        """A component registered without ``options`` is built by returning the options instance."""
        registry, _ = load(("demo", loss_plugin("constant")))
        spec = registry.get("loss", "constant")
        assert spec.self_options
        options = ConstantLoss(weight=2.0)
        assert spec.build(options) is options
        assert spec.defaults() == ConstantLoss(weight=1.0)

    def test_factory_is_called_with_options_and_context(self) -> None:
        """A factory with an options class is called as ``factory(options, context)``."""
        calls: list[tuple[Any, Any]] = []

        def factory(options: ScaleOptions, context: Any) -> ConstantLoss:
            calls.append((options, context))
            return ConstantLoss(weight=float(options.scale))

        @gancore.hookimpl
        def gancore_register_losses(register: gancore.RegisterCallback) -> None:
            register("scaled", factory, options=ScaleOptions, description="Built by a factory.")

        registry, _ = load(
            ("demo", plugin_module("m", gancore_register_losses=gancore_register_losses))
        )
        spec = registry.get("loss", "scaled")
        assert not spec.self_options
        assert spec.defaults() == ScaleOptions(scale=3)
        context = gancore.BuildContext(data_shape=(2,))
        assert spec.build(ScaleOptions(scale=5), context) == ConstantLoss(weight=5.0)
        assert calls == [(ScaleOptions(scale=5), context)]


class TestRegisterValidation:
    @pytest.mark.parametrize(
        "name", ["Bad_Name", "wgan_gp", "WGAN", "1r", "-gp", "wgan--gp", "gp-", ""]
    )
    def test_name_must_be_kebab_case(self, name: str) -> None:
        """A name that is not lowercase kebab-case fails the plugin with the rule and the name."""
        error = registration_error(lambda register: register(name, ConstantLoss, description="x"))
        assert error == (
            PREFIX + f"loss name must be lowercase kebab-case like 'wgan-gp' (got {name!r})"
        )

    @pytest.mark.parametrize("name", ["r1", "wgan-gp", "stylegan2", "a", "x2-y3-z"])
    def test_kebab_case_names_are_accepted(self, name: str) -> None:
        """Lowercase words and digits joined by single hyphens are valid names."""
        registry, _ = load(("demo", loss_plugin(name)))
        assert registry.get("loss", name).qualified_name == f"demo:{name}"

    def test_name_must_be_a_string(self) -> None:
        """A name that is not a string is rejected with its repr."""
        error = registration_error(lambda register: register(3, ConstantLoss, description="x"))  # type: ignore[arg-type]
        assert error == PREFIX + "loss name must be lowercase kebab-case like 'wgan-gp' (got 3)"

    def test_options_must_be_an_attrs_class(self) -> None:
        """``options`` that is not an attrs class is rejected, naming the component."""
        error = registration_error(
            lambda register: register("plain", lambda o, c: None, options=dict, description="x")
        )
        assert error == PREFIX + "loss 'plain': options must be an attrs class (got <class 'dict'>)"

    def test_factory_without_options_must_be_an_attrs_class(self) -> None:
        """Without ``options`` the factory itself must be an attrs class (its own options)."""

        def make_loss(options: Any, context: Any) -> None:
            return None

        error = registration_error(lambda register: register("plain", make_loss, description="x"))
        assert error.startswith(
            PREFIX
            + "loss 'plain': factory (no options given) must be an attrs class (got <function"
        )

    def test_factory_must_be_callable(self) -> None:
        """A factory that cannot be called is rejected even when its options are valid."""
        error = registration_error(
            lambda register: register("plain", 42, options=ScaleOptions, description="x")  # type: ignore[arg-type]
        )
        assert error == PREFIX + "loss 'plain': factory must be callable"

    @pytest.mark.parametrize("description", ["two\nlines", "", "   ", "trailing newline\n"])
    def test_description_must_be_one_line(self, description: str) -> None:
        """An empty or multi-line description is rejected."""
        error = registration_error(
            lambda register: register("constant", ConstantLoss, description=description)
        )
        assert error == PREFIX + "loss 'constant': description must be one non-empty line"

    def test_same_plugin_registering_a_name_twice_fails(self) -> None:
        """One plugin registering the same kind and name twice fails, keeping nothing of it."""
        registry, info = load_failing("twice", loss_plugin("constant", "constant"))
        assert info.error == (
            "gancore_register_losses raised PluginError: "
            "plugin 'twice' registered loss 'constant' twice"
        )
        assert registry.names("loss") == BUILTIN_LOSSES + [f"gancore:{n}" for n in BUILTIN_LOSSES]

    def test_same_name_in_two_kinds_is_fine(self) -> None:
        """Names are unique per kind: a loss and an augmenter may share a name."""

        @gancore.hookimpl
        def gancore_register_augmenters(register: gancore.RegisterCallback) -> None:
            register("constant", ConstantLoss, description="Not really an augmenter.")

        plugin = loss_plugin("constant")
        plugin.gancore_register_augmenters = gancore_register_augmenters  # type: ignore[attr-defined]
        registry, infos = load(("demo", plugin))
        assert registry.get("loss", "constant").kind == "loss"
        assert registry.get("augmenter", "constant").kind == "augmenter"
        assert infos[-1].components == [("loss", "constant"), ("augmenter", "constant")]


class TestUnknownComponent:
    def test_unknown_name_lists_the_available_and_hints_the_distribution(self) -> None:
        """An unknown first-party name lists the short names and asks for its distribution."""
        registry, _ = load()
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("loss", "wgan")
        assert str(exc.value) == (
            f"unknown loss 'wgan'; available: {AVAILABLE_LOSSES}; is gan-wgan installed?"
        )

    def test_misspelled_name_gets_a_did_you_mean(self) -> None:
        """A near miss suggests the closest registered name."""
        registry, _ = load()
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("loss", "hinj")
        assert str(exc.value) == (
            f"unknown loss 'hinj' (did you mean 'hinge'?); available: {AVAILABLE_LOSSES}"
        )

    def test_hint_names_the_distribution_of_other_kinds(self) -> None:
        """The install hint knows which first-party distribution provides each name."""
        registry, _ = load()
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("augmenter", "ada")
        assert (
            str(exc.value)
            == "unknown augmenter 'ada'; available: hflip, none; is gan-ada installed?"
        )

    def test_unknown_qualified_name(self) -> None:
        """A qualified name of a loaded plugin that lacks the component is unknown, with the hint."""
        registry, _ = load()
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("loss", "gancore:wgan")
        assert str(exc.value) == (
            f"unknown loss 'gancore:wgan'; available: {AVAILABLE_LOSSES}; is gan-wgan installed?"
        )

    def test_misspelled_qualified_name_suggests_within_the_plugin(self) -> None:
        """A qualified near miss suggests that plugin's closest name, qualified."""
        registry, _ = load()
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("loss", "gancore:hing")
        assert str(exc.value) == (
            f"unknown loss 'gancore:hing' (did you mean 'gancore:hinge'?); available: {AVAILABLE_LOSSES}"
        )

    def test_misspelled_plugin_name_suggests_the_qualified_name(self) -> None:
        """A misspelled plugin in a qualified name suggests the right qualified name."""
        registry, _ = load()
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("loss", "gancor:hinge")
        assert str(exc.value) == (
            f"unknown loss 'gancor:hinge' (did you mean 'gancore:hinge'?); available: {AVAILABLE_LOSSES}"
        )

    def test_unknown_error_is_a_lookup_error(self) -> None:
        """``UnknownComponentError`` subclasses ``LookupError`` and its text is not quoted."""
        registry, _ = load()
        with pytest.raises(LookupError) as exc:
            registry.get("dataset", "nope")
        assert isinstance(exc.value, gancore.UnknownComponentError)
        assert str(exc.value).startswith("unknown dataset 'nope'; available: digits, image-folder,")

    def test_unknown_name_reports_failed_plugins(self) -> None:
        """While a plugin has failed, an unknown name also shows that plugin's stored error."""

        @gancore.hookimpl
        def gancore_register_losses(register: gancore.RegisterCallback) -> None:
            raise ImportError("no module named 'fancy_dependency'")

        plugin = plugin_module("fancy", gancore_register_losses=gancore_register_losses)
        registry, info = load_failing("fancy", plugin)
        assert info.error == (
            "gancore_register_losses raised ImportError: no module named 'fancy_dependency'"
        )
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("loss", "fancy-loss")
        assert str(exc.value) == (
            f"unknown loss 'fancy-loss'; available: {AVAILABLE_LOSSES}; plugin 'fancy' failed "
            "to load: gancore_register_losses raised ImportError: no module named 'fancy_dependency'"
        )
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("loss", "fancy:fancy-loss")
        assert str(exc.value) == (
            "unknown loss 'fancy:fancy-loss': plugin 'fancy' failed to load: "
            "gancore_register_losses raised ImportError: no module named 'fancy_dependency'"
        )


class TestAmbiguousComponent:
    def test_short_name_of_two_plugins_is_ambiguous(self) -> None:
        """Two plugins registering 'hinge' make the short name an error that lists both."""
        registry, _ = load(("other", loss_plugin("hinge")))
        with pytest.raises(gancore.AmbiguousComponentError) as exc:
            registry.get("loss", "hinge")
        assert isinstance(exc.value, LookupError)
        assert str(exc.value) == (
            "loss name 'hinge' is ambiguous: it is registered by several plugins; "
            "use one of 'gancore:hinge', 'other:hinge'"
        )

    def test_each_qualified_name_still_resolves(self) -> None:
        """Both colliding components stay reachable as ``<plugin>:<name>``."""
        registry, _ = load(("other", loss_plugin("hinge")))
        assert registry.get("loss", "gancore:hinge").provider == "gancore"
        assert registry.get("loss", "other:hinge").provider == "other"
        assert registry.get("loss", "other:hinge").factory is ConstantLoss
        assert registry.get("loss", "gancore:hinge").factory is not ConstantLoss

    def test_ambiguous_short_name_leaves_the_names_list(self) -> None:
        """``names`` offers only unambiguous short names, and every qualified name."""
        registry, _ = load(("other", loss_plugin("hinge", "constant")))
        assert registry.names("loss") == [
            "constant",
            "least-squares",
            "minimax",
            "non-saturating",
            "gancore:hinge",
            "gancore:least-squares",
            "gancore:minimax",
            "gancore:non-saturating",
            "other:constant",
            "other:hinge",
        ]


class TestFailingHook:
    def test_raising_hook_fails_only_its_plugin(self) -> None:
        """A hook that raises fails its plugin, which loses everything it registered; others keep theirs."""
        called: list[str] = []

        @gancore.hookimpl
        def gancore_register_generators(register: gancore.RegisterCallback) -> None:
            called.append("generators")
            register(
                "flaky-net", lambda options, context: None, options=ScaleOptions, description="x"
            )

        @gancore.hookimpl
        def gancore_register_losses(register: gancore.RegisterCallback) -> None:
            called.append("losses")
            register("flaky-loss", ConstantLoss, description="Registered before the error.")
            raise RuntimeError("boom")

        @gancore.hookimpl
        def gancore_register_datasets(register: gancore.RegisterCallback) -> None:
            called.append("datasets")  # never: a failed plugin's later hooks are not called

        flaky = plugin_module(
            "flaky",
            gancore_register_generators=gancore_register_generators,
            gancore_register_losses=gancore_register_losses,
            gancore_register_datasets=gancore_register_datasets,
        )
        registry, info = load_failing("flaky", flaky, ("steady", loss_plugin("steady-loss")))
        assert info.error == "gancore_register_losses raised RuntimeError: boom"
        assert info.components == []
        assert called == ["generators", "losses"]
        assert registry.failed == {"flaky": "gancore_register_losses raised RuntimeError: boom"}
        assert {s.provider for s in registry.specs()} == {"gancore", "steady"}
        assert registry.get("loss", "steady-loss").provider == "steady"
        with pytest.raises(gancore.UnknownComponentError, match="plugin 'flaky' failed to load"):
            registry.get("generator", "flaky-net")

    def test_strict_mode_turns_the_failure_into_an_error(self) -> None:
        """With ``GANCORE_STRICT_PLUGINS=1`` a failing plugin raises ``PluginError``."""
        with pytest.raises(gancore.PluginError) as exc:
            gancore.load_registry(
                entry_points=False,
                plugins=[("twice", loss_plugin("constant", "constant"))],
                env={"GANCORE_STRICT_PLUGINS": "1"},
            )
        assert str(exc.value) == (
            "gancore plugin 'twice' failed to load: gancore_register_losses raised PluginError: "
            "plugin 'twice' registered loss 'constant' twice (strict mode)"
        )

    def test_hook_argument_mismatch_fails_on_one_line(self) -> None:
        """An implementation with an argument the hook does not have fails with a one-line error."""

        class Plugin:
            @gancore.hookimpl
            def gancore_register_losses(self, reg: gancore.RegisterCallback) -> None:
                reg("constant", ConstantLoss, description="x")

        _, info = load_failing("wrong-arg", Plugin())
        assert info.error is not None
        assert "\n" not in info.error
        assert info.error.startswith("PluginValidationError: Plugin 'wrong-arg' for hook ")
        assert info.error.endswith(
            "Argument(s) {'reg'} are declared in the hookimpl but can not be found in the hookspec"
        )

    def test_hook_without_arguments_is_called(self) -> None:
        """An implementation may take none of the hook's arguments, as pluggy allows."""
        called: list[str] = []

        class Plugin:
            @gancore.hookimpl
            def gancore_register_losses(self) -> None:
                called.append("losses")

        _, infos = load(("quiet", Plugin()))
        assert called == ["losses"]
        assert (infos[-1].status, infos[-1].components) == ("loaded", [])

    def test_specname_names_the_hook(self) -> None:
        """``hookimpl(specname=...)`` implements that hook under another function name."""

        class Plugin:
            @gancore.hookimpl(specname="gancore_register_losses")
            def losses(self, register: gancore.RegisterCallback) -> None:
                register("constant", ConstantLoss, description="Via specname.")

        registry, _ = load(("aliased", Plugin()))
        assert registry.get("loss", "constant").provider == "aliased"

    def test_two_plugins_with_one_name(self) -> None:
        """A second plugin under a loaded plugin's name fails; the first keeps its components."""
        with pytest.warns(gancore.PluginWarning) as record:
            registry, infos = load(("demo", loss_plugin("first")), ("demo", loss_plugin("second")))
        assert [str(w.message) for w in record] == [
            "gancore plugin 'demo' failed to load: a plugin named 'demo' is already loaded"
        ]
        assert [(i.name, i.status, i.components) for i in infos] == [
            ("gancore", "loaded", infos[0].components),
            ("demo", "loaded", [("loss", "first")]),
        ]
        assert registry.failed == {}
        assert registry.get("loss", "demo:first").provider == "demo"
        with pytest.raises(gancore.UnknownComponentError) as exc:
            registry.get("loss", "demo:second")
        assert str(exc.value) == (
            f"unknown loss 'demo:second'; available: first, {AVAILABLE_LOSSES}"
        )

    def test_plugin_named_like_the_builtins_is_only_a_warning(self) -> None:
        """A plugin that calls itself 'gancore' fails alone; the built-ins stay loaded."""
        with pytest.warns(
            gancore.PluginWarning, match="a plugin named 'gancore' is already loaded"
        ):
            registry, infos = load(("gancore", loss_plugin("constant")))
        assert [(i.name, i.status) for i in infos] == [("gancore", "loaded")]
        assert registry.failed == {}
        assert registry.get("loss", "hinge").provider == "gancore"
