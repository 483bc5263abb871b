"""Class conditioning for existing networks: wrappers around any registered generator or critic.

Each wrapper names its inner network as a nested table (``inner = { name = "dcgan", ... }``), built
from the run's registry, so conditioning composes with every network rather than copying one:

- generator ``concat`` (cGAN, Mirza & Osindero 2014): ``G(z, y) = inner([z, e(y)])`` with ``e``
  one-hot or a learned embedding;
- generator ``conditional-batchnorm`` (de Vries et al. 2017; Dumoulin et al. 2017): every
  normalization layer of the inner generator gets a per-class gain and bias,
  ``gamma_y * norm(h) + beta_y``;
- critic ``concat`` (cGAN): one-hot label maps concatenated to the input, ``D(x, y) = inner([x,
  onehot(y) broadcast])``;
- critic ``projection`` (Miyato & Koyama 2018, Eq. 3): ``D(x, y) = psi(phi(x)) + embed(y)^T
  phi(x)`` with ``phi = inner.features`` and ``psi = inner.score`` (the inner critic must be a
  :class:`gancore.protocols.FeatureCritic`).

The number of classes comes from the conditional task (its build context carries ``num_classes``,
the dataset's class count); built on its own (tests, the conformance kit) a wrapper reads its
``classes`` option instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

import gancore

__all__ = [
    "AuxiliaryCritic",
    "ConcatCritic",
    "ConcatCriticOptions",
    "ConcatGenerator",
    "ConcatGeneratorOptions",
    "ConditionalBatchNormGenerator",
    "ConditionalBatchNormOptions",
    "ConditionalNorm",
    "LabelledBuildContext",
    "ProjectionCritic",
    "ProjectionCriticOptions",
    "build_cbn_generator",
    "build_concat_critic",
    "build_concat_generator",
    "build_projection_critic",
    "conditional_norm_layers",
]

NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.GroupNorm,
)


@attrs.frozen(kw_only=True)
class LabelledBuildContext(gancore.BuildContext):
    """The build context a conditional task gives its networks: a :class:`gancore.BuildContext`
    plus ``num_classes``, the dataset's class count (labels ``0 .. num_classes - 1``)."""

    num_classes: int | None = None


def _inner_table(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or "name" not in value:
        raise ValueError(f"expected a table with a 'name' (got {value!r})")
    return dict(value)


def _classes_field() -> Any:
    return attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.ge(2)),
        metadata={
            "doc": "number of classes, >= 2; None = the dataset's (given by the conditional task); "
            "set it only to build the network outside a conditional task"
        },
    )


def _inner_field(example: str) -> Any:
    return attrs.field(
        converter=_inner_table,
        metadata={"doc": f"the network to condition, as a component table, e.g. {example}"},
    )


def _num_classes(component: str, options: Any, context: Any) -> int:
    """The class count: the task's (context), else the ``classes`` option; they must agree."""
    given = getattr(context, "num_classes", None)
    option = options.classes
    if given is not None and option is not None and given != option:
        raise ValueError(
            f"{component}: classes = {option} but the dataset has {given} classes; leave "
            "'classes' unset inside a conditional task"
        )
    count = given if given is not None else option
    if count is None:
        raise ValueError(
            f"{component}: the number of classes is unknown: use it in a conditional task "
            "(task 'conditional' or 'acgan') or set 'classes'"
        )
    return int(count)


def _check_labels(component: str, labels: torch.Tensor, batch: int, classes: int) -> None:
    """Labels enter here: int64 ``[N]`` in ``0 .. classes - 1``."""
    if labels.ndim != 1 or labels.shape[0] != batch or labels.dtype != torch.int64:
        raise ValueError(
            f"{component}: expected int64 labels [{batch}] (got {labels.dtype} "
            f"{list(labels.shape)})"
        )


# -------------------------------------------------------------------------------------------------
# Generators
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ConcatGeneratorOptions:
    """Options of the ``concat`` generator conditioning (cGAN)."""

    inner: dict[str, Any] = _inner_field('{ name = "dcgan", channels = 32 }')  # noqa: RUF009 (returns attrs.field)
    latent_dim: int = attrs.field(
        default=100,
        validator=attrs.validators.ge(1),
        metadata={
            "doc": "size of the noise z ~ N(0, I), >= 1; the inner generator is built with "
            "latent_dim = this + the label code's size (do not set it in 'inner')"
        },
    )
    embed_dim: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.ge(1)),
        metadata={"doc": "size of a learned label embedding, >= 1; None = one-hot (classes)"},
    )
    classes: int | None = _classes_field()


