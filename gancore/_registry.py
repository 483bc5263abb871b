"""The registry: components by kind and name, with the plugin that registered each one."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import attrs

from gancore._errors import AmbiguousComponentError, PluginError, UnknownComponentError
from gancore._names import NAME_PATTERN, did_you_mean, suggest
from gancore.protocols import KINDS

__all__ = [
    "COMMAND_HOOK",
    "CommandSpec",
    "ComponentSpec",
    "RegisterCallback",
    "RegisterCommandCallback",
    "Registry",
    "hook_name",
]

COMMAND_HOOK = "gancore_register_commands"
# Commands of the `gan` program itself; a plugin command may not take these names.
BUILTIN_COMMANDS = ("train", "sample", "eval", "plugins", "components", "config", "plugin")

# First-party components, so an unknown name can say which distribution provides it.
# (A hint table, not an import: the core never imports a plugin.)
FIRST_PARTY_HINTS: dict[str, dict[str, str]] = {
    "loss": {"wgan": "gan-wgan"},
    "regularizer": {
        "weight-clip": "gan-wgan",
        "wgan-gp": "gan-wgan",
        "wgan-lp": "gan-wgan",
        "dragan": "gan-wgan",
        "drift": "gan-wgan",
        "spectral-norm": "gan-wgan",
        "freeze-d": "gan-ada",
        "path-length": "gan-stylegan",
    },
    "generator": {
        "stylegan": "gan-stylegan",
        "stylegan2": "gan-stylegan",
        "resnet": "gan-cyclegan",
        "unet": "gan-cyclegan",
        "deepfill": "gan-inpaint",
    },
    "critic": {"stylegan2": "gan-stylegan", "patchgan": "gan-cyclegan", "deepfill": "gan-inpaint"},
    "augmenter": {"ada": "gan-ada", "diffaugment": "gan-ada"},
    "dataset": {
        "digits-translation": "gan-cyclegan",
        "paired": "gan-cyclegan",
        "unpaired": "gan-cyclegan",
        "skimage-patches": "gan-inpaint",
    },
    "task": {"cyclegan": "gan-cyclegan", "pix2pix": "gan-cyclegan", "inpaint": "gan-inpaint"},
    "metric": {"inpaint-quality": "gan-inpaint"},
}


def hook_name(kind: str) -> str:
    """``generator`` -> ``gancore_register_generators``, ``loss`` -> ``gancore_register_losses``."""
    return f"gancore_register_{kind}es" if kind.endswith("s") else f"gancore_register_{kind}s"


class RegisterCallback(Protocol):
    """The ``register`` callable every registration hook receives."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        options: type | None = None,
        description: str,
    ) -> None: ...


class RegisterCommandCallback(Protocol):
    """The ``register`` callable that ``gancore_register_commands`` receives."""

    def __call__(
        self,
        name: str,
        run: Callable[[argparse.Namespace], int | None],
        *,
        configure: Callable[[argparse.ArgumentParser], None] | None = None,
        description: str,
    ) -> None: ...


@attrs.frozen
class CommandSpec:
    """One subcommand of ``gan`` contributed by a plugin."""

    name: str
    provider: str
    run: Callable[[argparse.Namespace], int | None]
    configure: Callable[[argparse.ArgumentParser], None] | None
    description: str


