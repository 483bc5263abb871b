"""The ``context-encoder`` task: a centred hole, a joint reconstruction + adversarial loss.

Context Encoders (Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting", Sec. 3.2
and 5):

- **Hole**: the centred square of ``hole_size`` of the side (the paper: a quarter of the image
  area, i.e. half the side). The generator gets ``[image * (1 - mask), mask]`` as in the
  ``inpaint`` task and predicts the **region**: the hole grown by ``overlap`` pixels on every side,
  so that the prediction overlaps the known context (the paper: 7 px), or the whole **image**
  (``predict = "image"``).
- **Reconstruction loss**: a masked L2, ``sum(w * (output - x)^2) / (C * pixels with w > 0)``,
  with ``w = 1`` in the hole, ``overlap_weight`` in the overlap band (the paper: 10) and 0 outside
  the predicted region (:func:`overlap_weights`).
- **Joint loss** of the generator: ``reconstruction_weight * L2 + adversarial_weight * G loss``
  (the paper: 0.999 and 0.001), the G loss from the run's ``[loss]``; the critic scores the
  predicted region (the paper's adversarial discriminator) or, with ``critic_input = "image"``, the
  image with the predicted region pasted in. The critic loss is the run's ``[loss]`` on (real,
  predicted) regions; regularizers apply through ``step.critic_loss``.

The hole never moves, so the task draws no random numbers: resume is exact through the loop's own
state. ``masks`` (a ``center`` :class:`~gan_inpaint.masks.MaskOptions`) is what the
``inpaint-quality`` metric and ``gan inpaint`` read, as from the ``inpaint`` task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import gancore
from gan_inpaint.context_encoder import centred_box, paste
from gan_inpaint.masks import MaskOptions, center_masks
from gan_inpaint.task import completion_grid, masked_sample_inputs, weight_field

__all__ = ["ContextEncoder", "overlap_weights", "weighted_l2"]


@torch.no_grad()
def overlap_weights(mask: torch.Tensor, overlap: int, weight: float) -> torch.Tensor:
    """Loss weights ``[N, 1, H, W]``: 1 in the hole, ``weight`` on the known pixels within
    ``overlap`` pixels of it (Chebyshev distance: the hole dilated by a ``2 overlap + 1`` square),
    0 elsewhere. For a square hole the band is a frame ``overlap`` pixels wide."""
    hole = (mask > 0.5).to(mask.dtype)
    if overlap == 0:
        return hole
    grown = F.max_pool2d(hole, 2 * overlap + 1, stride=1, padding=overlap)
    return hole + weight * (grown - hole)


def weighted_l2(output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(weights * (output - target)^2) / (C * number of pixels with weights > 0)``: the mean
    over the predicted region of the weighted squared error (0 where no weight is positive)."""
    channels = output.shape[1]
    count = (weights > 0).sum().clamp_min(1) * channels
    return (weights * (output - target).square()).sum() / count


def _overlap(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"'overlap' must be an integer >= 0 (got {value!r})")


