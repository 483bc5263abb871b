"""The ``srgan`` task: low-resolution image -> high-resolution image (Ledig et al. 2017).

- **Pairs.** The dataset's ``"x"`` is the high-resolution (HR) image; the low-resolution (LR)
  input is the dataset's ``"lr"`` when it has one (paired data), else :func:`downscale` of ``"x"``
  by ``scale`` (antialiased bicubic: deterministic, so an index always gives the same pair).
- **Two modes, chosen per stage** (``[[stages]] options.mode``):

  - ``"mse"``: SRResNet's pre-training, ``MSE(G(LR), HR)`` (pixel values in ``[-1, 1]``); only
    the generator trains (the stage's ``train = ["generator"]``).
  - ``"gan"`` (the default): SRGAN's perceptual loss, ``content_weight * MSE(s phi(G(LR)),
    s phi(HR)) + pixel_weight * MSE(G(LR), HR) + adversarial_weight * L_adv``, where ``phi`` is
    the extractor's content feature map (VGG19 relu5_4 in the paper: "VGG54"), ``s`` its scale
    (1/12.75 for VGG19, "to obtain VGG losses of a scale comparable to the MSE loss"), and
    ``L_adv`` the configured loss's generator term on the critic's score of ``G(LR)`` (the paper:
    ``-log D(G(LR))``, i.e. ``[loss] name = "non-saturating"``), weighted ``1e-3``. The critic
    learns to tell ``HR`` from ``G(LR)`` with the configured loss.

- **Planned stages** (used when the run file has none): ``pretrain`` of ``run.steps`` in mode
  ``"mse"``; then the adversarial stage, initialised from the pre-trained generator (same module,
  fresh optimizers), at the configured learning rates for ``lr_drop`` of the rest and a tenth of
  them after: the paper's 10^6 SRResNet updates at 1e-4, then 10^5 SRGAN updates at 1e-4 and
  10^5 at 1e-5.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import gancore
from gan_superres.degrade import SCALES, bicubic_upscale, check_divisible, downscale

__all__ = ["COLUMNS", "Srgan", "content_features", "low_resolution", "upscale"]

COLUMNS = 8  # images per row group of a 'triplets' grid
MODES = ("mse", "gan")


def _weight(default: float, doc: str) -> Any:
    return attrs.field(
        default=default, converter=float, validator=attrs.validators.ge(0.0), metadata={"doc": doc}
    )


def _fraction(default: float, doc: str) -> Any:
    return attrs.field(
        default=default,
        converter=float,
        validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)],
        metadata={"doc": doc},
    )


def low_resolution(batch: Mapping[str, torch.Tensor], scale: int) -> torch.Tensor:
    """The LR input of a batch: its ``"lr"`` if paired, else ``downscale(batch["x"], scale)``."""
    if "lr" in batch:
        return batch["lr"]
    return downscale(batch["x"], scale)


def upscale(generator: Any, lr: torch.Tensor) -> torch.Tensor:
    """``generator(lr)`` clamped to the data range ``[-1, 1]``, without gradients."""
    with torch.no_grad():
        return generator(lr).clamp(-1.0, 1.0)


def content_features(extractor: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The extractor's content feature map of ``images`` (``[-1, 1]``); grey images are
    repeated to three channels first."""
    feature_map = getattr(extractor, "feature_map", None)
    if not callable(feature_map):
        raise ValueError(
            f"extractor {type(extractor).__name__} has no feature_map(): a content loss needs "
            "spatial features (gan-superres's 'vgg19' and 'sr-features' have them)"
        )
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return feature_map(images)


def _pad_rows(rows: torch.Tensor, n: int) -> torch.Tensor:
    """Three rows of ``n <= COLUMNS`` images, each padded with black to ``COLUMNS``."""
    if n == COLUMNS:
        return rows
    blank = rows.new_full((COLUMNS - n, *rows.shape[1:]), -1.0)
    return torch.cat([torch.cat([rows[i * n : (i + 1) * n], blank]) for i in range(3)])


