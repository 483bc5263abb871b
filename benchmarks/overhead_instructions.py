"""Framework overhead in instructions: gancore's loop against the hand-written loop, noise-free.

    python benchmarks/overhead_instructions.py [--cases mlp-tiny mlp dcgan32 stylegan2] [--jobs 2]
        [--out benchmarks/results/overhead-instructions.json]

Wall-clock step times on a shared machine wander by 10-30% between runs of the same program, more
than the few per cent this benchmark is after. Instructions executed do not. Each side of
``benchmarks/overhead.py`` (the same cases, networks, data, seeds and hand-written loop) runs once
under valgrind's callgrind with counting switched off; the benchmark's ``get_batch`` hook (the
first thing each iteration does, on both sides) switches it on at the start of iteration ``a``
and off at the start of iteration ``b`` (``callgrind_control -i on|off``), so the count covers
iterations ``a .. b-1`` exactly, after warm-up and before the end of the run:

    instructions per iteration = (I(window) - I(empty window)) / (b - a)

where the empty window (on and off at the same call) is the cost of switching, measured once.
``b - a`` spans whole lazy-regularization intervals, and for the MLP cases one or two of
gancore's log lines (one every 100 iterations); the convolutional cases' windows hold none.

The ratio gancore/hand is the overhead in work done. It is not a time ratio: an instruction of
Python bookkeeping is cheaper than one of a cache-missing kernel, and valgrind presents a CPU
without AVX-512, so torch runs its AVX2 kernels under it. Both sides are counted the same way,
and the count is deterministic to well under 0.1%: one run per side suffices.

Needs ``valgrind`` (``apt install valgrind``; ``callgrind_control`` comes with it). Under it torch's
kernels run several hundred times slower than natively: the default cases (the two MLPs) take
about half an hour; ``dcgan32`` and ``stylegan2`` can be asked for and take about 40 and 70
minutes with ``--jobs 2`` on an idle 2-core machine. Results are written after each case, and
cases not run keep their earlier results in ``--out``; each result records the machine it was
counted on.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import CASES, machine, stylegan_available

DEFAULT_OUT = Path("benchmarks/results/overhead-instructions.json")
# The counted window [a, b) of iterations per case: after warm-up, whole intervals of lazy R1.
WINDOWS: dict[str, tuple[int, int]] = {
    "mlp-tiny": (101, 301),
    "mlp": (101, 201),
    "dcgan32": (5, 9),
    "stylegan2": (5, 21),
}
# Under callgrind torch's matrix and convolution kernels run several hundred times slower than
# natively: the MLP window takes about 20 minutes here, a convolutional one 40-70 minutes.
DEFAULT_CASES = ["mlp-tiny", "mlp"]
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def count(side: str, case: str, window: tuple[int, int]) -> dict[str, Any]:
    """Instructions callgrind counted in ``window`` of one worker run of overhead.py."""
    a, b = window
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = "1"
    env.setdefault("GANCORE_DISABLE_PLUGINS", "gancore-test-broken,gancore-test-collide")
    env["OVERHEAD_INSTRUCTION_WINDOW"] = f"{a},{b}"
    worker = Path(__file__).resolve().parent / "overhead.py"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(worker),
        "--worker",
        side,
        "--cases",
        case,
        "--steps",
        str(b + 1),
        "--warmup",
        "0",
        "--threads",
        "1",
        # glibc's own allocator thresholds on both sides, as when the counts in
        # benchmarks/results/overhead-instructions.json were taken (the page faults it causes
        # are kernel work, which callgrind does not count either way)
        "--allocator",
        "system",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    found = _COLLECTED.findall(done.stderr)
    if done.returncode or not found:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise SystemExit(f"{case} {side} {window} failed: {lines[-1] if lines else '?'}")
    return {
        "side": side,
        "window": [a, b],
        "instructions": int(found[-1]),
        "weights_sha256": json.loads(done.stdout.strip().splitlines()[-1])["weights_sha256"],
        "valgrind_s": time.perf_counter() - started,
    }


def measure(case: str, switching: int, jobs: int) -> dict[str, Any]:
    a, b = WINDOWS[case]
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # counts do not depend on the load
        runs = list(pool.map(lambda side: count(side, case, (a, b)), ("gancore", "hand")))
    per_step = {r["side"]: (r["instructions"] - switching) / (b - a) for r in runs}
    for side, value in per_step.items():
        print(f"{case} {side}: {value / 1e6:.3f} M instructions per iteration", flush=True)
    return {
        "case": case,
        "command": " ".join(["python", "benchmarks/overhead_instructions.py", *sys.argv[1:]]),
        "title": CASES[case]["title"],
        "window": [a, b],
        "gancore_per_step": per_step["gancore"],
        "hand_per_step": per_step["hand"],
        "ratio": per_step["gancore"] / per_step["hand"],
        "overhead_per_step": per_step["gancore"] - per_step["hand"],
        "identical_weights": len({r["weights_sha256"] for r in runs}) == 1,
        "runs": runs,
        # Per row: an earlier case kept in --out may have been counted on another machine.
        "machine": machine(),
        "switching_instructions": switching,
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | gancore (M instr./iteration) | hand (M instr./iteration) | ratio "
        "| extra (k instr./iteration) "
        "| same weights |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['case']} | {r['gancore_per_step'] / 1e6:.3f} | {r['hand_per_step'] / 1e6:.3f} "
            f"| {r['ratio']:.4f} | {r['overhead_per_step'] / 1e3:.0f} "
            f"| {'yes' if r['identical_weights'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, choices=list(WINDOWS))
    parser.add_argument("--jobs", type=int, default=1, help="valgrind runs at a time")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind and callgrind_control are needed (apt install valgrind)", file=sys.stderr)
        return 2
    results, skipped = [], []
    calibration = count("hand", "mlp-tiny", (3, 3))  # switching on and off, nothing between
    switching = calibration["instructions"]
    print(f"switching the count on and off: {switching / 1e6:.3f} M instructions", flush=True)
    for case in args.cases:
        if case == "stylegan2" and (reason := stylegan_available()) is not None:
            print(f"skipping stylegan2: {reason}", file=sys.stderr)
            skipped.append({"case": case, "reason": reason})
            continue
        results.append(measure(case, switching, args.jobs))
        write(args, results, skipped, switching, argv)  # each case as soon as it is counted
    print(table(results))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def write(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
    switching: int,
    argv: list[str] | None,
) -> None:
    """The JSON report; cases counted by an earlier run and not this one are kept."""
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    counted = {r["case"] for r in results}
    kept = [r for r in previous.get("results", []) if r["case"] not in counted]
    for r in kept:  # a row written before rows carried a machine takes the file's
        r.setdefault("machine", previous.get("machine"))
        r.setdefault("switching_instructions", previous.get("switching_instructions"))
    report = {
        "command": " ".join(
            ["python", "benchmarks/overhead_instructions.py", *(argv or sys.argv[1:])]
        ),
        "machine": machine(),
        "valgrind": subprocess.run(
            ["valgrind", "--version"], capture_output=True, text=True
        ).stdout.strip(),
        "switching_instructions": switching,
        "results": kept + results,
        "skipped": skipped,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
