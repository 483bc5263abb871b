"""Every `gan` command's --help has a description, examples and the exit codes."""

from __future__ import annotations

import argparse
import re

import pytest

from gancore._cli import _parser, main
from gancore._plugins import get_registry


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every command path (``("config", "show")``) of ``parser``, nested ones included."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((*prefix, name))
                out.extend(_commands(sub, (*prefix, name)))
    return out


def _help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _section(text: str, title: str) -> list[str]:
    """The lines of the ``title:`` section of a help text, up to the next blank line."""
    lines = text.splitlines()
    start = lines.index(f"{title}:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def _description(text: str) -> str:
    """The paragraph after the usage lines."""
    paragraphs = re.split(r"\n\s*\n", text)
    return paragraphs[1] if len(paragraphs) > 1 else ""


BUILT_IN = [
    ("train",),
    ("sample",),
    ("eval",),
    ("export",),
    ("interpolate",),
    ("report",),
    ("plugins",),
    ("components",),
    ("plugin",),
    ("plugin", "new"),
    ("config",),
    ("config", "validate"),
    ("config", "show"),
]


class TestHelp:
    def test_the_list_is_complete(self) -> None:
        """Every built-in command (and no more) is in BUILT_IN; the rest come from plugins."""
        registry = get_registry()
        found = set(_commands(_parser(registry.commands, registry.sample_options)))
        plugin_commands = {(name,) for name in registry.commands}
        assert found - plugin_commands == set(BUILT_IN)

    @pytest.mark.parametrize("command", BUILT_IN, ids=" ".join)
    def test_description_examples_and_exit_codes(
        self, command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A description of at least a sentence, two or more `gan` examples, exit codes 0 and 2."""
        text = _help(command, capsys)
        assert len(_description(text).split()) >= 8, text
        examples = [line for line in _section(text, "Examples") if line.startswith("  gan ")]
        assert len(examples) >= 2, text
        codes = [line.split()[0] for line in _section(text, "Exit codes") if line[2:3].isdigit()]
        assert codes[:1] == ["0"] and "2" in codes and "130" in codes, text

    def test_plugin_commands_have_exit_codes(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A plugin's command gets its description and the exit codes main() decides."""
        registry = get_registry()
        if not registry.commands:
            pytest.skip("no plugin contributes a command here")
        for name, spec in registry.commands.items():
            text = _help((name,), capsys)
            assert f"(from plugin {spec.provider})" in " ".join(text.split()), text
            assert _section(text, "Exit codes")[0].split()[:2] == ["0", "success"]

    def test_train_documents_status_1(self, capsys: pytest.CaptureFixture[str]) -> None:
        """gan train says what status 1 means for a run."""
        codes = " ".join(_section(_help(("train",), capsys), "Exit codes"))
        assert "too many non-finite losses" in codes
