"""Exceptions. Each subclasses the builtin a caller would expect, so ``except ValueError`` works."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AmbiguousComponentError",
    "CheckpointError",
    "ConfigError",
    "PluginError",
    "TrainingError",
    "UnknownComponentError",
]


class ConfigError(ValueError):
    """One or more problems in a run configuration, each a one-line message with its key path."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in self.problems))

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[str], str | None]]:
        # Rebuilt from its problems, not its message (a process pool pickles it).
        return (type(self), (self.problems, self.source))


class UnknownComponentError(LookupError):
    """A name that no loaded plugin registered for that kind."""

    def __str__(self) -> str:  # LookupError's str() would quote the message
        return str(self.args[0])


class AmbiguousComponentError(LookupError):
    """A short name that two distributions registered; use ``<dist>:<name>``."""

    def __str__(self) -> str:
        return str(self.args[0])


class PluginError(RuntimeError):
    """A plugin that failed to load (strict mode) or registered something invalid."""


class CheckpointError(RuntimeError):
    """A checkpoint, or another file of a run directory (``best.json``, ``metrics.jsonl``), that is
    missing, truncated or corrupt."""


class TrainingError(RuntimeError):
    """Training cannot continue (for example, too many non-finite losses in a row)."""
