"""The kinds of component gancore composes, as structural protocols.

Every registered component satisfies one of these protocols. Shapes use ``N`` for the batch, ``C``
channels, ``H``/``W`` height and width and ``D`` the dimension of vector data (2-D toy points).
Images are float tensors scaled to ``[-1, 1]``.

The protocols are structural: a plugin never subclasses anything from gancore; it only has to
provide these attributes and methods. ``isinstance`` checks work on the runtime-checkable ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gancore._task import SampleGrid, StepContext, TaskBuildContext

__all__ = [
    "Augmenter",
    "Critic",
    "CriticRegularizer",
    "Dataset",
    "FeatureCritic",
    "FeatureExtractor",
    "Generator",
    "GeneratorLossTerm",
    "GeneratorRegularizer",
    "Loss",
    "Metric",
    "MetricContext",
    "Task",
]

Player = Literal["generator", "critic"]


@runtime_checkable
class Generator(Protocol):
    """A ``torch.nn.Module`` that maps inputs to samples.

    Unconditional generators take latents ``[N, latent_dim]`` and expose ``latent_dim``; their output
    is ``[N, C, H, W]`` images in ``[-1, 1]`` (or ``[N, D]`` points for vector data). Image-to-image
    generators take ``[N, C_in, H, W]`` and return ``[N, C_out, H, W]``; which inputs a generator
    gets is decided by the task that calls it.
    """

    def __call__(self, inputs: torch.Tensor, /) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


@runtime_checkable
class Critic(Protocol):
    """A ``torch.nn.Module`` that scores samples (the discriminator).

    ``critic(x, *extra)``: ``x`` is ``[N, C, H, W]`` (or ``[N, D]``), ``extra`` are optional
    conditioning tensors with a leading batch dimension. Returns raw, unbounded scores of shape
    ``[N]``, ``[N, 1]`` or, for patch critics, ``[N, 1, h, w]``; losses average over all of them.
    """

    def __call__(self, x: torch.Tensor, /, *extra: torch.Tensor) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


@runtime_checkable
class FeatureCritic(Protocol):
    """A critic that exposes its last hidden features: the seam for components that read or
    extend them (feature matching, minibatch discrimination, the projection discriminator).

    ``features(x, *extra)`` returns the critic's input to its last layer, flattened to
    ``[N, feature_dim]``; ``score(h)`` applies that last layer to such features and returns the
    critic's scores. The contract, for every input: ``critic(x, *extra)`` equals
    ``critic.score(critic.features(x, *extra))`` (``gancore.testing.check_feature_critic`` tests
    it). Both built-in critics (``mlp``, ``dcgan``) are feature critics; the last layer of both is
    linear, so a term added to ``score(h)`` that is linear in new features is the same as feeding
    ``[h, new]`` to a wider last layer.
    """

    @property
    def feature_dim(self) -> int: ...

    def features(self, x: torch.Tensor, /, *extra: torch.Tensor) -> torch.Tensor: ...

    def score(self, features: torch.Tensor, /) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor, /, *extra: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Loss(Protocol):
    """An adversarial loss: a pure function of critic scores.

    Losses never call models, run backward or touch optimizers. Scores of any shape; the result is a
    scalar tensor (mean over every element).
    """

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        """Loss the critic minimises, from scores on real ``[N, ...]`` and fake ``[N, ...]`` data."""
        ...

    def generator_loss(self, fake_scores: torch.Tensor) -> torch.Tensor:
        """Loss the generator minimises, from the critic's scores on fake data ``[N, ...]``."""
        ...


