"""StarGAN (Choi et al. 2018, "StarGAN: Unified Generative Adversarial Networks for Multi-Domain
Image-to-Image Translation"): one generator ``G(x, c)`` translates an image ``x`` into any target
domain ``c``, and one critic ``D(x)`` gives an adversarial score map and domain logits.

- Task ``stargan``. The target label ``c`` (one-hot for single-label domains, multi-hot for binary
  attributes) is replicated over ``H x W`` and concatenated to the image channels (Sec. 3.1), so
  any registered image-to-image generator with ``C + K`` input channels can be ``G``.
  Critic loss (Eq. 5): ``L_adv + lambda_cls * L_cls^r + lambda_gp * L_gp``; generator loss
  (Eq. 6): ``L_adv + lambda_cls * L_cls^f + lambda_rec * ||x - G(G(x, c), c')||_1``, ``c'`` the
  source label. ``L_adv`` is the run's ``[loss]``; ``L_gp`` the WGAN-GP penalty (Gulrajani et al.
  2017) on real-fake interpolates, owned by the task (``gradient_penalty``).
- Generator ``stargan`` (App., Table 4): ``c7s1-64, d128, d256, 6 residual blocks, u128, u64,
  c7s1-C``, instance norm with affine parameters, ReLU, tanh; 4x4 stride-2 (transposed)
  convolutions, zero padding.
- Critic ``stargan`` (App., Table 5): a PatchGAN without normalization, 4x4 stride-2
  convolutions doubling the channels, LeakyReLU 0.01, a 3x3 convolution to one score map; the task
  adds the domain head, a convolution whose kernel is the final feature map (``K`` logits).
- Datasets (``stargan_data``): ``digits-domains`` and ``attribute-images``; gancore's
  ``image-folder`` with ``labels = "subfolders"`` gives single-label domains too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from einops import reduce, repeat
from torch import nn

import gancore
from gan_cyclegan import stargan_data
from gan_cyclegan.networks import check_input
from gan_cyclegan.tasks import sample_grid
from gancore import RegisterCallback

__all__ = [
    "LEAKY_SLOPE",
    "DomainCritic",
    "Domains",
    "StarGAN",
    "StarGANCritic",
    "StarGANCriticOptions",
    "StarGANGenerator",
    "StarGANGeneratorOptions",
    "StarGANOptions",
    "build_stargan",
    "build_stargan_critic",
    "build_stargan_generator",
    "classification_loss",
    "draw_targets",
    "gradient_penalty",
    "held_out_errors",
    "register_critics",
    "register_datasets",
    "register_generators",
    "register_tasks",
    "translate",
    "with_labels",
]

LEAKY_SLOPE = 0.01  # LeakyReLU slope of StarGAN's critic (Choi et al. 2018, App.)
TARGETS = ("shuffle", "uniform", "other")


def _positive(default: int, doc: str) -> Any:
    return attrs.field(
        default=default,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)],
        metadata={"doc": doc},
    )


def _image_shape(component: str, what: str, shape: tuple[int, ...] | None) -> tuple[int, int, int]:
    if shape is None or len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"{component}: expected {what} of shape (C, H, W) (got {shape}); it is an "
            "image-to-image network for task 'stargan'"
        )
    return shape[0], shape[1], shape[2]


# -------------------------------------------------------------------------------------------------
# Generator
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StarGANGeneratorOptions:
    """Options of :class:`StarGANGenerator` (Choi et al. 2018, App., Table 4)."""

    channels: int = _positive(
        64, "feature maps of the first 7x7 convolution (64), doubled per down"
    )
    blocks: int = _positive(6, "residual blocks at the lowest resolution (6 in the paper)")
    downsamplings: int = _positive(
        2, "4x4 stride-2 convolutions before the blocks, transposed ones after (2 in the paper)"
    )


class _ResidualBlock(nn.Module):
    """x + IN(conv3x3(ReLU(IN(conv3x3(x))))), zero padding, affine instance norm."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.body(x)
        return out


