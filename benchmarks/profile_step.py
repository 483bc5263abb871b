"""Where a training step's time goes: the framework's share, per recipe, under cProfile.

    python benchmarks/profile_step.py [--recipes ring-gan digits-dcgan wgan-gp-digits ...]
                                      [--steps 40] [--warmup 10] [--top 8]

Each recipe (a file in ``examples/``) is trained through ``gancore.train`` for ``--steps``
iterations with samples, metrics and checkpoints only at the end. cProfile is switched on when the
``--warmup``-th iteration draws its batch and off when the last iteration draws its batch, so the
profile covers whole training iterations and nothing of the set-up or the end of the run. Time is
grouped by where the code lives:

- ``gancore loop``: gancore/_train.py and the modules it runs each step (_task.py, _data.py,
  _phases.py, _players.py, _state.py, _stages.py, _logbuffer.py, _fast.py, _rundir.py);
- ``accelerate``: the accelerate package (the framework's device and process layer);
- ``components``: networks, losses, regularizers, augmenters (gancore/builtin, plugins);
- ``torch (python)``: torch's Python code (nn.Module.__call__, optimizers, autograd wrappers);
- ``torch (C++)``: time inside torch's compiled functions (the kernels and the dispatcher);
- ``other``: the rest (Python itself, numpy...).

cProfile charges a fixed cost to every Python call, so Python-heavy groups look bigger than they
are; the wall time of the same window without the profiler is given for scale. Then the
framework functions (gancore loop and accelerate) with the most own time are listed.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import machine

DEFAULT_RECIPES = ["ring-gan", "digits-dcgan", "wgan-gp-digits", "stylegan2-digits"]
DEFAULT_OUT = Path("benchmarks/results/profile_step.json")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# The framework's own modules on a step's path (the loop, its state, phases, players, logs).
LOOP_MODULES = (
    "_train",
    "_task",
    "_data",
    "_phases",
    "_players",
    "_state",
    "_stages",
    "_logbuffer",
    "_fast",
    "_rundir",
)


def _group(filename: str, function: str) -> str:
    path = filename.replace(os.sep, "/")
    if path == "~":  # built-ins: C functions
        if "torch" in function or "Tensor" in function or "_C." in function:
            return "torch (C++)"
        return "other"
    if any(f"/gancore/{name}.py" in path for name in LOOP_MODULES):
        return "gancore loop"
    if "/accelerate/" in path:
        return "accelerate"
    if "/gancore/builtin/" in path or "/plugins/" in path or "/gan_" in path:
        return "components"
    if "/torch/" in path:
        return "torch (python)"
    return "other"


class _Window:
    """Profile from the ``start``-th to the ``stop``-th iteration's batch."""

    def __init__(self, dataset_class: type, start: int, stop: int, draws_per_iteration: int):
        self.profile = cProfile.Profile(time.process_time)  # CPU time: blind to other jobs
        self.start, self.stop, self.per = start, stop, draws_per_iteration
        self.draws = 0
        self.window_s = self.window_cpu_s = 0.0
        self._t0 = self._c0 = 0.0
        self.profiled = False
        original = dataset_class.get_batch  # type: ignore[attr-defined]
        window = self

        def get_batch(dataset: Any, indices: Any) -> Any:
            window.tick()
            return original(dataset, indices)

        self.original = original
        self.cls = dataset_class
        dataset_class.get_batch = get_batch  # type: ignore[attr-defined]

    def tick(self) -> None:
        if self.draws % self.per == 0:
            iteration = self.draws // self.per
            if iteration == self.start:
                self._t0, self._c0 = time.perf_counter(), time.process_time()
                if self.profiled:
                    self.profile.enable()
            elif iteration == self.stop:
                if self.profiled:
                    self.profile.disable()
                self.window_s = time.perf_counter() - self._t0
                self.window_cpu_s = time.process_time() - self._c0
        self.draws += 1

    def restore(self) -> None:
        self.cls.get_batch = self.original  # type: ignore[attr-defined]


