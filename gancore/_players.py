"""The run's networks as the loop holds them: by player group, prepared by Accelerate, with one
optimizer per group and the EMA of the generators.

Everything that must change together when a stage grows or adds networks (wrappers, optimizers,
the EMA copy, what the steps call) changes here, in :meth:`Players.regroup`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gancore._build import flat_state, load_flat_state, weights_group
from gancore._fast import compiled, direct_calls
from gancore._syncbn import convert_sync_batchnorm, has_batchnorm

if TYPE_CHECKING:
    from gancore._config import RunConfig

__all__ = ["Players"]


class Players:
    """Player groups, their Accelerate wrappers, optimizers and the EMA generators.

    - ``modules[group][name]``: the bare modules (EMA, samples, metrics, lazy penalties use them);
    - ``prepared[group][name]``: Accelerate's modules (DDP-wrapped on several processes);
    - ``wrapped[group][name]``: what the steps call (``prepared``, compiled with
      ``training.compile``);
    - ``optimizers[group]``: Accelerate's optimizers (state dicts), ``steppers[group]``: what the
      loop calls ``zero_grad``/``step`` on (see :func:`gancore._fast.direct_calls`);
    - ``ema[name]``: the EMA copy of each generator, never prepared, only copied into.
    """

    def __init__(
        self,
        accelerator: Any,
        config: RunConfig,
        modules: dict[str, dict[str, nn.Module]],
        lr_scales: Mapping[str, float],
    ) -> None:
        self.accelerator = accelerator
        self.config = config
        self.lr_scales = dict(lr_scales)  # the lazy-regularization correction c of each group
        self.lr: dict[str, float] = {g: config.optimizers[g].lr for g in modules}  # of the stage
        self.modules: dict[str, dict[str, nn.Module]] = {}
        self.prepared: dict[str, dict[str, nn.Module]] = {}
        self.wrapped: dict[str, dict[str, Any]] = {}
        self.optimizers: dict[str, Any] = {}
        self.steppers: dict[str, Any] = {}
        self.ema: dict[str, nn.Module] = {}
        self.backward: Any = None
        self._trainable: dict[str, list[nn.Parameter]] = {}
        # Batch norm over the global batch: asked for, or (unset) whenever several processes
        # train a network with batch norm (gancore/_syncbn.py).
        wanted = config.training.sync_batchnorm
        self.sync_batchnorm = accelerator.num_processes > 1 and (
            wanted
            if wanted is not None
            else any(has_batchnorm(m) for group in modules.values() for m in group.values())
        )
        self.regroup(modules, reset=True)

    # -- building ---------------------------------------------------------------------------------

    def regroup(self, modules: dict[str, dict[str, nn.Module]], reset: bool) -> None:
        """(Re)build wrappers, optimizers and EMA for ``modules``.

        Optimizers are built over each group's trainable parameters (frozen ones are left out);
        unless ``reset``, a parameter that was trained before keeps its optimizer state. The EMA of
        a generator that was there before keeps its values for tensors of unchanged shape.
        """
        acc, config = self.accelerator, self.config
        if self.sync_batchnorm:  # before optimizers and DDP see the modules (new layers too)
            cuda = acc.device.type == "cuda"
            for members in modules.values():
                for name, module in list(members.items()):
                    members[name] = convert_sync_batchnorm(module, cuda)
        old_optimizers = {g: _raw(o) for g, o in self.optimizers.items()}
        groups = list(modules)
        new_optimizers = []
        for group in groups:
            params = [p for m in modules[group].values() for p in m.parameters() if p.requires_grad]
            self._trainable[group] = params
            c = self.lr_scales.get(group, 1.0)
            opt = config.optimizers[group].build(params, lr_scale=c, beta_power=c)
            for pg in opt.param_groups:
                pg["lr"] = self.lr[group] * c
            old = old_optimizers.get(group)
            if old is not None and not reset:
                for p in params:
                    if p in old.state:
                        opt.state[p] = old.state[p]
            new_optimizers.append(opt)
        names = [(g, n) for g in groups for n in modules[g]]
        # prepare() in a fixed order (groups, then optimizers): checkpoint identity.
        prepared = acc.prepare(*(modules[g][n] for g, n in names), *new_optimizers)
        self.prepared = {g: {} for g in groups}
        for (g, n), w in zip(names, prepared[: len(names)], strict=True):
            self.prepared[g][n] = w
        self.modules = {
            g: {n: acc.unwrap_model(w) for n, w in self.prepared[g].items()} for g in groups
        }
        self.optimizers = dict(zip(groups, prepared[len(names) :], strict=True))
        self.steppers, self.backward = direct_calls(acc, self.optimizers)
        # torch.compile: the steps call compiled players; EMA, samples, metrics, lazy penalties
        # and checkpoints use the modules themselves (same parameters).
        self.wrapped = (
            {g: compiled(w, config.training.compile) for g, w in self.prepared.items()}
            if config.training.compile
            else {g: dict(w) for g, w in self.prepared.items()}
        )
        if config.training.ema_half_life_images is not None:
            old_ema = self.ema
            self.ema = {}
            for name, model in self.modules.get("generator", {}).items():
                ema = old_ema.get(name)
                if ema is not None and ema is not model and _same_shapes(ema, model):
                    self.ema[name] = ema
                    continue
                fresh = copy.deepcopy(model).eval().requires_grad_(False)
                if ema is not None:
                    _load_matching(fresh, ema.state_dict())
                self.ema[name] = fresh

    def set_lr(self, group: str, lr: float) -> None:
        """The stage's learning rate of ``group`` (before the lazy correction and schedules)."""
        self.lr[group] = lr
        for pg in self.optimizers[group].param_groups:
            pg["lr"] = lr * self.lr_scales.get(group, 1.0)

    def base_lr(self, group: str) -> float:
        return self.lr[group] * self.lr_scales.get(group, 1.0)

    # -- what the phases use ----------------------------------------------------------------------

    def trainable(self, group: str) -> list[nn.Parameter]:
        return self._trainable[group]

    def frozen_for(self, groups: tuple[str, ...]) -> tuple[list[nn.Module], list[nn.Parameter]]:
        """The wrapped modules and trainable parameters of every group not in ``groups``."""
        others = [g for g in self.modules if g not in groups]
        return (
            [w for g in others for w in self.prepared[g].values()],
            [p for g in others for p in self._trainable[g]],
        )

    def all_modules(self) -> dict[str, nn.Module]:
        return {n: m for group in self.modules.values() for n, m in group.items()}

    # -- checkpoints ------------------------------------------------------------------------------

    def weights(self) -> dict[str, dict[str, torch.Tensor]]:
        out = {weights_group(g): flat_state(m) for g, m in self.modules.items()}
        if self.ema:
            out["ema"] = flat_state(self.ema)
        return out

    def load_weights(self, weights: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        for group, modules in self.modules.items():
            load_flat_state(modules, weights[weights_group(group)])
        if self.ema:
            load_flat_state(self.ema, weights["ema"])

    def optimizer_states(self) -> dict[str, Any]:
        return {g: opt.state_dict() for g, opt in self.optimizers.items()}

    def load_optimizer_states(self, states: Mapping[str, Any]) -> None:
        for group, opt in self.optimizers.items():
            opt.load_state_dict(states[group])


def _raw(optimizer: Any) -> torch.optim.Optimizer:
    inner: torch.optim.Optimizer = getattr(optimizer, "optimizer", optimizer)
    return inner


def _same_shapes(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


@torch.no_grad()
def _load_matching(module: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    own = module.state_dict()
    for key, tensor in state.items():
        if key in own and own[key].shape == tensor.shape:
            own[key].copy_(tensor)
