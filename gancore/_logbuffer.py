"""Logged scalars of one log interval, kept as tensors until the interval is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["LogBuffer"]


class LogBuffer:
    """Sums of logged scalars per name over a log interval, and how many were logged.

    Values stay tensors on the device: adding one costs no host synchronization and no arithmetic
    until :meth:`means` runs, once per interval. A name logged more than ``fold`` times in an
    interval has its values folded into one partial sum, so memory stays bounded however long the
    interval is.
    """

    def __init__(self, device: torch.device, fold: int = 256) -> None:
        if fold < 2:
            raise ValueError(f"'fold' must be >= 2 (got {fold})")
        self.device = device
        self.fold = fold
        self._values: dict[str, list[torch.Tensor]] = {}
        self._counts: dict[str, int] = {}

    def add(self, logs: Mapping[str, torch.Tensor]) -> None:
        """Record one value per name (scalar tensors, detached)."""
        for name, value in logs.items():
            values = self._values.setdefault(name, [])
            values.append(value)
            self._counts[name] = self._counts.get(name, 0) + 1
            if len(values) >= self.fold:
                values[:] = [_sum(values, self.device)]

    def means(self) -> tuple[list[str], torch.Tensor | None]:
        """Sorted names and their means over the interval as one tensor (``None`` when empty)."""
        names = sorted(self._values)
        if not names:
            return names, None
        return names, torch.stack(
            [_sum(self._values[n], self.device) / self._counts[n] for n in names]
        )

    def clear(self) -> None:
        """Start a new interval."""
        self._values.clear()
        self._counts.clear()

    def __len__(self) -> int:
        return len(self._values)


def _sum(values: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """The sum of logged scalars (one stack and one reduction, not one addition per step)."""
    if len(values) == 1:
        return values[0].to(device)
    return torch.stack([v.to(device) for v in values]).sum()
