"""The ``progressive`` task: noise to image with networks that grow a resolution per stage
(Karras et al. 2018, Sec. 3).

Each ``[[stages]]`` table names its data ``resolution``; at the stage's start ``begin_stage``
grows the generator and the critic to it, one doubling at a time, and the loop resizes every
real batch to it. Over the stage's ``fade_in`` the loop ramps ``step.alpha`` from 0 to 1; the
task hands it to both networks (their ``alpha`` buffer) and blends the real images the same way
the generator's output is blended, ``(1 - alpha) * up(down(x)) + alpha * x``, so the critic cannot
tell real from fake by their sharpness during the fade-in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gan_progressive.networks import START_RESOLUTION, fade
from gancore import ConfigError, SampleGrid, StepContext, TaskBuildContext, Unconditional

__all__ = ["Progressive", "blend_real"]


class Growing(Protocol):
    """What the task needs of its networks (the ``pggan`` generator and critic)."""

    alpha: torch.Tensor
    resolution: int
    final_resolution: int

    def grow(self) -> None: ...


def blend_real(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Real images ``[N, C, R, R]`` as the fading network sees them:
    ``(1 - alpha) * up(avgpool(x)) + alpha * x`` (nearest upsampling of the 2x2 means)."""
    if alpha >= 1.0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
    return fade(low, x, alpha)


def _growing(module: nn.Module, what: str, name: str) -> Growing:
    for attribute in ("grow", "resolution", "final_resolution", "alpha"):
        if not hasattr(module, attribute):
            raise ValueError(
                f"task 'progressive': {what} {name!r} cannot grow (it has no {attribute!r}); "
                "use the 'pggan' generator and critic"
            )
    return module  # type: ignore[return-value]


@attrs.frozen(kw_only=True)
class Progressive:
    """Progressive growing: ``G: z -> x`` and ``D: x -> score`` grown to each stage's
    resolution, the newest block faded in over the stage's ``fade_in``."""

    blend_real: bool = attrs.field(
        default=True,
        validator=attrs.validators.instance_of(bool),
        metadata={
            "doc": "blend the real images during a fade-in like the generator's output, "
            "(1 - alpha) * up(down(x)) + alpha * x (the paper); false = the real images as they are"
        },
    )

    def build(self, context: TaskBuildContext) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        shape = tuple(context.dataset.shapes.get("x", ()))
        if len(shape) != 3:
            raise ValueError(
                f"task 'progressive': the dataset must provide images 'x' of shape (C, H, W) "
                f"(got keys {sorted(context.dataset.shapes)})"
            )
        generator = context.build_generator()
        critic = context.build_critic()
        config = context.config
        _growing(generator, "generator", config.generator.name if config.generator else "?")
        _growing(critic, "critic", config.critic.name if config.critic else "?")
        return {"generator": generator}, {"critic": critic}

    def begin_stage(self, stage: Any, players: dict[str, dict[str, nn.Module]]) -> None:
        """Grow both networks to the stage's resolution (default: the data's), a doubling at a
        time; new layers come from the stage's seeded random stream (the loop's)."""
        generator = _growing(players["generator"]["generator"], "generator", "generator")
        critic = _growing(players["critic"]["critic"], "critic", "critic")
        final = generator.final_resolution
        target = stage.resolution if stage.resolution is not None else final
        key = f"stages[{stage.index}].resolution"
        if target < START_RESOLUTION or target & (target - 1) or target > final:
            raise ConfigError(
                [
                    f"{key}: expected a power of two from {START_RESOLUTION} to the data's "
                    f"{final} (got {target})"
                ]
            )
        if target < generator.resolution:
            raise ConfigError(
                [
                    f"{key}: the networks are already {generator.resolution}x"
                    f"{generator.resolution} and cannot shrink to {target} (got {target})"
                ]
            )
        while generator.resolution < target:
            generator.grow()
        while critic.resolution < target:
            critic.grow()

    def _set_alpha(self, step: StepContext) -> float:
        alpha = float(step.alpha)
        for name in ("generator", "critic"):
            step.unwrap(name).alpha.fill_(alpha)  # type: ignore[operator]
        return alpha

    def _blended(
        self, step: StepContext, batch: Mapping[str, torch.Tensor]
    ) -> Mapping[str, torch.Tensor]:
        alpha = self._set_alpha(step)
        if not self.blend_real:
            return batch
        return {**batch, "x": blend_real(batch["x"], alpha)}

    # The steps and sampling are the core's noise-to-image task's, on the blended real batch.

    def critic_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return _PLAIN.critic_step(step, self._blended(step, batch))

    def generator_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return _PLAIN.generator_step(step, self._blended(step, batch))

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        return _PLAIN.sample_inputs(generators, dataset, num, seed)

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> SampleGrid:
        """Samples at the generator's current resolution, blended with its current alpha."""
        return _PLAIN.sample(generators, inputs)


_PLAIN = Unconditional()
