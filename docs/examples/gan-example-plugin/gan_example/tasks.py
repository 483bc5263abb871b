"""Tasks of gan-example: what one critic step and one generator step compute from a batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch
from torch import nn

import gancore


def pack(x: torch.Tensor, packing: int) -> torch.Tensor:
    """``[N, C, ...] -> [N / packing, packing * C, ...]``: consecutive samples side by side along
    the first feature dimension (channels for images, coordinates for vectors)."""
    n = x.shape[0]
    if n % packing:
        raise ValueError(
            f"task 'pacgan': a batch of {n} samples per process does not split into packs of "
            f"{packing}; make training.batch_size a multiple of {packing} times the processes"
        )
    return x.reshape(n // packing, packing * x.shape[1], *x.shape[2:])


@attrs.frozen(kw_only=True)
class PacGAN:
    """PacGAN (Lin, Khetan, Fanti & Oh 2018, "PacGAN: The power of two samples in generative
    adversarial networks"): the critic scores packs of ``packing`` samples, all real or all fake,
    concatenated along the first feature dimension. It sees the joint distribution of a pack, so a
    generator that drops modes is easier to tell apart. The critic is built for the packed shape;
    everything else (loss, regularizers, augmenter) works on packs unchanged."""

    packing: int = attrs.field(
        default=2,
        validator=attrs.validators.ge(1),
        metadata={"doc": "samples per pack; 1 = a plain GAN; >= 1 (the paper uses 2 to 4)"},
    )

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        shape = tuple(context.dataset.shapes["x"])
        generator = context.build_generator()
        if not isinstance(getattr(generator, "latent_dim", None), int):
            raise ValueError("task 'pacgan': the generator must expose an integer latent_dim")
        packed = (self.packing * shape[0], *shape[1:])
        return {"generator": generator}, {"critic": context.build_critic(data_shape=packed)}

    def _fake(self, step: gancore.StepContext, num: int) -> torch.Tensor:
        z = step.latents(num, int(step.unwrap("generator").latent_dim))  # type: ignore[arg-type]
        step.record_generator_inputs("generator", z)
        return step.generators["generator"](z)

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        real = batch["x"]
        with torch.no_grad():  # the critic's step needs no generator graph
            fake = self._fake(step, real.shape[0])
        return step.critic_loss("critic", pack(real, self.packing), pack(fake, self.packing))

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        fake = self._fake(step, batch["x"].shape[0])
        return step.generator_loss("critic", pack(fake, self.packing))

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        dim = int(generators["generator"].latent_dim)  # type: ignore[arg-type]
        return {"z": torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"]))
