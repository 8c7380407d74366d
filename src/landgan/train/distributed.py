"""Training in several processes (``torchrun``): one global batch, split by rank.

``torchrun --nproc_per_node=K -m landgan train ...`` starts K copies of the command;
torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...)
tells each one its place. :func:`distributed_session` joins them into a process
group (NCCL on GPUs, gloo on CPU) and yields a :class:`Distributed` handle through
which the trainers and the loop do everything collective. Without torchrun the
handle is the single-process one and every method is a no-op, so one code path
serves both.

The design goal is that K processes on a global batch of B images compute what one
process computes on the same B images:

* ``--batch-size`` stays the global batch; each rank takes its B/K slice of the
  batch the step-indexed sampler draws (so resuming with another K draws the same
  batches), BatchNorm uses global statistics (:mod:`landgan.train.syncbn`), and
  latents are drawn for the whole batch from the shared latent generator, each rank
  keeping its rows.
* Gradients are averaged explicitly, once per optimizer step, by
  :meth:`Distributed.average_gradients` between ``backward`` and ``step``.
  DistributedDataParallel is not used: a GAN step calls D several times before one
  backward (real, fake, penalties), runs double backward for R1/GP and lets the
  balancer vary the number of D updates; DDP's reducer expects one forward per
  backward and a fixed graph (``static_graph``), and would average a gradient
  after each backward rather than per optimizer step. The networks here are small,
  so overlapping communication with backward, DDP's advantage, buys little.
* Noise that should differ between ranks (DiffAugment, dropout, the gradient
  penalty's mixing weights) comes from torch's global generator, seeded per rank.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from landgan.errors import UserError
from landgan.train.syncbn import convert_sync_batchnorm

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run; ``world == 1`` is plain single-process training."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # for collectives

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files or prints."""
        return self.rank == 0

    def check_batch(self, batch_size: int) -> None:
        """``--batch-size`` is global: each process must get an equal, non-empty share."""
        if batch_size % self.world:
            raise UserError(
                f"--batch-size {batch_size} is the global batch and must be divisible "
                f"by the {self.world} processes; use e.g. "
                f"{max(1, batch_size // self.world) * self.world}"
            )

    def sync_batchnorm(self, net: nn.Module) -> nn.Module:
        """``net`` with global-batch BatchNorm when several processes share a batch."""
        return convert_sync_batchnorm(net) if self.world > 1 else net

    def _flags(self, flags: list[bool], op) -> list[bool]:
        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=op)
        return [bool(v) for v in t.tolist()]

    def any_true(self, *flags: bool) -> list[bool]:
        """Each flag, true if it is true on any process (so all take the same branch)."""
        return list(flags) if self.world == 1 else self._flags(list(flags), dist.ReduceOp.MAX)

    def all_true(self, flag: bool) -> bool:
        """True only if ``flag`` is true on every process."""
        return flag if self.world == 1 else self._flags([flag], dist.ReduceOp.MIN)[0]

    @torch.no_grad()
    def average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Replace each gradient of ``optimizer``'s parameters by its mean over processes.

        All gradients go in one flat buffer per dtype: one all-reduce per update
        instead of one per tensor. Every process has the same parameters with
        gradients, because every process runs the same graph.
        """
        if self.world == 1:
            return
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        for dtype in sorted({g.dtype for g in grads}, key=str):
            same = [g for g in grads if g.dtype == dtype]
            flat = torch.cat([g.reshape(-1) for g in same]).to(self.device)
            dist.all_reduce(flat)
            flat /= self.world
            for g, part in zip(same, flat.split([g.numel() for g in same])):
                g.copy_(part.view(g.shape))

    def mean_stats(self, stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logged scalars averaged over processes (each rank saw only its share)."""
        if self.world == 1 or not stats:
            return stats
        keys = sorted(stats)
        t = torch.stack(
            [
                torch.as_tensor(stats[k], dtype=torch.float32).reshape(()).to(self.device)
                for k in keys
            ]
        )
        dist.all_reduce(t)
        return dict(zip(keys, (t / self.world).cpu().unbind()))

    @torch.no_grad()
    def gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Every process's ``t`` (same shape on all) concatenated in rank order."""
        if self.world == 1:
            return t
        parts = [torch.empty_like(t, device=self.device) for _ in range(self.world)]
        dist.all_gather(parts, t.to(self.device).contiguous())
        return torch.cat(parts).to(t.device)

    def gather_uneven(self, t: torch.Tensor, total: int) -> torch.Tensor:
        """All ``total`` rows, given this process's rows of its :meth:`share`.

        Shares are contiguous blocks of ceil(total / world) rows, only the last ones
        short, so padding each to the full block and concatenating puts every row at
        its own index and all padding after the ``total``-th row.
        """
        padded = t.new_zeros((-(-total // self.world), *t.shape[1:]))
        padded[: len(t)] = t
        return self.gather_rows(padded)[:total]

    def share(self, total: int) -> slice:
        """This process's contiguous slice of ``total`` items (the last ones may be short)."""
        size = -(-total // self.world)
        return slice(min(self.rank * size, total), min((self.rank + 1) * size, total))

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every process (a picklable Python object)."""
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def gather_to_main(self, obj: T) -> list[T] | None:
        """Every process's ``obj`` on rank 0 (in rank order); None elsewhere."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def run_on_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` on rank 0 only; its result, or its UserError, reaches every process.

        Without this, a user error on rank 0 (say, a full disk) would leave the other
        processes waiting in their next collective until torchrun tore them down.
        """
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except UserError as e:
                error = str(e)
        result, error = self.broadcast((result, error))
        if error is not None:
            raise UserError(error)
        return result

    def seed_noise(self, seed: int, step: int, saved: list | None) -> None:
        """Give each rank its own stream in torch's global generator.

        Rank 0 keeps the stream a single process would have (fresh, or the
        checkpoint's); other ranks restore their saved streams when the process
        count is unchanged, so a resumed run continues exactly, and otherwise
        start streams derived from (seed, rank, step).
        """
        if self.world == 1:
            return
        if saved is not None and len(saved) == self.world:
            torch.set_rng_state(saved[self.rank])
        elif self.rank > 0:
            torch.manual_seed(((seed * 1_000_003 + step) * 1_009 + self.rank) % 2**63)


def _device_for_rank(device: torch.device, local_rank: int) -> torch.device:
    """The device this process trains on: ``cuda`` means ``cuda:LOCAL_RANK``."""
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UserError(f"--device {device}: training with torchrun supports cpu and cuda")
    if device.index is not None:
        raise UserError(
            f"--device {device}: with torchrun pass --device cuda; each process "
            "takes the GPU of its LOCAL_RANK"
        )
    if local_rank >= torch.cuda.device_count():
        raise UserError(
            f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs "
            "here; give torchrun --nproc_per_node at most the number of GPUs"
        )
    return torch.device("cuda", local_rank)


def launched_world_size() -> int:
    """How many processes torchrun started for this run (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def distributed_session(device: torch.device) -> Iterator[tuple[Distributed, torch.device]]:
    """Join torchrun's process group (if launched by it) for the body; yield (handle, device).

    A process group that already exists (a caller's own launcher) is used and left
    open; one created here is destroyed on the way out.
    """
    world = launched_world_size()
    owned = False
    if not (dist.is_available() and dist.is_initialized()):
        if world <= 1:
            yield Distributed(device=device), device
            return
        device = _device_for_rank(device, int(os.environ.get("LOCAL_RANK", "0")))
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL and the object collectives need it
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owned = True
    elif device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    try:
        handle = Distributed(
            dist.get_rank(),
            dist.get_world_size(),
            device if dist.get_backend() == "nccl" else torch.device("cpu"),
        )
        yield handle, device
        if owned:  # gloo aborts a process whose peer closes its sockets mid-message: meet first
            dist.barrier()
    finally:
        if owned:
            dist.destroy_process_group()
