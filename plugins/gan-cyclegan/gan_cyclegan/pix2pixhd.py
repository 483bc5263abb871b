"""pix2pixHD (Wang et al. 2018, "High-Resolution Image Synthesis and Semantic Manipulation with
Conditional GANs"): a coarse-to-fine generator, multi-scale critics and feature matching.

- ``pix2pixhd`` generator: the global generator G1 (Sec. 3.2: ``c7s1-64, d128, d256, d512, d1024,
  R1024 x 9, u512, u256, u128, u64, c7s1-3``) runs on the input downsampled by 2; the local
  enhancer G2 (``c7s1-32, d64``) runs on the full-resolution input, its front-end output is added
  element-wise to G1's last feature map (G1 without its output layer), and its residual blocks
  (``R64 x 3``), one upsampling (``u32``) and output layer (``c7s1-3``) make the image. Reflection
  padding, instance norm, ReLU, tanh.
- ``pix2pixhd`` critic: the ``patchgan`` critic with :meth:`FeaturePatchGANCritic.layer_features`,
  the list of its layer outputs, for the feature-matching loss.
- ``pix2pixhd`` task: ``scales`` critics ``D_k`` on the (input, image) pair concatenated along
  channels, ``D_k`` at ``1 / 2**k`` of the resolution (3x3 average pooling, stride 2, padding 1,
  padding not counted); Eq. 5: ``min_G (sum_k L_GAN(G, D_k)) + lambda_FM sum_k L_FM(G, D_k)``
  (+ an optional perceptual term), ``max_D sum_k L_GAN(G, D_k)``; trained coarse to fine through
  gancore's stages (``global``: G1 alone at half resolution, ``local``: G2 on a frozen G1,
  ``joint``: both at full resolution).
- ``synthetic-scenes`` dataset: :mod:`gan_cyclegan.pix2pixhd_data`.

Player names: generator ``a_to_b`` (so ``gan translate`` works), critics ``critic_0`` (full
resolution) ... ``critic_{scales-1}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import gancore
from gan_cyclegan.networks import (
    NORMS,
    Norm,
    PatchGANCritic,
    PatchGANCriticOptions,
    ResidualBlock,
    check_input,
    image_shape,
    init_weights,
    norm_layer,
)
from gan_cyclegan.pix2pixhd_data import SyntheticScenesOptions, build_synthetic_scenes
from gan_cyclegan.tasks import check_sample_mode, held_inputs, image_shapes, sample_grid

__all__ = [
    "LEVELS",
    "FeaturePatchGANCritic",
    "GlobalGenerator",
    "LocalEnhancer",
    "Pix2PixHD",
    "Pix2PixHDGenerator",
    "Pix2PixHDGeneratorOptions",
    "Pix2PixHDOptions",
    "build_pix2pixhd",
    "build_pix2pixhd_critic",
    "build_pix2pixhd_generator",
    "downsample",
    "feature_matching_loss",
    "pyramid",
    "register_critics",
    "register_datasets",
    "register_generators",
    "register_tasks",
    "stage_level",
]

# What the generator trains: G1 alone at half resolution; G2 on a frozen G1; G2 and G1 together.
LEVELS = ("global", "local", "joint")
Level = Literal["global", "local", "joint"]


# -------------------------------------------------------------------------------------------------
# The image pyramid and the feature-matching loss
# -------------------------------------------------------------------------------------------------


def downsample(images: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, C, ceil(H/2), ceil(W/2)]``: 3x3 average pooling, stride 2,
    padding 1, the padded pixels left out of each mean (Wang et al. 2018's downsampling for the
    critics' scales and G1's input)."""
    return F.avg_pool2d(images, 3, stride=2, padding=1, count_include_pad=False)


def pyramid(images: torch.Tensor, scales: int) -> list[torch.Tensor]:
    """``[images, downsample(images), downsample^2(images), ...]``, ``scales`` of them."""
    levels = [images]
    for _ in range(scales - 1):
        levels.append(downsample(levels[-1]))
    return levels


