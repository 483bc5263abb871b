"""A class-conditional test task: ``G(z, label)`` and a projection critic ``D(x, label)``.

The smallest task that declares classes (``conditional = True`` and ``sample_inputs(...,
labels=None)``), for the tests of labelled data, ``classes.json``, ``gan sample --class`` and
``gan eval --per-class``. The networks follow the worked example of docs/tasks.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import torch
from torch import nn

import gancore


class LabelledGenerator(nn.Module):
    """(z [N, latent_dim], label [N]) -> images [N, C, H, W] in [-1, 1]."""

    def __init__(self, latent_dim: int, classes: int, shape: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        self.latent_dim, self.classes, self.shape = latent_dim, classes, shape
        self.embed = nn.Embedding(classes, latent_dim)  # label -> a vector the size of z
        size = int(torch.tensor(shape).prod())
        self.net = nn.Sequential(
            nn.Linear(2 * latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, size), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(label)], dim=1)).view(-1, *self.shape)


class ProjectionCritic(nn.Module):
    """(images [N, C, H, W], label [N]) -> scores [N] = psi(phi(x)) + <embed(label), phi(x)>
    (Miyato & Koyama 2018, "cGANs with Projection Discriminator")."""

    def __init__(self, classes: int, shape: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        size = int(torch.tensor(shape).prod())
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(size, hidden), nn.LeakyReLU(0.2))
        self.score = nn.Linear(hidden, 1)  # psi
        self.embed = nn.Embedding(classes, hidden)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        phi = self.features(x)
        return self.score(phi).squeeze(1) + (self.embed(label) * phi).sum(dim=1)


@attrs.frozen(kw_only=True)
class ConditionalTask:
    """Noise and a class label to image; the class count is the dataset's ``classes``."""

    conditional: ClassVar[bool] = True  # declares classes: sample_inputs takes labels

    latent_dim: int = attrs.field(
        default=4, validator=attrs.validators.ge(1), metadata={"doc": "Size of the latent z."}
    )
    hidden: int = attrs.field(
        default=16, validator=attrs.validators.ge(1), metadata={"doc": "Width of the hidden layer."}
    )

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        classes = getattr(context.dataset, "classes", None)
        if "label" not in context.dataset.shapes or not classes:
            raise ValueError(
                "task 'test-conditional': the dataset must have classes and a 'label' key "
                f"(got keys {sorted(context.dataset.shapes)})"
            )
        shape = tuple(context.dataset.shapes["x"])
        generator = LabelledGenerator(self.latent_dim, len(classes), shape, self.hidden)
        critic = ProjectionCritic(len(classes), shape, self.hidden)
        return {"generator": generator}, {"critic": critic}

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        real, label = batch["x"], batch["label"]
        z = step.latents(len(real), self.latent_dim)
        with torch.no_grad():  # the critic's update needs no graph through the generator
            fake = step.generators["generator"](z, label)
        return step.critic_loss("critic", real, fake, label)

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        label = batch["label"]  # fakes follow the data's class frequencies
        z = step.latents(len(label), self.latent_dim)
        return step.generator_loss("critic", step.generators["generator"](z, label), label)

    def sample_inputs(
        self,
        generators: Mapping[str, nn.Module],
        dataset: Any,
        num: int,
        seed: int,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        z = torch.randn(num, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        if labels is None:  # the task's own choice: the classes in turn
            labels = torch.arange(num) % int(generators["generator"].classes)  # type: ignore[arg-type]
        return {"z": z, "label": labels.long()}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        return gancore.SampleGrid(images=generators["generator"](inputs["z"], inputs["label"]))
