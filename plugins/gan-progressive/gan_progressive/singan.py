"""SinGAN (Shaham et al. 2019, "SinGAN: Learning a Generative Model from a Single Natural Image").

One image, a pyramid of ``N`` scales from a coarsest short side of about ``min_size`` pixels to
the image at ``max_size``, factor ``r`` between neighbours (the paper: about 4/3). Scale ``k``
(0 the coarsest) has its own generator ``G_k`` and patch critic ``D_k``, five 3x3 convolution
blocks each (normalization, LeakyReLU 0.2; receptive field 11x11), ``32 * 2^floor(k / 4)`` channels
up to 128. Generation is residual and coarse to fine::

    x_0 = G_0(z_0)                         z_0 ~ N(0, sigma_0^2),  sigma_0 = 1
    x_k = G_k(z_k + up(x_{k-1})) + up(x_{k-1}),   z_k ~ N(0, sigma_k^2)

``up`` resizes to the next scale's size (bilinear). Scales train one after the other (a core
stage each, planned by the task from the image's size), the coarser generators frozen; each
stage's loss is WGAN-GP (lambda 0.1; gan-wgan's ``wgan`` loss and ``wgan-gp`` regularizer) plus
``alpha * ||x_k^rec - x_k||^2``: the reconstruction of the image from one fixed noise map at the
coarsest scale and no noise above it. ``sigma_k`` (k >= 1) is ``noise_amp`` times the RMSE
between ``up(x_{k-1}^rec)`` and the real image at scale ``k``: the noise is as strong as the
detail the coarser scales cannot yet reproduce.

What differs from the authors' code: every convolution pads by one pixel (theirs pad the input
by five and convolve without padding); the pyramid uses antialiased bilinear resizing (theirs a
MATLAB-style bicubic); their batch norm, at their batch of one image, is written as instance
norm (the same at batch 1), so that a batch of samples are independent draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from gancore import ConfigError, SampleGrid, StepContext, TaskBuildContext

__all__ = [
    "PatchCritic",
    "SinGAN",
    "SinGANCritic",
    "SinGANGenerator",
    "SingleImage",
    "SingleImageOptions",
    "build_single_image",
    "load_image",
    "pyramid_sizes",
    "scale_channels",
]

# -------------------------------------------------------------------------------------------------
# The image and its pyramid
# -------------------------------------------------------------------------------------------------


def load_image(source: str, channels: int) -> torch.Tensor:
    """``source`` (``skimage:NAME`` for a photo bundled with scikit-image, else a file path) as
    ``[channels, H, W]`` float32 in ``[0, 1]``; a one-line ``ValueError`` when it cannot be read."""
    if source.startswith("skimage:"):
        import skimage.data  # lazy: scikit-image is slow to import

        name = source.removeprefix("skimage:")
        bundled = sorted(
            n
            for n in getattr(skimage.data, "__all__", ())
            if n
            not in ("data_dir", "download_all", "file_hash", "lbp_frontal_face_cascade_filename")
        )
        if name not in bundled:
            raise ValueError(
                f"data.image: scikit-image has no sample image {name!r}; its samples: "
                f"{', '.join(bundled)}"
            )
        try:
            pixels = np.asarray(getattr(skimage.data, name)())
        except Exception as exc:  # a sample that needs a download, which is not possible here
            raise ValueError(
                f"data.image: scikit-image's {name!r} is not bundled with it (it needs a "
                f"download: {type(exc).__name__}); bundled photos include astronaut, chelsea, "
                "coffee, rocket"
            ) from None
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(source) as opened:
                pixels = np.asarray(opened.convert("RGB"))
        except FileNotFoundError:
            raise ValueError(f"data.image: no such file {source!r}") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"data.image: cannot read {source!r} as an image ({exc})") from None
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8) * 255
    scale = 255.0 if pixels.dtype == np.uint8 or pixels.max() > 1.0 else 1.0
    image = torch.from_numpy(pixels.astype(np.float32) / scale)
    if image.ndim == 2:
        image = image[None].expand(3, -1, -1)
    else:
        image = rearrange(image[..., :3], "h w c -> c h w")
    if channels == 1:  # ITU-R BT.601 luma
        image = (image * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
    return image.contiguous()


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[N, C, H, W]`` resized to ``size`` (bilinear, antialiased when shrinking)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrink = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def pyramid_sizes(
    height: int, width: int, *, scale_factor: float, min_size: int, max_size: int
) -> list[tuple[int, int]]:
    """The pyramid's ``(height, width)`` per scale, coarsest first.

    The image is first shrunk so that its longer side is at most ``max_size``; ``N =
    ceil(log(min_size / short) / log(scale_factor)) + 1`` scales then take the short side from
    ``short`` down to exactly ``min_size``, the factor adjusted to ``(min_size / short)^(1 /
    (N - 1))`` so that the coarsest scale lands on ``min_size`` (as Shaham et al. do). An image
    whose short side is already at most ``min_size`` is one scale.
    """
    shrink = min(1.0, max_size / max(height, width))
    h, w = max(1, round(height * shrink)), max(1, round(width * shrink))
    short = min(h, w)
    if short <= min_size:
        return [(h, w)]
    count = math.ceil(math.log(min_size / short) / math.log(scale_factor) - 1e-9) + 1
    r = (min_size / short) ** (1.0 / (count - 1))
    return [
        (max(1, round(h * r ** (count - 1 - k))), max(1, round(w * r ** (count - 1 - k))))
        for k in range(count)
    ]


def scale_channels(k: int, channels: int, max_channels: int) -> int:
    """Feature channels of scale ``k``: ``channels`` doubled every 4 scales, at most
    ``max_channels`` (the paper: 32, doubling, 128)."""
    return min(channels * 2 ** (k // 4), max_channels)


@attrs.frozen(kw_only=True)
class SingleImageOptions:
    """Options of ``single-image``."""

    image: str = attrs.field(
        default="skimage:coffee",
        validator=attrs.validators.instance_of(str),
        metadata={
            "doc": "the image: a file path, or skimage:NAME for a photo bundled with "
            "scikit-image (astronaut, chelsea, coffee, rocket...)"
        },
    )
    channels: int = attrs.field(
        default=3,
        validator=attrs.validators.in_((1, 3)),
        metadata={"doc": "3 = RGB (a grey image repeated), 1 = grey (luma)"},
    )
    max_size: int = attrs.field(
        default=250,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(8)],
        metadata={"doc": "the longer side is shrunk to at most this many pixels (the paper: 250)"},
    )


class SingleImage:
    """One image as a dataset of one item, ``{"x": [C, H, W]}`` in ``[-1, 1]`` (any aspect)."""

    def __init__(self, options: SingleImageOptions) -> None:
        self.options = options
        image = load_image(options.image, options.channels)
        shrink = min(1.0, options.max_size / max(image.shape[1:]))
        size = (max(1, round(image.shape[1] * shrink)), max(1, round(image.shape[2] * shrink)))
        self.image = (resize(image[None], size)[0].clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()
        self.shapes: Mapping[str, tuple[int, ...]] = {"x": tuple(self.image.shape)}

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index not in (0, -1):
            raise IndexError(f"single-image: index {index} out of range for 1 item")
        return {"x": self.image.clone()}

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        return {"x": self.image[None].expand(len(indices), -1, -1, -1).clone()}


def build_single_image(options: SingleImageOptions, context: object) -> SingleImage:
    try:
        return SingleImage(options)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None


# -------------------------------------------------------------------------------------------------
# Networks
# -------------------------------------------------------------------------------------------------


def _block(c_in: int, c_out: int) -> nn.Sequential:
    # The authors' batch norm sees batches of one image: it normalises each image by its own
    # statistics, which is instance norm (with a gain and bias); written as such, a batch of N
    # samples is N independent draws, as theirs drawn one at a time.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.InstanceNorm2d(c_out, affine=True),
        nn.LeakyReLU(0.2),
    )


def _init(module: nn.Module) -> None:
    """The authors' initialisation: N(0, 0.02) convolutions, N(1, 0.02) norm gains."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ScaleGenerator(nn.Module):
    """``G_k``: five 3x3 convolutions (four blocks, then a tanh output), residual:
    ``G_k(z + prev) + prev``."""

    def __init__(self, image_channels: int, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _block(image_channels, channels), *(_block(channels, channels) for _ in range(3))
        )
        self.tail = nn.Sequential(nn.Conv2d(channels, image_channels, 3, padding=1), nn.Tanh())
        _init(self)

    def forward(self, noisy: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(noisy)) + prev


