"""``gan sample RUN --vary-code NAME``: InfoGAN's latent-traversal grids (Chen et al. 2016, Fig. 2).

Each row sets one code to one value (every category of a categorical code, or evenly spaced values
of a continuous one, -2 to 2 by default as in the paper, beyond the training range (-1, 1)); each
column keeps its noise and its other codes in every row, so a column shows what the code alone
changes.
"""

from __future__ import annotations

import argparse
import math

import torch

import gancore
from gan_conditional.tasks import InfoGAN

__all__ = ["DEFAULT_RANGE", "DEFAULT_STEPS", "code_values", "vary_code"]

DEFAULT_STEPS = 5  # rows of a continuous code's sweep
DEFAULT_RANGE = (-2.0, 2.0)  # Chen et al. 2016, Fig. 2


def code_values(
    task: InfoGAN, name: str, steps: int | None, span: list[float] | None
) -> torch.Tensor:
    """The row values of code ``name``: ``0 .. K-1`` for a categorical code (``steps`` and
    ``span`` refused), ``steps`` evenly spaced values over ``span`` for a continuous one."""
    index = task.code_names().index(name)
    if index < len(task.categorical):
        for flag, value in (("--code-steps", steps), ("--code-range", span)):
            if value is not None:
                raise gancore.ConfigError(
                    [f"{flag}: only for a continuous code ({task.describe_code(name)})"]
                )
        return torch.arange(task.categorical[index])
    steps = DEFAULT_STEPS if steps is None else steps
    if steps < 2:
        raise gancore.ConfigError([f"--code-steps: must be >= 2 (got {steps})"])
    low, high = DEFAULT_RANGE if span is None else span
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise gancore.ConfigError(
            [f"--code-range: expected LOW < HIGH, finite numbers (got {low:g} {high:g})"]
        )
    return torch.linspace(low, high, steps)


def vary_code(run: gancore.LoadedRun, args: argparse.Namespace) -> str:
    """``--vary-code NAME``: write the grid (rows: the code's values; ``ceil(--num / rows)``
    columns, each with its own noise and other codes from ``--seed``); the line ``gan sample``
    prints."""
    task = run.built.task
    if not isinstance(task, InfoGAN):
        raise gancore.ConfigError(
            [
                f"--vary-code: task {run.config.task.spec.name!r} has no latent codes (task "
                "'infogan' has)"
            ]
        )
    name = args.vary_code
    names = task.code_names()
    if name not in names:
        known = ", ".join(task.describe_code(n) for n in names)
        raise gancore.ConfigError([f"--vary-code: unknown code {name!r}; codes: {known}"])
    values = code_values(task, name, args.code_steps, args.code_range)
    rows = len(values)
    columns = max(1, math.ceil(args.num / rows))
    inputs = task.code_sweep(run.generators, name, values, columns, args.seed)
    with torch.no_grad():
        grid = task.sample(run.generators, {"z": inputs["z"].to(run.device)})
    images = grid.images.float().cpu()
    categorical = values.dtype == torch.int64
    row_names = [f"{name}={int(v)}" if categorical else f"{name}={float(v):+.2f}" for v in values]
    out = args.out or args.run_dir / "samples" / f"vary-{name}-{args.seed}.png"
    gancore.save_grid(images, out, columns=columns, row_names=row_names)
    return (
        f"wrote {out} (rows: {task.describe_code(name)} = {row_names[0].split('=')[1]} .. "
        f"{row_names[-1].split('=')[1]}; columns: noise and other codes from seed {args.seed})"
    )
