"""The configuration reference, rendered as Markdown from the field documentation in the code.

Every key of a run file is an attrs field whose ``metadata={"doc": ...}`` says what it means; this
module turns those fields (the sections of :mod:`gancore._config` and the options classes of the
built-in components) into ``docs/config_reference.md``. ``scripts/config_reference.py`` writes the
file, and a test compares it with a fresh rendering, so the reference cannot drift from the code.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import attrs

from gancore._config import (
    ALL_SECTIONS,
    COMPONENT_SECTIONS,
    PLAIN_SECTIONS,
    REQUIRED_SECTIONS,
    OptimizerConfig,
    StageSection,
    _field_types,
    toml_key,
)
from gancore._registry import ComponentSpec, Registry
from gancore.protocols import KINDS

__all__ = [
    "BUILTIN_PROVIDER",
    "COMPONENT_SECTION_DOCS",
    "KIND_TITLES",
    "OptionRow",
    "config_reference",
    "option_rows",
    "section_order",
]

BUILTIN_PROVIDER = "gancore"
GENERATOR_COMMAND = "python scripts/config_reference.py"

# What each component section is for. The keys other than `name` are the chosen component's own
# options, documented with the component further down the page.
COMPONENT_SECTION_DOCS: dict[str, str] = {
    "data": "The dataset to train on.",
    "task": (
        "What one critic step and one generator step compute from a batch: which networks exist, "
        "what they are fed and which losses they minimise (see [tasks.md](tasks.md))."
    ),
    "generator": (
        "The generator network. Required by tasks that build the configured networks, such as "
        "`unconditional`; the network learns the shape of its output from the data."
    ),
    "critic": (
        "The critic (discriminator) network. Required by tasks that build the configured "
        "networks, such as `unconditional`."
    ),
    "loss": "The adversarial loss, a pure function of the critic's scores.",
    "regularizers": (
        "Penalties and constraints on the critic or the generator, each in its own "
        "`[[regularizers]]` table; several may be combined."
    ),
    "augmenter": (
        "Differentiable augmentation applied to every input the critic sees: real, fake and "
        "regularizer inputs."
    ),
    "metrics": (
        "Metrics evaluated every `training.metrics_every` iterations and at the end of the run, "
        "each in its own `[[metrics]]` table."
    ),
}

# Headings of the component groups, by kind.
KIND_TITLES: dict[str, str] = {
    "generator": "Generators",
    "critic": "Critics",
    "loss": "Losses",
    "regularizer": "Regularizers",
    "augmenter": "Augmenters",
    "dataset": "Datasets",
    "task": "Tasks",
    "metric": "Metrics",
    "extractor": "Feature extractors",
}

_TOML_NAMES: dict[Any, str] = {
    int: "integer",
    float: "float",
    bool: "boolean",
    str: "string",
}


@attrs.frozen(kw_only=True)
class OptionRow:
    """One key of a TOML table: its name, TOML type, default (Markdown) and documentation."""

    key: str
    type: str
    default: str
    doc: str


# -------------------------------------------------------------------------------------------------
# Fields to rows
# -------------------------------------------------------------------------------------------------


def _type_text(tp: Any) -> str:
    """A field's type as TOML words: ``integer``, ``float, optional``, ``array of strings``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp in _TOML_NAMES:
        return _TOML_NAMES[tp]
    if origin is Literal:
        return "one of " + ", ".join(_toml_value(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        text = " or ".join(_type_text(a) for a in arms)
        return f"{text}, optional" if len(arms) < len(args) else text
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"array of {_plural(args[0])}"
        if args and len(set(args)) == 1:
            return f"array of {len(args)} {_plural(args[0])}"
        return f"array of {len(args)} values"
    if origin in (list, Sequence):
        return f"array of {_plural(args[0])}" if args else "array"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "table"
    if isinstance(tp, type) and attrs.has(tp):
        return "table"
    if tp is Any or tp is object:
        return "any"
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    word = _type_text(tp)
    return {
        "integer": "integers",
        "float": "floats",
        "boolean": "booleans",
        "string": "strings",
    }.get(word, word)


def _toml_value(value: Any) -> str:
    """``value`` written as TOML would write it (``"ring"``, ``true``, ``[0.5, 0.999]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return "nan"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if attrs.has(type(value)):
        return _toml_value(attrs.asdict(value))
    return repr(value)


def _default_text(field: attrs.Attribute[Any]) -> str:
    default: Any = field.default
    if default is attrs.NOTHING:
        return "required"
    # attrs' stubs declare Factory as a function, though at runtime it is the class of defaults
    # made by `factory=`; mypy cannot see that isinstance check.
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return "computed"
        default = default.factory()
    if default is None:
        return "unset"
    return _code(_toml_value(default))


def option_rows(cls: type, *, skip: Sequence[str] = ()) -> list[OptionRow]:
    """The TOML keys of attrs class ``cls`` (fields set in ``__init__``), in declaration order."""
    hints = _field_types(cls)
    rows = []
    for field in attrs.fields(cls):
        key = toml_key(field)
        if not field.init or key in skip:
            continue
        rows.append(
            OptionRow(
                key=key,
                type=_type_text(hints[field.name]),
                default=_default_text(field),
                doc=str(field.metadata.get("doc", "")).strip(),
            )
        )
    return rows


# -------------------------------------------------------------------------------------------------
# Markdown helpers
# -------------------------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _prose(text: str) -> str:
    """One table cell of prose: on one line, with Markdown's active characters escaped outside
    code spans (``2*pi*i`` must not turn italic, ``<x>`` must not vanish as a tag)."""
    text = " ".join(text.split())
    out = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_escape(text[position : match.start()]))
        out.append(match.group(0).replace("|", "\\|"))
        position = match.end()
    out.append(_escape(text[position:]))
    return "".join(out)


def _escape(text: str) -> str:
    # Underscores inside words and brackets without a link target render as written in GFM.
    for char in ("\\", "*", "~", "|"):
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;")


def _table(rows: Sequence[OptionRow]) -> list[str]:
    if not rows:
        return ["No options."]
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for row in rows:
        cells = [_code(row.key), _prose(row.type), row.default.replace("|", "\\|"), _prose(row.doc)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _summary(cls: type) -> str:
    """The first paragraph of a class docstring, on one line."""
    doc = (cls.__doc__ or "").strip()
    return " ".join(doc.split("\n\n", 1)[0].split())


def _sentence(text: str) -> str:
    """``text`` with its first letter capitalised."""
    return text[:1].upper() + text[1:]


def _anchor(title: str) -> str:
    """The fragment GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


# -------------------------------------------------------------------------------------------------
# The page
# -------------------------------------------------------------------------------------------------


def section_order() -> list[str]:
    """Sections in the order of the page: ``run``, the component sections, ``optimizers``,
    ``training``, ``stages``, ``init``. Raises if :mod:`gancore._config` gained a section this
    module cannot render."""
    order = [
        "run",
        *(section for section, *_ in COMPONENT_SECTIONS),
        "optimizers",
        "training",
        "stages",
        "init",
    ]
    unknown = sorted(set(ALL_SECTIONS) - set(order))
    if unknown:
        raise ValueError(f"config reference: no rendering for section(s) {', '.join(unknown)}")
    return order


def _kind_order() -> list[str]:
    """Component kinds in the order their sections appear, then kinds without a section."""
    order = [kind for _, kind, *_ in COMPONENT_SECTIONS]
    return order + [kind for kind in KINDS if kind not in order]


def _plain_section(section: str, cls: type) -> Iterator[str]:
    yield f"### `[{section}]`"
    yield ""
    yield _prose(_sentence(re.sub(r"^``\[[a-z.]+\]``:\s*", "", _summary(cls))))
    yield ""
    yield from _table(option_rows(cls))
    yield ""


def _component_section(
    section: str, kind: str, default: str | None, is_list: bool, registry: Registry
) -> Iterator[str]:
    header = f"[[{section}]]" if is_list else f"[{section}]"
    title = KIND_TITLES[kind]
    yield f"### `{header}`"
    yield ""
    yield COMPONENT_SECTION_DOCS[section]
    builtins = [s.name for s in registry.specs(kind) if s.provider == BUILTIN_PROVIDER]
    listed = ", ".join(_code(n) for n in builtins) or "none"
    yield (
        f"`name` picks a registered {kind}; the table's other keys are that {kind}'s options "
        f"(built-in: {listed}; see [{title}](#{_anchor(title)}), or run `gan components {kind}`)."
    )
    yield ""
    if section in REQUIRED_SECTIONS:
        presence = "required"
    elif is_list:
        presence = "unset (none)"
    elif default is not None:
        presence = _code(_toml_value(default))
    else:
        presence = "unset"
    doc = f"Registered name of the {kind}, short (`{builtins[0] if builtins else 'name'}`) or "
    doc += "qualified by its plugin (`<plugin>:<name>`); the short name works while it is unique."
    yield from _table([OptionRow(key="name", type="string", default=presence, doc=doc)])
    yield ""


def _optimizer_section() -> Iterator[str]:
    yield "### `[optimizers.generator]`, `[optimizers.critic]`, `[optimizers.<group>]`"
    yield ""
    summary = re.sub(r"^``\[[a-z.]+\]`` / ``\[[a-z.]+\]``:\s*", "", _summary(OptimizerConfig))
    yield _prose(_sentence(summary))
    yield (
        "One table per player group the task trains, with the same keys: `generator` and "
        "`critic` for the classic GAN (a missing one is an optimizer with every default), and "
        "a table for every other group a task declares (an encoder, InfoGAN's `q`), which is "
        "required. A table for a group the task does not have is an error."
    )
    yield ""
    # `options` is not a key of its own: every key the table does not define lands in it.
    extra = attrs.fields_dict(OptimizerConfig)["options"]
    others = OptionRow(
        key="...",
        type="any",
        default="the optimizer's",
        doc=str(extra.metadata.get("doc", "")).strip()
        + " Any other key is an argument of the chosen torch.optim class, checked against its "
        "signature when the file is loaded; the resolved config.toml of a run lists them all.",
    )
    yield from _table([*option_rows(OptimizerConfig, skip=["options"]), others])
    yield ""


def _components(registry: Registry) -> Iterator[str]:
    for kind in _kind_order():
        specs = [s for s in registry.specs(kind) if s.provider == BUILTIN_PROVIDER]
        if not specs:
            continue
        yield f"### {KIND_TITLES[kind]}"
        yield ""
        sections = [
            (f"[[{section}]]" if is_list else f"[{section}]")
            for section, k, _default, is_list in COMPONENT_SECTIONS
            if k == kind
        ]
        if sections:
            yield f"Chosen in `{sections[0]}`."
        else:
            yield _named_by(kind, registry)
        yield ""
        for spec in specs:
            yield from _component(spec)


def _named_by(kind: str, registry: Registry) -> str:
    """Where a kind without a section of its own is chosen: the built-in options named after it."""
    users = [
        spec
        for spec in registry.specs()
        if spec.provider == BUILTIN_PROVIDER and kind in attrs.fields_dict(spec.options)
    ]
    if not users:
        return (
            f"Not chosen in a section of its own: other components name a {kind} in their options."
        )
    by_kind: dict[str, list[str]] = {}
    for spec in users:
        by_kind.setdefault(spec.kind, []).append(_code(spec.name))
    where = "; ".join(f"{k} {', '.join(names)}" for k, names in by_kind.items())
    return f"Not chosen in a section of its own: named by the `{kind}` option of a component ({where})."


def _component(spec: ComponentSpec) -> Iterator[str]:
    yield f"#### `{spec.name}`"
    yield ""
    yield _prose(spec.description)
    yield ""
    yield from _table(option_rows(spec.options))
    yield ""


def _stages_section() -> Iterator[str]:
    yield "### `[[stages]]`"
    yield ""
    yield _prose(_sentence(re.sub(r"^``\[\[[a-z.]+\]\]``:\s*", "", _summary(StageSection))))
    yield (
        "A list of tables, one per stage, in order; none = one stage over the whole run. See "
        "[training.md](training.md#stages)."
    )
    yield ""
    yield from _table(option_rows(StageSection))
    yield ""


def config_reference(registry: Registry) -> str:
    """``docs/config_reference.md``: every section of a run file with each key's type, default and
    documentation, then every component the built-in plugin (``gancore``) registers in
    ``registry``, grouped by kind, with its description and options."""
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated from the field documentation in gancore by `{GENERATOR_COMMAND}`; "
        "do not edit by hand. -->",
        "",
        "A run is one TOML file. This page lists every section and key that file may contain, and "
        "the options of every built-in component. Types are TOML types. A default of *unset* "
        "means the key is absent (TOML has no null); where a description says what *None* does, "
        "that is what leaving the key out does. "
        "Components from installed plugins are listed by `gan components`; their keys follow the "
        "same rules.",
        "",
        "`gan config show RUN.toml` prints a file with every default filled in; "
        "`--set section.key=VALUE` overrides a key from the command line, VALUE parsed as TOML.",
        "",
        "## Sections",
        "",
    ]
    components = {section: (kind, d, lst) for section, kind, d, lst in COMPONENT_SECTIONS}
    for section in section_order():
        if section in PLAIN_SECTIONS:
            lines += _plain_section(section, PLAIN_SECTIONS[section])
        elif section == "optimizers":
            lines += _optimizer_section()
        elif section == "stages":
            lines += _stages_section()
        else:
            kind, default, is_list = components[section]
            lines += _component_section(section, kind, default, is_list, registry)
    lines += ["## Built-in components", ""]
    lines += _components(registry)
    while lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"
