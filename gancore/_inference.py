"""Loading a trained run for sampling and evaluation (``gan sample``, ``gan eval``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from gancore._checkpoint import find_checkpoint, load_checkpoint
from gancore._config import RunConfig, load_config
from gancore._errors import ConfigError
from gancore._train import (
    Built,
    LoopMetricContext,
    _load_flat_state,
    _reference_points,
    build_run,
    evaluate_metrics,
)
from gancore.protocols import Dataset

__all__ = ["LoadedRun", "load_run"]


@attrs.define
class LoadedRun:
    """A run's config, built components and generator weights from one checkpoint."""

    config: RunConfig
    built: Built
    generators: dict[str, nn.Module]
    generator_kind: str  # "ema" or "raw"
    checkpoint: Path
    device: torch.device

    def context(self, dataset: Dataset | None = None) -> LoopMetricContext:
        """A metric context over this run's generators and ``dataset`` (default: the run's)."""
        return LoopMetricContext(
            self.built.task,
            self.generators,
            dataset if dataset is not None else self.built.dataset,
            self.device,
            generator_kind=self.generator_kind,
        )

    @torch.no_grad()
    def generate(self, num: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        return torch.cat(list(self.context().generate(num, batch_size, seed))).cpu()

    def reference(self) -> torch.Tensor | None:
        return _reference_points(self.built.dataset, self.config.run.seed)

    def evaluate(
        self, metrics: Sequence[tuple[str, Any]], dataset: Dataset | None = None
    ) -> dict[str, Any]:
        """Flat results of ``metrics`` (see :func:`gancore._train.evaluate_metrics`), scored
        against ``dataset`` (default: the run's own), headed by the run and checkpoint names."""
        result = evaluate_metrics(metrics, self.context(dataset), self.generator_kind)
        return {"run": str(self.config.run.name), "checkpoint": self.checkpoint.name, **result}


def load_run(run_dir: Path, which: str = "latest", raw: bool = False) -> LoadedRun:
    config_file = run_dir / "config.toml"
    if not config_file.is_file():
        raise ConfigError([f"{str(run_dir)!r} is not a run directory (no config.toml)"])
    config = load_config(config_file)
    path = find_checkpoint(
        run_dir / "checkpoints",
        which=which,
        hint="pass --checkpoint {name} to use the previous intact checkpoint",
    )
    weights, _ = load_checkpoint(path)
    built = build_run(config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use_ema = "ema" in weights and not raw
    _load_flat_state(built.generators, weights["ema" if use_ema else "generators"])
    for module in built.generators.values():
        module.to(device).eval()
    return LoadedRun(
        config=config,
        built=built,
        generators=built.generators,
        generator_kind="ema" if use_ema else "raw",
        checkpoint=path,
        device=device,
    )
