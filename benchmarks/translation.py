"""Image-to-image translation beyond two domains and beyond 256 px: StarGAN and pix2pixHD.

    python benchmarks/translation.py stargan [options]      # StarGAN vs identity vs CycleGAN per pair
    python benchmarks/translation.py pix2pixhd [options]    # pix2pixHD vs pix2pix at 64 and 128 px
    python benchmarks/translation.py all [--quick]          # both, each with its defaults

Each part lives in its own module next to this one (``_translation_stargan.py``,
``_translation_pix2pixhd.py``) with its options (``translation.py stargan --help``) and writes
its own JSON under ``benchmarks/results/`` (``translation-stargan.json``,
``translation-pix2pixhd.json``) and a picture under ``docs/images/``. The figures and what they
show are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _translation_pix2pixhd  # a sibling module, found through the path above
import _translation_stargan

PARTS = {"stargan": _translation_stargan, "pix2pixhd": _translation_pix2pixhd}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    for name, module in PARTS.items():
        module.add_arguments(parts.add_parser(name, help=(module.__doc__ or name).splitlines()[0]))
    every = parts.add_parser("all", help="every part with its defaults")
    every.add_argument("--quick", action="store_true", help="each part's smoke-test budget")
    args = parser.parse_args(argv)
    if args.part != "all":
        PARTS[args.part].run(args)
        return 0
    for name, module in PARTS.items():
        sub = argparse.ArgumentParser()
        module.add_arguments(sub)
        module.run(sub.parse_args(["--quick"] if args.quick else []))
        print(f"translation.py: {name} done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