class ConcatGenerator(nn.Module):
    """``G(z, y) = inner([z, e(y)])``: the label code ``e(y)`` (one-hot, or a learned embedding)
    concatenated to the noise (Mirza & Osindero 2014, Sec. 3.2).

    ``z`` ``[N, latent_dim]``, ``y`` int64 ``[N]`` -> the inner generator's output.
    """

    def __init__(
        self,
        inner: nn.Module,  # generator taking [N, latent_dim + code size]
        latent_dim: int,  # size of the noise z
        num_classes: int,  # K, labels 0..K-1
        embed_dim: int | None,  # size of a learned embedding; None = one-hot of size K
    ) -> None:
        super().__init__()
        self.inner = inner
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if embed_dim is not None else None

    def code(self, labels: torch.Tensor) -> torch.Tensor:
        """The label code ``e(y)`` ``[N, code size]``."""
        if self.embed is None:
            return F.one_hot(labels, self.num_classes).to(torch.get_default_dtype())
        code: torch.Tensor = self.embed(labels)
        return code

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"concat generator: expected latents [N, {self.latent_dim}] (got {list(z.shape)})"
            )
        _check_labels("concat generator", labels, z.shape[0], self.num_classes)
        code = self.code(labels).to(z.dtype)
        out: torch.Tensor = self.inner(torch.cat([z, code], dim=1))
        return out


def build_concat_generator(options: ConcatGeneratorOptions, context: Any) -> ConcatGenerator:
    """The ``concat`` generator: its inner generator built with a latent size that holds z and the
    label code."""
    classes = _num_classes("generator 'concat'", options, context)
    if "latent_dim" in options.inner:
        raise ValueError(
            "generator 'concat': set latent_dim on the wrapper, not in 'inner' (the inner "
            "generator's latent size is latent_dim + the label code's size)"
        )
    code = options.embed_dim if options.embed_dim is not None else classes
    table = {**options.inner, "latent_dim": options.latent_dim + code}
    inner = context.resolve("generator", table, key="inner")
    return ConcatGenerator(inner, options.latent_dim, classes, options.embed_dim)


class ConditionalNorm(nn.Module):
    """``gamma[y] * norm(h) + beta[y]``: a normalization layer with its affine parameters replaced
    by one gain and one bias per class (de Vries et al. 2017, "Modulating early visual processing
    by language", Eq. 4; Dumoulin et al. 2017).

    The wrapped layer runs without its own affine transform; every class's gain and bias start at
    the layer's own (so a fresh conditional network is the inner network). ``labels`` is set by
    :class:`ConditionalBatchNormGenerator` around each forward.
    """

    def __init__(self, norm: nn.Module, num_classes: int) -> None:
        super().__init__()
        weight, bias = getattr(norm, "weight", None), getattr(norm, "bias", None)
        channels = _norm_channels(norm)
        gain = torch.ones(channels) if weight is None else weight.detach().clone()
        shift = torch.zeros(channels) if bias is None else bias.detach().clone()
        norm.register_parameter("weight", None)  # the per-class parameters replace these
        norm.register_parameter("bias", None)
        if hasattr(norm, "affine"):  # BatchNorm, InstanceNorm, GroupNorm (and their copies) read it
            norm.affine = False  # type: ignore[assignment]
        self.norm = norm
        self.gain = nn.Parameter(repeat(gain, "c -> k c", k=num_classes).clone())
        self.bias = nn.Parameter(repeat(shift, "c -> k c", k=num_classes).clone())
        self.labels: torch.Tensor | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.labels is None:
            raise RuntimeError("conditional norm: called without labels (call the generator)")
        out: torch.Tensor = self.norm(h)
        view = (-1, out.shape[1]) + (1,) * (out.ndim - 2)  # [N, C, 1, 1] for images
        gain = self.gain[self.labels].reshape(view).to(out.dtype)
        bias = self.bias[self.labels].reshape(view).to(out.dtype)
        return out * gain + bias


def _norm_channels(norm: nn.Module) -> int:
    for attribute in ("num_features", "num_channels"):
        value = getattr(norm, attribute, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"conditional norm: cannot tell the channels of {type(norm).__name__}")


def conditional_norm_layers(generator: nn.Module) -> list[str]:
    """Qualified names of the normalization layers of ``generator`` to condition.

    The hook: a generator that defines ``conditional_norm_layers() -> Iterable[str]`` names them
    itself (each a module with a per-channel ``weight``/``bias`` or none, and ``num_features``
    or ``num_channels``); otherwise every BatchNorm, InstanceNorm and GroupNorm layer.
    """
    named = getattr(generator, "conditional_norm_layers", None)
    if callable(named):
        names: Iterable[str] = named()
        return list(names)
    return [name for name, module in generator.named_modules() if isinstance(module, NORM_TYPES)]


