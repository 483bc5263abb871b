"""BigGAN's truncation trick (Brock et al. 2019, Sec. 3.1): latent values whose magnitude exceeds
a threshold are resampled until they fall inside it, trading variety for fidelity.

``gan sample RUN --truncation-threshold T`` sets ``truncation_threshold`` on every module of the
run's generators that has one (``sagan``, ``biggan``, ``biggan-deep``, also inside a wrapper such as
gan-conditional's ``conditional-batchnorm``); their forward then truncates its latents. The flag
is not gan-stylegan's ``--truncation PSI``: that one interpolates towards the mean style,
``w' = w_avg + psi (w - w_avg)`` with psi in [0, 1], whereas this one is a threshold on |z| in
units of the prior's standard deviation (any T > 0; BigGAN's Fig. 2 sweeps 2.0 down to 0.04).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import torch
from torch import nn

import gancore

__all__ = ["TRUNCATION_SEED", "set_truncation_threshold", "truncate_latents", "truncation"]

# Seed of the stream the resampled values come from at every call: the same latents give the
# same truncated latents, so a sample grid is reproducible.
TRUNCATION_SEED = 0
MAX_ROUNDS = 100_000  # resampling rounds before giving up (threshold 0.04 needs ~500 for 1e6)


def truncate_latents(
    z: torch.Tensor, threshold: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``z`` with every value ``|z| > threshold`` redrawn from ``N(0, 1)`` until it is inside.

    The kept values are untouched; the redrawn ones follow ``N(0, 1)`` conditioned on ``|z| <=
    threshold``. ``generator`` (a CPU ``torch.Generator``) gives the redraws; default: one seeded
    with :data:`TRUNCATION_SEED`.
    """
    if not threshold > 0:
        raise ValueError(f"truncation threshold must be > 0 (got {threshold:g})")
    if generator is None:
        generator = torch.Generator().manual_seed(TRUNCATION_SEED)
    out = z.detach().clone()
    outside = out.abs() > threshold
    for _ in range(MAX_ROUNDS):
        count = int(outside.sum())
        if count == 0:
            return out
        draws = torch.randn(count, generator=generator).to(out.device, out.dtype)
        out[outside] = draws
        outside = out.abs() > threshold
    raise RuntimeError(f"truncation: threshold {threshold:g} left values outside it")


def set_truncation_threshold(
    generators: Mapping[str, nn.Module], threshold: float | None
) -> list[str]:
    """Set ``truncation_threshold`` on every module of ``generators`` that has one; the names of
    the generators that have one. A run with none is a :class:`gancore.ConfigError`."""
    if threshold is not None and not threshold > 0:
        raise gancore.ConfigError([f"--truncation-threshold: must be > 0 (got {threshold:g})"])
    names = []
    for name, generator in generators.items():
        modules = [m for m in generator.modules() if hasattr(m, "truncation_threshold")]
        for module in modules:
            setattr(module, "truncation_threshold", threshold)  # noqa: B010 (nn.Module typing)
        if modules:
            names.append(name)
    if not names:
        kinds = ", ".join(f"{n!r} ({type(g).__name__})" for n, g in generators.items())
        raise gancore.ConfigError(
            [
                "--truncation-threshold: no generator of this run resamples its latents "
                f"(sagan, biggan, biggan-deep; this run has {kinds})"
            ]
        )
    return names


def truncation(run: gancore.LoadedRun, args: argparse.Namespace) -> str:
    """``--truncation-threshold``: truncate the run's latents; the note for the grid's title."""
    set_truncation_threshold(run.generators, args.truncation_threshold)
    return f"truncation threshold {args.truncation_threshold:g}"
