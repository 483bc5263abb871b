"""Hook specifications: how a plugin registers components with gancore.

Every hook is a *registration* hook: gancore calls it once per plugin, at start-up, with a
``register`` callback, and the plugin calls ``register`` once per component it contributes. The host
validates each call and records which plugin made it (its provenance), so two plugins may use the
same short name and both stay reachable as ``<plugin>:<name>``.

The ``register`` callback has the signature::

    register(name: str, factory: Callable[[Options, BuildContext], T], *,
             options: type | None = None, description: str) -> None

- ``name``: lowercase kebab-case (``wgan-gp``), unique per kind within one plugin.
- ``factory``: called as ``factory(options, context)`` to build the component. When ``options`` is
  ``None``, ``factory`` must be an attrs class that is its own options (a stateless component such as
  a loss): the structured options instance *is* the component and ``factory`` is never called.
- ``options``: an attrs class (frozen, keyword-only) whose fields are the component's TOML keys, with
  defaults and a ``metadata={"doc": ...}`` on every field.
- ``description``: one line, shown by ``gan components``.

Plugins implement hooks with :data:`gancore.hookimpl`; the hook names are validated after loading, so
a misspelled hook is reported instead of silently ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from gancore._registry import (
        RegisterCallback,
        RegisterCommandCallback,
        RegisterSampleOptionCallback,
    )

hookspec = pluggy.HookspecMarker("gancore")
# Plugins mark their implementations with this (re-exported as ``gancore.hookimpl``). It lives
# beside the specs, as in llm, so that nothing here imports the loader.
hookimpl = pluggy.HookimplMarker("gancore")

# -------------------------------------------------------------------------------------------------
# Networks
# -------------------------------------------------------------------------------------------------


@hookspec
def gancore_register_generators(register: RegisterCallback) -> None:
    """Register generators.

    :param register: ``register(name, factory, *, options=None, description)``. ``factory(options,
        context)`` must return a ``torch.nn.Module`` satisfying :class:`gancore.protocols.Generator`
        for ``context.data_shape`` (the shape of one sample it produces) and ``context.input_shape``
        (``None`` for unconditional generators, which take latents and expose ``latent_dim``).

    Called once per plugin when the registry loads. Names must be unique among this plugin's
    generators; another plugin may reuse a name (both become ``<plugin>:<name>``).
    """


@hookspec
def gancore_register_critics(register: RegisterCallback) -> None:
    """Register critics (discriminators).

    :param register: ``register(name, factory, *, options=None, description)``. ``factory(options,
        context)`` must return a ``torch.nn.Module`` satisfying :class:`gancore.protocols.Critic`
        that scores inputs of shape ``context.data_shape``.

    Called once per plugin when the registry loads. Names must be unique among this plugin's critics.
    """


# -------------------------------------------------------------------------------------------------
# Objectives
# -------------------------------------------------------------------------------------------------


@hookspec
def gancore_register_losses(register: RegisterCallback) -> None:
    """Register adversarial losses.

    :param register: ``register(name, factory, *, options=None, description)``. The built object must
        satisfy :class:`gancore.protocols.Loss`: pure functions of critic scores returning scalars.

    Called once per plugin when the registry loads. Names must be unique among this plugin's losses.
    """


@hookspec
def gancore_register_regularizers(register: RegisterCallback) -> None:
    """Register regularizers: penalties and constraints on a critic or a generator.

    :param register: ``register(name, factory, *, options=None, description)``. The built object must
        satisfy :class:`gancore.protocols.CriticRegularizer` (``player == "critic"``) or
        :class:`gancore.protocols.GeneratorRegularizer` (``player == "generator"``), with an
        ``interval`` attribute (1 = every step; ``k > 1`` = lazy).

    Called once per plugin when the registry loads. Names must be unique among this plugin's
    regularizers.
    """


@hookspec
def gancore_register_augmenters(register: RegisterCallback) -> None:
    """Register augmenters, applied differentiably to every input the critic sees.

    :param register: ``register(name, factory, *, options=None, description)``. The built object must
        satisfy :class:`gancore.protocols.Augmenter`.

    Called once per plugin when the registry loads. Names must be unique among this plugin's
    augmenters.
    """


# -------------------------------------------------------------------------------------------------
# Data, tasks and evaluation
# -------------------------------------------------------------------------------------------------


@hookspec
def gancore_register_datasets(register: RegisterCallback) -> None:
    """Register datasets.

    :param register: ``register(name, factory, *, options=None, description)``. The built object must
        satisfy :class:`gancore.protocols.Dataset`: deterministic dict items, ``shapes`` per key.

    Called once per plugin when the registry loads. Names must be unique among this plugin's datasets.
    """


@hookspec
def gancore_register_tasks(register: RegisterCallback) -> None:
    """Register tasks: what one critic step and one generator step compute from a batch.

    :param register: ``register(name, factory, *, options=None, description)``. The built object must
        satisfy :class:`gancore.protocols.Task`. See ``docs/concepts.md`` for the seam.

    Called once per plugin when the registry loads. Names must be unique among this plugin's tasks.
    """


@hookspec
def gancore_register_metrics(register: RegisterCallback) -> None:
    """Register metrics.

    :param register: ``register(name, factory, *, options=None, description)``. The built object must
        satisfy :class:`gancore.protocols.Metric`: ``evaluate(context) -> dict`` with values and the
        protocol that produced them.

    Called once per plugin when the registry loads. Names must be unique among this plugin's metrics.
    """


@hookspec
def gancore_register_extractors(register: RegisterCallback) -> None:
    """Register feature extractors for metrics.

    :param register: ``register(name, factory, *, options=None, description)``. The built object must
        satisfy :class:`gancore.protocols.FeatureExtractor`; weights come only from local files.

    Called once per plugin when the registry loads. Names must be unique among this plugin's
    extractors.
    """


# -------------------------------------------------------------------------------------------------
# Commands
# -------------------------------------------------------------------------------------------------


@hookspec
def gancore_register_commands(register: RegisterCommandCallback) -> None:
    """Register subcommands of the ``gan`` program (``gan translate``, ``gan inpaint``).

    :param register: ``register(name, run, *, configure=None, description)``. ``configure(parser)``
        adds the command's arguments to its ``argparse.ArgumentParser``; ``run(args)`` does the work
        with the parsed ``argparse.Namespace`` and returns the exit status (``None`` means 0). A user
        mistake is reported by raising :class:`gancore.ConfigError`, ``FileNotFoundError`` or
        ``ValueError``: ``gan`` prints it as one ``error:`` line and exits with status 2.

    Command names share one namespace: a name must not be a built-in command (``train``,
    ``sample``, ``eval``, ``plugins``, ``components``, ``config``, ``plugin``) nor one another
    plugin already registered; such a plugin fails to load, with a warning naming both plugins.
    """


@hookspec
def gancore_register_sample_options(register: RegisterSampleOptionCallback) -> None:
    """Register options of ``gan sample`` (gan-stylegan's ``--truncation``, ``--style-mixing``).

    :param register: ``register(flag, *, argument=None, help, requires=None, adjust=None,
        picture=None)``. ``flag`` is a kebab-case long option (``--truncation``); the parsed value
        is ``args.<flag with _ for ->`` (``args.truncation_cutoff``), ``None`` when not given.
        ``argument`` holds ``argparse`` ``add_argument`` keywords (``action``, ``type``,
        ``choices``, ``metavar``, ``nargs``, ``const``; none: a switch). ``help`` is one line.
        ``requires`` names another sample flag this one needs. At most one callback:
        ``adjust(run, args) -> str | None`` changes the :class:`gancore.LoadedRun`'s generators
        before sampling and returns a note for the grid's title; ``picture(run, args) -> str``
        writes the whole picture instead of the sample grid and returns the line to print. An
        option with neither is read by another option's callback. Callbacks report a user
        mistake by raising :class:`gancore.ConfigError` (one ``error:`` line, exit status 2).

    Called once per plugin when the registry loads. Flags share one namespace: a flag must not be a
    built-in option of ``gan sample`` (``--num``, ``--seed``, ``--out``, ``--checkpoint``,
    ``--raw``, ``--class``) nor one another plugin already registered; such a plugin fails to load, with a
    warning naming both plugins. Adjustments run in the order the plugins registered them, then
    the (one) picture option given, if any.
    """