def feature_matching_loss(
    real: Sequence[Sequence[torch.Tensor]], fake: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Wang et al. 2018, Eq. 4, summed over the critics: ``sum_k sum_i (1 / N_i) ||D_k^(i)(s, x)
    - D_k^(i)(s, G(s))||_1``, the mean absolute difference of each compared layer ``i`` of each
    critic ``k``. ``real[k][i]`` and ``fake[k][i]`` are the layer outputs; the real ones are
    detached here (they are targets, the critics do not learn from this loss)."""
    if len(real) != len(fake):
        raise ValueError(f"feature_matching_loss: {len(real)} critics real, {len(fake)} fake")
    total = fake[0][0].new_zeros(())
    for real_layers, fake_layers in zip(real, fake, strict=True):
        for r, f in zip(real_layers, fake_layers, strict=True):
            total = total + (r.detach() - f).abs().mean()  # (1 / N_i) ||.||_1
    return total


# -------------------------------------------------------------------------------------------------
# The critic: a PatchGAN that shows its layers
# -------------------------------------------------------------------------------------------------


class FeaturePatchGANCritic(PatchGANCritic):
    """The ``patchgan`` critic (``[N, C, H, W]`` -> patch scores ``[N, 1, h, w]``) with
    :meth:`layer_features` for feature matching."""

    def layer_features(self, x: torch.Tensor, *extra: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of the critic's layers for images ``x``: one ``[N, C_i, H_i, W_i]`` after
        each LeakyReLU (``layers + 1`` of them), then the patch scores ``[N, 1, h, w]``, the
        same as ``critic(x)``. Feature matching compares all but the last."""
        if extra:
            raise ValueError(
                f"pix2pixhd critic: takes no conditioning inputs (got {len(extra)}); the task "
                "concatenates its input to the image instead"
            )
        check_input("pix2pixhd critic", x, self.in_channels)
        outputs = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                outputs.append(x)
        outputs.append(x)
        return outputs


def build_pix2pixhd_critic(
    options: PatchGANCriticOptions, context: gancore.BuildContext
) -> FeaturePatchGANCritic:
    """The feature-showing PatchGAN critic for images of ``context.data_shape``."""
    name = "pix2pixhd critic"
    channels, h, w = image_shape(name, "images", context.data_shape)
    smallest = 3 * 2**options.layers
    if min(h, w) < smallest:
        raise ValueError(
            f"{name}: images of {h}x{w} are too small for layers = {options.layers} (needs a "
            f"side of at least {smallest}; use fewer critic layers or fewer task scales)"
        )
    return FeaturePatchGANCritic(channels, options)


# -------------------------------------------------------------------------------------------------
# The generator: global generator G1 and local enhancer G2
# -------------------------------------------------------------------------------------------------


def _positive(default: int, doc: str) -> Any:
    return attrs.field(
        default=default,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": doc},
    )


def _even(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if value % 2:
        raise ValueError(f"'{attribute.name}' must be even (got {value})")


@attrs.frozen(kw_only=True)
class Pix2PixHDGeneratorOptions:
    """Options of :class:`Pix2PixHDGenerator` (Wang et al. 2018, Sec. 3.2 and its appendix);
    the defaults are the paper's."""

    channels: int = attrs.field(
        default=64,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(2), _even],
        metadata={
            "doc": "feature maps of G1's first 7x7 convolution and of its last feature map (64); "
            "G2's first convolution has half (32), its downsampling gives this many; even"
        },
    )
    max_channels: int = _positive(
        1024, "cap on G1's doubling feature maps (1024 in the paper: d128 ... d1024)"
    )
    downsamplings: int = _positive(
        4, "G1's stride-2 convolutions, and transposed ones after its blocks (4 in the paper)"
    )
    blocks: int = _positive(9, "G1's residual blocks at its lowest resolution (9 in the paper)")
    local_blocks: int = _positive(3, "G2's residual blocks, at half resolution (3 in the paper)")
    norm: Norm = attrs.field(
        default="instance",
        validator=attrs.validators.in_(NORMS),
        metadata={
            "doc": "normalization after each hidden convolution: 'instance' (the paper), "
            "'batch' or 'none'"
        },
    )


def _conv7(c_in: int, c_out: int, norm: str, bias: bool) -> list[nn.Module]:
    """c7s1-k: reflection-padded 7x7 convolution, norm, ReLU."""
    return [
        nn.ReflectionPad2d(3),
        nn.Conv2d(c_in, c_out, 7, bias=bias),
        norm_layer(norm, c_out),
        nn.ReLU(),
    ]


def _down(c_in: int, c_out: int, norm: str, bias: bool) -> list[nn.Module]:
    """dk: 3x3 stride-2 convolution, norm, ReLU."""
    return [
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=bias),
        norm_layer(norm, c_out),
        nn.ReLU(),
    ]