@attrs.frozen
class ComponentSpec:
    """One registered component."""

    kind: str
    name: str
    provider: str  # the plugin (distribution) that registered it
    factory: Callable[..., Any]
    options: type  # attrs class; equal to ``factory`` for components that are their own options
    description: str

    @property
    def qualified_name(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def self_options(self) -> bool:
        """True when the options instance is the component itself (stateless components)."""
        return self.options is self.factory

    def build(self, options: Any, context: Any = None) -> Any:
        """Build the component from a structured options instance."""
        if self.self_options:
            return options
        return self.factory(options, context)

    def defaults(self) -> Any:
        """The options instance with every default (raises TypeError if a field is required)."""
        return self.options()


@attrs.define
class Registry:
    """Components by kind, keyed by qualified name ``<provider>:<name>``.

    ``failed`` maps plugins that could not load to their error, so lookups can explain a missing name.
    """

    _specs: dict[str, dict[str, ComponentSpec]] = attrs.field(
        factory=lambda: {kind: {} for kind in KINDS}
    )
    failed: dict[str, str] = attrs.field(factory=dict)
    commands: dict[str, CommandSpec] = attrs.field(factory=dict)

    # -- registration -----------------------------------------------------------------------------

    def register_callback(self, kind: str, provider: str, hook: str) -> RegisterCallback:
        """A ``register`` callable for ``provider``'s implementation of ``hook``."""

        def register(
            name: str,
            factory: Callable[..., Any],
            *,
            options: type | None = None,
            description: str,
        ) -> None:
            where = f"plugin {provider!r}, hook {hook}"
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                raise PluginError(
                    f"{where}: {kind} name must be lowercase kebab-case like 'wgan-gp' (got {name!r})"
                )
            opts = factory if options is None else options
            if not (isinstance(opts, type) and attrs.has(opts)):
                what = "factory (no options given)" if options is None else "options"
                raise PluginError(
                    f"{where}: {kind} {name!r}: {what} must be an attrs class (got {opts!r})"
                )
            if not callable(factory):
                raise PluginError(f"{where}: {kind} {name!r}: factory must be callable")
            if not isinstance(description, str) or not description.strip() or "\n" in description:
                raise PluginError(
                    f"{where}: {kind} {name!r}: description must be one non-empty line"
                )
            spec = ComponentSpec(kind, name, provider, factory, opts, description.strip())
            self.add(spec)

        return register

    def command_callback(self, provider: str) -> RegisterCommandCallback:
        """A ``register`` callable for ``provider``'s ``gancore_register_commands``."""

        def register(
            name: str,
            run: Callable[[argparse.Namespace], int | None],
            *,
            configure: Callable[[argparse.ArgumentParser], None] | None = None,
            description: str,
        ) -> None:
            where = f"plugin {provider!r}, hook {COMMAND_HOOK}"
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                raise PluginError(
                    f"{where}: command name must be lowercase kebab-case like 'translate' "
                    f"(got {name!r})"
                )
            if name in BUILTIN_COMMANDS:
                raise PluginError(f"{where}: command {name!r} is a built-in command of gan")
            if name in self.commands:
                raise PluginError(
                    f"{where}: command {name!r} is already registered by plugin "
                    f"{self.commands[name].provider!r}"
                )
            if not callable(run) or (configure is not None and not callable(configure)):
                raise PluginError(f"{where}: command {name!r}: run and configure must be callable")
            if not isinstance(description, str) or not description.strip() or "\n" in description:
                raise PluginError(
                    f"{where}: command {name!r}: description must be one non-empty line"
                )
            self.commands[name] = CommandSpec(name, provider, run, configure, description.strip())

        return register

    def add(self, spec: ComponentSpec) -> None:
        if spec.kind not in self._specs:
            raise PluginError(f"unknown component kind {spec.kind!r}; expected one of {KINDS}")
        table = self._specs[spec.kind]
        if spec.qualified_name in table:
            raise PluginError(
                f"plugin {spec.provider!r} registered {spec.kind} {spec.name!r} twice"
            )
        table[spec.qualified_name] = spec

    def remove_provider(self, provider: str) -> None:
        """Forget everything ``provider`` registered (used when its hooks fail halfway)."""
        for table in self._specs.values():
            for key in [k for k, s in table.items() if s.provider == provider]:
                del table[key]
        for name in [n for n, c in self.commands.items() if c.provider == provider]:
            del self.commands[name]

    # -- lookup -----------------------------------------------------------------------------------

    def specs(self, kind: str | None = None) -> Iterator[ComponentSpec]:
        kinds = KINDS if kind is None else [kind]
        for k in kinds:
            yield from sorted(self._specs[k].values(), key=lambda s: (s.name, s.provider))

    def names(self, kind: str) -> list[str]:
        """Names a config may use: short names when unique, qualified names always."""
        short: dict[str, int] = {}
        for spec in self._specs[kind].values():
            short[spec.name] = short.get(spec.name, 0) + 1
        unique = sorted(n for n, count in short.items() if count == 1)
        return unique + sorted(self._specs[kind])

    def get(self, kind: str, name: str) -> ComponentSpec:
        """Look a component up by short or qualified name, or raise a helpful error."""
        table = self._specs[kind]
        if ":" in name:
            if name in table:
                return table[name]
            provider = name.split(":", 1)[0]
            if provider in self.failed:
                raise UnknownComponentError(
                    f"unknown {kind} {name!r}: plugin {provider!r} failed to load: "
                    f"{self.failed[provider]}"
                )
            raise UnknownComponentError(self._unknown_message(kind, name))
        matches = [spec for spec in table.values() if spec.name == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            both = ", ".join(sorted(repr(s.qualified_name) for s in matches))
            raise AmbiguousComponentError(
                f"{kind} name {name!r} is ambiguous: it is registered by several plugins; "
                f"use one of {both}"
            )
        raise UnknownComponentError(self._unknown_message(kind, name))

    def _unknown_message(self, kind: str, name: str) -> str:
        available = self.names(kind)
        short_available = [n for n in available if ":" not in n] or available
        provider, _, short = name.rpartition(":")
        own = sorted(s.name for s in self._specs[kind].values() if s.provider == provider)
        if own:  # a known plugin: compare short names, or every 'gancore:x' looks like a match
            match = suggest(short, own)
            suggestion = f" (did you mean {f'{provider}:{match}'!r}?)" if match else ""
        else:
            suggestion = did_you_mean(name, available)
        message = f"unknown {kind} {name!r}{suggestion}; available: " + (
            ", ".join(short_available) or "none"
        )
        hint = FIRST_PARTY_HINTS.get(kind, {}).get(short)
        if hint and hint not in self.failed:
            message += f"; is {hint} installed?"
        for provider, error in sorted(self.failed.items()):
            message += f"; plugin {provider!r} failed to load: {error}"
        return message
