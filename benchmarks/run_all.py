"""Every benchmark in one command, with small defaults.

    python benchmarks/run_all.py [--full] [--only overhead scaling ...] [--skip metrics ...]

Runs each script of ``benchmarks/`` in turn, each in its own process, niced; each prints its
table and writes its JSON. By default every script runs with small settings (its ``--quick``, where
it has one) and writes to ``benchmarks/results/quick/`` so that the published results in
``benchmarks/results/`` are not overwritten; ``--full`` runs each script's own defaults, which
write the published files. A script that fails is reported and the others still run; the exit
status is 1 if any failed. Scripts added later are picked up: they get ``--quick`` and ``--out``
only if their ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Small settings of the scripts whose --quick is not enough (or that have none).
SMALL: dict[str, list[str]] = {
    "profile_step": ["--steps", "30", "--warmup", "10", "--repeats", "1"],
    "overhead_instructions": ["--cases", "mlp-tiny", "--jobs", "2"],
}
ORDER = ["overhead", "overhead_instructions", "profile_step", "scaling", "metrics", "mode_coverage"]
QUICK_OUT = Path("benchmarks/results/quick")


def _options(script: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    return done.stdout


def small_arguments(name: str) -> list[str]:
    """The arguments that make ``name`` quick and write under benchmarks/results/quick/."""
    script = HERE / f"{name}.py"
    options = _options(script)
    arguments = list(SMALL.get(name, ["--quick"] if "--quick" in options else []))
    if "--out" in options:
        arguments += ["--out", str(QUICK_OUT / f"{name}.json")]
    return arguments


def discovered() -> list[str]:
    """Benchmark scripts in this folder, the known ones first, in their order."""
    names = [p.stem for p in sorted(HERE.glob("*.py")) if p.stem != "run_all"]
    names = [n for n in names if not n.startswith("_")]  # helpers such as _machine.py
    return [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each script's full defaults")
    parser.add_argument("--only", nargs="+", help="run only these scripts (names without .py)")
    parser.add_argument("--skip", nargs="+", default=[], help="scripts not to run")
    parser.add_argument("--list", action="store_true", help="list the scripts and exit")
    args = parser.parse_args(argv)
    names = [n for n in (args.only or discovered()) if n not in args.skip]
    if args.list:
        print("\n".join(names))
        return
    env = dict(os.environ)
    env.setdefault("GANCORE_DISABLE_PLUGINS", "gancore-test-broken,gancore-test-collide")
    failed = []
    for name in names:
        arguments = [] if args.full else small_arguments(name)
        command = ["nice", sys.executable, str(HERE / f"{name}.py"), *arguments]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=HERE.parent)
        print(
            f"=== {name}: exit {done.returncode} in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        if done.returncode:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