@runtime_checkable
class CriticRegularizer(Protocol):
    """A penalty or constraint on a critic.

    ``interval`` is the lazy-regularization interval in critic steps: 1 adds the penalty to every
    critic loss (same backward, same optimizer step); ``k > 1`` runs it as a separate phase every
    ``k`` critic steps with the penalty multiplied by ``k`` and the critic optimizer's ``lr`` and
    ``betas`` corrected (Karras et al. 2020, Sec. 3.1).

    Optional: ``setup_critic(critic: nn.Module) -> None``, if defined, is called once on every
    critic module the task builds, before optimizers, Accelerate and checkpoints see it, so it may
    change the critic in place (spectral normalization reparametrizes its layers). It is called
    wherever a run is built (train, resume, sample, eval), so checkpoints always load.

    Optional: ``check(players: Mapping[str, Mapping[str, nn.Module]]) -> None``, if defined, is
    called once when the run is built, right after the regularizer, with the task's player groups
    (group -> name -> module, e.g. ``players["critic"]``); it raises a one-line ``ValueError`` when
    the regularizer cannot work on these networks, and the run stops before training with
    ``regularizers: <message>``. Generator regularizers have the same seam.
    """

    @property
    def player(self) -> Player:  # always "critic"
        ...

    @property
    def interval(self) -> int: ...

    def penalty(
        self,
        critic: Callable[..., torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor | None:
        """Weighted penalty (scalar), or ``None`` for pure constraints.

        ``critic(x, *extra)`` already applies the augmenter, so gradients taken with respect to
        ``x`` flow through the augmentation. ``real`` and ``fake`` are detached ``[N, ...]`` tensors;
        ``extra`` is passed to the critic unchanged. They are the loop's own tensors (the batch, the
        generated samples): never modify them in place; for gradients with respect to the input,
        take ``x = real.detach().requires_grad_(True)``.
        """
        ...

    def after_step(self, critic: nn.Module) -> None:
        """Called after every critic optimizer step, lazy regularization steps included (weight
        clipping lives here); may do nothing."""
        ...


@runtime_checkable
class GeneratorRegularizer(Protocol):
    """A penalty on a generator (e.g. path length), run as its own lazy phase every ``interval``
    generator steps, penalty multiplied by ``interval``.

    Optional: ``check(players)``, as for :class:`CriticRegularizer`: path length refuses, when the
    run is built, a generator without ``mapping`` and ``synthesis``, which its first lazy step
    (``interval`` steps in) could not use.

    Optional: ``after_step(generator: nn.Module) -> None``, if defined, is called after every
    optimizer update of the generator phase (lazy ones included) with each generator module, as
    a critic regularizer's ``after_step`` is (historical averaging updates its running mean).

    A generator regularizer with a ``loss_term`` method is a :class:`GeneratorLossTerm` instead:
    it needs no ``penalty``.
    """

    @property
    def player(self) -> Player:  # always "generator"
        ...

    @property
    def interval(self) -> int: ...

    def penalty(self, generator: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Weighted penalty (scalar) for ``generator`` on a batch of its inputs ``[N, ...]``."""
        ...


@runtime_checkable
class GeneratorLossTerm(Protocol):
    """A term of the generator's adversarial loss that looks at the critic and the real batch
    (feature matching, Salimans et al. 2016, Sec. 3.1): a generator regularizer with
    ``interval == 1`` and a ``loss_term`` method.

    ``StepContext.generator_loss(critic, fake, *extra, real=...)`` calls
    ``loss_term(critic, real, fake, extra)`` on every generator update, inside the same backward,
    and adds the result to the adversarial loss; if ``replaces_loss`` is true the adversarial
    loss is not computed and the terms are the generator's whole loss. The generator's task
    must pass ``real`` (the core task passes ``batch["x"]``); a task that does not gets a
    one-line error at its first generator step. Lazy regularization does not apply (an
    ``interval`` other than 1 is an error when training starts).

    Optional: ``check(players)``, as for :class:`CriticRegularizer` (feature matching refuses a
    critic that is not a :class:`FeatureCritic`).
    """

    @property
    def player(self) -> Player:  # always "generator"
        ...

    @property
    def interval(self) -> int:  # always 1
        ...

    @property
    def replaces_loss(self) -> bool: ...

    def loss_term(
        self,
        critic: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """Weighted term (scalar) for the generator's loss.

        ``critic`` is the bare critic module (the one named in the ``generator_loss`` call; its
        parameters are frozen in the generator phase, so it is called outside the multi-process
        wrapper). ``real`` and ``fake`` ``[N, ...]`` are what the critic sees: both already
        passed through the augmenter, ``real`` detached, ``fake`` with its graph to the
        generator. ``extra`` (conditioning) goes to the critic unchanged.
        """
        ...


@runtime_checkable
class Augmenter(Protocol):
    """Differentiable augmentation applied to every input the critic sees.

    ``augmenter(x)`` returns a tensor of the same shape as ``x`` (``[N, C, H, W]``); gradients must
    flow to ``x``. ``feedback_interval`` is how many critic steps the loop accumulates the mean sign
    of the critic's real scores over before calling ``feedback`` (0 = never). Stateful augmenters keep
    their state in buffers (or ``state_dict``/``load_state_dict``) so checkpoints carry it.

    Optional: ``log_values() -> dict[str, float]``, if defined, is read at every log interval and
    each entry is logged as ``augment/<key>`` in ``metrics.jsonl`` (ADA logs ``augment/p`` and
    ``augment/r_t``).
    """

    @property
    def feedback_interval(self) -> int: ...

    def __call__(self, x: torch.Tensor, /) -> torch.Tensor: ...

    def feedback(self, real_sign_mean: float, images: int) -> None:
        """``real_sign_mean`` = E[sign(D(real))] over ``images`` real images on all processes."""
        ...


@runtime_checkable
class Dataset(Protocol):
    """A map-style dataset of dict items.

    ``dataset[i]`` returns a dict of tensors; ``shapes`` gives the shape of each key of one item,
    e.g. ``{"x": (1, 16, 16)}`` for images or ``{"x": (2,)}`` for 2-D points. Image values are in
    ``[-1, 1]``. Items must be deterministic functions of the index, so that training resumes exactly.

    Optional, for labelled data: ``classes`` (a tuple of distinct class names; the loop saves them
    as ``classes.json`` in the run directory) with items carrying ``"label"``, an int64 scalar
    indexing ``classes`` (``shapes["label"] == ()``); and ``labels`` (int64 ``[len]``, every
    item's label) so that per-class metrics select a class without reading its images.
    """

    @property
    def shapes(self) -> Mapping[str, tuple[int, ...]]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class MetricContext(Protocol):
    """What a metric may use: the generator (through ``generate``), the data and the device."""

    dataset: Dataset
    device: torch.device

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        """Yields batches of generated samples ``[B, ...]``, ``num`` in all, from fixed ``seed``.

        Sample ``k`` must not depend on ``batch_size`` (a metric's batch size changes memory, not
        its result); the loop's context draws inputs in fixed seed blocks to keep that promise.
        """
        ...

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        """Yields batches of real samples ``[B, ...]``, ``num`` in all, drawn with ``seed``."""
        ...


@runtime_checkable
class FeatureExtractor(Protocol):
    """A frozen network that maps images ``[N, C, H, W]`` in ``[-1, 1]`` to features ``[N, d]``.

    ``input_size`` is the square size images are resized to (with ``resize_filter``) before the
    network; ``weights_sha256`` identifies the weights, so results computed with different weights are
    never compared. ``logits`` (``[N, K]`` class scores) is optional; the Inception Score needs it.
    """

    @property
    def input_size(self) -> int: ...

    @property
    def resize_filter(self) -> str: ...

    @property
    def weights_sha256(self) -> str: ...

    def __call__(self, images: torch.Tensor, /) -> torch.Tensor: ...


@runtime_checkable
class Metric(Protocol):
    """Scores a generator. ``evaluate`` returns a flat JSON-ready dict: the values under their
    names plus the protocol that produced them (sample counts, seeds, extractor, ...)."""

    def evaluate(self, context: MetricContext) -> dict[str, Any]: ...


@runtime_checkable
class Task(Protocol):
    """What each phase of an iteration computes from a batch.

    The seam between the loop and the science: a task builds its players (networks grouped by
    the optimizer that trains them), and for a batch returns each phase's loss. The loop owns
    everything else: backward, gradient synchronization, optimizer steps, regularizers (every
    step and lazy), EMA, stages, logging, samples, metrics and checkpoints. See docs/tasks.md.

    Optional parts:

    - ``players: Mapping[str, str]``: player group -> the phase that trains it (default
      ``{"critic": "critic", "generator": "generator"}``). Phase ``P`` calls ``P_step(step,
      batch)``; phases run critic, generator, then a task's own in this mapping's order. Each
      group has an optimizer table ``[optimizers.<group>]``. A task without a critic (a VAE)
      leaves ``critic`` out; InfoGAN's Q head is a group ``q`` trained by phase ``generator``.
    - ``begin_stage(stage, players) -> None``: called at the start of each stage of a staged
      run (:class:`gancore._stages.Stage`), and again on resume for the stages already entered;
      may grow, add or replace modules in ``players`` (group -> name -> module) in place. Runs
      under a random stream seeded from the run seed and the stage.
    - ``plan_stages(config, dataset) -> list[dict]``: the stages of a run whose file has no
      ``[[stages]]``, as the tables a run file would hold, each with ``steps``; they replace
      ``run.steps`` by their sum and are recorded in the run directory's config.toml (SinGAN:
      one stage per scale of the image's pyramid).
    - ``state_dict()`` / ``load_state_dict(state)``: state that checkpoints carry (image pools).
    - ``find_unused_parameters = True``: some steps leave parameters of a trained player without
      a gradient (pix2pixHD trains G1 alone, then G2 with G1 under ``no_grad``); with several
      processes the loop then asks DistributedDataParallel to find them.
    - ``conditional = True``: the task *declares classes* (is conditional), together with a
      ``labels`` keyword on :meth:`sample_inputs`:
      ``sample_inputs(generators, dataset, num, seed, labels=None)``, where ``labels`` is an int64
      ``[num]`` tensor of class indices (each sample must be of its class) and ``None`` leaves the
      choice to the task. Class ``k`` is ``dataset.classes[k]``, the dataset's items carry it as
      ``"label"``. ``gan sample --class K``, the class-per-row sample grids and per-class metrics
      (``gan eval --per-class``) use it; for a task without it ``--class`` is an error.
    """

    def build(
        self, context: TaskBuildContext
    ) -> (
        tuple[Mapping[str, nn.Module], Mapping[str, nn.Module]]
        | Mapping[str, Mapping[str, nn.Module]]
    ):
        """Return ``(generators, critics)``, each a mapping from player name to module, or a
        mapping player group -> {name: module} for the groups ``players`` declares."""
        ...

    def critic_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Scalar loss the critics minimise on ``batch``."""
        ...

    def generator_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Scalar loss the generators minimise on ``batch``."""
        ...

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Dataset, num: int, seed: int
    ) -> Mapping[str, torch.Tensor]:
        """Fixed inputs for ``num`` samples drawn with ``seed``: latents, or held images for
        image-to-image tasks. Used for sample grids, ``gan sample`` and metrics."""
        ...

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> SampleGrid:
        """What to show (and what metrics score) for ``inputs`` from :meth:`sample_inputs`."""
        ...


KINDS: Sequence[str] = (
    "generator",
    "critic",
    "loss",
    "regularizer",
    "augmenter",
    "dataset",
    "metric",
    "extractor",
    "task",
)
