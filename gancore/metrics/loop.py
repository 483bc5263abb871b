"""The training loop's metric context: generation and real data split over processes.

:class:`LoopMetricContext` is the :class:`gancore.protocols.MetricContext` that the loop,
``gan eval`` and ``gan sample`` build over a run's generators; it can be restricted to one class
(per-class metrics, intra-class FID). :func:`evaluate_metrics` runs the configured metrics and
flattens their results; :func:`check_metrics` checks them before the first step.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gancore._classes import ClassSubset, is_conditional
from gancore._errors import ConfigError
from gancore._task import mix_seed
from gancore.protocols import Dataset, Task

if TYPE_CHECKING:
    from gancore._config import RunConfig

__all__ = [
    "SEED_BLOCK",
    "LoopMetricContext",
    "check_metrics",
    "evaluate_metrics",
    "metric_prefixes",
]

# Generated samples' inputs are drawn this many at a time, each block from its own seed, so that
# a sample does not depend on the batch size it is generated with.
SEED_BLOCK = 100


class LoopMetricContext:
    """:class:`gancore.protocols.MetricContext` over a run's (EMA) generators, for every process.

    Every batch is split across processes: each generates (or loads) its contiguous share, applies
    the metric's function to it (``map_generated`` / ``map_real``: the feature extractor, so that
    extraction is split too), and the outputs are gathered in order, so every process ends with the
    same outputs as a single process would compute. ``generate`` and ``real`` yield whole batches
    of samples (gathered). Generation runs under ``autocast`` (the training precision); metrics
    turn it off for their extractors.

    ``generator_kind`` (``"ema"`` or ``"raw"``) and ``truncation`` (a generator's
    ``truncation_psi`` attribute, ``None`` without truncation) are stated in every result.

    ``label`` restricts both sides to one class: generated inputs come from the conditional
    task's ``sample_inputs(..., labels=[label] * n)``, and ``dataset`` becomes the
    :class:`~gancore._classes.ClassSubset` of the items with that label (so ``real`` draws only
    from them and metrics count and cache that class alone); ``full_dataset`` keeps the whole data,
    which ``sample_inputs`` still receives. A task that is not conditional is a ``ValueError``.
    """

    def __init__(
        self,
        task: Task,
        generators: Mapping[str, nn.Module],
        dataset: Dataset,
        device: torch.device,
        accelerator: Any = None,
        *,
        generator_kind: str | None = None,
        truncation: float | None = None,
        autocast: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
        label: int | None = None,
    ) -> None:
        self.task = task
        self.generators = generators
        self.full_dataset = dataset
        self.label = label
        self.dataset: Dataset = dataset
        if label is not None:
            if not is_conditional(task):
                raise ValueError(
                    f"task {type(task).__name__} is not conditional; it cannot generate samples "
                    f"of class {label}"
                )
            self.dataset = ClassSubset(dataset, label)
        self.device = device
        self.generator_kind = generator_kind
        if truncation is None:
            psis = [getattr(g, "truncation_psi", None) for g in generators.values()]
            truncation = next((float(p) for p in psis if p is not None), None)
        self.truncation = truncation
        self._accelerator = accelerator
        self._autocast = autocast or contextlib.nullcontext

    # -- MetricContext ----------------------------------------------------------------------------

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        for (images,) in self.map_generated(num, batch_size, seed, lambda x: (x,), []):
            yield images

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        order = self._real_order(num, seed)
        for start in range(0, num, batch_size):
            yield self._load(order[start : start + batch_size])

    # -- split across processes -------------------------------------------------------------------

    def everyone(self, flag: bool) -> bool:
        """True when ``flag`` is true on every process (a cache hit everywhere, say)."""
        acc = self._accelerator
        if acc is None or acc.num_processes == 1:
            return flag
        votes = acc.reduce(torch.tensor([float(flag)], device=self.device), reduction="sum")
        return bool(votes.item() == acc.num_processes)

    def map_generated(
        self,
        num: int,
        batch_size: int,
        seed: int,
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        shapes: list[tuple[int, ...]],
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """``fn`` of generated batches (``num`` samples from ``seed``), each process doing its share.

        Inputs are drawn in blocks of :data:`SEED_BLOCK` samples, block ``j`` from
        ``task.sample_inputs(..., SEED_BLOCK, seed=mix(seed, j))`` (with ``labels`` of the
        context's class, when it has one), and batches are cut from them: sample ``k`` is the same
        whatever ``batch_size``, ``num`` and the number of processes, so ``batch_size`` changes
        memory, never a result. The shape of one sample is appended to ``shapes`` once.
        """
        blocks: dict[int, Mapping[str, torch.Tensor]] = {}
        for start in range(0, num, batch_size):
            n = min(batch_size, num - start)
            inputs = self._block_inputs(blocks, start, n, seed)
            yield self._split(n, functools.partial(self._sample, inputs), fn, shapes)

    def _block_inputs(
        self, blocks: dict[int, Mapping[str, torch.Tensor]], start: int, n: int, seed: int
    ) -> Mapping[str, torch.Tensor]:
        """Inputs of samples ``start:start + n``, cut from their seed blocks (drawn once each;
        ``blocks`` keeps only those a later batch can still need)."""
        first, last = start // SEED_BLOCK, (start + n - 1) // SEED_BLOCK
        for block in range(first, last + 1):
            if block not in blocks:
                blocks[block] = self._inputs(SEED_BLOCK, mix_seed(seed, block))
        parts = [blocks[b] for b in range(first, last + 1)]
        for block in [b for b in blocks if b < last]:
            del blocks[block]  # batches go forward: only the last block can be reused
        lo = start - first * SEED_BLOCK
        return {key: torch.cat([part[key] for part in parts])[lo : lo + n] for key in parts[0]}

    def _inputs(self, n: int, seed: int) -> Mapping[str, torch.Tensor]:
        if self.label is None:
            return self.task.sample_inputs(self.generators, self.full_dataset, n, seed)
        labels = torch.full((n,), self.label, dtype=torch.int64)
        sample_inputs: Any = self.task.sample_inputs  # the optional seam: 'labels'
        inputs: Mapping[str, torch.Tensor] = sample_inputs(
            self.generators, self.full_dataset, n, seed, labels=labels
        )
        return inputs

    def map_real(
        self,
        num: int,
        batch_size: int,
        seed: int,
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        shapes: list[tuple[int, ...]],
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        """``fn`` of the batches :meth:`real` yields, each process doing its share."""
        order = self._real_order(num, seed)
        for start in range(0, num, batch_size):
            rows = order[start : start + batch_size]
            yield self._split(len(rows), functools.partial(self._load, rows), fn, shapes)

    def _split(
        self,
        n: int,
        make: Callable[[int, int], torch.Tensor],
        fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
        shapes: list[tuple[int, ...]],
    ) -> tuple[torch.Tensor, ...]:
        acc = self._accelerator
        world = acc.num_processes if acc is not None else 1
        rank = acc.process_index if acc is not None else 0
        sizes = [n // world + (r < n % world) for r in range(world)]
        lo = sum(sizes[:rank])
        # A process without a share (n < world) still runs on one sample: gather needs a tensor
        # of the right shape from everyone. Its output is dropped below.
        samples = make(lo, lo + sizes[rank]) if sizes[rank] else make(0, 1)
        if not shapes:
            shapes.append(tuple(samples.shape[1:]))
        outputs = fn(samples)
        if world == 1:
            return outputs
        gathered = []
        most = max(sizes)
        for out in outputs:
            padded = out.new_zeros((most, *out.shape[1:]))
            padded[: sizes[rank]] = out[: sizes[rank]]
            everyone = acc.gather(padded.contiguous())  # [world * most, ...], rank by rank
            gathered.append(
                torch.cat([everyone[r * most : r * most + sizes[r]] for r in range(world)])
            )
        return tuple(gathered)

    def _sample(self, inputs: Mapping[str, torch.Tensor], lo: int, hi: int) -> torch.Tensor:
        """Generated samples for rows ``lo:hi`` of ``inputs``."""
        share = {k: t[lo:hi].to(self.device) for k, t in inputs.items()}
        with torch.no_grad(), self._autocast():
            grid = self.task.sample(self.generators, share)
        return grid.images.float()

    def _real_order(self, num: int, seed: int) -> torch.Tensor:
        """Dataset indices of ``num`` real samples: a permutation from ``seed``, repeated if the
        dataset is smaller than ``num``."""
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.dataset), generator=gen)
        if num > len(order):
            order = order.repeat(math.ceil(num / len(order)))
        return order[:num]

    def _load(self, rows: torch.Tensor, lo: int = 0, hi: int | None = None) -> torch.Tensor:
        """Real samples ``x`` of dataset rows ``rows[lo:hi]``."""
        get_batch = getattr(self.dataset, "get_batch", None)
        indices = rows[lo:hi].tolist()
        if callable(get_batch):
            return get_batch(indices)["x"].to(self.device)
        return torch.stack([self.dataset[i]["x"] for i in indices]).to(self.device)


def metric_prefixes(names: Sequence[str]) -> list[str]:
    """Key prefixes of configured metrics: the name, then ``name-2``, ``name-3`` for repeats."""
    seen: dict[str, int] = {}
    prefixes = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        prefixes.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return prefixes


def _implied_protocol(name: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """A protocol for a metric that states none: its name, counts, seeds and text settings."""
    protocol: dict[str, Any] = {"metric": name}
    for key, value in result.items():
        if key.startswith(("num_", "seed")) or value is None or isinstance(value, str | bool):
            protocol[key] = value
    return protocol


def evaluate_metrics(
    metrics: Sequence[tuple[str, Any]],
    context: LoopMetricContext,
    generator_kind: str | None = None,
) -> dict[str, Any]:
    """Run every metric; flat results ``{"<metric>.<key>": value, "<metric>.protocol": {...}}``.

    A metric's own ``"protocol"`` dict is completed with the generator used (``"ema"``/``"raw"``)
    and the truncation; a metric that returns none gets one implied from its counts, seeds and text
    values. Repeated metric names are keyed ``name-2``, ``name-3``.
    """
    kind = generator_kind or context.generator_kind
    flat: dict[str, Any] = {}
    for prefix, (name, metric) in zip(
        metric_prefixes([n for n, _ in metrics]), metrics, strict=True
    ):
        result = dict(metric.evaluate(context))
        protocol = result.pop("protocol", None)
        protocol = (
            dict(protocol) if isinstance(protocol, Mapping) else _implied_protocol(name, result)
        )
        if protocol.get("generator") is None:
            protocol["generator"] = kind
        protocol.setdefault("truncation", context.truncation)
        label = getattr(context, "label", None)
        if label is not None:  # a per-class value is not comparable with an overall one
            protocol["class"] = label
        result.setdefault("generator", kind)
        for key, value in result.items():
            flat[f"{prefix}.{key}"] = value
        flat[f"{prefix}.protocol"] = protocol
    return flat


def check_metrics(config: RunConfig, metrics: Sequence[tuple[str, Any]]) -> None:
    """Before the first step: ``training.best_metric`` names a value the metrics give, and every
    metric's extractor loads (a missing weights file stops the run now, not at its end)."""
    key = config.training.best_metric
    prefixes = metric_prefixes([n for n, _ in metrics])
    if key is not None:
        prefix, _, value = key.partition(".")
        if prefix not in prefixes:
            from gancore._names import did_you_mean

            configured = ", ".join(prefixes) or "none"
            raise ConfigError(
                [
                    f"training.best_metric: {key!r} names no configured metric"
                    f"{did_you_mean(prefix, prefixes)}; configured [[metrics]]: {configured} "
                    "(keys look like 'fid.fd-digits')"
                ],
                config.source,
            )
        metric = metrics[prefixes.index(prefix)][1]
        value_keys = getattr(metric, "value_keys", None)
        if callable(value_keys) and value not in value_keys():
            from gancore._names import did_you_mean

            keys = [f"{prefix}.{k}" for k in value_keys()]
            raise ConfigError(
                [
                    f"training.best_metric: metric {prefix!r} gives no value {value!r}"
                    f"{did_you_mean(key, keys)}; it gives {', '.join(keys)}"
                ],
                config.source,
            )
    for _, metric in metrics:
        load = getattr(metric, "load_extractor", None)
        if callable(load):
            load()
