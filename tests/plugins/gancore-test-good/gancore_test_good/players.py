"""Test tasks for the Core v2 seams: a generator that grows per stage, an InfoGAN-style Q head
(a third player group), and a VAE without a critic. Used by tests/test_stages_players.py, in one
process and in two (their names must resolve in a worker process, hence a plugin)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import torch
from torch import nn

import gancore


class GrowingGenerator(nn.Module):
    """z [N, 4] -> points [N, 2]; each stage may append a hidden block. While a new block fades
    in, the output is lerp(out(h before the block), out(h after it), alpha) (PGGAN, Sec. 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 4
        self.stem = nn.Sequential(nn.Linear(4, 16), nn.ReLU())
        self.blocks = nn.ModuleList()
        self.out = nn.Linear(16, 2)
        self.alpha = 1.0

    def grow(self) -> None:
        self.blocks.append(nn.Sequential(nn.Linear(16, 16), nn.ReLU()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.stem(z)
        for block in self.blocks[:-1]:
            h = block(h)
        if not self.blocks:
            return self.out(h)
        new = self.out(self.blocks[-1](h))
        return torch.lerp(self.out(h), new, self.alpha) if self.alpha < 1 else new


def _critic() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))


def _latents(step: gancore.StepContext, num: int) -> torch.Tensor:
    return step.latents(num, 4)


@attrs.frozen(kw_only=True)
class Growing:
    """Unconditional 2-D GAN whose generator grows a block at every stage with options.grow."""

    def build(self, context: gancore.TaskBuildContext) -> dict[str, dict[str, nn.Module]]:
        return {"generator": {"generator": GrowingGenerator()}, "critic": {"critic": _critic()}}

    def begin_stage(self, stage: Any, players: dict[str, dict[str, nn.Module]]) -> None:
        if stage.options.get("grow"):
            players["generator"]["generator"].grow()  # type: ignore[operator]

    def critic_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        step.unwrap("generator").alpha = step.alpha
        with torch.no_grad():
            fake = step.generators["generator"](_latents(step, batch["x"].shape[0]))
        return step.critic_loss("critic", batch["x"], fake)

    def generator_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        step.unwrap("generator").alpha = step.alpha
        fake = step.generators["generator"](_latents(step, batch["x"].shape[0]))
        return step.generator_loss("critic", fake)

    def sample_inputs(self, generators: Any, dataset: Any, num: int, seed: int) -> dict:
        return {"z": torch.randn(num, 4, generator=torch.Generator().manual_seed(seed))}

    def sample(self, generators: Any, inputs: Mapping[str, torch.Tensor]) -> Any:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"]))


@attrs.frozen(kw_only=True)
class WithQ(Growing):
    """InfoGAN-style: the first latent is a code c; a Q head, trained with the generator (its own
    player group and optimizer), predicts c from G(z); both minimise weight * MSE(Q(G(z)), c)."""

    weight: float = attrs.field(default=1.0, metadata={"doc": "weight of the code loss"})
    players: ClassVar = {"critic": "critic", "generator": "generator", "q": "generator"}

    def build(self, context: gancore.TaskBuildContext) -> dict[str, dict[str, nn.Module]]:
        q = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
        return {**super().build(context), "q": {"q": q}}

    def generator_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        z = _latents(step, batch["x"].shape[0])
        fake = step.generators["generator"](z)
        code = (step.players["q"]["q"](fake)[:, 0] - z[:, 0]).square().mean()
        step.log("loss/code", code)
        return step.generator_loss("critic", fake) + self.weight * code


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # mean and log-variance of q(z|x), 4 each


@attrs.frozen(kw_only=True)
class TinyVAE:
    """A VAE on the same loop (Kingma & Welling 2014): no critic; the encoder is its own player
    group trained with the decoder ("generator") by the generator phase; loss = -ELBO."""

    players: ClassVar = {"generator": "generator", "encoder": "generator"}

    def build(self, context: gancore.TaskBuildContext) -> dict[str, dict[str, nn.Module]]:
        decoder = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        decoder.latent_dim = 4  # type: ignore[assignment]
        return {"generator": {"generator": decoder}, "encoder": {"encoder": Encoder()}}

    def generator_step(self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]) -> Any:
        x = batch["x"]
        mean, log_var = step.players["encoder"]["encoder"](x).chunk(2, dim=1)
        z = mean + (0.5 * log_var).exp() * step.latents(x.shape[0], 4)  # reparametrization
        reconstruction = (step.generators["generator"](z) - x).square().sum(1).mean()
        kl = 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(1).mean()
        step.log("loss/reconstruction", reconstruction)
        step.log("loss/kl", kl)
        return reconstruction + kl

    def sample_inputs(self, generators: Any, dataset: Any, num: int, seed: int) -> dict:
        return {"z": torch.randn(num, 4, generator=torch.Generator().manual_seed(seed))}

    def sample(self, generators: Any, inputs: Mapping[str, torch.Tensor]) -> Any:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"]))
