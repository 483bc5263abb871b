"""The ``cyclegan`` and ``pix2pix`` tasks: what one critic step and one generator step compute.

Batches hold ``"a"`` (domain A, ``[N, C_a, H, W]``) and ``"x"`` (domain B, ``[N, C_b, H, W]``).
Player names: generators ``a_to_b`` (G) and ``b_to_a`` (F, CycleGAN only); critics ``critic_a`` and
``critic_b`` (CycleGAN) or ``critic`` (pix2pix). The adversarial terms use the run's ``[loss]``
through :meth:`gancore.StepContext.critic_loss` / ``generator_loss``, so the configured augmenter
and every-step regularizers apply to each critic input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
import torch
from einops import rearrange
from torch import nn

import gancore
from gan_cyclegan.pool import ImagePool

__all__ = [
    "CycleGAN",
    "CycleGANOptions",
    "Pix2Pix",
    "Pix2PixOptions",
    "build_cyclegan",
    "build_pix2pix",
    "cycle_losses",
    "identity_losses",
    "sample_grid",
]

Translate = Callable[[torch.Tensor], torch.Tensor]
SAMPLES = ("triplets", "translations")


def _weight(default: float, doc: str) -> Any:
    return attrs.field(
        default=default, converter=float, validator=attrs.validators.ge(0.0), metadata={"doc": doc}
    )


def _samples_field(doc: str) -> Any:
    return attrs.field(
        default="triplets", validator=attrs.validators.in_(SAMPLES), metadata={"doc": doc}
    )


def cycle_losses(
    g: Translate, f: Translate, a: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(||F(G(a)) - a||_1, ||G(F(b)) - b||_1, G(a), F(b))``, L1 as a mean over elements
    (Zhu et al. 2017, Eq. 2)."""
    fake_b, fake_a = g(a), f(b)
    cycle_a = (f(fake_b) - a).abs().mean()  # forward cycle: a -> G(a) -> F(G(a)) ~ a
    cycle_b = (g(fake_a) - b).abs().mean()  # backward cycle: b -> F(b) -> G(F(b)) ~ b
    return cycle_a, cycle_b, fake_b, fake_a


