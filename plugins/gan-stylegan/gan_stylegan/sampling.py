"""The options gan-stylegan adds to ``gan sample``: the truncation trick and the style-mixing grid.

- ``--truncation PSI [--truncation-cutoff K]`` sets ``truncation_psi`` and ``truncation_cutoff`` on
  every generator of the loaded run that has them, before the usual sample grid is drawn.
- ``--style-mixing [--crossover K]`` draws the style-mixing figure (Karras et al. 2019, Fig. 3)
  instead of the sample grid, from ``sqrt(--num)`` row and column sources.

Both work with any generator that has the abilities of :class:`StyleControls`, not only this
plugin's.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import nn

import gancore

__all__ = [
    "StyleControls",
    "set_truncation",
    "style_generator",
    "style_mixing",
    "style_mixing_grid",
    "truncation",
]


@runtime_checkable
class StyleControls(Protocol):
    """What ``gan sample`` uses of a style-based generator (this plugin's, or any other).

    - ``truncation_psi`` (1.0 = off) and ``truncation_cutoff`` (``None`` = every style layer, else
      only layers ``< cutoff``): the truncation trick, ``w' = w_avg + psi * (w - w_avg)``, applied
      by the generator's forward whenever ``psi != 1``. ``gan sample --truncation PSI
      [--truncation-cutoff K]`` sets both on the loaded generator; metrics leave them at 1.0.
    - ``num_ws``: how many style inputs (layers that take a ``w``) the generator has.
    - ``mix_styles(rows, columns, crossover)``: images ``[R, C, ch, H, W]`` for latents ``rows``
      ``[R, latent_dim]`` and ``columns`` ``[C, latent_dim]``; image ``[i, j]`` takes the ``w`` of
      ``rows[i]`` for style layers ``< crossover`` and that of ``columns[j]`` from ``crossover`` on
      (``gan sample --style-mixing``). Deterministic in eval mode.
    """

    truncation_psi: float
    truncation_cutoff: int | None
    num_ws: int

    def mix_styles(
        self, rows: torch.Tensor, columns: torch.Tensor, crossover: int
    ) -> torch.Tensor: ...


# -------------------------------------------------------------------------------------------------
# Truncation
# -------------------------------------------------------------------------------------------------


def set_truncation(
    generators: Mapping[str, nn.Module], psi: float, cutoff: int | None = None
) -> list[str]:
    """Set the truncation trick on every generator that supports it (``truncation_psi``); the
    names of those generators. A run with none is a :class:`gancore.ConfigError`."""
    if not 0.0 <= psi <= 1.0:  # psi > 1 extrapolates; allowed by the formula but never wanted
        raise gancore.ConfigError([f"--truncation: must be between 0 and 1 (got {psi:g})"])
    if cutoff is not None and cutoff < 1:
        raise gancore.ConfigError([f"--truncation-cutoff: must be >= 1 (got {cutoff})"])
    names = [name for name, g in generators.items() if hasattr(g, "truncation_psi")]
    if not names:
        kinds = ", ".join(f"{n!r} ({type(g).__name__})" for n, g in generators.items())
        raise gancore.ConfigError(
            [f"--truncation: no generator of this run supports truncation (has {kinds})"]
        )
    for name in names:
        setattr(generators[name], "truncation_psi", float(psi))  # noqa: B010 (nn.Module typing)
        setattr(generators[name], "truncation_cutoff", cutoff)  # noqa: B010
    return names


def truncation(run: gancore.LoadedRun, args: argparse.Namespace) -> str:
    """``--truncation``: truncate the run's style generators; the note for the grid's title."""
    set_truncation(run.generators, args.truncation, args.truncation_cutoff)
    return f"truncation {args.truncation:g}"


# -------------------------------------------------------------------------------------------------
# Style mixing
# -------------------------------------------------------------------------------------------------


def style_generator(generators: Mapping[str, nn.Module]) -> tuple[str, StyleControls]:
    """The run's generator that can mix styles: the one called ``generator``, else the only one."""
    able = {n: g for n, g in generators.items() if isinstance(g, StyleControls)}
    if "generator" in able:
        return "generator", able["generator"]
    if len(able) == 1:
        ((name, generator),) = able.items()
        return name, generator
    kinds = ", ".join(f"{n!r} ({type(g).__name__})" for n, g in generators.items())
    raise gancore.ConfigError(
        [
            "--style-mixing: needs one style-based generator with num_ws and mix_styles() "
            f"(this run has {kinds})"
        ]
    )


@torch.no_grad()
def style_mixing_grid(
    generator: StyleControls, rows: torch.Tensor, columns: torch.Tensor, crossover: int
) -> torch.Tensor:
    """The style-mixing figure (Karras et al. 2019, Fig. 3) as ``[R + 1, C + 1, ch, H, W]``.

    Row 0 holds the column sources, column 0 the row sources (the corner is blank, -1); cell
    ``(i + 1, j + 1)`` is ``mix_styles`` of row ``i`` and column ``j`` at ``crossover``.
    """
    device = next(iter(generator.parameters())).device  # type: ignore[attr-defined]
    rows, columns = rows.to(device), columns.to(device)
    mixed = generator.mix_styles(rows, columns, crossover).cpu()
    row_sources = generator.mix_styles(rows, columns[:1], generator.num_ws)[:, 0].cpu()
    column_sources = generator.mix_styles(rows[:1], columns, 0)[0].cpu()
    corner = torch.full_like(row_sources[:1], -1.0)
    top = torch.cat([corner, column_sources])[None]
    body = torch.cat([row_sources[:, None], mixed], dim=1)
    return torch.cat([top, body])


def style_mixing(run: gancore.LoadedRun, args: argparse.Namespace) -> str:
    """``--style-mixing``: write the grid of ``sqrt(--num)`` sources per side (rows from
    ``--seed``, columns from ``--seed + 1``); the line ``gan sample`` prints."""
    side = max(1, math.isqrt(args.num))
    name, generator = style_generator(run.generators)
    crossover = generator.num_ws // 2 if args.crossover is None else args.crossover
    if not 0 <= crossover <= generator.num_ws:
        raise gancore.ConfigError(
            [
                f"--crossover: must be between 0 and {generator.num_ws} (the style layers of "
                f"generator {name!r}; got {crossover})"
            ]
        )
    latent_dim = int(generator.latent_dim)  # type: ignore[attr-defined]
    grid = style_mixing_grid(
        generator,
        _seeded_normal(side, latent_dim, args.seed),
        _seeded_normal(side, latent_dim, args.seed + 1),
        crossover,
    )
    out = args.out or args.run_dir / "samples" / f"style-mixing-{args.seed}.png"
    gancore.save_grid(grid.flatten(0, 1), out, columns=side + 1)
    return f"wrote {out} (rows: layers < {crossover}; columns: layers >= {crossover})"


def _seeded_normal(num: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))
