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

    @torch.no_grad()
    def generate(self, num: int, seed: int, batch_size: int = 256) -> torch.Tensor:
        context = LoopMetricContext(
            self.built.task, self.generators, self.built.dataset, self.device
        )
        return torch.cat(list(context.generate(num, batch_size, seed))).cpu()

    def reference(self) -> torch.Tensor | None:
        return _reference_points(self.built.dataset, self.config.run.seed)

    def evaluate(self, metrics: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        context = LoopMetricContext(
            self.built.task, self.generators, self.built.dataset, self.device
        )
        result = evaluate_metrics(metrics, context, self.generator_kind)
        return {"run": str(self.config.run.name), "checkpoint": self.checkpoint.name, **result}


def load_run(run_dir: Path, which: str = "latest", raw: bool = False) -> LoadedRun:
    config_file = run_dir / "config.toml"
    if not config_file.is_file():
        raise ConfigError([f"{str(run_dir)!r} is not a run directory (no config.toml)"])
    config = load_config(config_file)
    path = find_checkpoint(run_dir / "checkpoints", which=which)
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
