"""The loop's mutable state as one object, saved and restored as one object.

Everything a checkpoint needs to continue a run exactly, other than the weights and the
optimizers: counters, the stage, the best checkpoint so far, the augmenter's pending feedback and
the random number generators of each process.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs
import numpy as np
import torch

from gancore._task import mix_seed

__all__ = ["AugmentFeedback", "LoopState", "rng_state", "seed_process", "set_rng_state"]


@attrs.define(kw_only=True)
class AugmentFeedback:
    """E[sign(D(real))] of the critic's raw scores on real data, summed since the last feedback.

    The statistic the :class:`~gancore.protocols.Augmenter` protocol defines (Karras et al. 2020,
    ADA's overfitting heuristic r_t): the step context adds to it on every critic call with real
    data, and every ``feedback_interval`` critic updates :meth:`deliver` reduces it over the
    processes, hands the mean to ``augmenter.feedback`` and starts over.
    """

    sign_sum: torch.Tensor
    count: int = 0  # scores summed
    images: int = 0  # real images behind them

    @classmethod
    def zero(cls, device: torch.device) -> AugmentFeedback:
        return cls(sign_sum=torch.zeros((), device=device))

    def deliver(self, augmenter: Any, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """``augmenter.feedback(mean sign, images)`` over all processes (``reduce`` sums)."""
        if not self.count:
            return
        device = self.sign_sum.device
        stats = torch.stack(
            [
                self.sign_sum.float(),
                torch.tensor(float(self.count), device=device),
                torch.tensor(float(self.images), device=device),
            ]
        )
        total_sign, count, images = reduce(stats).tolist()
        augmenter.feedback(total_sign / count, int(images))
        self.sign_sum, self.count, self.images = torch.zeros((), device=device), 0, 0

    def state_dict(self) -> dict[str, Any]:
        return {"sum": self.sign_sum.detach().cpu(), "count": self.count, "images": self.images}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.sign_sum = state["sum"].to(self.sign_sum.device)
        self.count, self.images = int(state["count"]), int(state["images"])


@attrs.define(kw_only=True)
class LoopState:
    """Counters and bookkeeping of a run; :meth:`state_dict` is what a checkpoint stores."""

    iteration: int = 0  # iterations done
    batches_drawn: int = 0  # global batches taken from the data stream
    images_drawn: int = 0  # real images in them (the data stream's position)
    updates: dict[str, int] = attrs.field(factory=dict)  # optimizer updates per phase
    nonfinite_total: int = 0  # steps skipped for a non-finite loss, over the run
    nonfinite_run: int = 0  # ... in a row (not saved: a resumed run starts a new row)
    stage: int = 0  # index of the stage the run is in
    best: dict[str, Any] = attrs.field(factory=dict)  # the best checkpoint so far, {} = none

    def state_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "batches_drawn": self.batches_drawn,
            "images_drawn": self.images_drawn,
            "updates": dict(self.updates),
            "nonfinite_total": self.nonfinite_total,
            "stage": self.stage,
            "best": dict(self.best),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.batches_drawn = int(state["batches_drawn"])
        self.images_drawn = int(state["images_drawn"])
        self.updates = {str(k): int(v) for k, v in state["updates"].items()}
        self.nonfinite_total = int(state["nonfinite_total"])
        self.nonfinite_run = 0
        self.stage = int(state.get("stage", 0))
        self.best = dict(state.get("best") or {})


def rng_state() -> dict[str, Any]:
    """This process's random number generators (torch, numpy, python, CUDA), as tensors and lists
    that ``torch.load(weights_only=True)`` reads back."""
    np_state = cast(tuple[Any, ...], np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": [*list(random.getstate()[1]), random.getstate()[0]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    *internal, version = state["python"]
    random.setstate((version, tuple(internal), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_process(seed: int, rank: int) -> None:
    """Per-process random streams (augmentations, dropout); latents and data do not use them."""
    process_seed = mix_seed(seed, rank, 7) % (2**31)
    torch.manual_seed(process_seed)
    np.random.seed(process_seed)
    random.seed(process_seed)