def profile_recipe(recipe: str, steps: int, warmup: int, profiled: bool) -> dict[str, Any]:
    """Train ``recipe`` in this process; the time per iteration and, if ``profiled``, the groups."""
    import gancore

    file = EXAMPLES / f"{recipe}.toml"
    overrides = [
        f"run.steps={steps + 1}",
        "training.sample_every=0",
        "training.checkpoint_every=0",
        "training.metrics_every=0",
        f"training.log_every={max(1, steps // 4)}",
    ]
    config = gancore.load_config(file, overrides)
    config = _without_metrics(config)
    dataset_class = type(config.data.build(None))
    window = _Window(dataset_class, warmup, steps, config.training.critic_steps)
    window.profiled = profiled
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gancore.train(config, Path(tmp) / "run", progress=False)
    finally:
        window.restore()
    iterations = steps - warmup
    out: dict[str, Any] = {
        "recipe": recipe,
        "iterations": iterations,
        "ms_per_iteration": 1000 * window.window_s / iterations,
        "cpu_ms_per_iteration": 1000 * window.window_cpu_s / iterations,
    }
    if not profiled:
        return out
    stats = pstats.Stats(window.profile)
    groups: dict[str, float] = {}
    framework: list[tuple[float, int, str]] = []
    total = 0.0
    for (filename, line, function), (_, calls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        group = _group(filename, function)
        groups[group] = groups.get(group, 0.0) + tottime
        total += tottime
        if group in ("gancore loop", "accelerate"):
            short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
            framework.append((tottime, calls, f"{short}:{line}({function})"))
    framework.sort(reverse=True)
    out["profiled_ms_per_iteration"] = 1000 * total / iterations
    out["groups_percent"] = {
        k: round(100 * v / total, 2) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])
    }
    out["framework_percent"] = round(
        100 * (groups.get("gancore loop", 0.0) + groups.get("accelerate", 0.0)) / total, 2
    )
    out["top_framework"] = [
        {
            "function": name,
            "calls_per_iteration": calls / iterations,
            "us_per_iteration": 1e6 * t / iterations,
        }
        for t, calls, name in framework[:20]
    ]
    return out


def _without_metrics(config: Any) -> Any:
    import attrs

    training = attrs.evolve(config.training, best_metric=None)
    return attrs.evolve(config, metrics=type(config.metrics)(), training=training)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES)
    parser.add_argument("--steps", type=int, default=40, help="iterations per run")
    parser.add_argument("--warmup", type=int, default=10, help="iterations before the window")
    parser.add_argument("--repeats", type=int, default=3, help="unprofiled runs for the wall time")
    parser.add_argument("--top", type=int, default=8, help="framework functions listed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GANCORE_DISABLE_PLUGINS", "gancore-test-broken,gancore-test-collide")

    import gancore

    registry = gancore.get_registry()
    results, skipped = [], []
    for recipe in args.recipes:
        try:
            gancore.load_config(EXAMPLES / f"{recipe}.toml")
        except (gancore.ConfigError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"skipping {recipe}: {reason}", file=sys.stderr)
            skipped.append({"recipe": recipe, "reason": reason})
            continue
        print(f"profiling {recipe} ...", file=sys.stderr, flush=True)
        plain = [
            profile_recipe(recipe, args.steps, args.warmup, profiled=False)["ms_per_iteration"]
            for _ in range(args.repeats)
        ]
        result = profile_recipe(recipe, args.steps, args.warmup, profiled=True)
        result["ms_per_iteration_unprofiled"] = statistics.median(plain)
        result["ms_per_iteration_unprofiled_runs"] = plain
        results.append(result)
        gancore.reset_registry()
        registry = gancore.get_registry()
    del registry

    for r in results:
        print(
            f"\n{r['recipe']}: {r['ms_per_iteration_unprofiled']:.2f} ms/iteration "
            f"({r['profiled_ms_per_iteration']:.2f} profiled); framework "
            f"{r['framework_percent']:.1f}% of profiled time"
        )
        print("  " + ", ".join(f"{k} {v:.1f}%" for k, v in r["groups_percent"].items()))
        print(f"  {'framework function':<64} {'calls/it':>8} {'us/it':>8}")
        for f in r["top_framework"][: args.top]:
            print(
                f"  {f['function'][:64]:<64} {f['calls_per_iteration']:>8.1f} "
                f"{f['us_per_iteration']:>8.1f}"
            )
    for s in skipped:
        print(f"skipped {s['recipe']}: {s['reason']}")
    report = {
        "machine": machine(),
        "settings": {
            "steps": args.steps,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "threads": args.threads,
            "profiler": "cProfile, iterations warmup..steps only",
        },
        "results": results,
        "skipped": skipped,
        "command": " ".join(["python", "benchmarks/profile_step.py", *(argv or sys.argv[1:])]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
