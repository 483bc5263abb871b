"""Performance tweaks of the loop, kept apart so that the loop reads as the algorithm.

None of these change the math: each one is a cheaper way to make the same calls (see
docs/benchmarks.md for what each saved).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from gancore._errors import TrainingError

__all__ = ["GradsOff", "compiled", "direct_calls", "explained", "frozen", "set_grad"]


def set_grad(params: Sequence[nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


class GradsOff:
    """Within: ``requires_grad`` off for ``params`` (the players that are not being updated).

    On one process this is all "freezing the other player" needs; a class rather than an
    ``ExitStack`` because entering it is on every step's path.
    """

    def __init__(self, params: Sequence[nn.Parameter]) -> None:
        self.params = params

    def __enter__(self) -> None:
        set_grad(self.params, False)

    def __exit__(self, *exc: object) -> None:
        set_grad(self.params, True)


def frozen(
    accelerator: Any, wrapped: Sequence[nn.Module], params: Sequence[nn.Parameter]
) -> contextlib.AbstractContextManager[Any]:
    """No gradients into, and no all-reduce for, the players that are not being updated."""
    if accelerator.num_processes == 1:  # nothing to all-reduce: only switch the gradients off
        return GradsOff(params)
    stack = contextlib.ExitStack()
    for module in wrapped:
        stack.enter_context(accelerator.no_sync(module))
    set_grad(params, False)
    stack.callback(set_grad, params, True)
    return stack


def direct_calls(
    accelerator: Any, optimizers: Mapping[str, Any]
) -> tuple[dict[str, Any], Callable[[torch.Tensor], None]]:
    """The optimizers to ``zero_grad``/``step`` and the ``backward`` the loop calls.

    Accelerate's wrappers cost more than a small model's whole step: ``AcceleratedOptimizer.step``
    looks for an optional package on disk (importlib ``find_spec``) twice per call, ``zero_grad``
    inspects a signature, ``backward`` divides the loss by 1. Where they add nothing (no loss
    scaler, no gradient accumulation, one process or DDP) the loop calls torch directly; the
    wrapped optimizers still serve ``state_dict``/``load_state_dict``. The math is the same.
    """
    from accelerate.utils import DistributedType

    plain = (
        getattr(accelerator, "scaler", None) is None
        and accelerator.gradient_accumulation_steps == 1
        and accelerator.distributed_type
        in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
        and all(hasattr(opt, "optimizer") for opt in optimizers.values())
    )
    if not plain:
        return dict(optimizers), accelerator.backward

    def backward(loss: torch.Tensor) -> None:
        loss.backward()

    return {name: opt.optimizer for name, opt in optimizers.items()}, backward


def compiled(modules: Mapping[str, nn.Module], mode: bool | str) -> dict[str, Callable[..., Any]]:
    """``torch.compile`` of each module (``mode`` True means torch's default mode); a failure to
    compile is a one-line :class:`TrainingError`."""
    chosen = None if mode is True or mode == "default" else str(mode)
    out: dict[str, Callable[..., Any]] = {}
    for name, module in modules.items():
        compiled_module = torch.compile(module, mode=chosen)

        def call(
            *args: Any, _compiled: Any = compiled_module, _name: str = name, **kwargs: Any
        ) -> Any:
            try:
                return _compiled(*args, **kwargs)
            except Exception as exc:
                if _is_compile_error(exc):
                    raise TrainingError(_compile_message(f"compiling {_name!r}", exc)) from exc
                raise

        out[name] = call
    return out


def explained(backward: Callable[[torch.Tensor], None]) -> Callable[[torch.Tensor], None]:
    """``backward`` whose torch.compile failures are one-line :class:`TrainingError` s."""

    def call(loss: torch.Tensor) -> None:
        try:
            backward(loss)
        except Exception as exc:
            if _is_compile_error(exc):
                raise TrainingError(_compile_message("the backward pass", exc)) from exc
            raise

    return call


def _is_compile_error(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor")) or "double backward" in str(exc)


def _compile_message(what: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip()), type(exc).__name__)
    if "double backward" in str(exc):
        return (
            "training.compile: torch.compile cannot differentiate through a gradient (double "
            "backward), which an every-step gradient penalty such as R1 or WGAN-GP needs; set "
            "training.compile = false, or run the penalty lazily (interval > 1)"
        )
    return (
        f"training.compile: {what} failed ({type(exc).__name__}: {first[:300]}); "
        "set training.compile = false"
    )
