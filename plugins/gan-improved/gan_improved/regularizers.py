"""Feature matching (a generator loss term) and historical averaging (a penalty on either player),
Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.1 and 3.3."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import attrs
import torch
from torch import nn

from gancore.protocols import FeatureCritic, Player

__all__ = ["FeatureMatching", "HistoricalAveraging", "HistoricalAveragingOptions"]


@attrs.frozen(kw_only=True)
class FeatureMatching:
    """Feature matching (Salimans et al. 2016, Sec. 3.1): the generator minimises

    ``weight * || E_x f(x) - E_z f(G(z)) ||_2^2``

    with ``f`` the critic's last hidden features (:class:`gancore.protocols.FeatureCritic`), the
    expectations the means over the real batch and the generated batch of the step (on each
    process, its own share). A generator loss term: the loop calls :meth:`loss_term` inside
    ``StepContext.generator_loss`` with the critic and the augmented real and fake samples. The
    real features are constants; the gradient reaches the generator through ``f(G(z))``.
    """

    player: ClassVar[Player] = "generator"
    interval: ClassVar[int] = 1  # a loss term runs on every generator update

    weight: float = attrs.field(
        default=1.0,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={"doc": "factor on the squared distance of the mean features; > 0"},
    )
    mode: Literal["replace", "add"] = attrs.field(
        default="replace",
        validator=attrs.validators.in_(("replace", "add")),
        metadata={
            "doc": "'replace': the generator minimises only the feature distance (the paper); "
            "'add': the distance is added to the adversarial generator loss"
        },
    )

    @property
    def replaces_loss(self) -> bool:
        """Whether the term replaces the adversarial generator loss (``mode = "replace"``)."""
        return self.mode == "replace"

    def check(self, players: Mapping[str, Mapping[str, nn.Module]]) -> None:
        """Every critic must expose its features (``features``, ``score``, ``feature_dim``)."""
        critics = players.get("critic", {})
        if not critics:
            raise ValueError("feature-matching: the task has no critic to take features from")
        for name, critic in critics.items():
            if not isinstance(critic, FeatureCritic):
                raise ValueError(
                    f"feature-matching: critic {name!r} ({type(critic).__name__}) does not expose "
                    "its features (a FeatureCritic has feature_dim, features and score; the "
                    "built-in mlp and dcgan critics do, minibatch-discrimination too)"
                )

    def loss_term(
        self,
        critic: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        extra: tuple[torch.Tensor, ...],
    ) -> torch.Tensor:
        """``weight * ||mean_n f(real_n) - mean_n f(fake_n)||^2`` for the feature critic
        ``critic`` on augmented ``real`` and ``fake`` ``[N, ...]`` (``extra`` to the critic)."""
        features: Callable[..., torch.Tensor] = critic.features  # type: ignore[assignment]
        with torch.no_grad():  # the real side is a constant target
            real_mean = features(real, *extra).mean(dim=0)
        fake_mean = features(fake, *extra).mean(dim=0)
        return self.weight * (real_mean - fake_mean).square().sum()


@attrs.frozen(kw_only=True)
class HistoricalAveragingOptions:
    """Options of :class:`HistoricalAveraging`."""

    player: Player = attrs.field(
        default="critic",
        validator=attrs.validators.in_(("critic", "generator")),
        metadata={
            "doc": "whose parameters are pulled towards their running mean: 'critic' or "
            "'generator' (use two [[regularizers]] entries for both)"
        },
    )
    weight: float = attrs.field(
        default=1.0,
        converter=float,
        validator=attrs.validators.gt(0),
        metadata={
            "doc": "factor on ||theta - mean||^2, summed over every parameter; > 0 (the "
            "paper gives no value)"
        },
    )


class HistoricalAveraging(nn.Module):
    """Historical averaging (Salimans et al. 2016, Sec. 3.3): the penalty

    ``weight * || theta - (1/t) sum_{i<=t} theta[i] ||^2``

    on one player's parameters ``theta``, ``theta[i]`` their value after ``i`` optimizer updates
    (``theta[1]`` the value at the first step, the current one included). The running mean lives
    in buffers (``count`` and one ``mean:<parameter>`` per parameter), so checkpoints carry it and
    resume is exact; it is a constant for the gradient. It starts from the weights the first
    training step sees (after ``[init]`` or a resumed checkpoint) and is updated after every
    optimizer update of the player (``after_step``). One network per player: the task's single
    critic or single generator.
    """

    interval: ClassVar[int] = 1
    count: torch.Tensor  # updates seen, the first weights counted (int64 scalar buffer)

    def __init__(self, options: HistoricalAveragingOptions) -> None:
        super().__init__()
        self.player: Player = options.player
        self.weight = options.weight
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self._params: list[tuple[str, nn.Parameter]] = []
        self._started = False

    def check(self, players: Mapping[str, Mapping[str, nn.Module]]) -> None:
        """Takes the player's one network and makes a mean buffer for each trainable parameter."""
        modules = players.get(self.player, {})
        if len(modules) != 1:
            raise ValueError(
                f"historical-averaging: player {self.player!r} must have exactly one network "
                f"(the task has {sorted(modules) or 'none'})"
            )
        (module,) = modules.values()
        self._params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        for name, p in self._params:
            self.register_buffer(self._key(name), torch.zeros_like(p.detach()))

    @staticmethod
    def _key(name: str) -> str:
        return "mean:" + name.replace(".", ":")  # a buffer's name cannot hold a dot

    def _means(self) -> list[torch.Tensor]:
        means: list[torch.Tensor] = [getattr(self, self._key(n)) for n, _ in self._params]
        return means

    @torch.no_grad()
    def _start(self) -> None:
        """The first call of a run (or of a resumed one): the mean starts from the current weights
        unless a checkpoint already carried it."""
        if int(self.count) == 0:
            for mean, (_, p) in zip(self._means(), self._params, strict=True):
                mean.copy_(p.detach())
            self.count.fill_(1)
        self._started = True

    def penalty(self, *args: Any) -> torch.Tensor:
        """``weight * sum_p ||p - mean_p||^2`` over the player's parameters; the loop's
        arguments (critic, real, fake, extra / generator, inputs) are not needed."""
        if not self._params:
            raise ValueError("historical-averaging: check(players) was not called")
        if not self._started:
            self._start()
        total = sum(
            (
                (p - mean).square().sum()
                for mean, (_, p) in zip(self._means(), self._params, strict=True)
            ),
            start=torch.zeros((), device=self._params[0][1].device),
        )
        return self.weight * total

    @torch.no_grad()
    def after_step(self, module: nn.Module) -> None:
        """After each optimizer update: ``mean += (theta - mean) / t`` with ``t`` incremented."""
        if not self._started:
            self._start()
        self.count += 1
        t = float(self.count)
        for mean, (_, p) in zip(self._means(), self._params, strict=True):
            mean.add_(p.detach() - mean, alpha=1.0 / t)


def build_historical_averaging(
    options: HistoricalAveragingOptions, context: Any
) -> HistoricalAveraging:
    """Factory of ``historical-averaging``."""
    return HistoricalAveraging(options)
