"""The registry: components by kind and name, with the plugin that registered each one."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from gancore._errors import AmbiguousComponentError, PluginError, UnknownComponentError
from gancore._names import NAME_PATTERN, did_you_mean, suggest
from gancore.protocols import KINDS

__all__ = [
    "COMMAND_HOOK",
    "SAMPLE_OPTION_HOOK",
    "CommandSpec",
    "ComponentSpec",
    "RegisterCallback",
    "RegisterCommandCallback",
    "RegisterSampleOptionCallback",
    "Registry",
    "SampleOptionSpec",
    "hook_name",
]

COMMAND_HOOK = "gancore_register_commands"
SAMPLE_OPTION_HOOK = "gancore_register_sample_options"
# Commands of the `gan` program itself; a plugin command may not take these names.
BUILTIN_COMMANDS = ("train", "sample", "eval", "plugins", "components", "config", "plugin")
# Options of `gan sample` itself; a plugin's sample option may not take these flags.
BUILTIN_SAMPLE_FLAGS = ("--help", "--num", "--seed", "--out", "--checkpoint", "--raw", "--class")
FLAG_PATTERN = re.compile(r"^--[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# Keys of argparse's add_argument a sample option may set (the flag, dest and help are gancore's).
# No "default": an option not on the command line is None (False for a switch), "not given".
SAMPLE_ARGUMENT_KEYS = ("action", "type", "choices", "metavar", "nargs", "const")

# First-party components, so an unknown name can say which distribution provides it.
# (A hint table, not an import: the core never imports a plugin.)
FIRST_PARTY_HINTS: dict[str, dict[str, str]] = {
    "loss": {"wgan": "gan-wgan", "label-smoothing": "gan-improved"},
    "regularizer": {
        "weight-clip": "gan-wgan",
        "wgan-gp": "gan-wgan",
        "wgan-lp": "gan-wgan",
        "dragan": "gan-wgan",
        "drift": "gan-wgan",
        "spectral-norm": "gan-wgan",
        "freeze-d": "gan-ada",
        "bcr": "gan-ada",
        "path-length": "gan-stylegan",
        "orthogonal": "gan-biggan",
        "feature-matching": "gan-improved",
        "historical-averaging": "gan-improved",
    },
    "generator": {
        "stylegan": "gan-stylegan",
        "stylegan2": "gan-stylegan",
        "resnet": "gan-cyclegan",
        "unet": "gan-cyclegan",
        "deepfill": "gan-inpaint",
        "context-encoder": "gan-inpaint",
        "concat": "gan-conditional",
        "conditional-batchnorm": "gan-conditional",
        "virtual-batchnorm": "gan-improved",
        "sagan": "gan-biggan",
        "biggan": "gan-biggan",
        "biggan-deep": "gan-biggan",
        "pggan": "gan-progressive",
        "srresnet": "gan-superres",
        "stargan": "gan-cyclegan",
        "pix2pixhd": "gan-cyclegan",
        "vae-mlp": "gan-vae",
        "vae-conv": "gan-vae",
        "began": "gan-vae",
    },
    "critic": {
        "stylegan2": "gan-stylegan",
        "patchgan": "gan-cyclegan",
        "deepfill": "gan-inpaint",
        "concat": "gan-conditional",
        "projection": "gan-conditional",
        "minibatch-discrimination": "gan-improved",
        "pacgan": "gan-improved",
        "sagan": "gan-biggan",
        "biggan": "gan-biggan",
        "biggan-deep": "gan-biggan",
        "pggan": "gan-progressive",
        "srgan": "gan-superres",
        "stargan": "gan-cyclegan",
        "pix2pixhd": "gan-cyclegan",
        "began-autoencoder": "gan-vae",
    },
    "augmenter": {"ada": "gan-ada", "diffaugment": "gan-ada", "instance-noise": "gan-improved"},
    "dataset": {
        "digits-translation": "gan-cyclegan",
        "paired": "gan-cyclegan",
        "unpaired": "gan-cyclegan",
        "skimage-patches": "gan-inpaint",
        "single-image": "gan-progressive",
        "sr-images": "gan-superres",
        "digits-domains": "gan-cyclegan",
        "attribute-images": "gan-cyclegan",
        "synthetic-scenes": "gan-cyclegan",
    },
    "task": {
        "cyclegan": "gan-cyclegan",
        "pix2pix": "gan-cyclegan",
        "inpaint": "gan-inpaint",
        "context-encoder": "gan-inpaint",
        "conditional": "gan-conditional",
        "acgan": "gan-conditional",
        "infogan": "gan-conditional",
        "unrolled": "gan-improved",
        "progressive": "gan-progressive",
        "singan": "gan-progressive",
        "srgan": "gan-superres",
        "stargan": "gan-cyclegan",
        "pix2pixhd": "gan-cyclegan",
        "vae": "gan-vae",
        "vae-gan": "gan-vae",
        "began": "gan-vae",
    },
    "metric": {
        "inpaint-quality": "gan-inpaint",
        "class-accuracy": "gan-conditional",
        "intra-fid": "gan-conditional",
        "code-accuracy": "gan-conditional",
        "sr-quality": "gan-superres",
        "elbo": "gan-vae",
        "iwae": "gan-vae",
    },
    "extractor": {"vgg19": "gan-superres", "sr-features": "gan-superres"},
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


class RegisterSampleOptionCallback(Protocol):
    """The ``register`` callable that ``gancore_register_sample_options`` receives."""

    def __call__(
        self,
        flag: str,
        *,
        argument: Mapping[str, Any] | None = None,
        help: str,
        requires: str | None = None,
        adjust: Callable[[Any, argparse.Namespace], str | None] | None = None,
        picture: Callable[[Any, argparse.Namespace], str] | None = None,
    ) -> None: ...


@attrs.frozen
class SampleOptionSpec:
    """One option of ``gan sample`` contributed by a plugin.

    ``argument``: keyword arguments of ``argparse``'s ``add_argument`` (``{"type": float,
    "metavar": "PSI"}``; empty: a switch). ``requires``: another sample flag this one needs.
    ``adjust(run, args)`` changes the loaded run's generators before sampling and returns a note
    for the grid's title (or ``None``); ``picture(run, args)`` draws the whole picture instead of
    the sample grid and returns the line ``gan sample`` prints. An option with neither is read by
    another option's callback (``--truncation-cutoff`` by ``--truncation``).
    """

    flag: str
    provider: str
    argument: Mapping[str, Any]
    help: str
    requires: str | None
    adjust: Callable[[Any, argparse.Namespace], str | None] | None
    picture: Callable[[Any, argparse.Namespace], str] | None

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments: ``--truncation-cutoff`` -> ``truncation_cutoff``."""
        return self.flag[2:].replace("-", "_")

    def given(self, args: argparse.Namespace) -> bool:
        """Whether the command line used this option (a value, or a switch that is on)."""
        value = getattr(args, self.dest, None)
        return value is not None and value is not False


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
    sample_options: dict[str, SampleOptionSpec] = attrs.field(factory=dict)

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

    def sample_option_callback(self, provider: str) -> RegisterSampleOptionCallback:
        """A ``register`` callable for ``provider``'s ``gancore_register_sample_options``."""

        def register(
            flag: str,
            *,
            argument: Mapping[str, Any] | None = None,
            help: str,
            requires: str | None = None,
            adjust: Callable[[Any, argparse.Namespace], str | None] | None = None,
            picture: Callable[[Any, argparse.Namespace], str] | None = None,
        ) -> None:
            where = f"plugin {provider!r}, hook {SAMPLE_OPTION_HOOK}"
            if not isinstance(flag, str) or not FLAG_PATTERN.match(flag):
                raise PluginError(
                    f"{where}: a sample option is a kebab-case flag like '--truncation' "
                    f"(got {flag!r})"
                )
            if flag in BUILTIN_SAMPLE_FLAGS:
                raise PluginError(
                    f"{where}: sample option {flag!r} is a built-in option of gan sample"
                )
            if flag in self.sample_options:
                raise PluginError(
                    f"{where}: sample option {flag!r} is already registered by plugin "
                    f"{self.sample_options[flag].provider!r}"
                )
            if not isinstance(help, str) or not help.strip() or "\n" in help:
                raise PluginError(
                    f"{where}: sample option {flag!r}: help must be one non-empty line"
                )
            kwargs = dict(argument or {})
            extra = sorted(set(kwargs) - set(SAMPLE_ARGUMENT_KEYS))
            if extra:
                raise PluginError(
                    f"{where}: sample option {flag!r}: argument may set "
                    f"{', '.join(SAMPLE_ARGUMENT_KEYS)} (got {', '.join(extra)})"
                )
            if not kwargs:  # no value: a switch
                kwargs["action"] = "store_true"
            try:  # on a scratch parser: a spec argparse refuses fails the plugin, not `gan`
                argparse.ArgumentParser().add_argument(flag, help=help, **kwargs)
            except (TypeError, ValueError) as exc:
                raise PluginError(
                    f"{where}: sample option {flag!r}: argparse refused its argument: {exc}"
                ) from None
            if requires is not None and (not isinstance(requires, str) or requires == flag):
                raise PluginError(
                    f"{where}: sample option {flag!r}: requires must name another flag "
                    f"(got {requires!r})"
                )
            if adjust is not None and picture is not None:
                raise PluginError(
                    f"{where}: sample option {flag!r}: give adjust or picture, not both"
                )
            if any(c is not None and not callable(c) for c in (adjust, picture)):
                raise PluginError(
                    f"{where}: sample option {flag!r}: adjust and picture must be callable"
                )
            self.sample_options[flag] = SampleOptionSpec(
                flag, provider, kwargs, help.strip(), requires, adjust, picture
            )

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
        for flag in [f for f, o in self.sample_options.items() if o.provider == provider]:
            del self.sample_options[flag]

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