class PatchCritic(nn.Module):
    """``D_k``: five 3x3 convolutions (receptive field 11x11), a score per patch ``[N, 1, h, w]``.
    The Wasserstein loss averages them; the authors' gradient penalty differentiates their sum
    (gan-wgan's ``wgan-gp`` with ``per_pixel = true``: norms per pixel of its gradient)."""

    def __init__(self, image_channels: int, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _block(image_channels, channels), *(_block(channels, channels) for _ in range(3))
        )
        self.tail = nn.Conv2d(channels, 1, 3, padding=1)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(x))


class SinGANGenerator(nn.Module):
    """The generators of every trained scale, the image pyramid and the noise amplitudes.

    ``forward(z)`` maps flat latents ``[N, latent_dim]`` (every scale's noise map, coarsest
    first; the coarsest has one channel, repeated over the image's) to images at the finest
    trained scale; ``forward(None)`` is the reconstruction of the image. Scales are added by
    :meth:`add_scale` at the start of each of the task's stages; ``scales.K`` names the modules
    a stage freezes. The real pyramid, the fixed reconstruction noise and the amplitudes are
    buffers, saved with the weights.
    """

    amplitudes: torch.Tensor
    rec_noise: torch.Tensor

    def __init__(
        self,
        image: torch.Tensor,
        sizes: Sequence[tuple[int, int]],
        *,
        channels: int,
        max_channels: int,
        noise_amp: float,
    ) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = [(int(h), int(w)) for h, w in sizes]
        self.image_channels = int(image.shape[0])
        self.channels, self.max_channels, self.noise_amp = channels, max_channels, noise_amp
        self.scales = nn.ModuleList()
        for k, size in enumerate(self.sizes):
            self.register_buffer(f"real_{k}", resize(image[None], size))
        self.register_buffer("amplitudes", torch.zeros(len(self.sizes)))
        self.latent_dim = sum(self._noise_channels(k) * h * w for k, (h, w) in enumerate(sizes))
        # Sampling only (gan sample --start-scale): scales below this one reconstruct the image.
        self.start_scale = 0
        self.add_scale()  # the coarsest; the task's stages add the others
        # Drawn after the first weights: as the run stream's first draw it would equal the
        # first sample of `gan sample --seed S` for a run of seed S.
        self.register_buffer("rec_noise", torch.randn(1, 1, *self.sizes[0]))

    def _noise_channels(self, k: int) -> int:
        return 1 if k == 0 else self.image_channels

    def real(self, k: int) -> torch.Tensor:
        """The image at scale ``k``, ``[1, C, h_k, w_k]``."""
        return getattr(self, f"real_{k}")

    @property
    def resolution(self) -> tuple[int, int]:
        """``(height, width)`` of the finest trained scale."""
        return self.sizes[max(0, len(self.scales) - 1)]

    def add_scale(self) -> None:
        """Append the next scale's generator (its weights copied from the previous scale when the
        channel counts match, as the authors do) and set its noise amplitude."""
        k = len(self.scales)
        if k >= len(self.sizes):
            raise ValueError(f"the pyramid has {len(self.sizes)} scales; no scale {k} to add")
        width = scale_channels(k, self.channels, self.max_channels)
        new = ScaleGenerator(self.image_channels, width).to(self.amplitudes.device)
        if k > 0 and scale_channels(k - 1, self.channels, self.max_channels) == width:
            new.load_state_dict(self.scales[k - 1].state_dict())
        with torch.no_grad():
            if k == 0:
                self.amplitudes[0] = 1.0
            else:
                coarser = resize(self.reconstruct(k - 1), self.sizes[k])
                rmse = torch.sqrt(F.mse_loss(coarser, self.real(k)))
                self.amplitudes[k] = self.noise_amp * rmse
        self.scales.append(new)

    def noise_maps(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Flat latents ``[N, latent_dim]`` cut into the scales' unit-variance noise maps."""
        maps, start = [], 0
        for k, (h, w) in enumerate(self.sizes):
            c = self._noise_channels(k)
            maps.append(z[:, start : start + c * h * w].reshape(-1, c, h, w))
            start += c * h * w
        return maps

    def generate(
        self,
        noises: Sequence[torch.Tensor | None],
        *,
        upto: int | None = None,
        sizes: Sequence[tuple[int, int]] | None = None,
    ) -> torch.Tensor:
        """Coarse to fine through scales ``0..upto`` (default: every trained one). ``noises[k]``
        is scale k's unit-variance noise ``[N, 1 or C, h, w]`` (scaled by its amplitude here), or
        None for none; ``sizes`` overrides the scales' sizes (samples of another shape)."""
        last = len(self.scales) - 1 if upto is None else upto
        shapes = self.sizes if sizes is None else list(sizes)
        x: torch.Tensor | None = None
        for k in range(last + 1):
            noise = noises[k]
            if x is None:
                if noise is None:
                    raise ValueError("the coarsest scale needs a noise map")
                prev = torch.zeros(
                    noise.shape[0], self.image_channels, *shapes[k], device=noise.device
                )
            else:
                prev = resize(x, shapes[k])
            noisy = prev
            if noise is not None:
                noisy = prev + self.amplitudes[k] * noise.expand(-1, self.image_channels, -1, -1)
            x = self.scales[k](noisy, prev)
        assert x is not None
        return x

    def reconstruct(self, upto: int | None = None) -> torch.Tensor:
        """The image rebuilt from the fixed coarsest noise and no noise above it, ``[1, C, h, w]``."""
        last = len(self.scales) - 1 if upto is None else upto
        return self.generate([self.rec_noise, *([None] * last)], upto=last)

    def fixed_below(
        self, noises: Sequence[torch.Tensor | None], start: int
    ) -> list[torch.Tensor | None]:
        """``noises`` with the scales below ``start`` on the reconstruction's inputs (the fixed
        noise at the coarsest, none above): those scales reproduce the image, random variation
        begins at ``start`` (generation from a chosen scale, Shaham et al. 2019)."""
        if start <= 0:
            return list(noises)
        n = next(m.shape[0] for m in noises if m is not None)
        coarsest = (
            resize(self.rec_noise, (noises[0].shape[-2], noises[0].shape[-1]))
            if noises[0] is not None
            else None
        )
        fixed: list[torch.Tensor | None] = [None] * len(noises)
        fixed[0] = None if coarsest is None else coarsest.expand(n, -1, -1, -1)
        return fixed[:start] + list(noises[start:])

    def forward(self, z: torch.Tensor | None) -> torch.Tensor:
        if z is None:
            return self.reconstruct()
        return self.generate(self.fixed_below(self.noise_maps(z), self.start_scale))


class SinGANCritic(nn.Module):
    """The patch critic of the scale in training: :meth:`next_scale` replaces it with the next
    scale's (initialised from the current one when the channel counts match)."""

    def __init__(self, image_channels: int, *, channels: int, max_channels: int) -> None:
        super().__init__()
        self.image_channels, self.channels, self.max_channels = (
            image_channels,
            channels,
            max_channels,
        )
        self.scale = 0
        self.critic = PatchCritic(image_channels, scale_channels(0, channels, max_channels))

    def next_scale(self) -> None:
        self.scale += 1
        width = scale_channels(self.scale, self.channels, self.max_channels)
        device = next(self.critic.parameters()).device
        new = PatchCritic(self.image_channels, width).to(device)
        if scale_channels(self.scale - 1, self.channels, self.max_channels) == width:
            new.load_state_dict(self.critic.state_dict())
        self.critic = new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)