def _up(c_in: int, c_out: int, norm: str, bias: bool) -> list[nn.Module]:
    """uk: 3x3 fractionally strided convolution (x2), norm, ReLU."""
    return [
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=bias),
        norm_layer(norm, c_out),
        nn.ReLU(),
    ]


def _output(c_in: int, c_out: int) -> nn.Sequential:
    """c7s1-C with tanh: the image in ``[-1, 1]``."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c_in, c_out, 7), nn.Tanh())


class GlobalGenerator(nn.Module):
    """G1: ``[N, C_in, H, W]`` -> ``[N, C_out, H, W]``; :meth:`features` is its last feature map
    ``[N, channels, H, W]`` (everything but the output layer)."""

    def __init__(self, in_channels: int, out_channels: int, options: Pix2PixHDGeneratorOptions):
        super().__init__()
        norm, bias = options.norm, options.norm != "batch"
        widths = [
            min(options.channels * 2**i, options.max_channels)
            for i in range(options.downsamplings + 1)
        ]
        layers = _conv7(in_channels, widths[0], norm, bias)  # c7s1-64
        for i in range(options.downsamplings):  # d128 ... d1024
            layers += _down(widths[i], widths[i + 1], norm, bias)
        layers += [ResidualBlock(widths[-1], norm, 0.0, bias) for _ in range(options.blocks)]
        for i in reversed(range(options.downsamplings)):  # u512 ... u64
            layers += _up(widths[i + 1], widths[i], norm, bias)
        self.body = nn.Sequential(*layers)
        self.output = _output(widths[0], out_channels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.output(self.features(x))
        return out


class LocalEnhancer(nn.Module):
    """G2: ``(x [N, C_in, H, W], G1 features [N, channels, H/2, W/2])`` -> ``[N, C_out, H, W]``;
    its front end (c7s1-32, d64) maps ``x`` to the size of G1's features, the two are added."""

    def __init__(self, in_channels: int, out_channels: int, options: Pix2PixHDGeneratorOptions):
        super().__init__()
        norm, bias = options.norm, options.norm != "batch"
        half = options.channels // 2
        self.front = nn.Sequential(
            *_conv7(in_channels, half, norm, bias), *_down(half, options.channels, norm, bias)
        )
        self.back = nn.Sequential(
            *[
                ResidualBlock(options.channels, norm, 0.0, bias)
                for _ in range(options.local_blocks)
            ],
            *_up(options.channels, half, norm, bias),  # u32
        )
        self.output = _output(half, out_channels)

    def forward(self, x: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        front = self.front(x)
        if front.shape != coarse.shape:
            raise ValueError(
                f"pix2pixhd generator: G2's front end gives {list(front.shape)} but G1's "
                f"features are {list(coarse.shape)}"
            )
        out: torch.Tensor = self.output(self.back(front + coarse))  # element-wise sum
        return out


class Pix2PixHDGenerator(nn.Module):
    """``[N, C_in, H, W]`` -> ``[N, C_out, H, W]`` in ``[-1, 1]``: G2 on the input, G1 on the
    input downsampled by 2 (:func:`downsample`), H and W multiples of ``2 ** (downsamplings +
    1)``.

    ``forward(x, level=None)``:

    - ``level = None`` (samples, metrics, ``gan translate``): the translation of ``x`` at its own
      size by what the generator has learned so far, its :attr:`level` (a buffer, set by the
      task at each stage, kept by checkpoints): ``global`` = G1 on the input downsampled by 2,
      upsampled back (bilinear); ``local`` and ``joint`` = the full G2 + G1 composition.
    - ``level = "global"`` (training, stage ``global``): G1 alone on ``x`` as given (the task
      gives half-resolution inputs), output of the same size.
    - ``level = "local"``: G2 + G1, G1 under ``torch.no_grad()`` (frozen: its parameters get no
      gradient, so the optimizer leaves them be).
    - ``level = "joint"``: G2 + G1, both trained.
    """

    def __init__(self, in_channels: int, out_channels: int, options: Pix2PixHDGeneratorOptions):
        super().__init__()
        self.in_channels, self.out_channels, self.options = in_channels, out_channels, options
        self.global_generator = GlobalGenerator(in_channels, out_channels, options)
        self.local_enhancer = LocalEnhancer(in_channels, out_channels, options)
        self.register_buffer("level_index", torch.tensor(LEVELS.index("joint")))
        init_weights(self)

    @property
    def level(self) -> str:
        """The level the generator is trained at: 'global', 'local' or 'joint'."""
        index = self.get_buffer("level_index")
        return LEVELS[int(index)]

    def set_level(self, level: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"pix2pixhd generator: level must be one of {LEVELS} (got {level!r})")
        index = self.get_buffer("level_index")
        index.fill_(LEVELS.index(level))

    def compose(self, x: torch.Tensor, train_global: bool = True) -> torch.Tensor:
        """G2(x, G1.features(downsample(x))), G1 without gradients unless ``train_global``."""
        with torch.set_grad_enabled(train_global and torch.is_grad_enabled()):
            coarse = self.global_generator.features(downsample(x))
        return self.local_enhancer(x, coarse)

    def forward(self, x: torch.Tensor, level: str | None = None) -> torch.Tensor:
        check_input("pix2pixhd generator", x, self.in_channels)
        if level is None:
            if self.level == "global":
                small = self.global_generator(downsample(x))
                return F.interpolate(small, size=x.shape[-2:], mode="bilinear").clamp(-1, 1)
            return self.compose(x)
        if level == "global":
            out: torch.Tensor = self.global_generator(x)
            return out
        if level in ("local", "joint"):
            return self.compose(x, train_global=level == "joint")
        raise ValueError(f"pix2pixhd generator: level must be one of {LEVELS} (got {level!r})")


def build_pix2pixhd_generator(
    options: Pix2PixHDGeneratorOptions, context: gancore.BuildContext
) -> Pix2PixHDGenerator:
    """The pix2pixHD generator from ``context.input_shape`` to ``context.data_shape``."""
    name = "pix2pixhd generator"
    c_in, h, w = image_shape(name, "input images", context.input_shape)
    c_out, h_out, w_out = image_shape(name, "output images", context.data_shape)
    if (h, w) != (h_out, w_out):
        raise ValueError(
            f"{name}: input and output images must have the same size (got {c_in}x{h}x{w} -> "
            f"{c_out}x{h_out}x{w_out})"
        )
    factor = 2 ** (options.downsamplings + 1)
    if h % factor or w % factor:
        raise ValueError(
            f"{name}: image height and width must be multiples of 2 ** (downsamplings + 1) = "
            f"{factor} (got {h}x{w}, downsamplings = {options.downsamplings})"
        )
    return Pix2PixHDGenerator(c_in, c_out, options)


# -------------------------------------------------------------------------------------------------
# The task
# -------------------------------------------------------------------------------------------------


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


def _optional_text(doc: str) -> Any:
    return attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata={"doc": doc},
    )


