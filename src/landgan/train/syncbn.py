"""BatchNorm whose batch statistics span every process of a distributed run.

With ``torchrun`` each process sees only its share of the global batch. Plain
BatchNorm would then normalise with per-share statistics, so a K-process run would
train a different model from one process on the same global batch. This layer
combines the per-process statistics, which makes the forward pass, the gradients and
the running statistics those of the global batch.

Why not :class:`torch.nn.SyncBatchNorm`: in torch 2.13 it accepts GPU inputs only
(CPU runs on gloo are first-class here), and its backward is not differentiable, so
R1 and the gradient penalty (double backward through D) could not use it. This one
is built from differentiable operations and an all-reduce whose backward is again
an all-reduce (:class:`AllReduceSum`), so both restrictions disappear, on gloo and
NCCL alike, at the price of a few unfused element-wise kernels.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class AllReduceSum(torch.autograd.Function):
    """Sum of a tensor over all processes, differentiable to any order.

    If every process's loss depends on the sum, the gradient reaching each input is
    the sum of every process's gradient of the output: an all-reduce again. The
    backward calls this Function itself, so double backward (R1, GP) works.
    (``torch.distributed.nn.functional.all_reduce`` does the same but is deprecated
    in torch 2.13, and its suggested replacement has no autograd.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return AllReduceSum.apply(grad)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """:class:`~torch.nn.BatchNorm2d` with statistics over all processes in training mode.

    Same parameters, buffers and state_dict keys as BatchNorm2d, so checkpoints stay
    interchangeable with single-process runs. In eval mode, or without an initialised
    process group, it is exactly BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        ):
            return super().forward(x)
        self._check_input_dim(x)
        mean, var, count = self._global_moments(x.float())
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach(), count)
        shape = (1, -1, 1, 1)
        y = (x.float() - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    def _global_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(mean, biased variance, element count) per channel over all processes.

        Each process contributes (count, mean, count * variance) of its share; the
        shares are combined with Chan's parallel formula, which stays accurate where
        E[x^2] - E[x]^2 would cancel. The table is filled one row per process and
        summed, so a single all-reduce works as a differentiable all-gather.
        """
        world, rank = dist.get_world_size(), dist.get_rank()
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        n = float(x.numel() // x.shape[1])
        row = torch.cat([mean.new_full((1,), n), mean, var * n])
        table = torch.stack([row if r == rank else torch.zeros_like(row) for r in range(world)])
        table = AllReduceSum.apply(table)
        c = self.num_features
        counts, means, m2 = table[:, :1], table[:, 1 : c + 1], table[:, c + 1 :]
        total = counts.sum()
        g_mean = (counts * means).sum(0) / total
        g_var = (m2.sum(0) + (counts * (means - g_mean) ** 2).sum(0)) / total
        return g_mean, g_var, float(total.detach())

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        """BatchNorm's running-statistics update, with the global count for unbiasing."""
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average, as BatchNorm does
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = var * (count / max(count - 1.0, 1.0))
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` by :class:`SyncBatchNorm2d`, in place.

    The new layers share the old layers' parameter and buffer tensors, so optimisers
    and other references built before the conversion stay valid.
    """
    if type(module) is nn.BatchNorm2d:
        sync = SyncBatchNorm2d(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        for name, p in module.named_parameters(recurse=False):
            setattr(sync, name, p)
        for name, b in module.named_buffers(recurse=False):
            setattr(sync, name, b)
        sync.train(module.training)
        return sync
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batchnorm(child))
    return module