def identity_losses(
    g: Translate, f: Translate, a: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(||F(a) - a||_1, ||G(b) - b||_1)``: a generator fed its own output domain should change
    nothing (Zhu et al. 2017, Sec. 5.2, after Taigman et al. 2017)."""
    return (f(a) - a).abs().mean(), (g(b) - b).abs().mean()


def _rgb(images: torch.Tensor, channels: int) -> torch.Tensor:
    return images.expand(-1, channels, -1, -1) if images.shape[1] == 1 and channels == 3 else images


def sample_grid(columns: list[torch.Tensor]) -> gancore.SampleGrid:
    """A grid with one row per sample and one column per tensor ``[N, C, H, W]`` of ``columns``;
    grayscale columns are shown in colour when another column is RGB."""
    channels = max(t.shape[1] for t in columns)
    stacked = torch.stack([_rgb(t, channels) for t in columns])  # [K, N, C, H, W]
    images = rearrange(stacked, "k n c h w -> (n k) c h w")
    return gancore.SampleGrid(images=images, columns=len(columns))


def check_sample_mode(task: str, samples: str, context: gancore.TaskBuildContext) -> None:
    if samples == "triplets" and context.config.metrics:
        raise ValueError(
            f"task {task!r}: samples = 'triplets' puts inputs and reconstructions among the "
            "images that [[metrics]] score; set task.samples = 'translations'"
        )


def image_shapes(task: str, dataset: gancore.protocols.Dataset) -> tuple[Any, Any]:
    shapes = dataset.shapes
    if "a" not in shapes or "x" not in shapes:
        raise ValueError(
            f"task {task!r}: the dataset must give keys 'a' (domain A) and 'x' (domain B) "
            f"(got keys {sorted(shapes)}); use data 'unpaired', 'paired' or 'digits-translation'"
        )
    a, b = tuple(shapes["a"]), tuple(shapes["x"])
    if len(a) != 3 or len(b) != 3 or a[1:] != b[1:]:
        raise ValueError(
            f"task {task!r}: 'a' and 'x' must be images of the same height and width "
            f"(got {a} and {b})"
        )
    return a, b


def held_inputs(dataset: gancore.protocols.Dataset, num: int, seed: int) -> dict[str, torch.Tensor]:
    """``num`` fixed items of ``dataset`` (a seeded permutation, repeated if it is short)."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    if num > len(order):
        order = order.repeat(-(-num // len(order)))
    indices = order[:num].tolist()
    get_batch = getattr(dataset, "get_batch", None)
    batch = (
        get_batch(indices)
        if callable(get_batch)
        else {k: torch.stack([dataset[i][k] for i in indices]) for k in ("a", "x")}
    )
    return {"a": batch["a"].clone(), "x": batch["x"].clone()}


# -------------------------------------------------------------------------------------------------
# CycleGAN
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CycleGANOptions:
    """Options of ``cyclegan`` (Zhu et al. 2017, Eq. 3 and Sec. 4)."""

    cycle_weight: float = _weight(
        10.0, "lambda: weight of each cycle-consistency L1 term, A->B->A and B->A->B (10)"
    )
    identity_weight: float = _weight(
        0.5,
        "identity L1 ||G(b) - b|| + ||F(a) - a|| weighted identity_weight * cycle_weight (paper: "
        "0.5); 0 = off; needs A and B with the same channels",
    )
    adversarial_weight: float = _weight(
        1.0,
        "weight of the two adversarial generator terms; gancore's least-squares loss halves its "
        "terms, so 2.0 gives the paper's balance with it",
    )
    critic_weight: float = _weight(
        0.5, "factor on each critic's loss: the paper divides D's objective by 2 (0.5)"
    )
    pool_size: int = attrs.field(
        default=50,
        validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)],
        metadata={"doc": "generated images per direction kept for the critics (50); 0 = no pool"},
    )
    samples: Literal["triplets", "translations"] = _samples_field(
        "sample(): 'triplets' = rows a, G(a), F(G(a)), b, F(b), G(F(b)) for the grids; "
        "'translations' = G(a) only, what image metrics score"
    )


class CycleGAN:
    """Unpaired translation: ``G: A -> B``, ``F: B -> A``, critics ``D_A`` and ``D_B``.

    Generator loss: ``adv * (L_gan(G, D_B) + L_gan(F, D_A)) + lambda * (cycle_A + cycle_B) +
    identity * lambda * (idt_A + idt_B)``. Critic loss: ``critic_weight * (L_D(D_B) + L_D(D_A))``,
    each on its real domain and on generated images drawn through the image pool.
    """

    def __init__(self, options: CycleGANOptions) -> None:
        self.options = options
        self.pool_a = ImagePool(options.pool_size)  # F(b): fakes of domain A, for D_A
        self.pool_b = ImagePool(options.pool_size)  # G(a): fakes of domain B, for D_B

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        a, b = image_shapes("cyclegan", context.dataset)
        if self.options.identity_weight > 0 and a[0] != b[0]:
            raise ValueError(
                f"task 'cyclegan': identity_weight > 0 needs domains with the same channels "
                f"(A has {a[0]}, B has {b[0]}); set task.identity_weight = 0"
            )
        check_sample_mode("cyclegan", self.options.samples, context)
        generators = {
            "a_to_b": context.build_generator(data_shape=b, input_shape=a),  # G
            "b_to_a": context.build_generator(data_shape=a, input_shape=b),  # F
        }
        critics = {"critic_a": context.build_critic(a), "critic_b": context.build_critic(b)}
        return generators, critics

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        a, b = batch["a"], batch["x"]
        with torch.no_grad():  # the critics' update needs no graph through the generators
            fake_b = self.pool_b.query(step.generators["a_to_b"](a))
            fake_a = self.pool_a.query(step.generators["b_to_a"](b))
        critic_b = step.critic_loss("critic_b", b, fake_b)
        critic_a = step.critic_loss("critic_a", a, fake_a)
        return self.options.critic_weight * (critic_a + critic_b)

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        a, b = batch["a"], batch["x"]
        g, f = step.generators["a_to_b"], step.generators["b_to_a"]
        opts = self.options
        cycle_a, cycle_b, fake_b, fake_a = cycle_losses(g, f, a, b)
        adversarial = step.generator_loss("critic_b", fake_b) + step.generator_loss(
            "critic_a", fake_a
        )
        step.log("loss/cycle_a", cycle_a)
        step.log("loss/cycle_b", cycle_b)
        total = opts.adversarial_weight * adversarial + opts.cycle_weight * (cycle_a + cycle_b)
        if opts.identity_weight > 0:
            identity_a, identity_b = identity_losses(g, f, a, b)
            step.log("loss/identity_a", identity_a)
            step.log("loss/identity_b", identity_b)
            total = total + opts.identity_weight * opts.cycle_weight * (identity_a + identity_b)
        return total

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
        g, f = generators["a_to_b"], generators["b_to_a"]
        a = inputs["a"]
        fake_b = g(a)
        if self.options.samples == "translations":
            return gancore.SampleGrid(images=fake_b)
        b = inputs["x"]
        fake_a = f(b)
        return sample_grid([a, fake_b, f(fake_b), b, fake_a, g(fake_a)])

    def state_dict(self) -> dict[str, Any]:
        """The two image pools, so that a resumed run continues with the same history."""
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.pool_a.load_state_dict(state["pool_a"])
        self.pool_b.load_state_dict(state["pool_b"])


def build_cyclegan(options: CycleGANOptions, context: object) -> CycleGAN:
    """Build the ``cyclegan`` task; ``context`` is unused."""
    del context
    return CycleGAN(options)


# -------------------------------------------------------------------------------------------------
# pix2pix
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Pix2PixOptions:
    """Options of ``pix2pix`` (Isola et al. 2017, Eq. 4 and Sec. 3.3)."""

    l1_weight: float = _weight(100.0, "lambda: weight of the L1 distance to the target (100)")
    adversarial_weight: float = _weight(1.0, "weight of the adversarial generator term (1)")
    critic_weight: float = _weight(
        0.5, "factor on the critic's loss: the paper divides D's objective by 2 (0.5)"
    )
    samples: Literal["triplets", "translations"] = _samples_field(
        "sample(): 'triplets' = rows of input, output, target for the grids; 'translations' = "
        "the outputs only, what image metrics score"
    )


class Pix2Pix:
    """Paired translation: ``G: A -> B`` and a conditional critic ``D(concat(a, b))``.

    Generator loss: ``adv * L_cgan(G, D) + lambda * ||b - G(a)||_1``; critic loss:
    ``critic_weight * L_D(D(a, b), D(a, G(a)))``. The critic sees the input and the image
    concatenated along channels, so the augmenter transforms both as one tensor.
    """

    def __init__(self, options: Pix2PixOptions) -> None:
        self.options = options

    def build(
        self, context: gancore.TaskBuildContext
    ) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        a, b = image_shapes("pix2pix", context.dataset)
        check_sample_mode("pix2pix", self.options.samples, context)
        generator = context.build_generator(data_shape=b, input_shape=a)
        critic = context.build_critic((a[0] + b[0], *b[1:]))  # scores concat(input, image)
        return {"a_to_b": generator}, {"critic": critic}

    def critic_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        a, b = batch["a"], batch["x"]
        with torch.no_grad():
            fake = step.generators["a_to_b"](a)
        real_pair, fake_pair = torch.cat([a, b], dim=1), torch.cat([a, fake], dim=1)
        return self.options.critic_weight * step.critic_loss("critic", real_pair, fake_pair)

    def generator_step(
        self, step: gancore.StepContext, batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        a, b = batch["a"], batch["x"]
        fake = step.generators["a_to_b"](a)
        adversarial = step.generator_loss("critic", torch.cat([a, fake], dim=1))
        l1 = (fake - b).abs().mean()
        step.log("loss/l1", l1)
        return self.options.adversarial_weight * adversarial + self.options.l1_weight * l1

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
        fake = generators["a_to_b"](inputs["a"])
        if self.options.samples == "translations":
            return gancore.SampleGrid(images=fake)
        return sample_grid([inputs["a"], fake, inputs["x"]])


def build_pix2pix(options: Pix2PixOptions, context: object) -> Pix2Pix:
    """Build the ``pix2pix`` task; ``context`` is unused."""
    del context
    return Pix2Pix(options)
