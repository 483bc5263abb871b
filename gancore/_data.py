"""Batches: a deterministic, resumable stream that is the same whatever the number of processes.

The stream of indices is the concatenation of seeded permutations of the dataset (one per epoch).
Global batch ``b`` is positions ``[b*B, (b+1)*B)`` of that stream; process ``r`` of ``W`` takes the
``r``-th contiguous ``B/W`` of it. A run is therefore resumed exactly by remembering how many
images were drawn (a stage may change ``B``: the next batch starts where the last one ended), and
one process with batch ``B`` sees what ``W`` processes see together.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from gancore.protocols import Dataset

__all__ = ["BatchPlan", "batches"]


class BatchPlan(Sampler[list[int]]):
    """Index lists of one process's share of each global batch, from batch ``start`` on."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        position: int | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("the dataset is empty")
        if batch_size % world_size:
            raise ValueError(
                f"training.batch_size ({batch_size}) must be divisible by the number of "
                f"processes ({world_size})"
            )
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        # where the stream starts: ``position`` images in, or else ``start`` batches in
        self.position = start * batch_size if position is None else position
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.size, generator=gen)
            self._epoch = epoch
        return self._perm

    def global_batch(self, index: int) -> list[int]:
        return self._global_batch_at(index * self.batch_size)

    def _global_batch_at(self, position: int) -> list[int]:
        """The ``batch_size`` indices at ``position`` images into the stream."""
        out: list[int] = []
        while len(out) < self.batch_size:
            epoch, offset = divmod(position, self.size)
            take = min(self.batch_size - len(out), self.size - offset)
            out.extend(self._permutation(epoch)[offset : offset + take].tolist())
            position += take
        return out

    def local_batch(self, index: int) -> list[int]:
        return self._local_batch_at(index * self.batch_size)

    def _local_batch_at(self, position: int) -> list[int]:
        share = self.batch_size // self.world_size
        return self._global_batch_at(position)[self.rank * share : (self.rank + 1) * share]

    def __iter__(self) -> Iterator[list[int]]:
        position = self.position
        while True:
            yield self._local_batch_at(position)
            position += self.batch_size

    def __len__(self) -> int:  # an endless stream; DataLoader only needs this for len()
        return 2**62


def batches(
    dataset: Dataset, plan: BatchPlan, device: torch.device, num_workers: int = 0
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless batches (dicts of stacked tensors) on ``device``."""
    get_batch = getattr(dataset, "get_batch", None)
    if num_workers == 0 and callable(get_batch):
        # Fast path for in-memory datasets: one vectorised gather instead of N __getitem__ calls.
        for indices in plan:
            yield _to(get_batch(indices), device)
        return
    loader: DataLoader[Any] = DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_sampler=plan,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        # Its own generator: creating the iterator must not draw from the global RNG, or a
        # resumed run's augmentation randomness would be shifted by one draw.
        generator=torch.Generator().manual_seed(plan.seed),
    )
    for batch in loader:
        yield _to(batch, device)


def _to(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: t.to(device, non_blocking=True) for k, t in batch.items()}