@attrs.frozen(kw_only=True)
class Srgan:
    """Single-image super-resolution: SRResNet pre-trained with MSE, then SRGAN's perceptual
    loss (content on the extractor's features + 1e-3 adversarial) against an HR critic."""

    scale: int = attrs.field(
        default=4,
        validator=attrs.validators.in_(SCALES),
        metadata={"doc": "upscaling factor r: 2 or 4 (paper: 4)"},
    )
    extractor: str = attrs.field(
        default="vgg19",
        validator=attrs.validators.instance_of(str),
        metadata={
            "doc": "registered extractor whose feature map is the content loss: 'vgg19' (the "
            "paper's relu5_4; needs its weights file) or 'sr-features' (bundled, trained here)"
        },
    )
    weights_path: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={"doc": "the extractor's weights file; None = the extractor's default"},
    )
    weights_sha256: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={"doc": "expected sha256 of that file; None = the extractor's default"},
    )
    feature_scale: float | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(float),
        validator=attrs.validators.optional(attrs.validators.gt(0.0)),
        metadata={
            "doc": "s: features are multiplied by it before the content MSE; None = the "
            "extractor's content_scale (vgg19: 1/12.75, the paper's)"
        },
    )
    content_weight: float = _weight(1.0, "weight of the content (feature) MSE in mode 'gan'; >= 0")
    pixel_weight: float = _weight(
        0.0, "weight of the pixel MSE in mode 'gan' (paper's SRGAN-VGG54: 0); >= 0"
    )
    adversarial_weight: float = _weight(
        1e-3, "weight of the adversarial term in mode 'gan' (paper: 1e-3); >= 0"
    )
    pretrain: float = _fraction(
        0.5,
        "planned stages: fraction of run.steps pre-training with MSE (mode 'mse'); [0, 1]",
    )
    lr_drop: float = _fraction(
        0.5,
        "planned stages: fraction of the adversarial steps at the configured learning rates, "
        "the rest at a tenth (paper: half); [0, 1]",
    )
    samples: Literal["triplets", "upscaled"] = attrs.field(
        default="triplets",
        validator=attrs.validators.in_(("triplets", "upscaled")),
        metadata={
            "doc": "sample(): 'triplets' = rows of bicubic, SR and HR images, 8 columns (the "
            "grids); 'upscaled' = the SR images only, what image metrics such as fid score"
        },
    )

    # -- stages -----------------------------------------------------------------------------------

    def plan_stages(self, config: Any, dataset: Any) -> list[dict[str, Any]]:
        """MSE pre-training, then the adversarial stage at the configured lr, then at a tenth."""
        steps = int(config.run.steps)
        first = round(self.pretrain * steps)
        high = round(self.lr_drop * (steps - first))
        low = steps - first - high
        tenth = {g: 0.1 * config.optimizers[g].lr for g in ("generator", "critic")}
        stages: list[dict[str, Any]] = []
        if first:
            stages.append(
                {"name": "mse", "steps": first, "train": ["generator"], "options": {"mode": "mse"}}
            )
        if high:
            stages.append(
                {
                    "name": "gan",
                    "steps": high,
                    "reset_optimizers": bool(first),
                    "options": {"mode": "gan"},
                }
            )
        if low:
            stages.append(
                {
                    "name": "gan lr/10",
                    "steps": low,
                    "lr": tenth,
                    "reset_optimizers": not high and bool(first),
                    "options": {"mode": "gan"},
                }
            )
        return stages

    @staticmethod
    def mode(step: gancore.StepContext) -> str:
        stage = step.stage
        mode = stage.options.get("mode", "gan") if stage is not None else "gan"
        if mode not in MODES:
            raise ValueError(
                f"stages[{stage.index if stage else 0}].options.mode: expected 'mse' or 'gan' "
                f"(got {mode!r})"
            )
        return str(mode)

    # -- building ---------------------------------------------------------------------------------

    def content_extractor(self, registry: Any = None) -> nn.Module:
        """The content extractor (built once per process and options; frozen)."""
        from gancore.metrics import build_extractor

        return build_extractor(
            self.extractor,
            weights_path=self.weights_path,
            weights_sha256=self.weights_sha256,
            registry=registry,
        )

    def content_scale(self, extractor: nn.Module) -> float:
        if self.feature_scale is not None:
            return self.feature_scale
        return float(getattr(extractor, "content_scale", 1.0))

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        shapes = context.dataset.shapes
        shape = tuple(shapes.get("x", ()))
        if len(shape) != 3:
            raise ValueError(
                f"task 'srgan': the dataset must provide images 'x' of shape (C, H, W) "
                f"(got {shape or 'no key x'})"
            )
        c, h, w = shape
        check_divisible(h, w, self.scale, "task 'srgan': the dataset's images")
        small = (c, h // self.scale, w // self.scale)
        if "lr" in shapes and tuple(shapes["lr"]) != small:
            raise ValueError(
                f"task 'srgan': the dataset's 'lr' images are {tuple(shapes['lr'])} but images "
                f"{shape} at scale {self.scale} need {small}"
            )
        if self.content_weight > 0:
            self.content_extractor(context.registry)  # a missing weights file fails here
        generator = context.build_generator(data_shape=shape, input_shape=small)
        return {"generator": generator}, {"critic": context.build_critic(shape)}

    # -- training ---------------------------------------------------------------------------------

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        hr = batch["x"]
        with torch.no_grad():
            sr = step.generators["generator"](low_resolution(batch, self.scale))
        return step.critic_loss("critic", hr, sr)

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        hr = batch["x"]
        sr = step.generators["generator"](low_resolution(batch, self.scale))
        pixel = F.mse_loss(sr, hr)
        step.log("loss/mse", pixel)
        if self.mode(step) == "mse":
            return pixel
        total = self.pixel_weight * pixel
        if self.content_weight > 0:
            extractor = self.content_extractor().to(hr.device)
            s = self.content_scale(extractor)
            with torch.no_grad():
                target = content_features(extractor, hr) * s
            content = F.mse_loss(content_features(extractor, sr) * s, target)
            step.log("loss/content", content)
            total = total + self.content_weight * content
        adversarial = step.generator_loss("critic", sr, real=hr)
        step.log("loss/adversarial", adversarial)
        return total + self.adversarial_weight * adversarial

    # -- samples and metrics ----------------------------------------------------------------------

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        """``num`` HR images of ``dataset`` (a permutation from ``seed``) and their LR inputs,
        ``{"x", "lr"}`` on the CPU."""
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(dataset), generator=gen)
        if num > len(order):
            order = order.repeat(-(-num // len(order)))
        indices = order[:num].tolist()
        get_batch = getattr(dataset, "get_batch", None)
        if callable(get_batch):
            batch = dict(get_batch(indices))
        else:
            items = [dataset[i] for i in indices]
            batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
        hr = batch["x"].float().cpu()
        lr = batch["lr"].float().cpu() if "lr" in batch else downscale(hr, self.scale)
        return {"x": hr, "lr": lr}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        """The SR images, or rows of bicubic / SR / HR images (8 columns)."""
        generator = generators["generator"]
        device = next(generator.parameters()).device
        lr = inputs["lr"].to(device)
        sr = upscale(generator, lr)
        if self.samples == "upscaled":
            return gancore.SampleGrid(images=sr)
        hr = inputs["x"].to(device)
        bicubic = bicubic_upscale(lr, self.scale)
        rows = []
        for start in range(0, len(sr), COLUMNS):
            part = slice(start, start + COLUMNS)
            n = len(sr[part])
            rows.append(_pad_rows(torch.cat([bicubic[part], sr[part], hr[part]]), n))
        return gancore.SampleGrid(images=torch.cat(rows), columns=COLUMNS)
