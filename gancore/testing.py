"""Helpers for the tests of a gancore plugin: conformance checks, tiny fakes, in-process plugins.

A plugin's tests call one check per component it registers::

    import gancore.testing as gt

    def test_loss_conforms() -> None:
        gt.check_loss("my-loss")          # a registered name, looked up in the current registry
        gt.check_options_roundtrip("my-loss", kind="loss")

Each ``check_*`` builds the component the way the training loop does, exercises the contract of its
kind (shapes, dtypes, finiteness, gradients, the options' way through TOML) and raises
``AssertionError`` with one line that names the component and what failed, e.g.
``loss 'my-loss': critic_loss has no gradient with respect to the real scores``. It returns the
built component, so a test can go on to check its known answers.

``component`` is any of:

- a registered name (``"my-loss"`` or ``"gan-noise:my-loss"``), looked up in the process-wide
  registry; :func:`registered_plugin` or :func:`plugin_fixture` put a plugin there without
  installing it;
- a :class:`gancore.ComponentSpec`;
- an attrs class that is its own options (a stateless component such as a loss);
- a factory function ``factory(options, context)``, with an options instance in ``options``;
- an already built component (an ``nn.Module`` or any other object).

``options`` is ``None`` (the defaults), a dict of TOML keys (validated exactly as a run file's
table would be) or an options instance. Checks run under a fixed seed and leave the global random
state as they found it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import tomli_w
import torch
from torch import nn

from gancore._config import Component, _plain, parse_config, structure_options
from gancore._errors import PluginError
from gancore._jsonlog import read_jsonl
from gancore._plugins import PluginInfo, get_registry, load_registry, reset_registry
from gancore._registry import ComponentSpec, Registry
from gancore._task import BuildContext

__all__ = [
    "FakeDataset",
    "FakeMetricContext",
    "TinyCritic",
    "TinyGenerator",
    "check_augmenter",
    "check_critic",
    "check_dataset",
    "check_extractor",
    "check_feature_critic",
    "check_generator",
    "check_loss",
    "check_metric",
    "check_options_roundtrip",
    "check_plugin_components",
    "check_plugin_loads",
    "check_regularizer",
    "check_task",
    "check_training",
    "plugin_fixture",
    "registered_plugin",
    "run_processes",
    "tiny_run",
    "train_interrupted",
    "train_processes",
]


# -------------------------------------------------------------------------------------------------
# Tiny fakes
# -------------------------------------------------------------------------------------------------


class TinyGenerator(nn.Module):
    """``z [N, latent_dim] -> tanh(W z + b)`` reshaped to ``[N, *data_shape]``."""

    def __init__(self, data_shape: Sequence[int] = (2,), latent_dim: int = 4) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.data_shape = tuple(data_shape)
        self.linear = nn.Linear(latent_dim, math.prod(self.data_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(z)).reshape(z.shape[0], *self.data_shape)


class TinyCritic(nn.Module):
    """A two-layer perceptron on the flattened input: ``[N, *data_shape] -> [N]`` scores; a
    :class:`~gancore.protocols.FeatureCritic` whose features are its hidden layer."""

    def __init__(self, data_shape: Sequence[int] = (2,), hidden: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(data_shape), hidden), nn.LeakyReLU(0.2)
        )
        self.out = nn.Linear(hidden, 1)
        self.feature_dim = hidden

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x, *extra))

    def features(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        if extra:
            raise ValueError(f"TinyCritic takes no conditioning inputs (got {len(extra)})")
        hidden: torch.Tensor = self.net(x)
        return hidden

    def score(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(features).squeeze(1)


class FakeDataset:
    """A map-style dataset of ``size`` items drawn once from ``seed``: float tensors in ``[-1, 1]``
    of the given ``shapes``, plus integer ``"label"`` values in ``[0, num_classes)`` when
    ``num_classes`` is given. Items are deterministic functions of the index."""

    def __init__(
        self,
        shapes: Mapping[str, Sequence[int]] | None = None,
        size: int = 16,
        seed: int = 0,
        num_classes: int | None = None,
    ) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.shapes: dict[str, tuple[int, ...]] = {
            key: tuple(shape) for key, shape in (shapes or {"x": (1, 8, 8)}).items()
        }
        self._data = {
            key: torch.rand(size, *shape, generator=gen) * 2 - 1
            for key, shape in self.shapes.items()
        }
        if num_classes is not None:
            self.shapes["label"] = ()
            self._data["label"] = torch.randint(num_classes, (size,), generator=gen)
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: values[index] for key, values in self._data.items()}


class FakeMetricContext:
    """A :class:`gancore.protocols.MetricContext` over a generator of latents and a dataset.

    ``generate(num, batch_size, seed)`` feeds standard-normal latents drawn from ``seed`` to
    ``generator`` (default: a :class:`TinyGenerator` for the dataset's ``"x"`` shape) without
    gradients, all ``num`` drawn at once so that sample ``k`` does not depend on ``batch_size``
    (as the protocol asks); ``real`` yields the dataset's ``"x"`` in an order drawn from ``seed``, cycling when
    ``num`` exceeds the dataset.
    """

    def __init__(
        self,
        dataset: Any | None = None,
        generator: nn.Module | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.dataset = dataset if dataset is not None else FakeDataset({"x": (2,)}, size=64)
        self.generator = generator or TinyGenerator(self.dataset.shapes["x"])
        self.device = torch.device(device)

    def generate(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        dim = int(self.generator.latent_dim)  # type: ignore[arg-type]
        latents = torch.randn(num, dim, generator=gen)
        for start in range(0, num, batch_size):
            with torch.no_grad():
                yield self.generator(latents[start : start + batch_size].to(self.device))

    def real(self, num: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        size = len(self.dataset)
        order = torch.cat([torch.randperm(size, generator=gen) for _ in range(-(-num // size))])
        for start in range(0, num, batch_size):
            indices = order[start : min(start + batch_size, num)].tolist()
            yield torch.stack([self.dataset[i]["x"] for i in indices]).to(self.device)


# -------------------------------------------------------------------------------------------------
# What is being checked, and how to build it
# -------------------------------------------------------------------------------------------------


@attrs.frozen
class _Target:
    label: str  # "loss 'hinge'", "loss Hinge": starts every message
    options_class: type | None
    factory: Callable[[Any, Any], Any] | None  # None: ``built`` is the component
    built: Any = None


def _target(kind: str, component: Any) -> _Target:
    if isinstance(component, str):
        return _spec_target(kind, get_registry().get(kind, component), component)
    if isinstance(component, ComponentSpec):  # built with the process-wide registry
        return _spec_target(kind, component, component.qualified_name)
    if isinstance(component, type) and attrs.has(component):
        return _Target(f"{kind} {component.__name__}", component, lambda options, context: options)
    if inspect.isfunction(component) or isinstance(component, functools.partial):
        name = getattr(component, "__name__", type(component).__name__)
        return _Target(f"{kind} {name}", None, component)
    return _Target(f"{kind} {type(component).__name__}", None, None, component)


def _spec_target(kind: str, spec: ComponentSpec, name: str) -> _Target:
    if spec.kind != kind:
        raise TypeError(f"{spec.qualified_name!r} is a {spec.kind}, not a {kind}")

    def build(options: Any, context: Any) -> Any:
        # As a run builds it: the build context carries the registry, to resolve other components.
        component = Component(spec=spec, options=options, registry=get_registry(), path=kind)
        return component.build(context)

    return _Target(f"{kind} {name!r}", spec.options, build)


def _options(target: _Target, options: Any, kind: str) -> Any:
    cls = target.options_class
    if options is None:
        if cls is None:
            raise TypeError(f"{target.label}: pass options: a factory's options class is unknown")
        try:
            return cls()
        except TypeError as exc:
            raise AssertionError(f"{target.label}: options have no defaults ({exc})") from None
    if isinstance(options, Mapping):
        if cls is None:
            raise TypeError(f"{target.label}: pass an options instance, not a table")
        problems: list[str] = []
        structured = structure_options(cls, options, kind, problems, what=target.label)
        if structured is None:
            raise AssertionError(f"{target.label}: invalid options: " + "; ".join(problems))
        return structured
    return options


def _build(kind: str, component: Any, options: Any, context: Any) -> tuple[Any, str]:
    target = _target(kind, component)
    if target.factory is None:
        if options is not None:
            raise TypeError(f"{target.label}: already built; options cannot apply")
        return target.built, target.label
    opts = _options(target, options, kind)
    try:
        return target.factory(opts, context), target.label
    except Exception as exc:
        raise AssertionError(f"{target.label}: building failed: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: " + " ".join(str(exc).split())


def _fail(label: str, text: str) -> AssertionError:
    return AssertionError(f"{label}: {text}")


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Fixed seed inside; the caller's random state restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _uniform(*shape: int) -> torch.Tensor:
    return torch.rand(*shape) * 2 - 1


def _check_tensor(label: str, what: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise _fail(label, f"{what} is {type(value).__name__}, expected a tensor")
    if not torch.isfinite(value.detach()).all():
        raise _fail(label, f"{what} has non-finite values (nan or inf)")
    return value


def _check_module(label: str, built: Any) -> nn.Module:
    if not isinstance(built, nn.Module):
        raise _fail(label, f"factory returned {type(built).__name__}, expected a torch.nn.Module")
    return built


def _check_parameter_gradients(
    label: str, module: nn.Module, value: torch.Tensor, whose: str = "its", nonzero: bool = True
) -> None:
    """``value`` (a scalar) back-propagates to at least one of ``module``'s parameters (with a
    gradient that is not zero everywhere, if ``nonzero``)."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise _fail(label, f"{whose} module has no trainable parameters")
    if not value.requires_grad:
        raise _fail(label, f"no gradient reaches {whose} parameters")
    grads = torch.autograd.grad(value, params, allow_unused=True)
    if all(g is None or (nonzero and not g.abs().sum() > 0) for g in grads):
        raise _fail(label, f"no gradient reaches {whose} parameters")


