"""The seam between the loop and the science.

A :class:`~gancore.protocols.Task` says what one critic step and one generator step compute from a
batch. It gets a :class:`StepContext` from the loop, which gives it the players, the adversarial loss
and a few helpers that apply the configured augmenter and regularizers the same way for every task.
The loop owns backward, optimizer steps, lazy regularization, EMA, logging, samples, metrics and
checkpoints, so a task never does any of those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch
from torch import nn

from gancore._config import structure_component
from gancore._errors import ConfigError
from gancore._registry import Registry

if TYPE_CHECKING:
    from gancore._config import RunConfig
    from gancore._stages import Stage
    from gancore._state import AugmentFeedback
    from gancore.protocols import Augmenter, Dataset, Loss

__all__ = [
    "BuildContext",
    "SampleGrid",
    "StepContext",
    "TaskBuildContext",
    "Unconditional",
    "critic_tag",
    "mix_seed",
]


def _resolve(
    registry: Registry | None,
    kind: str,
    table: Mapping[str, Any],
    path: str,
    context: Any,
    source: str | None = None,
) -> Any:
    """Structure ``table`` as a ``kind`` against ``registry`` and build it with ``context``;
    problems are a :class:`ConfigError` of ``source`` (the run file)."""
    if registry is None:
        raise ValueError(
            f"{path or kind}: cannot resolve a {kind} table: this build context has no registry "
            "(build the component through its config, e.g. config.data.build(None))"
        )
    problems: list[str] = []
    given = dict(table) if isinstance(table, Mapping) else table  # not a table: a problem below
    component = structure_component(registry, kind, given, path, problems)
    if component is None:
        raise ConfigError(problems, source)
    return component.build(context)


def _join(path: str, key: str | None) -> str:
    if not key:
        return path
    return f"{path}.{key}" if path else key


@attrs.frozen(kw_only=True)
class BuildContext:
    """What a component's factory learns about its job.

    ``data_shape`` is the shape of one sample the network produces (generator) or scores (critic),
    e.g. ``(3, 64, 64)`` or ``(2,)``; ``()`` where it is not known yet (datasets and tasks are
    built first). ``input_shape`` is what a generator consumes: ``None`` for an unconditional
    generator (it takes latents and chooses ``latent_dim`` itself) or an image shape for
    image-to-image generators. ``registry`` is the registry the run's config was parsed with and
    ``path`` the key path of the component being built (``data``, ``metrics[0]``): a component
    that needs another one gets it with :meth:`resolve`, never from a process-wide registry.
    """

    data_shape: tuple[int, ...]
    input_shape: tuple[int, ...] | None = None
    registry: Registry | None = attrs.field(default=None, eq=False, repr=False)
    path: str = ""

    def resolve(self, kind: str, table: Mapping[str, Any], *, key: str | None = None) -> Any:
        """The ``kind`` component that ``table`` (``{"name": ..., options...}``) names, built with
        this context (same shapes) from this run's registry.

        ``key`` is where ``table`` sits in this component's options (``"a"``); problems are a
        :class:`gancore.ConfigError`, one line each under the key path ``<path>.<key>``, such as
        ``data.a.name: unknown dataset 'digts' (did you mean 'digits'?); available: ...``.
        """
        path = _join(self.path, key)
        return _resolve(self.registry, kind, table, path, attrs.evolve(self, path=path))


@attrs.frozen(kw_only=True)
class TaskBuildContext:
    """Given to :meth:`Task.build`: the dataset and builders for the configured networks, and
    :meth:`resolve` for any other component the task needs from the run's registry."""

    config: RunConfig
    dataset: Dataset

    @property
    def registry(self) -> Registry | None:
        """The registry the run's config was parsed with."""
        return self.config.registry

    def resolve(self, kind: str, table: Mapping[str, Any], *, key: str | None = None) -> Any:
        """The ``kind`` component that ``table`` names, built from the run's registry with a
        :class:`BuildContext` of the data's ``"x"`` shape (``()`` if none); ``key`` is where the
        table sits in the task's options, for the key paths of errors (``task.<key>``)."""
        path = _join("task", key)
        shape = tuple(self.dataset.shapes.get("x", ()))
        context = BuildContext(data_shape=shape, registry=self.registry, path=path)
        return _resolve(self.registry, kind, table, path, context, self.config.source)

    def build_generator(
        self, data_shape: tuple[int, ...] | None = None, input_shape: tuple[int, ...] | None = None
    ) -> nn.Module:
        """The ``[generator]`` of the config, built for ``data_shape`` (default: the data's "x")."""
        if self.config.generator is None:
            raise ValueError("this task needs a [generator] section")
        shape = data_shape if data_shape is not None else self.dataset.shapes["x"]
        return self._checked(
            self.config.generator.build(BuildContext(data_shape=shape, input_shape=input_shape)),
            "generator",
        )

    def build_critic(self, data_shape: tuple[int, ...] | None = None) -> nn.Module:
        """The ``[critic]`` of the config, built to score ``data_shape`` (default: the data's "x")."""
        if self.config.critic is None:
            raise ValueError("this task needs a [critic] section")
        shape = data_shape if data_shape is not None else self.dataset.shapes["x"]
        return self._checked(self.config.critic.build(BuildContext(data_shape=shape)), "critic")

    def _checked(self, module: Any, section: str) -> nn.Module:
        if not isinstance(module, nn.Module):
            component = getattr(self.config, section)
            raise ValueError(  # the CLI shows ValueErrors as one line, exit code 2
                f"{section} {component.name!r}: factory returned {type(module).__name__}, "
                "expected a torch.nn.Module"
            )
        return module