@attrs.frozen(kw_only=True)
class Pix2PixHDOptions:
    """Options of ``pix2pixhd`` (Wang et al. 2018, Eq. 4-5 and Sec. 3.2-3.3)."""

    scales: int = attrs.field(
        default=3,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={
            "doc": "critics D_1..D_k, critic k on the pair downsampled k times (3 in the paper)"
        },
    )
    feature_matching_weight: float = _weight(
        10.0, "lambda_FM: weight of the feature-matching loss (10); 0 = off"
    )
    adversarial_weight: float = _weight(
        1.0,
        "weight of the adversarial generator terms, summed over the critics; gancore's "
        "least-squares loss halves its terms, so 2.0 gives the paper's balance with it",
    )
    critic_weight: float = _weight(
        1.0,
        "factor on the critics' summed loss; 1 with gancore's least-squares loss is the paper's "
        "0.5 * (MSE real + MSE fake)",
    )
    l1_weight: float = _weight(0.0, "weight of an L1 distance to the target (not in the paper: 0)")
    perceptual_weight: float = _weight(
        10.0, "lambda of the perceptual loss (10 in the paper); used only with `extractor`"
    )
    extractor: str | None = _optional_text(
        "registered extractor of the perceptual loss: L1 between its features (its "
        "feature_map() if it has one) of G(s) and x; None = no perceptual loss (the default: "
        "VGG weights are never downloaded)"
    )
    weights_path: str | None = _optional_text(
        "the extractor's local weights file; None = the extractor's default"
    )
    weights_sha256: str | None = _optional_text(
        "expected sha256 of that file; None = the extractor's default"
    )
    global_fraction: float = _fraction(
        0.5,
        "planned stages: fraction of run.steps in stage 'global' (G1 alone at half resolution)",
    )
    local_fraction: float = _fraction(
        0.1,
        "planned stages: fraction of run.steps in stage 'local' (G2 trained, G1 frozen); the "
        "rest is stage 'joint'",
    )
    samples: Literal["triplets", "translations"] = attrs.field(
        default="triplets",
        validator=attrs.validators.in_(("triplets", "translations")),
        metadata={
            "doc": "sample(): 'triplets' = rows of input, output, target for the grids; "
            "'translations' = the outputs only, what image metrics score"
        },
    )

    def __attrs_post_init__(self) -> None:
        if self.global_fraction + self.local_fraction > 1.0:
            raise ValueError(
                "'global_fraction' + 'local_fraction' must be <= 1 (got "
                f"{self.global_fraction} + {self.local_fraction})"
            )


