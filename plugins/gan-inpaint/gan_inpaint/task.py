"""The ``inpaint`` task: masked image -> completed image, with a global and a local critic.

DeepFill v1 (Yu et al. 2018, "Generative Image Inpainting with Contextual Attention", Sec. 3-4):

- The generator gets ``[image * (1 - mask), mask]`` (``[N, C + 1, H, W]``, mask 1 in the hole) and
  returns the completion; the completed image is the output **composited** into the known pixels,
  which stay bit-exact.
- **Generator loss** (each stage of a two-stage generator such as ``deepfill``):
  ``hole_weight * discounted L1 in the hole + known_weight * L1 on known pixels``, summed over the
  coarse and refined outputs, plus ``adversarial_weight * (G loss of the global critic on the
  completed image + G loss of the local critic on the window around the hole)``. The paper: 1.2,
  1.2 and 0.001.
- **Critic loss**: the configured ``[loss]`` of each critic on (real, completed) pairs, the global
  critic on whole images and the local one on the ``local_size`` window centred on the hole's
  bounding box (the same window in the real image). Regularizers (``wgan-gp``, ``r1``) apply to
  each critic through ``step.critic_loss``; DeepFill uses WGAN-GP (``[loss] name = "wgan"``,
  ``[[regularizers]] name = "wgan-gp"`` from gan-wgan) with 5 critic steps.

Masks are drawn by the task from ``[task.masks]`` (:mod:`gan_inpaint.masks`), with the process's
torch generator during training (seeded by the loop, saved in checkpoints: resume is exact) and
with a seeded generator for sample grids and metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
import torch
from torch import nn

import gancore
from gan_inpaint.losses import composite, discount_weights, discounted_hole_l1, known_l1
from gan_inpaint.masks import MaskOptions, crop, draw_masks, local_boxes

__all__ = ["Inpaint", "complete"]

TRIPLET_COLUMNS = 8  # samples per row group of a 'triplets' grid


def _is_inpaint_quality(name: str) -> bool:
    return name.split(":")[-1] == "inpaint-quality"


def _pad_row(images: torch.Tensor) -> torch.Tensor:
    """Three rows of ``n <= 8`` images, each row padded to 8 with blank (black) images."""
    n = len(images) // 3
    if n == TRIPLET_COLUMNS:
        return images
    blank = images.new_full((TRIPLET_COLUMNS - n, *images.shape[1:]), -1.0)
    return torch.cat([torch.cat([images[i * n : (i + 1) * n], blank]) for i in range(3)])


def weight_field(default: float, doc: str) -> Any:
    return attrs.field(
        default=default, converter=float, validator=attrs.validators.ge(0.0), metadata={"doc": doc}
    )


def complete(
    generator: Any,
    image: torch.Tensor,
    mask: torch.Tensor,
    *,
    stages: bool = False,
    two_stage: bool | None = None,
) -> Any:
    """Run ``generator`` on ``image`` with hole ``mask``.

    Returns the completed (composited) image ``[N, C, H, W]``; with ``stages=True``, the raw
    outputs of every stage (one, or coarse and refined for a two-stage generator such as
    ``deepfill``) and the completed image. ``two_stage`` defaults to the generator's own
    ``two_stage`` attribute (pass it when ``generator`` is a wrapper).
    """
    inputs = torch.cat([image * (1.0 - mask), mask], dim=1)
    if two_stage is None:
        two_stage = bool(getattr(generator, "two_stage", False))
    if two_stage:
        coarse, refined = generator(inputs, return_coarse=True)
        outputs = [coarse, refined]
    else:
        outputs = [generator(inputs)]
    done = composite(outputs[-1], image, mask)
    return (outputs, done) if stages else done


@attrs.frozen(kw_only=True)
class Inpaint:
    """Image inpainting (DeepFill v1): one generator fills holes; a global critic scores completed
    images, a local critic the window around each hole."""

    masks: MaskOptions = attrs.field(
        factory=MaskOptions,
        validator=attrs.validators.instance_of(MaskOptions),
        metadata={"doc": "how training holes are drawn: the [task.masks] table (see MaskOptions)"},
    )
    local_size: float = attrs.field(
        default=0.5,
        converter=float,
        validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)],
        metadata={
            "doc": "side of the local critic's window, fraction of the image side; (0, 1] "
            "(paper: 128 of 256 = 0.5)"
        },
    )
    hole_weight: float = weight_field(
        1.2, "weight of the discounted L1 in the hole (paper: 1.2); >= 0"
    )
    known_weight: float = weight_field(1.2, "weight of the L1 on known pixels (paper: 1.2); >= 0")
    adversarial_weight: float = weight_field(
        0.001, "weight of the two critics' generator losses (paper: 0.001); >= 0"
    )
    discount: float = attrs.field(
        default=0.99,
        converter=float,
        validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)],
        metadata={
            "doc": "gamma of the spatially discounted L1: weight gamma ** (distance to the nearest "
            "known pixel); (0, 1]; the paper's 0.99 (the authors' released config: 0.9); 1 = plain "
            "L1 in the hole"
        },
    )

    samples: Literal["triplets", "completions"] = attrs.field(
        default="triplets",
        validator=attrs.validators.in_(("triplets", "completions")),
        metadata={
            "doc": "sample(): 'triplets' = rows of holed inputs (hole grey), completions and "
            "originals, 8 columns, for the grids; 'completions' = the completed images only, what "
            "image metrics such as fid score (inpaint-quality works with either)"
        },
    )

    # -- building ---------------------------------------------------------------------------------

    def local_shape(self, height: int, width: int) -> tuple[int, int]:
        return max(1, round(self.local_size * height)), max(1, round(self.local_size * width))

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        shape = tuple(context.dataset.shapes.get("x", ()))
        if len(shape) != 3:
            raise ValueError(
                f"task 'inpaint': the dataset must provide images 'x' of shape (C, H, W) "
                f"(got {shape or 'no key x'})"
            )
        scored = [m.name for m in context.config.metrics if not _is_inpaint_quality(m.name)]
        if self.samples == "triplets" and scored:
            raise ValueError(
                "task 'inpaint': samples = 'triplets' puts inputs and originals among the images "
                f"that metrics {', '.join(map(repr, scored))} score; set task.samples = "
                "'completions'"
            )
        c, h, w = shape
        generator = context.build_generator(data_shape=(c, h, w), input_shape=(c + 1, h, w))
        local = self.local_shape(h, w)
        critics = {
            "global": context.build_critic((c, h, w)),
            "local": context.build_critic((c, *local)),
        }
        return {"generator": generator}, critics

    # -- training ---------------------------------------------------------------------------------

    def _masks(self, image: torch.Tensor) -> torch.Tensor:
        """Fresh training masks from the process's torch generator (CPU, then the device)."""
        n, _, h, w = image.shape
        return draw_masks(self.masks, n, h, w).to(image.device, image.dtype)

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        image = batch["x"]
        mask = self._masks(image)
        with torch.no_grad():  # the critics' update needs no graph through the generator
            done = complete(step.generators["generator"], image, mask, two_stage=_two(step))
        size = self.local_shape(*image.shape[-2:])
        boxes = local_boxes(mask, size)
        return step.critic_loss("global", image, done) + step.critic_loss(
            "local", crop(image, boxes, size), crop(done, boxes, size)
        )

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        image = batch["x"]
        mask = self._masks(image)
        outputs, done = complete(
            step.generators["generator"], image, mask, stages=True, two_stage=_two(step)
        )
        weights = discount_weights(mask, self.discount)
        reconstruction = image.new_zeros(())
        for index, output in enumerate(outputs):
            hole = discounted_hole_l1(output, image, mask, weights)
            known = known_l1(output, image, mask)
            tag = "" if index == len(outputs) - 1 else "_coarse"
            step.log(f"loss/l1_hole{tag}", hole)
            step.log(f"loss/l1_known{tag}", known)
            reconstruction = reconstruction + self.hole_weight * hole + self.known_weight * known
        size = self.local_shape(*image.shape[-2:])
        boxes = local_boxes(mask, size)
        adversarial = step.generator_loss("global", done) + step.generator_loss(
            "local", crop(done, boxes, size)
        )
        return reconstruction + self.adversarial_weight * adversarial

    # -- samples and metrics ----------------------------------------------------------------------

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        """``num`` images of ``dataset`` (a permutation from ``seed``) and masks drawn from
        ``seed``: ``{"x": [num, C, H, W], "mask": [num, 1, H, W]}`` on the CPU."""
        return masked_sample_inputs(self.masks, dataset, num, seed)

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        """The completed images (what the grid shows and what metrics score)."""
        return completion_grid(generators["generator"], inputs, self.samples)


