"""Finding, loading and calling plugins.

Plugins are found through the entry-point group ``gancore`` and loaded one by one: a plugin that
fails to import (or registers something invalid) becomes a warning naming it and the reason, and the
others still load. ``GANCORE_STRICT_PLUGINS=1`` turns the warning into an error.
``GANCORE_LOAD_PLUGINS=a,b`` loads only those plugins (empty: none) and
``GANCORE_DISABLE_PLUGINS=a,b`` skips those. The built-in components always load.

A plugin module may declare the range of gancore API versions it was written for, as a version
specifier in a module attribute: ``GANCORE_API = ">=1.0,<2"``. A plugin whose range excludes
:data:`gancore.API_VERSION` still loads, with a warning naming both versions (an error in strict
mode); a range that is not a valid specifier fails the plugin. A plugin that declares nothing loads
without a warning: the declaration is a promise a plugin opts into, and most plugins written against
API 1.0 work until its next major version.
"""

from __future__ import annotations

import importlib.metadata
import os
import types
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from gancore import hookspecs
from gancore._errors import PluginError
from gancore._names import did_you_mean
from gancore._registry import COMMAND_HOOK, SAMPLE_OPTION_HOOK, Registry, hook_name
from gancore.hookspecs import hookimpl
from gancore.protocols import KINDS

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginWarning",
    "get_registry",
    "hookimpl",
    "load_registry",
    "plugin_infos",
    "reset_registry",
]

ENTRY_POINT_GROUP = "gancore"
BUILTIN_NAME = "gancore"
API_ATTRIBUTE = "GANCORE_API"  # a plugin module's declared range of supported API versions


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the others were."""


@attrs.define
class PluginInfo:
    """What ``gan plugins`` shows about one plugin distribution."""

    name: str
    version: str | None
    module: str
    status: Literal["loaded", "failed", "disabled"]
    error: str | None = None
    components: list[tuple[str, str]] = attrs.field(factory=list)  # (kind, name)


def _hook_names() -> set[str]:
    return {hook_name(kind) for kind in KINDS} | {COMMAND_HOOK, SAMPLE_OPTION_HOOK}


def _flag(env: Mapping[str, str], key: str) -> bool:
    return env.get(key, "").strip().lower() in {"1", "true", "yes", "on"}


def _name_list(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def _misspelled_hooks(plugin: object) -> list[str]:
    """Messages for functions marked as gancore hook implementations that name no gancore hook."""
    known = _hook_names()
    problems = []
    for attr in dir(plugin):
        value = getattr(plugin, attr, None)
        opts = getattr(value, "gancore_impl", None) if callable(value) else None
        if not isinstance(opts, dict):
            continue
        hook = opts.get("specname") or attr  # @hookimpl(specname=...) names the hook explicitly
        if hook not in known:
            problems.append(f"{hook!r} is not a gancore hook{did_you_mean(hook, sorted(known))}")
    return problems


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (pluggy's validation errors span several)."""
    return f"{type(exc).__name__}: " + "; ".join(
        line.strip() for line in str(exc).splitlines() if line.strip()
    )


