"""Did-you-mean suggestions and name rules shared by the registry and the config loader."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``word``, or None when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or the empty string."""
    match = suggest(word, candidates)
    return f" (did you mean {match!r}?)" if match else ""
