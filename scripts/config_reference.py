"""Write docs/config_reference.md from the field documentation in gancore.

    python scripts/config_reference.py [--out docs/config_reference.md] [--check]

The registry is loaded with the built-in components only (no installed plugin is imported), so the
page is the same on every machine. ``--check`` writes nothing and exits 1 when the file is stale.
Run it after changing a config field, a built-in component or its options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gancore
from gancore._docs import config_reference

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "config_reference.md"


def render() -> str:
    """The reference for the built-ins alone: entry points off, an empty environment."""
    registry, _ = gancore.load_registry(entry_points=False, env={})
    return config_reference(registry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="file to write")
    parser.add_argument(
        "--check", action="store_true", help="only report whether the file is up to date"
    )
    args = parser.parse_args(argv)
    text = render()
    current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
    if args.check:
        if current == text:
            print(f"{args.out}: up to date")
            return 0
        print(f"{args.out}: stale; run python scripts/config_reference.py", file=sys.stderr)
        return 1
    if current == text:
        print(f"{args.out}: unchanged")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