@attrs.frozen(kw_only=True)
class ConditionalBatchNormOptions:
    """Options of the ``conditional-batchnorm`` generator conditioning."""

    inner: dict[str, Any] = _inner_field('{ name = "dcgan", latent_dim = 64 }')  # noqa: RUF009 (returns attrs.field)
    classes: int | None = _classes_field()


class ConditionalBatchNormGenerator(nn.Module):
    """``G(z, y)``: the inner generator with each of its normalization layers (see
    :func:`conditional_norm_layers`) replaced by a :class:`ConditionalNorm` of ``y``.

    ``z`` ``[N, latent_dim]`` (the inner generator's), ``y`` int64 ``[N]``.
    """

    def __init__(self, inner: nn.Module, num_classes: int, layers: list[str]) -> None:
        super().__init__()
        if not layers:
            raise ValueError(
                f"generator 'conditional-batchnorm': {type(inner).__name__} has no normalization "
                "layers to condition (BatchNorm/InstanceNorm/GroupNorm, or a "
                "conditional_norm_layers() method); use generator conditioning 'concat'"
            )
        for name in layers:
            parent_name, _, attribute = name.rpartition(".")
            parent = inner.get_submodule(parent_name) if parent_name else inner
            parent.add_module(attribute, ConditionalNorm(inner.get_submodule(name), num_classes))
        self.inner = inner
        self.latent_dim: int = inner.latent_dim  # type: ignore[assignment]
        self.num_classes = num_classes

    def norms(self) -> list[ConditionalNorm]:
        return [m for m in self.inner.modules() if isinstance(m, ConditionalNorm)]

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_labels("conditional-batchnorm generator", labels, z.shape[0], self.num_classes)
        norms = self.norms()
        for norm in norms:
            norm.labels = labels
        try:
            out: torch.Tensor = self.inner(z)
        finally:
            for norm in norms:  # no tensor outlives the call
                norm.labels = None
        return out


def build_cbn_generator(
    options: ConditionalBatchNormOptions, context: Any
) -> ConditionalBatchNormGenerator:
    """The ``conditional-batchnorm`` generator."""
    classes = _num_classes("generator 'conditional-batchnorm'", options, context)
    inner = context.resolve("generator", options.inner, key="inner")
    if not isinstance(getattr(inner, "latent_dim", None), int):
        raise ValueError("generator 'conditional-batchnorm': the inner generator has no latent_dim")
    return ConditionalBatchNormGenerator(inner, classes, conditional_norm_layers(inner))


# -------------------------------------------------------------------------------------------------
# Critics
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ConcatCriticOptions:
    """Options of the ``concat`` critic conditioning (cGAN)."""

    inner: dict[str, Any] = _inner_field('{ name = "dcgan", channels = 32 }')  # noqa: RUF009 (returns attrs.field)
    classes: int | None = _classes_field()