class StarGANGenerator(nn.Module):
    """``[N, C + K, H, W]`` (image and replicated label, see :func:`with_labels`) ->
    ``[N, C, H, W]`` in ``[-1, 1]``; H and W divisible by ``2 ** downsamplings``."""

    def __init__(
        self,
        in_channels: int,  # image channels + label channels K
        out_channels: int,  # image channels C
        options: StarGANGeneratorOptions,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        width = options.channels
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 7, padding=3, bias=False),
            nn.InstanceNorm2d(width, affine=True),
            nn.ReLU(),
        ]
        for _ in range(options.downsamplings):
            layers += [
                nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
                nn.InstanceNorm2d(2 * width, affine=True),
                nn.ReLU(),
            ]
            width *= 2
        layers += [_ResidualBlock(width) for _ in range(options.blocks)]
        for _ in range(options.downsamplings):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1, bias=False),
                nn.InstanceNorm2d(width // 2, affine=True),
                nn.ReLU(),
            ]
            width //= 2
        layers += [nn.Conv2d(width, out_channels, 7, padding=3, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("stargan generator", x, self.in_channels)
        out: torch.Tensor = self.net(x)
        return out


def build_stargan_generator(
    options: StarGANGeneratorOptions, context: gancore.BuildContext
) -> StarGANGenerator:
    """The StarGAN generator from ``context.input_shape`` (C + K channels) to ``data_shape``."""
    name = "stargan generator"
    c_in, h, w = _image_shape(name, "input images", context.input_shape)
    c_out, h_out, w_out = _image_shape(name, "output images", context.data_shape)
    factor = 2**options.downsamplings
    if (h, w) != (h_out, w_out) or h % factor or w % factor or min(h, w) // factor < 1:
        raise ValueError(
            f"{name}: input and output must have the same height and width, multiples of "
            f"2 ** downsamplings = {factor} (got {h}x{w} -> {h_out}x{w_out})"
        )
    return StarGANGenerator(c_in, c_out, options)


# -------------------------------------------------------------------------------------------------
# Critic
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StarGANCriticOptions:
    """Options of :class:`StarGANCritic` (Choi et al. 2018, App., Table 5)."""

    channels: int = _positive(64, "feature maps of the first layer (64), doubled per layer")
    layers: int = _positive(
        6,
        "4x4 stride-2 convolutions (6 for 128x128 images: a 2x2 score map); images need a side "
        "of at least 2 ** layers",
    )
    max_channels: int = _positive(2048, "cap on the doubling feature maps (2048 in the paper)")


class StarGANCritic(nn.Module):
    """``[N, C, H, W]`` -> score map ``[N, 1, H / 2**layers, W / 2**layers]``.

    ``trunk`` gives the final feature maps ``[N, feature_channels, *feature_size]``, which
    ``adversarial`` (3x3 convolution) turns into scores and a :class:`DomainCritic` head into
    domain logits.
    """

    def __init__(self, in_channels: int, size: tuple[int, int], options: StarGANCriticOptions):
        super().__init__()
        self.in_channels = in_channels
        widths = [min(options.channels * 2**i, options.max_channels) for i in range(options.layers)]
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(in_channels if i == 0 else widths[i - 1], width, 4, stride=2, padding=1),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
        self.trunk = nn.Sequential(*layers)
        self.feature_channels = widths[-1]
        self.feature_size = (size[0] >> options.layers, size[1] >> options.layers)
        self.adversarial = nn.Conv2d(widths[-1], 1, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if extra:
            raise ValueError(
                f"stargan critic: takes no conditioning inputs (got {len(extra)}); the domain "
                "is what its head predicts"
            )
        check_input("stargan critic", x, self.in_channels)
        out: torch.Tensor = self.adversarial(self.trunk(x))
        return out


def build_stargan_critic(
    options: StarGANCriticOptions, context: gancore.BuildContext
) -> StarGANCritic:
    """The StarGAN critic for images of ``context.data_shape``."""
    name = "stargan critic"
    channels, h, w = _image_shape(name, "images", context.data_shape)
    if min(h, w) < 2**options.layers or h % 2**options.layers or w % 2**options.layers:
        most = int(math.log2(min(h, w) & -min(h, w)))
        raise ValueError(
            f"{name}: images of {h}x{w} need sides that are multiples of 2 ** layers = "
            f"{2**options.layers} (got layers = {options.layers}; use critic.layers <= {most})"
        )
    return StarGANCritic(channels, (h, w), options)


class DomainCritic(nn.Module):
    """A :class:`StarGANCritic` plus the domain classifier ``D_cls``: a convolution whose kernel
    is the final feature map, ``K`` logits per image.

    ``critic(x)`` is the score map; while :attr:`recorded` is a list, each call also appends the
    logits ``[N, K]`` computed from the same features, so the task reads ``D_cls`` through the
    loop's own critic calls (augmentation, multi-process synchronization) without a second
    forward pass. Calls with ``recorded = None`` (the penalties') skip the head.
    """

    def __init__(self, body: StarGANCritic, domains: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Conv2d(body.feature_channels, domains, body.feature_size, bias=False)
        self.recorded: list[torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if extra:
            raise ValueError(f"stargan critic: takes no conditioning inputs (got {len(extra)})")
        check_input("stargan critic", x, self.body.in_channels)
        features = self.body.trunk(x)
        if self.recorded is not None:
            self.recorded.append(self.head(features).flatten(1))  # [N, K]
        out: torch.Tensor = self.body.adversarial(features)
        return out

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Domain logits ``[N, K]`` of images ``x`` (no augmentation; for evaluation)."""
        logits: torch.Tensor = self.head(self.body.trunk(x)).flatten(1)
        return logits


# -------------------------------------------------------------------------------------------------
# Labels and losses
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class Domains:
    """The run's domains: ``kind`` 'single' (``batch["label"]``, int64 ``[N]``, one domain per
    image) or 'multi' (``batch["labels"]``, float ``[N, K]``, binary attributes); ``names``."""

    kind: Literal["single", "multi"]
    names: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def key(self) -> str:
        return "label" if self.kind == "single" else "labels"

    def vector(self, labels: torch.Tensor) -> torch.Tensor:
        """The generator's label ``c`` ``[N, K]``: one-hot of single labels, attributes as they
        are."""
        if self.kind == "single":
            return F.one_hot(labels.long(), self.count).float()
        return labels.float()


def domains_of(task: str, dataset: gancore.protocols.Dataset) -> Domains:
    """The domains a dataset's items carry, or a one-line ``ValueError``."""
    shapes = dataset.shapes
    if "label" in shapes:
        classes = getattr(dataset, "classes", None)
        if not classes or len(classes) < 2:
            raise ValueError(
                f"task {task!r}: the dataset's 'label' needs at least 2 named classes (got "
                f"classes = {classes!r}); use image-folder with labels = 'subfolders'"
            )
        return Domains("single", tuple(str(c) for c in classes))
    if "labels" in shapes:
        shape = tuple(shapes["labels"])
        if len(shape) != 1 or shape[0] < 1:
            raise ValueError(
                f"task {task!r}: 'labels' must be binary attributes of shape (K,) (got {shape})"
            )
        names = getattr(dataset, "attributes", None) or tuple(f"attr{i}" for i in range(shape[0]))
        return Domains("multi", tuple(str(n) for n in names))
    raise ValueError(
        f"task {task!r}: the dataset must give 'label' (one domain per image) or 'labels' (binary "
        f"attributes) (got keys {sorted(shapes)}); use 'digits-domains', 'attribute-images' or "
        "image-folder with labels = 'subfolders'"
    )


def with_labels(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The generator input: images ``[N, C, H, W]`` and labels ``[N, K]`` replicated over ``H x W``
    and concatenated to the channels, ``[N, C + K, H, W]`` (Choi et al. 2018, Sec. 3.1)."""
    maps = repeat(c.to(x.dtype), "n k -> n k h w", h=x.shape[-2], w=x.shape[-1])
    return torch.cat([x, maps], dim=1)


def translate(
    generator: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, c: torch.Tensor
) -> torch.Tensor:
    """``G(x, c)``: images ``x`` translated to the domains ``c`` ``[N, K]``."""
    return generator(with_labels(x, c))


def draw_targets(domains: Domains, source: torch.Tensor, how: str) -> torch.Tensor:
    """Target labels for a batch whose source labels are ``source``, from the process's torch
    generator (checkpointed: exact resume).

    - ``shuffle``: the labels of another image of the batch (a random permutation), what the
      authors' code does for CelebA and RaFD alike; keeps realistic attribute combinations;
    - ``uniform``: single: any domain, uniformly; multi: each attribute a fair coin;
    - ``other``: single: a domain other than the source's, uniformly; multi: one attribute flipped.
    """
    n = source.shape[0]
    if how == "shuffle":
        return source[torch.randperm(n, device=source.device)]
    if domains.kind == "single":
        k = domains.count
        if how == "uniform":
            return torch.randint(k, (n,), device=source.device)
        return (source + torch.randint(1, k, (n,), device=source.device)) % k
    if how == "uniform":
        return torch.bernoulli(torch.full_like(source, 0.5))
    flipped = source.clone()
    which = torch.randint(domains.count, (n,), device=source.device)
    rows = torch.arange(n, device=source.device)
    flipped[rows, which] = 1.0 - flipped[rows, which]
    return flipped


def classification_loss(
    domains: Domains, logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """``L_cls`` (Choi et al. 2018, Eqs. 2-3): single-label domains, softmax cross-entropy
    ``-log softmax(logits)[label]`` averaged over the batch; attributes, the binary cross-entropy
    of each attribute, summed over attributes and averaged over the batch."""
    if domains.kind == "single":
        return F.cross_entropy(logits, labels.long())
    # -[y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))], summed over K, mean over N
    total = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="sum")
    return total / logits.shape[0]


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """``E[(||grad D(x_hat)||_2 - 1)^2]`` at ``x_hat = a x + (1 - a) x_fake``, ``a ~ U[0, 1]`` per
    sample (Gulrajani et al. 2017, Eq. 3; Choi et al. 2018, Eq. 8). ``D`` of a sample is the mean
    of its score map, as the losses average it; the norm is over every non-batch dimension."""
    a = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
    x_hat = (a * real.detach() + (1.0 - a) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    per_sample = reduce(scores, "n ... -> n", "mean") if scores.ndim > 1 else scores
    # create_graph: the penalty is differentiated again, for the critic's parameters.
    (grad,) = torch.autograd.grad(per_sample.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return (norms - 1.0).square().mean()


# -------------------------------------------------------------------------------------------------
# Task
# -------------------------------------------------------------------------------------------------


def _weight(default: float, doc: str) -> Any:
    return attrs.field(
        default=default, converter=float, validator=attrs.validators.ge(0.0), metadata={"doc": doc}
    )


@attrs.frozen(kw_only=True)
class StarGANOptions:
    """Options of ``stargan`` (Choi et al. 2018, Eqs. 5-6 and Sec. 4.3)."""

    classification_weight: float = _weight(
        1.0, "lambda_cls: weight of the domain classification terms, critic and generator (1)"
    )
    reconstruction_weight: float = _weight(
        10.0, "lambda_rec: weight of the L1 reconstruction ||x - G(G(x, c), c')||_1 (10)"
    )
    gradient_penalty: float = _weight(
        10.0,
        "lambda_gp: weight of the WGAN-GP penalty on real-fake interpolates, added to the "
        "critic's loss by the task (10); 0 = off (e.g. with gan-wgan's wgan-gp regularizer)",
    )
    target: Literal["shuffle", "uniform", "other"] = attrs.field(
        default="shuffle",
        validator=attrs.validators.in_(TARGETS),
        metadata={
            "doc": "target labels c: 'shuffle' = another image's labels in the batch (the "
            "authors' code); 'uniform' = any domain / each attribute a coin; 'other' = a "
            "domain other than the source's / one attribute flipped"
        },
    )
    samples: Literal["grid", "translations"] = attrs.field(
        default="grid",
        validator=attrs.validators.in_(("grid", "translations")),
        metadata={
            "doc": "sample(): 'grid' = per row an input, then its translation to each domain "
            "(attributes: each one flipped); 'translations' = one translation per input, to "
            "another domain, what image metrics score"
        },
    )


class StarGAN:
    """One generator ``generator`` (``G(x, c)``) and one critic ``critic`` (``D_src``, ``D_cls``).

    Critic loss: ``L_D(D_src(x), D_src(G(x, c))) + lambda_cls * L_cls(D_cls(x), c') + lambda_gp *
    L_gp``; generator loss: ``L_G(D_src(G(x, c))) + lambda_cls * L_cls(D_cls(G(x, c)), c) +
    lambda_rec * ||x - G(G(x, c), c')||_1`` (``c'`` the source labels, ``c`` drawn per
    ``target``).
    """

    def __init__(self, options: StarGANOptions) -> None:
        self.options = options
        self.domains: Domains | None = None  # known once built

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        self.domains = domains = domains_of("stargan", context.dataset)
        shape = tuple(context.dataset.shapes["x"])
        if len(shape) != 3:
            raise ValueError(
                f"task 'stargan': expected images 'x' of shape (C, H, W) (got {shape})"
            )
        if self.options.samples == "grid" and context.config.metrics:
            raise ValueError(
                "task 'stargan': samples = 'grid' puts the inputs among the images that "
                "[[metrics]] score; set task.samples = 'translations'"
            )
        c, h, w = shape
        generator = context.build_generator(data_shape=shape, input_shape=(c + domains.count, h, w))
        body = context.build_critic(shape)
        if not isinstance(body, StarGANCritic):
            raise ValueError(
                f"task 'stargan': needs critic 'stargan', whose feature maps feed the domain "
                f"classifier (got {type(body).__name__})"
            )
        return {"generator": generator}, {"critic": DomainCritic(body, domains.count)}

    def _domains(self) -> Domains:
        if self.domains is None:
            raise RuntimeError("task 'stargan': build() must run before the steps")
        return self.domains

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        domains, opts = self._domains(), self.options
        x, source = batch["x"], batch[domains.key]
        target = draw_targets(domains, source, opts.target)
        with torch.no_grad():  # the critic's update needs no graph through the generator
            fake = translate(step.generators["generator"], x, domains.vector(target))
        critic: Any = step.unwrap("critic")
        critic.recorded = []  # D_cls of the two calls: real, then fake
        try:
            adversarial = step.critic_loss("critic", x, fake)
            real_logits = critic.recorded[0]
        finally:
            critic.recorded = None
        classify = classification_loss(domains, real_logits, source)  # Eq. 2 on real images
        step.log("loss/classify_real", classify)
        total = adversarial + opts.classification_weight * classify
        if opts.gradient_penalty > 0:
            penalty = gradient_penalty(step.scorer("critic"), x, fake)
            step.log("loss/gradient_penalty", penalty)
            total = total + opts.gradient_penalty * penalty
        return total

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        domains, opts = self._domains(), self.options
        x, source = batch["x"], batch[domains.key]
        target = draw_targets(domains, source, opts.target)
        generator = step.generators["generator"]
        fake = translate(generator, x, domains.vector(target))
        critic: Any = step.unwrap("critic")
        critic.recorded = []
        try:
            adversarial = step.generator_loss("critic", fake, real=x)
            fake_logits = critic.recorded[0]  # the first call is D(aug(fake))
        finally:
            critic.recorded = None
        classify = classification_loss(domains, fake_logits, target)  # Eq. 3: fake as target
        # Eq. 4: back to the ORIGINAL domain c'
        reconstruction = (translate(generator, fake, domains.vector(source)) - x).abs().mean()
        step.log("loss/classify_fake", classify)
        step.log("loss/reconstruction", reconstruction)
        return (
            adversarial
            + opts.classification_weight * classify
            + opts.reconstruction_weight * reconstruction
        )

    def sample_inputs(
        self,
        generators: Mapping[str, nn.Module],
        dataset: gancore.protocols.Dataset,
        num: int,
        seed: int,
    ) -> dict[str, torch.Tensor]:
        """``num`` fixed items (a seeded permutation) and a target for each (another domain, or
        one attribute flipped), all drawn from ``seed``."""
        domains = self.domains or domains_of("stargan", dataset)
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(dataset), generator=gen)
        if num > len(order):
            order = order.repeat(-(-num // len(order)))
        indices = order[:num].tolist()
        get_batch = getattr(dataset, "get_batch", None)
        batch = (
            get_batch(indices)
            if callable(get_batch)
            else {k: torch.stack([dataset[i][k] for i in indices]) for k in ("x", domains.key)}
        )
        source = batch[domains.key].clone()
        if domains.kind == "single":
            shift = torch.randint(1, domains.count, (num,), generator=gen)
            target = (source + shift) % domains.count
        else:
            target = source.clone()
            which = torch.randint(domains.count, (num,), generator=gen)
            target[torch.arange(num), which] = 1.0 - target[torch.arange(num), which]
        return {"x": batch["x"].clone(), "source": source, "target": target}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> gancore.SampleGrid:
        domains = self.domains
        assert domains is not None, "build() runs before sample()"
        generator, x = generators["generator"], inputs["x"]
        if self.options.samples == "translations":
            return gancore.SampleGrid(
                images=translate(generator, x, domains.vector(inputs["target"]))
            )
        columns = [x]
        for j in range(domains.count):
            if domains.kind == "single":
                c = F.one_hot(torch.full((len(x),), j, device=x.device), domains.count).float()
            else:  # attribute j flipped, the others kept (the paper's CelebA figures)
                c = inputs["source"].float().clone()
                c[:, j] = 1.0 - c[:, j]
            columns.append(translate(generator, x, c))
        return sample_grid(columns)


def build_stargan(options: StarGANOptions, context: object) -> StarGAN:
    """Build the ``stargan`` task; ``context`` is unused."""
    del context
    return StarGAN(options)


@torch.no_grad()
def held_out_errors(
    generator: Callable[[torch.Tensor], torch.Tensor],
    dataset: stargan_data.DigitsDomains,
    batch_size: int = 256,
) -> torch.Tensor:
    """``E[s, t]`` = mean ``|G(x_i^s, t) - x_i^t|`` over the held-out digits ``i`` and their pixels,
    float64 ``[K, K]``: the error of translating domain ``s`` to ``t`` against the ground truth, in
    the ``[-1, 1]`` units of the images (diagonal: ``G`` asked for the input's own domain)."""
    if dataset.options.split != "held-out":
        raise ValueError("held_out_errors: needs digits-domains with split = 'held-out'")
    truth = dataset.ground_truth  # [K, n, C, H, W]
    k, n = truth.shape[:2]
    module = generator if isinstance(generator, nn.Module) else None
    device = next(module.parameters()).device if module is not None else truth.device
    errors = torch.zeros(k, k, dtype=torch.float64)
    for s in range(k):
        for t in range(k):
            total = 0.0
            for start in range(0, n, batch_size):
                x = truth[s, start : start + batch_size].to(device)
                c = F.one_hot(torch.full((len(x),), t, device=device), k).float()
                out = translate(generator, x, c)
                total += float((out - truth[t, start : start + batch_size].to(device)).abs().sum())
            errors[s, t] = total / truth[t].numel()
    return errors


# -------------------------------------------------------------------------------------------------
# Registration (called by gan_cyclegan.plugin)
# -------------------------------------------------------------------------------------------------


def register_generators(register: RegisterCallback) -> None:
    """Register this module's generators."""
    register(
        "stargan",
        build_stargan_generator,
        options=StarGANGeneratorOptions,
        description="StarGAN generator: image + replicated domain label in, affine IN (Choi 2018).",
    )


def register_critics(register: RegisterCallback) -> None:
    """Register this module's critics."""
    register(
        "stargan",
        build_stargan_critic,
        options=StarGANCriticOptions,
        description="StarGAN critic: PatchGAN without norm, LeakyReLU 0.01; task adds D_cls.",
    )


def register_tasks(register: RegisterCallback) -> None:
    """Register this module's tasks."""
    register(
        "stargan",
        build_stargan,
        options=StarGANOptions,
        description="Multi-domain translation: one G(x, c), critic with domain head (Choi 2018).",
    )


def register_datasets(register: RegisterCallback) -> None:
    """Register this module's datasets."""
    register(
        "digits-domains",
        stargan_data.build_digits_domains,
        options=stargan_data.DigitsDomainsOptions,
        description="Offline digits in k known styles, one per image; held-out in every style.",
    )
    register(
        "attribute-images",
        stargan_data.build_attribute_images,
        options=stargan_data.AttributeImagesOptions,
        description="A folder of images with binary attributes from a CSV (file,attr1,...).",
    )