def masked_sample_inputs(
    masks: MaskOptions, dataset: Any, num: int, seed: int
) -> dict[str, torch.Tensor]:
    """``num`` images of ``dataset`` (a permutation from ``seed``) and ``masks`` drawn from
    ``seed``: ``{"x": [num, C, H, W], "mask": [num, 1, H, W]}`` on the CPU (both tasks' sample
    inputs)."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=gen)
    if num > len(order):
        order = order.repeat(-(-num // len(order)))
    indices = order[:num].tolist()
    get_batch = getattr(dataset, "get_batch", None)
    if callable(get_batch):
        images = get_batch(indices)["x"]
    else:
        images = torch.stack([dataset[i]["x"] for i in indices])
    images = images.float().cpu()
    _, _, h, w = images.shape
    return {"x": images, "mask": draw_masks(masks, num, h, w, gen)}


def completion_grid(
    generator: nn.Module, inputs: Mapping[str, torch.Tensor], samples: str
) -> gancore.SampleGrid:
    """The completions of ``inputs`` (``samples = "completions"``), or rows of holed inputs,
    completions and originals, 8 to a row group (``"triplets"``)."""
    device = next(generator.parameters()).device
    image = inputs["x"].to(device)
    mask = inputs["mask"].to(device, image.dtype)
    done = complete(generator, image, mask)
    if samples == "completions":
        return gancore.SampleGrid(images=done)
    holed = torch.where(mask > 0.5, torch.zeros_like(image), image)  # the hole in grey
    rows = []
    for start in range(0, len(image), TRIPLET_COLUMNS):
        part = slice(start, start + TRIPLET_COLUMNS)
        rows.append(_pad_row(torch.cat([holed[part], done[part], image[part]])))
    return gancore.SampleGrid(images=torch.cat(rows), columns=TRIPLET_COLUMNS)


def _two_stage_of(module: nn.Module) -> bool:
    return bool(getattr(module, "two_stage", False))


def _two(step: gancore.StepContext) -> bool:
    """Whether the (possibly wrapped) generator returns coarse and refined outputs."""
    return _two_stage_of(step.unwrap("generator"))