# -------------------------------------------------------------------------------------------------
# The task
# -------------------------------------------------------------------------------------------------


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"'{attribute.name}' must be a number > 0 (got {value!r})")


@attrs.frozen(kw_only=True)
class SinGAN:
    """SinGAN: one generator and one patch critic per scale of one image's pyramid, trained
    coarse to fine; the task plans one stage per scale (two: ``lr_drop`` of the iterations at
    the optimizers' learning rates, the rest at a tenth)."""

    scale_factor: float = attrs.field(
        default=0.75,
        converter=float,
        validator=[attrs.validators.gt(0.0), attrs.validators.lt(1.0)],
        metadata={"doc": "size ratio of a scale to the next finer one (the paper: 3/4, r = 4/3)"},
    )
    min_size: int = attrs.field(
        default=25,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(11)],
        metadata={"doc": "short side of the coarsest scale in pixels (the paper: 25; >= 11)"},
    )
    iterations: int = attrs.field(
        default=2000,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "iterations per scale (the paper: 2,000)"},
    )
    lr_drop: float = attrs.field(
        default=0.8,
        converter=float,
        validator=[attrs.validators.gt(0.0), attrs.validators.le(1.0)],
        metadata={
            "doc": "fraction of a scale's iterations after which the learning rates drop to a "
            "tenth (the paper: 1,600 of 2,000 = 0.8; 1 = no drop)"
        },
    )
    reconstruction_weight: float = attrs.field(
        default=10.0,
        converter=float,
        validator=attrs.validators.ge(0.0),
        metadata={"doc": "alpha, the weight of the reconstruction loss (the paper: 10)"},
    )
    noise_amp: float = attrs.field(
        default=0.1,
        converter=float,
        validator=_positive,
        metadata={
            "doc": "noise std at scale k >= 1 = this x the RMSE of the coarser "
            "reconstruction (the paper: 0.1)"
        },
    )
    channels: int = attrs.field(
        default=32,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "feature channels at the coarsest scale, doubled every 4 scales"},
    )
    max_channels: int = attrs.field(
        default=128,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": "at most this many feature channels"},
    )

    # -- the pyramid --------------------------------------------------------------------------

    def _image(self, dataset: Any) -> torch.Tensor:
        shape = tuple(dataset.shapes.get("x", ()))
        if len(shape) != 3:
            raise ConfigError(
                [f"task 'singan': the dataset must provide one image 'x' (C, H, W), got {shape}"]
            )
        if len(dataset) != 1:
            raise ConfigError(
                [
                    f"task 'singan' learns one image; the dataset has {len(dataset)} items "
                    "(use the 'single-image' dataset)"
                ]
            )
        return dataset[0]["x"].float()

    def sizes(self, dataset: Any) -> list[tuple[int, int]]:
        """The pyramid of the dataset's image, coarsest first."""
        _, h, w = tuple(dataset.shapes["x"])
        return pyramid_sizes(
            h, w, scale_factor=self.scale_factor, min_size=self.min_size, max_size=max(h, w)
        )

    def plan_stages(self, config: Any, dataset: Any) -> list[dict[str, Any]]:
        """Two stages per scale (full, then a tenth of the learning rates), each adding nothing
        but the first: it adds scale k and freezes scale k - 1's generator."""
        self._image(dataset)
        first = max(1, round(self.iterations * self.lr_drop))
        rest = self.iterations - first
        lrs = {g: 0.1 * config.optimizers[g].lr for g in ("generator", "critic")}
        stages: list[dict[str, Any]] = []
        for k, (h, w) in enumerate(self.sizes(dataset)):
            stage: dict[str, Any] = {
                "name": f"scale {k} {h}x{w}",
                "steps": first,
                "reset_optimizers": k > 0,
                "options": {"scale": k},
            }
            if k > 0:
                stage["freeze"] = [f"generator.scales.{k - 1}"]
            stages.append(stage)
            if rest:
                stages.append(
                    {
                        "name": f"scale {k} {h}x{w} lr/10",
                        "steps": rest,
                        "lr": lrs,
                        "options": {"scale": k},
                    }
                )
        return stages

    # -- the protocol -------------------------------------------------------------------------

    def build(self, context: TaskBuildContext) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        dataset = context.dataset
        image = self._image(dataset)
        generator = SinGANGenerator(
            image,
            self.sizes(dataset),
            channels=self.channels,
            max_channels=self.max_channels,
            noise_amp=self.noise_amp,
        )
        critic = SinGANCritic(
            int(image.shape[0]), channels=self.channels, max_channels=self.max_channels
        )
        return {"generator": generator}, {"critic": critic}

    def begin_stage(self, stage: Any, players: dict[str, dict[str, nn.Module]]) -> None:
        scale = stage.options.get("scale")
        generator = players["generator"]["generator"]
        critic = players["critic"]["critic"]
        if not isinstance(generator, SinGANGenerator) or not isinstance(critic, SinGANCritic):
            raise ValueError("task 'singan' trains its own networks; they were replaced")
        if not isinstance(scale, int) or not 0 <= scale < len(generator.sizes):
            raise ConfigError(
                [
                    f"stages[{stage.index}].options.scale: expected a scale from 0 to "
                    f"{len(generator.sizes) - 1} (got {scale!r})"
                ]
            )
        while len(generator.scales) <= scale:
            generator.add_scale()
        while critic.scale < scale:
            critic.next_scale()

    @staticmethod
    def _real(generator: SinGANGenerator, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The image at the scale in training, once per item of this process's batch (the
        batch's items are all the image; its pyramid is kept resized in the generator)."""
        real = generator.real(len(generator.scales) - 1)
        return real.expand(batch["x"].shape[0], -1, -1, -1)

    def critic_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        generator: SinGANGenerator = step.unwrap("generator")  # type: ignore[assignment]
        real = self._real(generator, batch)
        z = step.latents(real.shape[0], generator.latent_dim)
        fake = step.generators["generator"](z)
        return step.critic_loss("critic", real, fake)

    def generator_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        generator: SinGANGenerator = step.unwrap("generator")  # type: ignore[assignment]
        real = self._real(generator, batch)
        z = step.latents(real.shape[0], generator.latent_dim)
        fake = step.generators["generator"](z)
        loss = step.generator_loss("critic", fake, real=real)
        if self.reconstruction_weight > 0:
            rec = F.mse_loss(step.generators["generator"](None), real[:1])
            step.log("loss/reconstruction", rec.detach())
            loss = loss + self.reconstruction_weight * rec
        return loss

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Any, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        generator: SinGANGenerator = generators["generator"]  # type: ignore[assignment]
        dim = generator.latent_dim
        return {"z": torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> SampleGrid:
        """Random samples at the finest trained scale."""
        return SampleGrid(images=generators["generator"](inputs["z"]))


# -------------------------------------------------------------------------------------------------
# gan sample --start-scale, --size-factor
# -------------------------------------------------------------------------------------------------


def _singan_generator(run: Any, flag: str) -> SinGANGenerator:
    generator = run.generators.get("generator")
    if not isinstance(generator, SinGANGenerator):
        raise ConfigError(
            [f"{flag}: task {run.config.task.spec.name!r} is not 'singan' (only SinGAN has scales)"]
        )
    return generator


def start_scale(run: Any, args: Any) -> str:
    """``--start-scale K``: the coarser scales reproduce the image, noise from scale K on."""
    generator = _singan_generator(run, "--start-scale")
    trained = len(generator.scales)
    if not 0 <= args.start_scale < trained:
        raise ConfigError(
            [
                f"--start-scale: expected a scale from 0 to {trained - 1} (the checkpoint has "
                f"{trained} trained scales; got {args.start_scale})"
            ]
        )
    generator.start_scale = args.start_scale
    return f"noise from scale {args.start_scale} of {trained}"


def size_factor(run: Any, args: Any) -> str:
    """``--size-factor H W``: samples with every scale's noise map H times as tall and W times
    as wide as in training (samples of another size or aspect ratio); writes the grid."""
    import gancore

    generator = _singan_generator(run, "--size-factor")
    fh, fw = args.size_factor
    if not (0.25 <= fh <= 8 and 0.25 <= fw <= 8):
        raise ConfigError([f"--size-factor: expected factors from 0.25 to 8 (got {fh:g} {fw:g})"])
    trained = len(generator.scales)
    sizes = [(max(11, round(h * fh)), max(11, round(w * fw))) for h, w in generator.sizes]
    draw = torch.Generator().manual_seed(args.seed)
    noises: list[torch.Tensor | None] = [
        torch.randn(
            args.num, 1 if k == 0 else generator.image_channels, *sizes[k], generator=draw
        ).to(run.device)
        for k in range(trained)
    ]
    with torch.no_grad():
        images = generator.generate(
            generator.fixed_below(noises, generator.start_scale), sizes=sizes
        )
    out = args.out or args.run_dir / "samples" / f"size-{fh:g}x{fw:g}-{args.seed}.png"
    columns = max(1, math.ceil(math.sqrt(args.num * images.shape[-2] / images.shape[-1])))
    gancore.save_grid(images.float().cpu(), out, columns=columns)
    h, w = images.shape[-2:]
    return f"wrote {out} ({args.num} samples of {h}x{w} px, {fh:g} x {fw:g} the training size)"