def stage_level(options: Mapping[str, Any], index: int) -> str:
    """The generator level of stage ``index`` from its ``options``: ``options.level``,
    'joint' when unset."""
    level = options.get("level", "joint")
    if level not in LEVELS:
        raise ValueError(
            f"stages[{index}].options.level: expected 'global', 'local' or 'joint' (got {level!r})"
        )
    return str(level)


def _step_level(step: gancore.StepContext) -> str:
    stage = step.stage
    return "joint" if stage is None else stage_level(stage.options, stage.index)


class Pix2PixHD:
    """Paired translation ``a -> x`` with G = G2 + G1 and ``scales`` conditional critics.

    Critic loss: ``critic_weight * sum_k L_D(D_k(p_k(a, x)), D_k(p_k(a, G(a))))`` with ``p_k``
    the pair downsampled ``k`` times. Generator loss: ``adversarial_weight * sum_k
    L_G(D_k(p_k(a, G(a)))) + lambda_FM * L_FM + l1_weight * |G(a) - x| + perceptual_weight *
    L_perceptual``. In a stage at level ``global``, ``a`` and ``x`` are downsampled by 2 first
    and G is G1 alone.
    """

    # G2 gets no gradient in stage global, G1 none in stage local: several processes need
    # DistributedDataParallel to look for unused parameters (gancore reads this attribute).
    find_unused_parameters = True

    def __init__(self, options: Pix2PixHDOptions) -> None:
        self.options = options

    # -- stages -----------------------------------------------------------------------------------

    def plan_stages(self, config: Any, dataset: Any) -> list[dict[str, Any]]:
        """``global`` (G1 at half resolution), ``local`` (G2 on a frozen G1), ``joint``, with
        ``global_fraction``, ``local_fraction`` and the rest of ``run.steps``; empty ones left
        out."""
        del dataset
        steps = int(config.run.steps)
        first = round(self.options.global_fraction * steps)
        second = min(round(self.options.local_fraction * steps), steps - first)
        lengths = {"global": first, "local": second, "joint": steps - first - second}
        return [
            {"name": level, "steps": length, "options": {"level": level}}
            for level, length in lengths.items()
            if length > 0
        ]

    def begin_stage(self, stage: Any, players: Mapping[str, Mapping[str, nn.Module]]) -> None:
        """Set the generator's level to the stage's (the same module throughout)."""
        generator: Any = players["generator"]["a_to_b"]
        generator.set_level(stage_level(stage.options, stage.index))

    # -- building ---------------------------------------------------------------------------------

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        a, b = image_shapes("pix2pixhd", context.dataset)
        check_sample_mode("pix2pixhd", self.options.samples, context)
        levels = [stage_level(s.options, i) for i, s in enumerate(context.config.stages)]
        half = "global" in levels or (not levels and self.options.global_fraction > 0)
        generator = context.build_generator(data_shape=b, input_shape=a)
        if not callable(getattr(generator, "set_level", None)):
            raise ValueError(
                f"task 'pix2pixhd': the generator must train coarse to fine (a set_level method; "
                f"[generator] name = 'pix2pixhd'), got {type(generator).__name__}"
            )
        critics: dict[str, nn.Module] = {}
        pair = a[0] + b[0]
        for k in range(self.options.scales):
            # Built for the smallest images it sees: scale k of the half-resolution stage.
            factor = 2 ** (k + int(half))
            shape = (pair, math.ceil(b[1] / factor), math.ceil(b[2] / factor))
            critic = context.build_critic(shape)
            if self.options.feature_matching_weight > 0 and not callable(
                getattr(critic, "layer_features", None)
            ):
                raise ValueError(
                    f"task 'pix2pixhd': feature matching needs critics with layer_features() "
                    f"([critic] name = 'pix2pixhd'), got {type(critic).__name__}; or set "
                    "task.feature_matching_weight = 0"
                )
            critics[f"critic_{k}"] = critic
        if self.options.extractor is not None and self.options.perceptual_weight > 0:
            self._extractor(context.registry)  # a missing weights file fails here
        return {"a_to_b": generator}, critics

    def _extractor(self, registry: Any = None) -> nn.Module:
        from gancore.metrics import build_extractor

        assert self.options.extractor is not None
        return build_extractor(
            self.options.extractor,
            weights_path=self.options.weights_path,
            weights_sha256=self.options.weights_sha256,
            registry=registry,
        )

    # -- training ---------------------------------------------------------------------------------

    def _pairs_and_fake(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a, x, G(a))`` at the stage's resolution (half at level 'global')."""
        a, x = batch["a"], batch["x"]
        if a.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"task 'pix2pixhd': 'a' and 'x' differ in size ({list(a.shape)} and "
                f"{list(x.shape)}); a stage's 'resolution' resizes only 'x': use "
                "options.level = 'global' for half resolution"
            )
        level = _step_level(step)
        if level == "global":
            a, x = downsample(a), downsample(x)
        return a, x, step.generators["a_to_b"](a, level=level)

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        with torch.no_grad():  # the critics' update needs no graph through the generator
            a, x, fake = self._pairs_and_fake(step, batch)
        scales = self.options.scales
        real_pairs = pyramid(torch.cat([a, x], dim=1), scales)
        fake_pairs = pyramid(torch.cat([a, fake], dim=1), scales)
        total = sum(
            (step.critic_loss(f"critic_{k}", real_pairs[k], fake_pairs[k]) for k in range(scales)),
            start=x.new_zeros(()),
        )
        return self.options.critic_weight * total

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        opts = self.options
        a, x, fake = self._pairs_and_fake(step, batch)
        real_pairs = pyramid(torch.cat([a, x], dim=1), opts.scales)
        fake_pairs = pyramid(torch.cat([a, fake], dim=1), opts.scales)
        adversarial = sum(
            (
                step.generator_loss(f"critic_{k}", fake_pairs[k], real=real_pairs[k])
                for k in range(opts.scales)
            ),
            start=x.new_zeros(()),
        )
        total = opts.adversarial_weight * adversarial
        if opts.feature_matching_weight > 0:
            # On the pairs as they are: an augmenter would transform the real and the fake pair
            # of a sample differently, and Eq. 4 compares them feature by feature.
            real_features, fake_features = [], []
            for k in range(opts.scales):
                critic: Any = step.unwrap(f"critic_{k}")  # frozen in this phase
                with torch.no_grad():
                    real_features.append(critic.layer_features(real_pairs[k])[:-1])
                fake_features.append(critic.layer_features(fake_pairs[k])[:-1])
            matching = feature_matching_loss(real_features, fake_features)
            step.log("loss/feature_matching", matching)
            total = total + opts.feature_matching_weight * matching
        l1 = (fake - x).abs().mean()
        step.log("loss/l1", l1)
        if opts.l1_weight > 0:
            total = total + opts.l1_weight * l1
        if opts.extractor is not None and opts.perceptual_weight > 0:
            perceptual = self._perceptual(fake, x)
            step.log("loss/perceptual", perceptual)
            total = total + opts.perceptual_weight * perceptual
        return total

    def _perceptual(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Mean absolute difference of the extractor's features of ``fake`` and ``real``."""
        extractor: Any = self._extractor().to(fake.device)
        features = getattr(extractor, "feature_map", None)
        if not callable(features):
            features = extractor
        if fake.shape[1] == 1:  # extractors take RGB
            fake, real = fake.expand(-1, 3, -1, -1), real.expand(-1, 3, -1, -1)
        with torch.no_grad():
            target = features(real)
        return (features(fake) - target).abs().mean()

    # -- samples ----------------------------------------------------------------------------------

    def sample_inputs(
        self,
        generators: Mapping[str, nn.Module],
        dataset: gancore.protocols.Dataset,
        num: int,
        seed: int,
    ) -> dict[str, torch.Tensor]:
        return held_inputs(dataset, num, seed)

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        """The translations at the data's resolution (G1's upsampled in stage 'global')."""
        generator = generators["a_to_b"]
        device = next(generator.parameters()).device
        a = inputs["a"].to(device)
        fake = generator(a)
        if self.options.samples == "translations":
            return gancore.SampleGrid(images=fake)
        return sample_grid([a, fake, inputs["x"].to(device)])


def build_pix2pixhd(options: Pix2PixHDOptions, context: object) -> Pix2PixHD:
    """Build the ``pix2pixhd`` task; ``context`` is unused."""
    del context
    return Pix2PixHD(options)


# -------------------------------------------------------------------------------------------------
# Registration (called by gan_cyclegan.plugin's hooks)
# -------------------------------------------------------------------------------------------------


def register_generators(register: gancore.RegisterCallback) -> None:
    """Register this module's generators."""
    register(
        "pix2pixhd",
        build_pix2pixhd_generator,
        options=Pix2PixHDGeneratorOptions,
        description="pix2pixHD coarse-to-fine generator: global G1 plus local enhancer G2.",
    )


def register_critics(register: gancore.RegisterCallback) -> None:
    """Register this module's critics."""
    register(
        "pix2pixhd",
        build_pix2pixhd_critic,
        options=PatchGANCriticOptions,
        description="PatchGAN critic that also returns its layer outputs, for feature matching.",
    )


def register_tasks(register: gancore.RegisterCallback) -> None:
    """Register this module's tasks."""
    register(
        "pix2pixhd",
        build_pix2pixhd,
        options=Pix2PixHDOptions,
        description="pix2pixHD: multi-scale critics, feature matching, coarse-to-fine stages.",
    )


def register_datasets(register: gancore.RegisterCallback) -> None:
    """Register this module's datasets."""
    register(
        "synthetic-scenes",
        build_synthetic_scenes,
        options=SyntheticScenesOptions,
        description="Offline label maps of shapes and their rendered photos, with a held-out split.",
    )