class _Loader:
    """Loads plugins into one pluggy manager and one registry, recording each one's status."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.strict = _flag(env, "GANCORE_STRICT_PLUGINS")
        self.pm = pluggy.PluginManager("gancore")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.infos: dict[str, PluginInfo] = {}

    def fail(self, info: PluginInfo, error: str, *, duplicate: bool = False) -> None:
        """Mark ``info`` failed; a ``duplicate`` name must not mark the plugin already loaded."""
        info.status = "failed"
        info.error = error
        if not duplicate:
            self.registry.failed[info.name] = error
        message = f"gancore plugin {info.name!r} failed to load: {error}"
        builtin = info.name == BUILTIN_NAME and not duplicate
        if self.strict or builtin:
            raise PluginError(message + ("" if builtin else " (strict mode)"))
        warnings.warn(message, PluginWarning, stacklevel=4)

    def add(self, info: PluginInfo, plugin: object) -> None:
        """Register ``plugin`` with pluggy after checking its API range and hook names."""
        problems = _misspelled_hooks(plugin)
        if problems:
            self.fail(info, "; ".join(problems))
            return
        if not self.check_api(info, plugin):
            return
        try:
            self.pm.register(plugin, name=info.name)
            self.pm.check_pending()
        except Exception as exc:  # pluggy validation errors, or a name registered twice
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self.fail(info, _one_line(exc))
            return
        self.infos[info.name] = info

    def check_api(self, info: PluginInfo, plugin: object) -> bool:
        """False (and the plugin failed) for an invalid ``GANCORE_API``; a range that excludes this
        gancore's API version is a warning (an error in strict mode), and the plugin still loads."""
        from gancore import API_VERSION

        declared = getattr(plugin, API_ATTRIBUTE, None)
        if declared is None:
            return True
        try:
            supported = SpecifierSet(declared) if isinstance(declared, str) else None
        except InvalidSpecifier:
            supported = None
        if supported is None or not str(supported):
            self.fail(
                info,
                f"{API_ATTRIBUTE} = {declared!r} is not a version range such as '>=1.0,<2'",
            )
            return False
        if supported.contains(API_VERSION, prereleases=True):
            return True
        message = (
            f"gancore plugin {info.name!r} supports gancore API {declared}, but this gancore "
            f"provides API {API_VERSION}; it may fail: install a release of {info.name} made for "
            f"API {API_VERSION}, or a gancore whose API it supports"
        )
        if self.strict:
            raise PluginError(message + " (strict mode)")
        warnings.warn(message, PluginWarning, stacklevel=4)
        return True

    def call_hooks(self) -> None:
        """Call every registration hook of every plugin, one plugin at a time for provenance."""
        for kind in KINDS:
            hook = hook_name(kind)
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                provider = self.pm.get_name(impl.plugin)
                if provider is None:  # unregistered while this loop ran
                    continue
                info = self.infos[provider]
                if info.status != "loaded":
                    continue
                self._call(info, impl, hook, self.registry.register_callback(kind, provider, hook))
        for impl in self.pm.hook.gancore_register_commands.get_hookimpls():
            provider = self.pm.get_name(impl.plugin)
            if provider is None or self.infos[provider].status != "loaded":
                continue
            self._call(
                self.infos[provider], impl, COMMAND_HOOK, self.registry.command_callback(provider)
            )
        for impl in self.pm.hook.gancore_register_sample_options.get_hookimpls():
            provider = self.pm.get_name(impl.plugin)
            if provider is None or self.infos[provider].status != "loaded":
                continue
            register = self.registry.sample_option_callback(provider)
            self._call(self.infos[provider], impl, SAMPLE_OPTION_HOOK, register)
        for info in self.infos.values():
            info.components = (
                [
                    (spec.kind, spec.name)
                    for spec in self.registry.specs()
                    if spec.provider == info.name
                ]
                + [
                    ("command", c.name)
                    for c in sorted(self.registry.commands.values(), key=lambda c: c.name)
                    if c.provider == info.name
                ]
                + [
                    ("sample-option", o.flag)
                    for o in sorted(self.registry.sample_options.values(), key=lambda o: o.flag)
                    if o.provider == info.name
                ]
            )

    def _call(self, info: PluginInfo, impl: Any, hook: str, register: Any) -> None:
        """Call one plugin's implementation of ``hook``; a failure unloads that plugin only."""
        # pluggy lets an implementation take a subset of the spec's arguments
        kwargs = {arg: register for arg in impl.argnames}
        try:
            impl.function(**kwargs)
        except Exception as exc:  # a faulty plugin must not take the others down
            self.registry.remove_provider(info.name)
            self.pm.unregister(impl.plugin)
            self.fail(info, f"{hook} raised {_one_line(exc)}")


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the same distribution seen twice on sys.path
    return [found[name] for name in sorted(found)]


def load_registry(
    *,
    entry_points: bool = True,
    plugins: Sequence[tuple[str, object]] = (),
    env: Mapping[str, str] | None = None,
) -> tuple[Registry, list[PluginInfo]]:
    """Build a fresh registry from the built-ins, installed entry points and in-process ``plugins``.

    ``plugins`` are ``(name, plugin_object)`` pairs registered as if installed (used by tests and by
    :mod:`gancore.testing`).
    """
    env = os.environ if env is None else env
    loader = _Loader(env)
    from gancore.builtin import plugin as builtin_plugin

    loader.add(
        PluginInfo(BUILTIN_NAME, _version("gancore"), builtin_plugin.__name__, "loaded"),
        builtin_plugin,
    )
    only = _name_list(env["GANCORE_LOAD_PLUGINS"]) if "GANCORE_LOAD_PLUGINS" in env else None
    disabled = _name_list(env.get("GANCORE_DISABLE_PLUGINS", ""))

    candidates: list[tuple[str, str | None, str, Any]] = []
    if entry_points:
        for ep in _entry_points():
            version = ep.dist.version if ep.dist is not None else None
            candidates.append((ep.name, version, ep.value, ep))
    candidates.extend((name, None, _module_name(obj), obj) for name, obj in plugins)

    for name, version, module, source in candidates:
        info = PluginInfo(name, version, module, "loaded")
        if name in loader.infos:
            loader.fail(info, f"a plugin named {name!r} is already loaded", duplicate=True)
            continue
        if (only is not None and name not in only) or name in disabled:
            info.status = "disabled"
            loader.infos[name] = info
            continue
        if isinstance(source, importlib.metadata.EntryPoint):
            try:
                plugin = source.load()
            except Exception as exc:  # any import-time failure of a third-party module
                loader.infos[name] = info
                loader.fail(info, _one_line(exc))
                continue
        else:
            plugin = source
        loader.add(info, plugin)
        loader.infos.setdefault(name, info)
    loader.call_hooks()
    return loader.registry, list(loader.infos.values())


def _module_name(obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


_CACHE: tuple[Registry, list[PluginInfo]] | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _CACHE
    if _CACHE is None:
        _CACHE = load_registry()
    return _CACHE[0]


def plugin_infos() -> list[PluginInfo]:
    """Status of every plugin in the process-wide registry."""
    get_registry()
    assert _CACHE is not None
    return _CACHE[1]


def reset_registry(cache: tuple[Registry, list[PluginInfo]] | None = None) -> None:
    """Drop (or replace) the process-wide registry; the next lookup reloads plugins."""
    global _CACHE
    _CACHE = cache