@attrs.frozen(kw_only=True)
class SampleGrid:
    """Samples to show: ``images`` ``[N, C, H, W]`` laid out ``columns`` wide, or points ``[N, D]``
    drawn as a scatter over ``reference`` points (the data)."""

    images: torch.Tensor
    columns: int | None = None


class StepContext:
    """What a task's steps may use. One instance lives for the whole run; the loop updates it.

    - ``generators`` / ``critics``: callables by player name (wrapped for multi-process training);
      ``players``: every group's, by group then name (tasks with more player groups).
    - ``stage`` / ``alpha``: the stage the run is in and its blend factor (staged runs).
    - ``loss``: the configured adversarial loss.
    - :meth:`latents`: deterministic latents for this step, this process's share of the global batch.
    - :meth:`critic_loss` / :meth:`generator_loss`: apply the augmenter, the critic and the loss,
      and (for the critic) the regularizers that run on every step; the generator's adds the
      configured generator loss terms (feature matching), which need the real batch
      (``real=``).
    - :meth:`augment`: the configured augmenter, for a task that calls a critic itself.
    - :meth:`optimizer`: a player group's optimizer, to read (its hyperparameters and state).
    - :meth:`log`: extra scalars for metrics.jsonl.
    """

    def __init__(
        self,
        *,
        players: Mapping[str, Mapping[str, Callable[..., torch.Tensor]]],
        modules: Mapping[str, nn.Module],
        loss: Loss,
        augmenter: Augmenter,
        feedback: AugmentFeedback | None,
        device: torch.device,
        seed: int,
        rank: int,
        world_size: int,
        loss_terms: Sequence[tuple[str, Any]] = (),
        optimizers: Mapping[str, Any] | None = None,
    ) -> None:
        self.loss = loss
        self.device = device
        self.set_players(players, modules, optimizers)
        # Generator regularizers with a loss_term (gancore._phases.loss_terms); empty for most runs.
        self._terms = tuple(loss_terms)
        self._replaced = any(getattr(t, "replaces_loss", False) for _, t in self._terms)
        self._augmenter = augmenter
        self._feedback = feedback
        self._seed = seed
        self._rank = rank
        self._world = world_size
        self._key: tuple[int, ...] = (0,)
        self._draws = 0
        # Filled during a step, read by the loop:
        self.logs: dict[str, torch.Tensor] = {}
        self.critic_calls: list[
            tuple[str, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]
        ] = []
        self.generator_inputs: dict[str, torch.Tensor] = {}
        # Micro-batches per update (training.accumulate) and the current one; set by the loop.
        self.accumulate = 1
        self._micro = 0
        # The stage the run is in and its blend factor (1.0 outside a fade-in); set by the loop.
        self.stage: Stage | None = None
        self.alpha = 1.0

    # -- the loop's side --------------------------------------------------------------------------

    def set_players(
        self,
        players: Mapping[str, Mapping[str, Callable[..., torch.Tensor]]],
        modules: Mapping[str, nn.Module],
        optimizers: Mapping[str, Any] | None = None,
    ) -> None:
        """The players steps call (by group, then name), their bare modules and each group's
        optimizer; the loop sets them again when a stage grows or adds networks."""
        self._optimizers = dict(optimizers or {})
        self.players = players
        self.generators = players.get("generator", {})
        self.critics = players.get("critic", {})
        self._modules = modules
        self._scorers: dict[str, Callable[..., torch.Tensor]] = {}

    def begin(self, phase: int, iteration: int, substep: int, micro: int = 0) -> None:
        """Start a step (micro-batch ``micro`` of an update): fixes the random stream of
        :meth:`latents` for this step."""
        self._key = (phase, iteration, substep)
        self._micro = micro
        self._draws = 0
        self.critic_calls = []
        self.generator_inputs = {}

    def unwrap(self, name: str) -> nn.Module:
        """The bare module of a player (for attributes such as ``latent_dim``)."""
        return self._modules[name]

    # -- the task's side --------------------------------------------------------------------------

    def latents(self, num: int, dim: int) -> torch.Tensor:
        """Standard-normal latents ``[num, dim]`` for this process.

        They are this process's slice of ``num * world_size * accumulate`` latents drawn from a
        stream keyed by the run seed and the step, so the same global batch is drawn whatever the
        number of processes and micro-batches, and resuming redraws exactly what an
        uninterrupted run draws.
        """
        gen = torch.Generator().manual_seed(mix_seed(self._seed, *self._key, self._draws))
        self._draws += 1
        parts = self._world * self.accumulate
        full = torch.randn(num * parts, dim, generator=gen)
        if parts > 1:  # rows of this process's micro-batch in the whole global batch
            start = (self._rank * self.accumulate + self._micro) * num
            full = full[start : start + num]
        return full.to(self.device)

    def critic_loss(
        self, critic: str, real: torch.Tensor, fake: torch.Tensor, *extra: torch.Tensor
    ) -> torch.Tensor:
        """Critic loss for one critic: loss(D(aug(real)), D(aug(fake))).

        ``fake`` is detached here; ``extra`` conditioning tensors go to the critic unchanged. The
        call is recorded, so that the loop can apply the configured critic regularizers to the
        same real and fake samples (every step or lazily, see docs/tasks.md).
        """
        fake = _detached(fake)
        scorer = self.scorer(critic)
        real_scores = scorer(real, *extra)
        fake_scores = scorer(fake, *extra)
        total = self.loss.critic_loss(real_scores, fake_scores)
        tag = critic_tag(critic)
        self._log_once(f"loss/critic{tag}", total)
        real_scores_, fake_scores_ = real_scores.detach(), fake_scores.detach()
        self._log_once(f"scores/real{tag}", real_scores_.mean())  # no autograd node
        self._log_once(f"scores/fake{tag}", fake_scores_.mean())
        feedback = self._feedback
        if feedback is not None:  # only adaptive augmenters read it
            sign = torch.sign(real_scores_).float().sum()
            feedback.sign_sum = feedback.sign_sum + sign
            feedback.count += real_scores.numel()
            feedback.images += real.shape[0]
        self.critic_calls.append((critic, _detached(real), fake, tuple(extra)))
        return total

    def generator_loss(
        self,
        critic: str,
        fake: torch.Tensor,
        *extra: torch.Tensor,
        real: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Adversarial generator loss: loss.generator_loss(D(aug(fake))).

        With generator loss terms configured (regularizers with a ``loss_term``, such as feature
        matching), each term's ``loss_term(critic, aug(real), aug(fake), extra)`` is added, or
        replaces the adversarial loss when a term's ``replaces_loss`` is true; those terms need
        ``real``, the real samples of the step's batch (``batch["x"]`` for the core task).
        """
        if self._terms:
            return self._with_terms(critic, fake, extra, real)
        total = self.loss.generator_loss(self.scorer(critic)(fake, *extra))
        self._log_once(f"loss/generator{critic_tag(critic)}", total)
        return total

    def _with_terms(
        self,
        critic: str,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
        real: torch.Tensor | None,
    ) -> torch.Tensor:
        """:meth:`generator_loss` with the generator loss terms."""
        tag = critic_tag(critic)
        if real is None:
            names = ", ".join(repr(n) for n, _ in self._terms)
            raise ValueError(
                f"regularizers {names} need the real batch in the generator step, and the task "
                "calls step.generator_loss without real= (see docs/tasks.md, StepContext)"
            )
        total: torch.Tensor | None = None
        if not self._replaced:
            total = self.loss.generator_loss(self.scorer(critic)(fake, *extra))
            self._log_once(f"loss/generator{tag}", total)
        # The bare critic (frozen in this phase: nothing of it to all-reduce) on inputs augmented
        # as every critic input is; the fake keeps its graph to the generator.
        module = self._modules[critic]
        real_seen, fake_seen = self._augmenter(_detached(real)), self._augmenter(fake)
        for name, term in self._terms:
            value = term.loss_term(module, real_seen, fake_seen, extra)
            self._log_once(f"reg/{name}{tag}", value)
            total = value if total is None else total + value
        assert total is not None  # at least one term
        return total

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The configured augmenter applied to ``x`` (what every critic input goes through), for
        a task that calls a critic's functions itself."""
        return self._augmenter(x)

    def optimizer(self, group: str) -> torch.optim.Optimizer:
        """The torch optimizer of player group ``group``, to read its hyperparameters
        (``param_groups``) and state (``state``, keyed by parameter), e.g. for the surrogate
        critic steps of an unrolled GAN. Only the loop steps it; a task never changes it."""
        optimizer = self._optimizers[group]
        inner: torch.optim.Optimizer = getattr(optimizer, "optimizer", optimizer)
        return inner

    def scorer(self, critic: str) -> Callable[..., torch.Tensor]:
        """``x, *extra -> D(aug(x), *extra)`` for the named critic."""
        scorer = self._scorers.get(critic)
        if scorer is None:
            module = self.critics[critic]
            augment = self._augmenter

            def scorer(x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
                return module(augment(x), *extra)

            self._scorers[critic] = scorer
        return scorer

    def record_generator_inputs(self, generator: str, inputs: torch.Tensor) -> None:
        """Remember a generator's inputs for generator regularizers (e.g. path length)."""
        self.generator_inputs[generator] = _detached(inputs)

    def log(self, name: str, value: torch.Tensor | float) -> None:
        """Log a scalar under ``name`` (averaged over the log interval)."""
        self._log_once(name, value)

    def _log_once(self, name: str, value: torch.Tensor | float) -> None:
        if isinstance(value, torch.Tensor):
            tensor = _detached(value)
            if tensor.dtype != torch.float32 or tensor.dim() != 0:
                tensor = tensor.float().reshape(())
        else:
            tensor = torch.tensor(float(value))
        logs = self.logs
        logs[name] = logs[name] + tensor if name in logs else tensor


def _detached(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor.detach()``, skipped (a dispatcher call saved) when there is nothing to detach."""
    return tensor.detach() if tensor.requires_grad else tensor


def critic_tag(critic: str) -> str:
    """Log-name suffix for a critic: none for the usual single critic named "critic"."""
    return "" if critic == "critic" else f"/{critic}"


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 over the parts)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x & 0x7FFFFFFFFFFFFFFF


# -------------------------------------------------------------------------------------------------
# The core task: noise -> sample
# -------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Unconditional:
    """Noise to sample: one generator ``G: z -> x`` and one critic ``D: x -> score``.

    The critic step scores a real batch and ``G(z)`` (computed without gradients); the generator step
    scores ``G(z)`` for fresh latents. Works for images ``[N, C, H, W]`` and points ``[N, D]``.
    """

    def build(self, context: TaskBuildContext) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
        if "x" not in context.dataset.shapes:
            raise ValueError(
                "task 'unconditional': the dataset must provide key 'x' "
                f"(got keys {sorted(context.dataset.shapes)})"
            )
        generator = context.build_generator()
        latent_dim = getattr(generator, "latent_dim", None)
        if not isinstance(latent_dim, int) or latent_dim < 1:
            name = context.config.generator.name if context.config.generator else "?"
            raise ValueError(
                f"task 'unconditional': generator {name!r} must expose an integer latent_dim "
                f"(got {latent_dim!r})"
            )
        return {"generator": generator}, {"critic": context.build_critic()}

    def critic_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        real = batch["x"]
        z = step.latents(real.shape[0], _latent_dim(step))
        with torch.no_grad():  # the critic's step never needs the generator's graph
            fake = step.generators["generator"](z)
        return step.critic_loss("critic", real, fake)

    def generator_step(self, step: StepContext, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        z = step.latents(batch["x"].shape[0], _latent_dim(step))
        step.record_generator_inputs("generator", z)
        fake = step.generators["generator"](z)
        return step.generator_loss("critic", fake, real=batch["x"])

    def sample_inputs(
        self, generators: Mapping[str, nn.Module], dataset: Dataset, num: int, seed: int
    ) -> dict[str, torch.Tensor]:
        dim = int(generators["generator"].latent_dim)  # type: ignore[arg-type]
        return {"z": torch.randn(num, dim, generator=torch.Generator().manual_seed(seed))}

    def sample(
        self, generators: Mapping[str, nn.Module], inputs: Mapping[str, torch.Tensor]
    ) -> SampleGrid:
        return SampleGrid(images=generators["generator"](inputs["z"]))


def _latent_dim(step: StepContext) -> int:
    latent_dim: int = step.unwrap("generator").latent_dim  # type: ignore[assignment]
    return latent_dim
