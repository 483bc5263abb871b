"""An iteration as data: the phases, in order, and the regularizers each one runs.

A phase is one kind of optimizer update: it calls the task's ``<name>_step``, adds the penalties
that run on every update, and steps the optimizers of the player groups it trains; the penalties
with a lazy interval ``k > 1`` run as their own update every ``k`` updates of the phase, multiplied
by ``k`` (Karras et al. 2020, StyleGAN2, Sec. 3.1; StyleGAN2-ADA's training loop has the same
list of phases). This module is the one place that decides what ``interval`` means, for critic and
generator regularizers alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "PHASE_KEYS",
    "Phase",
    "lazy_correction",
    "loss_terms",
    "plan_phases",
    "split_regularizers",
]

# The key of each phase's random stream (latents): the critic's and the generator's are fixed, so
# that their latents do not depend on which other phases a task has.
PHASE_KEYS: Mapping[str, int] = {"critic": 0, "generator": 1}


@attrs.frozen(kw_only=True)
class Phase:
    """One kind of update in an iteration."""

    name: str  # "critic", "generator", or a task's own (its method "<name>_step")
    key: int  # the random stream of its latents
    step: Callable[..., Any]  # task.<name>_step(step_context, batch) -> scalar loss
    groups: tuple[str, ...]  # player groups whose optimizers it steps
    repeats: int  # updates per iteration
    fresh_batches: bool  # each update draws a new batch (the first phase); else the last one
    every_step: tuple[tuple[str, Any], ...] = ()  # (name, regularizer): added to every update
    lazy: tuple[tuple[str, Any], ...] = ()  # (name, regularizer): own update every `interval`


def split_regularizers(
    regularizers: Sequence[tuple[str, Any]], player: str
) -> tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...]]:
    """(every-step, lazy) regularizers of ``player``: ``interval == 1`` is part of every update's
    loss; ``interval = k > 1`` is its own update every ``k`` updates, penalty times ``k``."""
    mine = [(n, r) for n, r in regularizers if r.player == player and not _is_loss_term(r)]
    return (
        tuple((n, r) for n, r in mine if r.interval == 1),
        tuple((n, r) for n, r in mine if r.interval > 1),
    )


def _is_loss_term(regularizer: Any) -> bool:
    return regularizer.player == "generator" and callable(getattr(regularizer, "loss_term", None))


def loss_terms(regularizers: Sequence[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    """The generator regularizers that are terms of the generator's adversarial loss: those with
    a ``loss_term(critic, real, fake, extra)`` method (feature matching). They see the critic and
    the real batch, so they run inside ``StepContext.generator_loss`` on every generator update,
    never lazily; an ``interval`` other than 1 is refused."""
    terms = tuple((n, r) for n, r in regularizers if _is_loss_term(r))
    for name, reg in terms:
        if reg.interval != 1:
            raise ValueError(
                f"regularizer {name!r}: a generator loss term runs on every generator update; "
                f"interval must be 1 (got {reg.interval})"
            )
    return terms


def lazy_correction(intervals: Sequence[int]) -> float:
    """c = 1 / (1 + sum 1/k) over a player's lazy regularizers; k/(k+1) for one (StyleGAN2).

    The optimizer's lr is multiplied by c and its betas raised to the power c, so that lazy
    updates keep the optimizer's effective time scale (Karras et al. 2020, Sec. 3.1).
    """
    lazy = [k for k in intervals if k > 1]
    return 1.0 / (1.0 + sum(1.0 / k for k in lazy)) if lazy else 1.0


def plan_phases(
    task: Any,
    phases: Mapping[str, str],
    regularizers: Sequence[tuple[str, Any]],
    critic_steps: int,
    generator_steps: int,
    trained: Callable[[str], bool] = lambda group: True,
) -> list[Phase]:
    """The phases of one iteration: the critic's, the generator's, then a task's own phases in the
    order its ``players`` names them. ``phases`` maps each player group to the phase training it;
    groups for which ``trained(group)`` is false are left out (a stage that trains only some).
    """
    order: list[str] = []
    for name in ("critic", "generator", *phases.values()):
        if name in phases.values() and name not in order:
            order.append(name)
    plan: list[Phase] = []
    for name in order:
        groups = tuple(g for g, phase in phases.items() if phase == name and trained(g))
        if not groups:
            continue
        every_step, lazy = split_regularizers(regularizers, name)
        step = getattr(task, f"{name}_step", None)
        if not callable(step):
            raise ValueError(
                f"task {type(task).__name__}: player groups {list(groups)} are trained by phase "
                f"{name!r}, but the task has no method '{name}_step'"
            )
        plan.append(
            Phase(
                name=name,
                key=PHASE_KEYS.get(name, 2 + order.index(name)),
                step=step,
                groups=groups,
                repeats={"critic": critic_steps, "generator": generator_steps}.get(name, 1),
                fresh_batches=not plan,
                every_step=every_step,
                lazy=lazy,
            )
        )
    return plan