@attrs.frozen(kw_only=True)
class ContextEncoder:
    """Context Encoders (Pathak et al. 2016): the centred hole, its region predicted with an
    overlap into the context, masked L2 plus an adversarial loss from one critic."""

    hole_size: float = attrs.field(
        default=0.5,
        converter=float,
        validator=[attrs.validators.gt(0.0), attrs.validators.lt(1.0)],
        metadata={
            "doc": "side of the centred square hole, fraction of the image side; (0, 1) (paper: "
            "0.5, a quarter of the area)"
        },
    )
    overlap: int = attrs.field(
        default=7,
        validator=_overlap,
        metadata={
            "doc": "pixels by which the predicted region extends past the hole on every side, "
            "into the known context; >= 0 (paper: 7 at 128 px)"
        },
    )
    overlap_weight: float = weight_field(
        10.0, "L2 weight in the overlap band, relative to 1 in the hole (paper: 10); >= 0"
    )
    reconstruction_weight: float = weight_field(
        0.999, "weight of the masked L2 in the joint loss (paper: lambda_rec 0.999); >= 0"
    )
    adversarial_weight: float = weight_field(
        0.001, "weight of the critic's generator loss (paper: lambda_adv 0.001); >= 0"
    )
    predict: Literal["region", "image"] = attrs.field(
        default="region",
        validator=attrs.validators.in_(("region", "image")),
        metadata={
            "doc": "what the generator outputs: 'region' (the hole plus the overlap, the paper) "
            "or 'image' (the whole image; the loss still covers the region only)"
        },
    )
    critic_input: Literal["region", "image"] = attrs.field(
        default="region",
        validator=attrs.validators.in_(("region", "image")),
        metadata={
            "doc": "what the critic scores: 'region' (the predicted region, the paper) or "
            "'image' (the image with the predicted region pasted in)"
        },
    )
    samples: Literal["triplets", "completions"] = attrs.field(
        default="triplets",
        validator=attrs.validators.in_(("triplets", "completions")),
        metadata={
            "doc": "sample(): 'triplets' = rows of holed inputs (hole grey), completions and "
            "originals, 8 columns; 'completions' = the completed images only (for image metrics "
            "such as fid)"
        },
    )

    @property
    def masks(self) -> MaskOptions:
        """The hole as a mask table: the centred square (read by ``inpaint-quality``)."""
        return MaskOptions(kind="center", rectangle_size=self.hole_size)

    # -- geometry ---------------------------------------------------------------------------------

    def hole_side(self, side: int) -> int:
        return max(1, round(self.hole_size * side))  # the rule of the 'center' masks

    def region_side(self, side: int) -> int:
        return self.hole_side(side) + 2 * self.overlap

    def _region(self, x: torch.Tensor) -> torch.Tensor:
        """The centred predicted region of ``x`` ``[N, C, H, H]``."""
        side = x.shape[-1]
        r = self.region_side(side)
        top = centred_box(side, r)
        return x[..., top : top + r, top : top + r]

    # -- building ---------------------------------------------------------------------------------

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        shape = tuple(context.dataset.shapes.get("x", ()))
        if len(shape) != 3:
            raise ValueError(
                "task 'context-encoder': the dataset must provide images 'x' of shape (C, H, W) "
                f"(got {shape or 'no key x'})"
            )
        c, h, w = shape
        if h != w:
            raise ValueError(f"task 'context-encoder': needs square images (got {h}x{w})")
        hole, region = self.hole_side(h), self.region_side(h)
        if region > h:
            raise ValueError(
                f"task 'context-encoder': the predicted region (hole {hole} + 2 x overlap "
                f"{self.overlap} = {region} px) is larger than the {h}x{w} image; lower "
                "'overlap' or 'hole_size'"
            )
        scored = [
            m.name for m in context.config.metrics if m.name.split(":")[-1] != "inpaint-quality"
        ]
        if self.samples == "triplets" and scored:
            raise ValueError(
                "task 'context-encoder': samples = 'triplets' puts inputs and originals among the "
                f"images that metrics {', '.join(map(repr, scored))} score; set task.samples = "
                "'completions'"
            )
        out = (c, region, region) if self.predict == "region" else (c, h, w)
        generator = context.build_generator(data_shape=out, input_shape=(c + 1, h, w))
        scored_shape = (c, region, region) if self.critic_input == "region" else (c, h, w)
        return {"generator": generator}, {"critic": context.build_critic(scored_shape)}

    # -- training ---------------------------------------------------------------------------------

    def _predict(
        self, step: gancore.StepContext, image: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The hole mask and the generator's predicted region ``[N, C, r, r]``."""
        n, _, h, w = image.shape
        mask = center_masks(self.masks, n, h, w).to(image.device, image.dtype)
        inputs = torch.cat([image * (1.0 - mask), mask], dim=1)
        prediction = step.generators["generator"](inputs, return_region=True)
        if self.predict == "image":
            prediction = self._region(prediction)
        return mask, prediction

    def _scored(self, image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """What the critic sees of a predicted (or real) region."""
        if self.critic_input == "region":
            return region
        return paste(region, image, centred_box(image.shape[-1], region.shape[-1]))

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        image = batch["x"]
        with torch.no_grad():  # the critic's update needs no graph through the generator
            _, region = self._predict(step, image)
        real = self._scored(image, self._region(image))
        return step.critic_loss("critic", real, self._scored(image, region))

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        image = batch["x"]
        mask, region = self._predict(step, image)
        weights = self._region(overlap_weights(mask, self.overlap, self.overlap_weight))
        target = self._region(image)
        reconstruction = weighted_l2(region, target, weights)
        step.log("loss/l2_weighted", reconstruction)
        step.log("loss/l2_hole", weighted_l2(region, target, self._region(mask)))
        adversarial = step.generator_loss("critic", self._scored(image, region))
        return self.reconstruction_weight * reconstruction + self.adversarial_weight * adversarial

    # -- samples and metrics ----------------------------------------------------------------------

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        """``num`` images of ``dataset`` (a permutation from ``seed``) with the centred hole:
        ``{"x": [num, C, H, W], "mask": [num, 1, H, W]}`` on the CPU."""
        return masked_sample_inputs(self.masks, dataset, num, seed)

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        """The completed images (what the grid shows and what metrics score)."""
        return completion_grid(generators["generator"], inputs, self.samples)
