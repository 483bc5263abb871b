"""Batch norm over the global batch: the statistics of every process's share, not of its own.

With data parallelism each process normalizes its share of the batch. Plain batch norm then
computes statistics over ``batch / processes`` samples, so several processes train a different
model than one (different normalization, and running statistics that differ per process).
Synchronized batch norm (Ioffe & Szegedy 2015 define the statistics over the mini-batch; the
synchronized form is that of Peng et al. 2018, "MegDet") all-reduces them first. torch's
``nn.SyncBatchNorm`` runs only on GPUs; :class:`SyncBatchNorm` here runs wherever
``torch.distributed`` does (gloo on CPUs), and the loop uses torch's on CUDA.

Two passes, both all-reduced and differentiable (``torch.distributed.nn.functional.all_reduce``):
the global mean from the summed ``sum(x)`` and count, then the global biased variance from the
summed ``sum((x - mean)^2)``; the gradient of every process's loss reaches every process's input
through the backward of the all-reduce. Running statistics use the unbiased variance, as
``nn.BatchNorm`` does. State dict keys are those of ``nn.BatchNorm*``, so checkpoints move between
synchronized and plain runs.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm", "has_batchnorm"]


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """``nn.BatchNorm1d/2d/3d`` with statistics over all processes in training mode."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2-D input (got {input.dim()}-D)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and _world() > 1):
            return super().forward(input)  # eval, or one process: plain batch norm
        from torch.distributed.nn.functional import all_reduce

        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, input.shape[1]] + [1] * (input.dim() - 2)
        local_count = input.new_tensor([input.numel() // input.shape[1]], dtype=torch.float64)
        count = all_reduce(local_count.clone())  # float64: exact for any realistic batch
        mean = all_reduce(input.sum(dims)) / count.to(input.dtype)
        centred = input - mean.view(shape)
        var = all_reduce(centred.square().sum(dims)) / count.to(input.dtype)
        if self.track_running_stats and self.running_mean is not None:
            self._update_running(mean.detach(), var.detach(), float(count.item()))
        out = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        running_mean, running_var = self.running_mean, self.running_var
        tracked = self.num_batches_tracked
        if running_mean is None or running_var is None or tracked is None:
            return
        tracked.add_(1)
        momentum = self.momentum
        if momentum is None:  # a cumulative average, as nn.BatchNorm does
            momentum = 1.0 / float(tracked)
        unbiased = var * (count / max(count - 1.0, 1.0))
        running_mean.lerp_(mean.to(running_mean.dtype), momentum)
        running_var.lerp_(unbiased.to(running_var.dtype), momentum)


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def has_batchnorm(module: nn.Module) -> bool:
    """Whether ``module`` holds a batch norm layer."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def convert_sync_batchnorm(module: nn.Module, cuda: bool) -> nn.Module:
    """``module`` with every batch norm layer synchronized over processes: torch's
    ``nn.SyncBatchNorm`` on CUDA, :class:`SyncBatchNorm` elsewhere. Parameters are the same
    objects (optimizers built before stay valid); buffers are copied."""
    if cuda:
        converted: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return converted
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, SyncBatchNorm
    ):
        sync = SyncBatchNorm(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
        if module.affine:
            sync.weight, sync.bias = module.weight, module.bias
        sync.running_mean = module.running_mean
        sync.running_var = module.running_var
        sync.num_batches_tracked = module.num_batches_tracked
        sync.train(module.training)
        return sync
    for name, child in module.named_children():
        module.add_module(name, _convert(child))
    return module
