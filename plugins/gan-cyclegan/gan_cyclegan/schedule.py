"""Epochs to iterations for CycleGAN's learning-rate schedule.

Zhu et al. 2017 (Sec. 4) keep the learning rate constant for 100 epochs and decay it linearly to
zero over the next 100. gancore's optimizer schedule does this in iterations: ``schedule =
"linear"`` holds ``lr`` until iteration ``decay_start`` and then decays it linearly to
``lr * final_lr_scale`` (0 by default) at ``run.steps``. gancore's batches walk through one seeded
permutation of the dataset after another, so an epoch is exactly ``len(dataset) / batch_size``
iterations (a batch may straddle two epochs) and::

    run.steps   = (constant_epochs + decay_epochs) * len(dataset) / batch_size
    decay_start = constant_epochs * len(dataset) / batch_size

At the end of epoch ``constant_epochs + k`` the factor is then ``1 - k / decay_epochs``. The paper's
code changes the rate once per epoch instead, to ``1 - (k + 1) / (decay_epochs + 1)`` during epoch
``constant_epochs + k + 1``; the two agree to within ``1 / (decay_epochs + 1)``.

Run ``python -m gan_cyclegan.schedule --size 1067 --batch-size 1`` for the ``--set`` options.
"""

from __future__ import annotations

import argparse

import attrs

__all__ = ["EpochSchedule", "epoch_schedule", "lr_factor_at_epoch"]


@attrs.frozen(kw_only=True)
class EpochSchedule:
    """Iterations for a constant-then-linear-decay schedule given in epochs."""

    steps: int  # run.steps
    decay_start: int  # optimizers.<player>.decay_start
    steps_per_epoch: float  # len(dataset) / batch_size

    def overrides(self) -> list[str]:
        """The ``gan train --set`` options that apply it to both optimizers."""
        out = [f"run.steps={self.steps}"]
        for player in ("generator", "critic"):
            out += [
                f"optimizers.{player}.schedule=linear",
                f"optimizers.{player}.decay_start={self.decay_start}",
            ]
        return out


def epoch_schedule(
    dataset_size: int, batch_size: int, constant_epochs: int = 100, decay_epochs: int = 100
) -> EpochSchedule:
    """``run.steps`` and ``decay_start`` for ``constant_epochs`` at the full rate followed by
    ``decay_epochs`` of linear decay to zero (rounded to whole iterations)."""
    if dataset_size < 1 or batch_size < 1:
        raise ValueError(
            f"dataset_size and batch_size must be >= 1 (got {dataset_size}, {batch_size})"
        )
    if constant_epochs < 0 or decay_epochs < 1:
        raise ValueError(
            "constant_epochs must be >= 0 and decay_epochs >= 1 "
            f"(got {constant_epochs}, {decay_epochs})"
        )
    per_epoch = dataset_size / batch_size
    return EpochSchedule(
        steps=round((constant_epochs + decay_epochs) * per_epoch),
        decay_start=round(constant_epochs * per_epoch),
        steps_per_epoch=per_epoch,
    )


def lr_factor_at_epoch(epoch: int, constant_epochs: int, decay_epochs: int) -> float:
    """The learning-rate factor gancore reaches at the end of ``epoch`` (0 = the start)."""
    if epoch <= constant_epochs:
        return 1.0
    return max(0.0, 1.0 - (epoch - constant_epochs) / decay_epochs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gan_cyclegan.schedule",
        description="Print the gan train --set options for N constant + M decaying epochs.",
    )
    parser.add_argument("--size", type=int, required=True, help="items in the dataset (an epoch)")
    parser.add_argument("--batch-size", type=int, required=True, help="training.batch_size")
    parser.add_argument("--constant", type=int, default=100, help="epochs at the full rate (100)")
    parser.add_argument("--decay", type=int, default=100, help="epochs of linear decay (100)")
    args = parser.parse_args(argv)
    schedule = epoch_schedule(args.size, args.batch_size, args.constant, args.decay)
    print(" ".join(f"--set {o}" for o in schedule.overrides()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