class ConcatCritic(nn.Module):
    """``D(x, y) = inner([x, onehot(y)])``: for images ``[N, C, H, W]`` the one-hot label becomes
    ``K`` constant maps concatenated on the channels; for vectors ``[N, D]``, ``K`` more entries
    (Mirza & Osindero 2014). A feature critic when the inner one is (``features(x, y)``,
    ``score(h)``)."""

    def __init__(self, inner: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.inner = inner
        self.num_classes = num_classes
        if hasattr(inner, "features") and hasattr(inner, "score"):
            self.feature_dim: int = inner.feature_dim  # type: ignore[assignment]

    def _joined(self, x: torch.Tensor, extra: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if len(extra) != 1:
            raise ValueError(f"concat critic: expected one labels tensor (got {len(extra)})")
        (labels,) = extra
        _check_labels("concat critic", labels, x.shape[0], self.num_classes)
        onehot = F.one_hot(labels, self.num_classes).to(x.dtype)
        if x.ndim == 4:
            maps = repeat(onehot, "n k -> n k h w", h=x.shape[2], w=x.shape[3])
            return torch.cat([x, maps], dim=1)
        return torch.cat([x, onehot], dim=1)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(self._joined(x, extra))
        return out

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.inner.features(self._joined(x, extra))  # type: ignore[operator]
        return features

    def score(self, features: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.inner.score(features)  # type: ignore[operator]
        return scores


def build_concat_critic(options: ConcatCriticOptions, context: Any) -> ConcatCritic:
    """The ``concat`` critic: its inner critic built for inputs with ``K`` more channels."""
    classes = _num_classes("critic 'concat'", options, context)
    shape = tuple(context.data_shape)
    if len(shape) not in (1, 3):
        raise ValueError(f"critic 'concat': expected data of shape (C, H, W) or (D,) (got {shape})")
    joined = (shape[0] + classes, *shape[1:])
    inner = attrs.evolve(context, data_shape=joined).resolve("critic", options.inner, key="inner")
    return ConcatCritic(inner, classes)


@attrs.frozen(kw_only=True)
class ProjectionCriticOptions:
    """Options of the ``projection`` critic (Miyato & Koyama 2018)."""

    inner: dict[str, Any] = _inner_field('{ name = "dcgan", norm = "none" }')  # noqa: RUF009 (returns attrs.field)
    classes: int | None = _classes_field()
    embed_std: float = attrs.field(
        default=0.02,
        converter=float,
        validator=attrs.validators.gt(0.0),
        metadata={
            "doc": "standard deviation of the class embedding's initial N(0, std^2) entries, > 0; "
            "each row's norm starts near std * sqrt(feature_dim), against psi's weight (norm 1 "
            "under spectral norm): with few features raise it, or the class term starts "
            "negligible next to psi"
        },
    )


class ProjectionCritic(nn.Module):
    """``D(x, y) = psi(phi(x)) + embed(y)^T phi(x)`` (Miyato & Koyama 2018, "cGANs with
    Projection Discriminator", Eq. 3), ``phi`` = the inner critic's ``features``, ``psi`` = its
    ``score``; ``embed`` is a ``K x feature_dim`` matrix (``V`` in the paper)."""

    def __init__(self, inner: nn.Module, num_classes: int, embed_std: float = 0.02) -> None:
        super().__init__()
        self.inner = inner
        self.num_classes = num_classes
        self.feature_dim: int = inner.feature_dim  # type: ignore[assignment]
        self.embed = nn.Embedding(num_classes, self.feature_dim)
        nn.init.normal_(self.embed.weight, 0.0, embed_std)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if len(extra) != 1:
            raise ValueError(f"projection critic: expected one labels tensor (got {len(extra)})")
        (labels,) = extra
        _check_labels("projection critic", labels, x.shape[0], self.num_classes)
        phi: torch.Tensor = self.inner.features(x)  # type: ignore[operator]
        psi: torch.Tensor = self.inner.score(phi)  # type: ignore[operator]
        psi = rearrange(psi, "n ... -> n (...)").sum(dim=1)  # [N] whatever the inner shape
        return psi + (self.embed(labels).to(phi.dtype) * phi).sum(dim=1)


def build_projection_critic(options: ProjectionCriticOptions, context: Any) -> ProjectionCritic:
    """The ``projection`` critic: the inner critic must expose its features (FeatureCritic)."""
    classes = _num_classes("critic 'projection'", options, context)
    inner = context.resolve("critic", options.inner, key="inner")
    if not all(hasattr(inner, a) for a in ("features", "score", "feature_dim")):
        raise ValueError(
            f"critic 'projection': inner critic {options.inner['name']!r} does not expose its "
            "features (features, score, feature_dim: gancore.protocols.FeatureCritic)"
        )
    return ProjectionCritic(inner, classes, options.embed_std)


# -------------------------------------------------------------------------------------------------
# A critic with an extra head on its body (ACGAN's classifier, InfoGAN's Q)
# -------------------------------------------------------------------------------------------------


class AuxiliaryCritic(nn.Module):
    """A feature critic ``body`` plus a ``head`` on its features: ``critic(x)`` is the body's
    score; while :attr:`recorded` is a list, each call also appends ``head(features)`` to it.

    One forward gives both outputs, so the task reads the head through the loop's own critic
    calls (augmentation, multi-process gradient synchronization) without a second pass. Calls with
    ``recorded = None`` (the regularizers' passes) skip the head.
    """

    def __init__(self, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.head = head
        self.feature_dim: int = body.feature_dim  # type: ignore[assignment]
        self.recorded: list[torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        h = self.features(x, *extra)
        if self.recorded is not None:
            self.recorded.append(self.head(h))
        return self.score(h)

    @contextlib.contextmanager
    def heads(self) -> Iterator[list[torch.Tensor]]:
        """Within: each call appends ``head(features)`` to the list given, in call order."""
        self.recorded = []
        try:
            yield self.recorded
        finally:
            self.recorded = None

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.body.features(x, *extra)  # type: ignore[operator]
        return features

    def score(self, features: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.body.score(features)  # type: ignore[operator]
        return scores