def _input_gradient(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
    if not value.requires_grad:
        return None
    (grad,) = torch.autograd.grad(value, x, allow_unused=True)
    return grad


# -------------------------------------------------------------------------------------------------
# One check per kind
# -------------------------------------------------------------------------------------------------


def check_generator(
    component: Any,
    options: Any = None,
    *,
    data_shape: Sequence[int] = (1, 8, 8),
    input_shape: Sequence[int] | None = None,
    extra: Sequence[torch.Tensor] = (),
    batch_size: int = 4,
    seed: int = 0,
) -> nn.Module:
    """A generator built for ``data_shape`` maps a batch to ``[batch_size, *data_shape]``.

    Unconditional (``input_shape=None``): it exposes an integer ``latent_dim >= 1`` and takes
    latents ``[N, latent_dim]``. Image-to-image: it takes ``[N, *input_shape]`` in ``[-1, 1]``.
    ``extra`` are conditioning tensors passed after the inputs, each with a leading batch
    dimension (labels ``[N]`` of a class-conditional generator: ``generator(z, labels)``).
    The output is a finite tensor of the default float dtype, and gradients reach the parameters.
    """
    shape = tuple(data_shape)
    context = BuildContext(
        data_shape=shape, input_shape=None if input_shape is None else tuple(input_shape)
    )
    with _seeded(seed):
        built, label = _build("generator", component, options, context)
        generator = _check_module(label, built)
        if input_shape is None:
            latent_dim = getattr(generator, "latent_dim", None)
            if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
                raise _fail(
                    label,
                    f"an unconditional generator exposes an integer latent_dim >= 1 "
                    f"(got {latent_dim!r})",
                )
            inputs = torch.randn(batch_size, latent_dim)
        else:
            inputs = _uniform(batch_size, *input_shape)
        out = _check_tensor(label, "output", generator(inputs, *extra))
        expected = (batch_size, *shape)
        if tuple(out.shape) != expected:
            raise _fail(
                label,
                f"output shape {tuple(out.shape)}, expected {expected} for data_shape {shape}",
            )
        if out.dtype != torch.get_default_dtype():
            raise _fail(label, f"output dtype {out.dtype}, expected {torch.get_default_dtype()}")
        _check_parameter_gradients(label, generator, out.square().mean())
    return generator


def check_critic(
    component: Any,
    options: Any = None,
    *,
    data_shape: Sequence[int] = (1, 8, 8),
    extra: Sequence[torch.Tensor] = (),
    batch_size: int = 4,
    seed: int = 0,
) -> nn.Module:
    """A critic built for ``data_shape`` scores ``[N, *data_shape]`` (and the conditioning
    tensors ``extra``, each with a leading batch dimension) as finite floating-point scores of
    shape ``[N]``, ``[N, 1]`` or ``[N, 1, h, w]``; gradients reach the input (gradient penalties
    need them) and the parameters."""
    shape = tuple(data_shape)
    with _seeded(seed):
        built, label = _build("critic", component, options, BuildContext(data_shape=shape))
        critic = _check_module(label, built)
        x = _uniform(batch_size, *shape).requires_grad_(True)
        scores = _check_tensor(label, "scores", critic(x, *extra))
        s = tuple(scores.shape)
        if not (
            s == (batch_size,) or s == (batch_size, 1) or (len(s) == 4 and s[:2] == (batch_size, 1))
        ):
            raise _fail(
                label,
                f"scores of shape {s}, expected [N], [N, 1] or [N, 1, h, w] with N = {batch_size}",
            )
        if not scores.is_floating_point():
            raise _fail(label, f"scores of dtype {scores.dtype}, expected floating point")
        grad = _input_gradient(scores.sum(), x)
        if grad is None or not grad.abs().sum() > 0:
            raise _fail(label, "no gradient reaches the input x from the scores")
        _check_parameter_gradients(label, critic, critic(x.detach(), *extra).mean())
    return critic


def check_feature_critic(
    component: Any,
    options: Any = None,
    *,
    data_shape: Sequence[int] = (1, 8, 8),
    extra: Sequence[torch.Tensor] = (),
    batch_size: int = 4,
    seed: int = 0,
) -> nn.Module:
    """:func:`check_critic`, and the :class:`~gancore.protocols.FeatureCritic` contract:
    ``features(x, *extra)`` is ``[N, feature_dim]`` and ``score(features(x, *extra))`` equals
    ``critic(x, *extra)`` (to float32 rounding), so components built on the features see the
    critic the loop trains."""
    critic = check_critic(
        component, options, data_shape=data_shape, extra=extra, batch_size=batch_size, seed=seed
    )
    label = f"critic {type(critic).__name__}"
    for attribute in ("features", "score", "feature_dim"):
        if not hasattr(critic, attribute):
            raise _fail(label, f"has no {attribute!r}: not a feature critic (FeatureCritic)")
    feature_critic: Any = critic  # its attributes are checked above
    dim = feature_critic.feature_dim
    if not isinstance(dim, int) or dim < 1:
        raise _fail(label, f"feature_dim must be a positive int (got {dim!r})")
    with _seeded(seed), torch.no_grad():
        x = _uniform(batch_size, *tuple(data_shape))
        features = _check_tensor(label, "features", feature_critic.features(x, *extra))
        if tuple(features.shape) != (batch_size, dim):
            raise _fail(
                label,
                f"features of shape {tuple(features.shape)}, expected [N, feature_dim] = "
                f"{(batch_size, dim)}",
            )
        direct = critic(x, *extra)
        through = _check_tensor(label, "score(features)", feature_critic.score(features))
        if through.shape != direct.shape or not torch.allclose(
            through, direct, rtol=1e-5, atol=1e-6
        ):
            raise _fail(
                label,
                "score(features(x)) differs from critic(x) "
                f"(shapes {tuple(through.shape)} and {tuple(direct.shape)})",
            )
    return critic


def check_loss(
    component: Any,
    options: Any = None,
    *,
    score_shapes: Sequence[Sequence[int]] = ((8,), (8, 1), (4, 1, 2, 2)),
    data_shape: Sequence[int] = (1, 8, 8),
    seed: int = 0,
) -> Any:
    """A loss is a pure function of scores of any shape: ``critic_loss(real, fake)`` and
    ``generator_loss(fake)`` are finite scalars with gradients to every score they take, they
    leave their inputs unchanged, and the critic's loss is lower when real scores exceed fake ones
    (scores are high for real data)."""
    with _seeded(seed):
        loss, label = _build("loss", component, options, BuildContext(data_shape=tuple(data_shape)))
        missing = [
            m for m in ("critic_loss", "generator_loss") if not callable(getattr(loss, m, None))
        ]
        if missing:
            raise _fail(
                label,
                f"lacks {', '.join(missing)}; a loss has critic_loss(real_scores, fake_scores) "
                "and generator_loss(fake_scores)",
            )
        for shape in score_shapes:
            real = torch.randn(*shape, requires_grad=True)
            fake = torch.randn(*shape, requires_grad=True)
            before = (real.detach().clone(), fake.detach().clone())
            where = f"for scores of shape {tuple(shape)}"
            for method, value, inputs in (
                ("critic_loss", loss.critic_loss(real, fake), {"real": real, "fake": fake}),
                ("generator_loss", loss.generator_loss(fake), {"fake": fake}),
            ):
                _check_tensor(label, f"{method} {where}", value)
                if value.dim() != 0:
                    raise _fail(
                        label,
                        f"{method} returned shape {tuple(value.shape)} {where}, expected a scalar",
                    )
                grads = (
                    torch.autograd.grad(value, tuple(inputs.values()), allow_unused=True)
                    if value.requires_grad
                    else (None,) * len(inputs)
                )
                for name, grad in zip(inputs, grads, strict=True):
                    if grad is None or not grad.abs().sum() > 0:
                        raise _fail(
                            label, f"{method} has no gradient with respect to the {name} scores"
                        )
            if not (
                torch.equal(real.detach(), before[0]) and torch.equal(fake.detach(), before[1])
            ):
                raise _fail(label, "changed the scores it was given in place")
        high, low = torch.ones(8), -torch.ones(8)
        right, wrong = float(loss.critic_loss(high, low)), float(loss.critic_loss(low, high))
        if not right < wrong:
            raise _fail(
                label,
                f"critic_loss is not lower when real scores exceed fake ones (real 1, fake -1: "
                f"{right:.4g}; real -1, fake 1: {wrong:.4g}); scores are high for real data",
            )
        up, down = float(loss.generator_loss(high)), float(loss.generator_loss(low))
        if up > down:
            raise _fail(
                label,
                f"generator_loss is higher for fake scores of 1 ({up:.4g}) than of -1 "
                f"({down:.4g}); scores are high for real data",
            )
    return loss


def check_regularizer(
    component: Any,
    options: Any = None,
    *,
    data_shape: Sequence[int] = (2,),
    critic: nn.Module | None = None,
    generator: nn.Module | None = None,
    batch_size: int = 4,
    seed: int = 0,
) -> Any:
    """A regularizer has ``player`` ``"critic"`` or ``"generator"`` and an integer ``interval >= 1``.

    An optional ``check(players)`` accepts the network (``{"critic": {"critic": critic}}`` or
    ``{"generator": {"generator": generator}}``); a ``ValueError`` it raises propagates.
    A critic regularizer's ``setup_critic`` (optional) accepts ``critic`` (default: a
    :class:`TinyCritic`), its ``penalty(critic, real, fake, ())`` is ``None`` or a finite,
    non-negative scalar with gradients to the critic's parameters, and ``after_step(critic)`` runs.
    A generator regularizer's ``penalty(generator, latents)`` (default generator: a
    :class:`TinyGenerator`) is a finite, non-negative scalar with gradients to the generator.
    A generator loss term (:class:`~gancore.protocols.GeneratorLossTerm`: ``loss_term`` instead
    of ``penalty``) has ``interval == 1`` and a boolean ``replaces_loss``, and its
    ``loss_term(critic, real, generator(latents), ())`` (default critic: a :class:`TinyCritic`,
    a feature critic, frozen as in the generator phase) is a finite scalar with gradients to the
    generator.
    """
    shape = tuple(data_shape)
    with _seeded(seed):
        reg, label = _build("regularizer", component, options, BuildContext(data_shape=shape))
        player = getattr(reg, "player", None)
        if player not in ("critic", "generator"):
            raise _fail(label, f"player must be 'critic' or 'generator' (got {player!r})")
        interval = getattr(reg, "interval", None)
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise _fail(label, f"interval must be an integer >= 1 (got {interval!r})")
        if player == "generator" and callable(getattr(reg, "loss_term", None)):
            return _check_loss_term(label, reg, shape, critic, generator, batch_size)
        if not callable(getattr(reg, "penalty", None)):
            raise _fail(label, "lacks penalty(...)")
        # the optional build-time seam, called as build_run calls it (before setup_critic)
        check = getattr(reg, "check", None)
        if player == "generator":
            net = generator if generator is not None else TinyGenerator(shape)
            if callable(check):
                check({"generator": {"generator": net}})
            inputs = torch.randn(batch_size, int(net.latent_dim))  # type: ignore[arg-type]
            penalty = reg.penalty(net, inputs)
        else:
            net = critic if critic is not None else TinyCritic(shape)
            if callable(check):
                check({"critic": {"critic": net}})
            setup = getattr(reg, "setup_critic", None)
            if setup is not None:
                setup(net)
            if not callable(getattr(reg, "after_step", None)):
                raise _fail(label, "lacks after_step(critic); a critic regularizer has one")
            real, fake = _uniform(batch_size, *shape), _uniform(batch_size, *shape)
            before = (real.clone(), fake.clone())
            penalty = reg.penalty(lambda x, *extra: net(x, *extra), real, fake, ())
            if real.requires_grad or fake.requires_grad:
                raise _fail(
                    label,
                    "penalty switched on requires_grad of its real/fake inputs (the loop's own "
                    "tensors); take x = real.detach().requires_grad_(True) instead",
                )
            if not (torch.equal(real, before[0]) and torch.equal(fake, before[1])):
                raise _fail(label, "penalty modified its real/fake inputs in place")
            if penalty is None:
                reg.after_step(net)
                return reg
        _check_tensor(label, "penalty", penalty)
        if penalty.dim() != 0:
            raise _fail(label, f"penalty of shape {tuple(penalty.shape)}, expected a scalar")
        if float(penalty.detach()) < 0:
            raise _fail(
                label, f"penalty is negative ({float(penalty.detach()):.4g}); a penalty is >= 0"
            )
        # a one-sided penalty may be zero here, but it must be connected to the parameters
        _check_parameter_gradients(label, net, penalty, whose=f"the {player}'s", nonzero=False)
        if player == "critic":
            reg.after_step(net)
    return reg


def _check_loss_term(
    label: str,
    reg: Any,
    shape: tuple[int, ...],
    critic: nn.Module | None,
    generator: nn.Module | None,
    batch_size: int,
) -> Any:
    """:func:`check_regularizer` for a generator loss term."""
    if reg.interval != 1:
        raise _fail(label, f"a generator loss term must have interval 1 (got {reg.interval})")
    if not isinstance(getattr(reg, "replaces_loss", None), bool):
        raise _fail(label, "a generator loss term needs a boolean replaces_loss")
    net = generator if generator is not None else TinyGenerator(shape)
    judge = critic if critic is not None else TinyCritic(shape)
    check = getattr(reg, "check", None)
    if callable(check):
        check({"generator": {"generator": net}, "critic": {"critic": judge}})
    real = _uniform(batch_size, *shape)
    fake = net(torch.randn(batch_size, int(net.latent_dim)))  # type: ignore[arg-type]
    judge.requires_grad_(False)  # as in the generator phase
    try:
        value = _check_tensor(label, "loss_term", reg.loss_term(judge, real, fake, ()))
    finally:
        judge.requires_grad_(True)
    if value.dim() != 0:
        raise _fail(label, f"loss_term of shape {tuple(value.shape)}, expected a scalar")
    _check_parameter_gradients(label, net, value, whose="the generator's", nonzero=False)
    return reg


def check_augmenter(
    component: Any,
    options: Any = None,
    *,
    data_shape: Sequence[int] = (3, 8, 8),
    batch_size: int = 4,
    seed: int = 0,
) -> Any:
    """An augmenter maps ``[N, *data_shape]`` to a finite tensor of the same shape and dtype,
    gradients reach its input, ``feedback_interval`` is an integer ``>= 0`` and
    ``feedback(real_sign_mean, images)`` accepts both signs."""
    shape = tuple(data_shape)
    with _seeded(seed):
        aug, label = _build("augmenter", component, options, BuildContext(data_shape=shape))
        interval = getattr(aug, "feedback_interval", None)
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
            raise _fail(label, f"feedback_interval must be an integer >= 0 (got {interval!r})")
        if not callable(getattr(aug, "feedback", None)):
            raise _fail(label, "lacks feedback(real_sign_mean, images)")
        x = _uniform(batch_size, *shape).requires_grad_(True)
        out = _check_tensor(label, "output", aug(x))
        if out.shape != x.shape:
            raise _fail(
                label, f"output shape {tuple(out.shape)} differs from input shape {tuple(x.shape)}"
            )
        if out.dtype != x.dtype:
            raise _fail(label, f"output dtype {out.dtype} differs from input dtype {x.dtype}")
        grad = _input_gradient(out.square().sum(), x)
        if grad is None or not grad.abs().sum() > 0:
            raise _fail(label, "no gradient reaches the input")
        for sign_mean in (0.6, -0.6):
            try:
                aug.feedback(sign_mean, batch_size)
            except Exception as exc:
                raise _fail(
                    label, f"feedback({sign_mean}, {batch_size}) raised {_one_line(exc)}"
                ) from exc
    return aug


def check_dataset(component: Any, options: Any = None, *, num_items: int = 4) -> Any:
    """A dataset has ``shapes`` (key -> tuple of ints) and at least one item; its first
    ``num_items`` items and its last are dicts of tensors with exactly those keys and shapes, read
    twice alike; ``"x"`` is finite floating point, in ``[-1, 1]`` for images ``[C, H, W]``; an
    optional ``get_batch(indices)`` equals the stacked items."""
    dataset, label = _build("dataset", component, options, None)
    shapes = getattr(dataset, "shapes", None)
    if not isinstance(shapes, Mapping) or not all(
        isinstance(k, str) and isinstance(v, tuple) and all(isinstance(d, int) for d in v)
        for k, v in shapes.items()
    ):
        raise _fail(label, f"shapes must map each key to a tuple of ints (got {shapes!r})")
    size = len(dataset)
    if size < 1:
        raise _fail(label, "is empty (len 0)")
    indices = sorted({*range(min(num_items, size)), size - 1})
    items = []
    for i in indices:
        item = dataset[i]
        if not isinstance(item, Mapping) or sorted(item) != sorted(shapes):
            keys = sorted(item) if isinstance(item, Mapping) else type(item).__name__
            raise _fail(label, f"item {i} has keys {keys}, shapes says {sorted(shapes)}")
        for key, expected in shapes.items():
            value = item[key]
            if not isinstance(value, torch.Tensor):
                raise _fail(
                    label, f"item {i}[{key!r}] is {type(value).__name__}, expected a tensor"
                )
            if tuple(value.shape) != expected:
                raise _fail(
                    label,
                    f"item {i}[{key!r}] has shape {tuple(value.shape)}, shapes says {expected}",
                )
        again = dataset[i]
        if any(not torch.equal(item[k], again[k]) for k in shapes):
            raise _fail(
                label,
                f"item {i} differs between two reads; items must be deterministic functions "
                "of the index",
            )
        if "x" in item:
            x = item["x"]
            if not x.is_floating_point() or not torch.isfinite(x).all():
                raise _fail(label, f"item {i}['x'] must be finite floating point")
            if x.dim() == 3 and (x.min() < -1 or x.max() > 1):
                raise _fail(
                    label,
                    f"item {i}['x'] has values in [{float(x.min()):.3g}, {float(x.max()):.3g}]; "
                    "images lie in [-1, 1]",
                )
        items.append(item)
    get_batch = getattr(dataset, "get_batch", None)
    if get_batch is not None:
        batch = get_batch(indices)
        for key in shapes:
            if not torch.equal(batch[key], torch.stack([item[key] for item in items])):
                raise _fail(
                    label, f"get_batch({indices}) differs from the stacked items at key {key!r}"
                )
    return dataset


def check_metric(
    component: Any,
    options: Any = None,
    *,
    context: Any | None = None,
    data_shape: Sequence[int] | None = None,
) -> dict[str, Any]:
    """``evaluate(context)`` (default: a :class:`FakeMetricContext` of 2-D points) returns a flat,
    JSON-ready dict with at least one number, a ``"protocol"`` dict if any, and every key that an
    optional ``value_keys()`` names. Returns the result. Pass small sample counts in ``options``."""
    context = context if context is not None else FakeMetricContext()
    shape = tuple(data_shape) if data_shape is not None else tuple(context.dataset.shapes["x"])
    metric, label = _build("metric", component, options, BuildContext(data_shape=shape))
    if not callable(getattr(metric, "evaluate", None)):
        raise _fail(label, "lacks evaluate(context)")
    result = metric.evaluate(context)
    if not isinstance(result, dict):
        raise _fail(label, f"evaluate returned {type(result).__name__}, expected a dict")
    try:
        json.dumps(result, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise _fail(label, f"result is not JSON-ready: {exc}") from None
    for key, value in result.items():
        if key == "protocol":
            if not isinstance(value, dict):
                raise _fail(label, f"'protocol' is {type(value).__name__}, expected a dict")
        elif not isinstance(value, bool | int | float | str | None):
            raise _fail(label, f"result key {key!r} holds {type(value).__name__}; results are flat")
    if not any(
        isinstance(v, int | float) and not isinstance(v, bool)
        for k, v in result.items()
        if k != "protocol"
    ):
        raise _fail(label, "result holds no number")
    value_keys = getattr(metric, "value_keys", None)
    if callable(value_keys):
        missing = [k for k in value_keys() if k not in result]
        if missing:
            raise _fail(label, f"value_keys() names {missing}, which evaluate did not return")
    return result


def check_extractor(
    component: Any,
    options: Any = None,
    *,
    image_shape: Sequence[int] = (3, 16, 16),
    batch_size: int = 2,
    seed: int = 0,
) -> nn.Module:
    """An extractor is an ``nn.Module`` with ``input_size`` (int), ``resize_filter`` (str) and
    ``weights_sha256`` (str); it maps images ``[N, *image_shape]`` in ``[-1, 1]`` (any size: it
    resizes) to finite features ``[N, d]``; an optional ``features_and_logits`` returns the same
    features and logits ``[N, K]``."""
    with _seeded(seed):
        built, label = _build("extractor", component, options, None)
        extractor = _check_module(label, built)
        wanted = {"input_size": int, "resize_filter": str, "weights_sha256": str}
        missing = [a for a, t in wanted.items() if not isinstance(getattr(extractor, a, None), t)]
        if missing:
            raise _fail(
                label,
                f"lacks {', '.join(missing)}; an extractor states its input size (int), resize "
                "filter (str) and weights hash (str)",
            )
        images = _uniform(batch_size, *image_shape)
        extractor.eval()
        with torch.no_grad():
            features = _check_tensor(label, "features", extractor(images))
            if features.dim() != 2 or features.shape[0] != batch_size:
                raise _fail(
                    label,
                    f"features of shape {tuple(features.shape)}, expected [N, d] with "
                    f"N = {batch_size}",
                )
            both = getattr(extractor, "features_and_logits", None)
            if callable(both):
                again, logits = both(images)
                if not torch.allclose(again, features):
                    raise _fail(label, "features_and_logits returns other features than forward")
                _check_tensor(label, "logits", logits)
                if logits.dim() != 2 or logits.shape[0] != batch_size:
                    raise _fail(label, f"logits of shape {tuple(logits.shape)}, expected [N, K]")
    return extractor


def check_options_roundtrip(component: Any, options: Any = None, *, kind: str = "component") -> str:
    """The options (default: their defaults) survive a trip through TOML as gancore writes a
    resolved ``config.toml`` and reads a run file, and every option field has a doc
    (``metadata={"doc": ...}``). ``kind`` names the component's kind (needed to look up a name).
    Returns the TOML text."""
    target = _target(kind, component)
    if target.options_class is None:
        raise TypeError(f"{target.label}: the options class is unknown; pass the class or spec")
    opts = _options(target, options, kind)
    cls = target.options_class
    fields = [f for f in attrs.fields(cls) if f.init]
    for field in fields:
        if not str(field.metadata.get("doc", "")).strip():
            raise _fail(
                target.label,
                f"option {field.alias or field.name!r} has no doc (metadata={{'doc': ...}})",
            )
    table = _plain({f.alias or f.name: getattr(opts, f.name) for f in fields})
    try:
        text = tomli_w.dumps(table)
    except (TypeError, ValueError) as exc:
        raise _fail(target.label, f"options do not write as TOML: {exc}") from None
    problems: list[str] = []
    again = structure_options(cls, tomllib.loads(text), kind, problems, what=target.label)
    if again is None:
        raise _fail(target.label, "options do not read back from TOML: " + "; ".join(problems))
    for field in fields:
        before, after = getattr(opts, field.name), getattr(again, field.name)
        if before != after or type(before) is not type(after):
            raise _fail(
                target.label,
                f"option {field.alias or field.name!r} changes through TOML: {before!r} became "
                f"{after!r}",
            )
    return text


# -------------------------------------------------------------------------------------------------
# Whole runs
# -------------------------------------------------------------------------------------------------


def tiny_run(steps: int = 2, **sections: Any) -> dict[str, Any]:
    """A run document that trains in about a second on a CPU: 2-D points, tiny MLPs, batch 8,
    a log, a sample grid and a checkpoint at ``steps``. Keyword arguments replace whole sections,
    e.g. ``tiny_run(loss={"name": "my-loss"})``."""
    document: dict[str, Any] = {
        "run": {"name": "tiny", "seed": 0, "steps": steps},
        "data": {"name": "toy2d", "size": 64},
        "generator": {"name": "mlp", "latent_dim": 2, "hidden": 8, "depth": 1},
        "critic": {"name": "mlp", "hidden": 8, "depth": 1},
        "training": {
            "batch_size": 8,
            "log_every": 1,
            "sample_every": steps,
            "checkpoint_every": steps,
            "num_samples": 16,
        },
    }
    document.update(sections)
    return document


def train_interrupted(config: Any, run_dir: str | Path, after: int, *, resume: bool = False) -> Any:
    """:func:`gancore.train` as if Ctrl-C arrived during iteration ``after`` (counted from the
    start or the resumed checkpoint): the run writes a checkpoint and stops, as a user's would.
    For resume tests: N steps, stop, resume, N more must equal 2N straight. Returns the
    :class:`gancore.TrainResult` (``interrupted`` is true unless the run ended first)."""
    from gancore._train import run_training

    return run_training(config, Path(run_dir), resume=resume, progress=False, stop_after=after)


def check_training(
    document: Mapping[str, Any], run_dir: str | Path, *, registry: Registry | None = None
) -> Any:
    """Train the run ``document`` (a parsed TOML run file, e.g. from :func:`tiny_run`) into
    ``run_dir`` with :func:`gancore.train`, and check that it ran every step, logged finite losses
    and wrote its samples and a checkpoint. Returns the :class:`gancore.TrainResult`."""
    from gancore._train import train

    config = parse_config(document, registry if registry is not None else get_registry())
    steps = config.run.steps
    label = f"run {config.run.name!r}"
    result = train(config, Path(run_dir), progress=False)
    if result.step != steps or result.interrupted:
        raise _fail(label, f"stopped at step {result.step} of {steps}")
    events = read_jsonl(Path(run_dir) / "metrics.jsonl")  # non-finite values restored
    train_events = [e for e in events if e.get("event") == "train"]
    if not train_events:
        raise _fail(label, "logged no training step")
    for event in train_events:
        for key, value in event.items():
            if key.startswith("loss/") and not math.isfinite(value):
                raise _fail(label, f"logged {key} = {value} at step {event['step']}")
    if not any((Path(run_dir) / "samples").glob("*.png")):
        raise _fail(label, "wrote no sample grid")
    if result.checkpoint is None:
        raise _fail(label, "wrote no checkpoint")
    return result


def check_task(
    task: str | Mapping[str, Any], run_dir: str | Path, *, steps: int = 2, **sections: Any
) -> Any:
    """Train a :func:`tiny_run` whose ``[task]`` is ``task`` (a registered name, or a table with
    its options) for ``steps`` steps, with :func:`check_training`. ``sections`` replace the tiny
    run's, e.g. ``data={"name": "my-paired-dataset"}``."""
    table = {"name": task} if isinstance(task, str) else dict(task)
    return check_training(tiny_run(steps, task=table, **sections), run_dir)


# -------------------------------------------------------------------------------------------------
# Registering a plugin in-process, checking an installed one
# -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def registered_plugin(
    name: str, plugin: object, *, entry_points: bool = False, strict: bool = True
) -> Iterator[Registry]:
    """Make the built-ins plus ``plugin`` (a module or object of hook implementations, registered
    under ``name`` as if installed) the process-wide registry, for the ``with`` block.

    ``entry_points=False`` leaves installed plugins out. ``strict`` makes a plugin that fails to
    load an error (``gancore.PluginError``). The previous registry is restored afterwards.
    """
    from gancore import _plugins

    previous = _plugins._CACHE
    env = {"GANCORE_STRICT_PLUGINS": "1"} if strict else {}
    registry, infos = load_registry(entry_points=entry_points, plugins=[(name, plugin)], env=env)
    info = next(i for i in reversed(infos) if i.name == name)
    if info.status != "loaded":
        raise AssertionError(f"plugin {name!r} did not load: {info.error}")
    reset_registry((registry, infos))
    try:
        yield registry
    finally:
        reset_registry(previous)


def plugin_fixture(
    name: str, plugin: object, *, autouse: bool = False, entry_points: bool = False
) -> Any:
    """A pytest fixture that yields the registry of :func:`registered_plugin`. In a conftest.py::

    from gan_noise import plugin
    registry = gancore.testing.plugin_fixture("gan-noise", plugin, autouse=True)
    """
    import pytest

    @pytest.fixture(autouse=autouse)
    def fixture() -> Iterator[Registry]:
        with registered_plugin(name, plugin, entry_points=entry_points) as registry:
            yield registry

    return fixture


def check_plugin_loads(name: str, *, module: str | None = None) -> tuple[Registry, PluginInfo]:
    """The installed distribution ``name`` declares an entry point ``name`` in the group
    ``gancore`` (pointing at ``module``, if given), loads in strict mode next to the built-ins
    alone, and registers at least one component or command. Returns the registry and its info."""
    env = {"GANCORE_LOAD_PLUGINS": name, "GANCORE_STRICT_PLUGINS": "1"}
    try:
        registry, infos = load_registry(env=env)
    except PluginError as exc:  # strict mode: the plugin's failure, or an API range it excludes
        raise AssertionError(f"plugin {name!r}: {exc}") from None
    found = [i for i in infos if i.name == name]
    if not found:
        raise AssertionError(
            f"plugin {name!r} is not installed: no entry point {name!r} in the group 'gancore'"
        )
    info = found[0]
    if info.status != "loaded":
        raise AssertionError(f"plugin {name!r} is {info.status}: {info.error}")
    if module is not None and info.module != module:
        raise AssertionError(f"plugin {name!r}: entry point names {info.module!r}, not {module!r}")
    if not info.components:
        raise AssertionError(f"plugin {name!r} registered nothing")
    return registry, info


def check_plugin_components(
    name: str, components: Iterable[tuple[str, str]], *, exact: bool = True
) -> Registry:
    """The plugin ``name`` (loaded as :func:`check_plugin_loads` loads it) registers each
    ``(kind, component)`` of ``components``: with itself as provider, a one-line description of
    at most 100 characters, reachable by its qualified name ``name:component`` too, and, where it
    has options, every option documented and surviving TOML (:func:`check_options_roundtrip`).
    With ``exact`` (the default) it registers no other component. Returns the registry."""
    registry, _ = check_plugin_loads(name)
    wanted = list(components)
    for kind, component in wanted:
        label = f"plugin {name!r}: {kind} {component!r}"
        try:
            spec = registry.get(kind, component)
        except LookupError:  # UnknownComponentError
            raise AssertionError(f"{label} is not registered") from None
        if spec.provider != name:
            raise AssertionError(f"{label} is provided by {spec.provider!r}")
        text = spec.description
        if not text or "\n" in text or len(text) > 100:
            raise AssertionError(
                f"{label}: the description must be one line of 1 to 100 characters (got {text!r})"
            )
        if registry.get(kind, f"{name}:{component}").qualified_name != spec.qualified_name:
            raise AssertionError(f"{label} is not reachable as {name}:{component}")
        if spec.options is None:
            continue
        try:
            spec.defaults()
        except (TypeError, ValueError):  # no valid defaults (a required option): docs only
            for field in attrs.fields(spec.options):
                if field.init and not str(field.metadata.get("doc", "")).strip():
                    raise AssertionError(
                        f"{label}: option {field.alias or field.name!r} has no doc"
                    ) from None
        else:
            check_options_roundtrip(spec, kind=kind)
    if exact:
        mine = {(s.kind, s.name) for s in registry.specs() if s.provider == name}
        extra = sorted(mine - set(wanted))
        if extra:
            listed = ", ".join(f"{kind} {component!r}" for kind, component in extra)
            raise AssertionError(f"plugin {name!r} also registers {listed}")
    return registry


# -------------------------------------------------------------------------------------------------
# Several processes
# -------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_processes(
    args: Sequence[str],
    *,
    processes: int = 2,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in ``processes`` processes (``torch.distributed.run`` on a free port;
    one process: plain ``python``) and return the finished process, output captured as text.

    ``env`` is the whole environment (default: this process's); ``cwd`` the working directory
    (default: this process's). A run still going after
    ``timeout`` seconds is taken to be hung: every process under the launcher is sent
    ``SIGABRT`` with ``PYTHONFAULTHANDLER`` set, so each prints the stack of every thread, and
    ``AssertionError`` is raised with the end of that output: a deadlock in a test names the
    line each process waits on instead of only timing out. Where ``gdb`` may attach, each
    process's C stacks are read first and added (:func:`_native_stacks`). ::

        done = gt.run_processes(["-m", "gancore", "train", str(run_file)], env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    """
    import signal

    import psutil  # type: ignore[import-untyped]  # an Accelerate dependency

    command = [sys.executable]
    if processes > 1:
        command += ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
        command += ["--master_port", str(_free_port())]
    environment = dict(os.environ if env is None else env) | {"PYTHONFAULTHANDLER": "1"}
    with subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=cwd,
    ) as launched:
        try:
            stdout, stderr = launched.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            below = psutil.Process(launched.pid).children(recursive=True)
            native = [_native_stacks(process.pid) for process in below]
            if below:
                launched.kill()  # first, so its own report does not bury the stacks
            for process in below or [psutil.Process(launched.pid)]:  # one at a time: unmixed
                with contextlib.suppress(psutil.Error):
                    process.send_signal(signal.SIGABRT)
                    process.wait(timeout=10)
            for process in below:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            launched.kill()
            stdout, stderr = launched.communicate()
            raise AssertionError(
                f"{processes} process(es) of {' '.join(args)!r} did not end within {timeout:g} s; "
                f"the end of their output, with the stacks they were stopped in:\n{stderr[-6000:]}"
                + "".join(f"\n{text}" for text in native if text)
            ) from None
    return subprocess.CompletedProcess(launched.args, launched.returncode, stdout, stderr)


def _native_stacks(pid: int, frames: int = 14) -> str:
    """Every thread's C stack in process ``pid``, a line per frame (function names only), from
    ``gdb`` where it is installed and may attach; ``""`` otherwise. A hang inside a C++ destructor
    or a lock shows no Python frame; this names it (CI's two-process hangs were found this way:
    the main thread joining gloo's worker in ``~ProcessGroupGloo`` while holding the GIL, the
    worker waiting for the GIL)."""
    import re
    import shutil

    gdb = shutil.which("gdb")
    if gdb is None:
        return ""
    try:
        done = subprocess.run(
            [gdb, "-p", str(pid), "-batch", "-ex", f"thread apply all bt {frames}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = [f"native stacks of process {pid} (gdb):"]
    for line in done.stdout.splitlines():
        if thread := re.match(r"Thread \d+ \(Thread \S+ \(LWP (\d+)\) \"([^\"]*)\"\)", line):
            lines.append(f"  thread {thread[2]!r} (LWP {thread[1]})")
        elif frame := re.match(r"#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+)", line):
            lines.append(f"    #{frame[1]} {frame[2]}")
    return "\n".join(lines) if len(lines) > 1 else ""


def train_processes(
    config: str | Path,
    out: str | Path,
    *,
    processes: int = 2,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> list[dict[str, torch.Tensor]]:
    """Train the run file ``config`` in ``processes`` CPU processes (``torch.distributed.run``,
    gloo; one process: plain ``python``) and return each rank's final state, rank 0 first.

    The run is written to ``out/run``. Each state maps ``generators.NAME.KEY``,
    ``critics.NAME.KEY``, ``<group>.NAME.KEY`` (a task's other player groups), ``ema.NAME.KEY`` and ``regularizers.I.KEY`` (the ``I``-th
    ``[[regularizers]]`` entry, for those that are modules: running means and the like) to tensors.
    ``overrides`` are ``key=value`` settings as for ``gan train --set``; ``env`` is added to the
    environment (e.g. ``{"GANCORE_LOAD_PLUGINS": "gan-mine"}``). Each process uses one thread.
    A failed launch, or one still running after ``timeout`` seconds, raises ``AssertionError`` with
    the end of the processes' output (for a hung run, the stacks it hung in: :func:`run_processes`).

    Typical use, the data-parallel contract of a plugin's regularizer::

        ranks = gt.train_processes(tmp_path / "run.toml", tmp_path / "two")
        for key in ranks[0]:
            assert torch.equal(ranks[0][key], ranks[1][key]), key
    """
    from safetensors.torch import load_file

    out = Path(out)
    worker = ["-m", "gancore._distributed_worker", str(config), str(out), *overrides]
    environment = dict(os.environ) | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    environment |= dict(env or {})
    try:
        done = run_processes(worker, processes=processes, env=environment, timeout=timeout)
    except AssertionError as exc:
        written = sorted(p.name for p in out.glob("rank*.safetensors"))
        raise AssertionError(
            f"{exc}\n(final states written: {', '.join(written) or 'none'})"
        ) from None
    if done.returncode:
        raise AssertionError(
            f"training in {processes} process(es) failed (exit {done.returncode}):\n"
            f"{done.stderr[-3000:]}"
        )
    return [load_file(str(out / f"rank{rank}.safetensors")) for rank in range(processes)]
