"""The trainer contract: what the loop, the guard, checkpoints and the evaluator may call.

Every model family's trainer is a :class:`Trainer`. The rest of ``train/`` touches a
trainer only through this class's names:

* the loop: :meth:`~Trainer.train_step`, :meth:`~Trainer.set_condition_source`,
  :meth:`~Trainer.generate` (sample grids) and the counters ``step``/``nimg``;
* the divergence guard: :meth:`~Trainer.networks` and :meth:`~Trainer.optimizers`
  (networks and optimisers by role, never by attribute name);
* checkpoints: :meth:`~Trainer.state_dict`/:meth:`~Trainer.load_state_dict`, whose
  ``models`` entry holds ``G``/``G_ema``, the z -> image network that
  :func:`landgan.sampling.load_generator` rebuilds;
* the evaluator: :meth:`~Trainer.generate`.

:meth:`Trainer.setup` is the construction every family shares (seeding, building the
networks, synced BatchNorm, memory layout, G_ema, the latent generator), so a new
family whose step is the GAN step needs no trainer of its own at all.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Callable

import torch
from torch import nn

from landgan.models import build_models
from landgan.train.distributed import Distributed

Batch = Callable[[int], torch.Tensor]  # batch index -> real images NCHW in [-1, 1]


class Trainer(ABC):
    """Owns one model family's networks, optimisers and RNG; knows one training step."""

    cfg: object  # the TrainConfig
    device: torch.device
    dist: Distributed
    G: nn.Module  # the generator being trained (z -> image)
    G_ema: nn.Module  # its exponential moving average, what sampling uses
    step: int  # generator steps taken
    nimg: int  # real images shown so far (the global batch counted)
    batches: int  # real batches drawn so far

    @abstractmethod
    def train_step(self, source: Batch) -> dict[str, torch.Tensor]:
        """One training step on fresh real batches from ``source``; scalar stats by name."""

    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """Every network by role ("G", "G_ema", "D" or "E"): what must stay finite."""

    @abstractmethod
    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, str]]:
        """Role -> (optimiser, the TrainConfig field holding its learning rate)."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything an exact resume needs: models, optims, rng, counters, step."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Return to a state from :meth:`state_dict`."""

    def set_condition_source(self, source: Batch | None) -> None:
        """Batch index -> condition vectors (N, K) of that real batch (conditional runs)."""
        self.cond_source = source

    def setup(self, cfg, device: torch.device, dist: Distributed | None, **net_extra) -> nn.Module:
        """The shared construction; sets G and G_ema; returns the second network
        (D or the encoder) on ``device``.

        ``net_extra`` goes to the model builder (StackGAN's stage I).
        """
        self.cfg, self.device = cfg, device
        self.dist = dist or Distributed()
        torch.manual_seed(cfg.seed)  # the same initial weights in every process
        nets = build_models(cfg.model, cfg.net_args(**net_extra), cfg.sn)
        g, other = map(self.dist.sync_batchnorm, nets)
        # Channels-last is the faster convolution layout on CPU and on tensor cores.
        self.layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G = g.to(device, memory_format=self.layout)
        other = other.to(device, memory_format=self.layout)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # Latents come from their own generator so that sampling grids or evaluating
        # never shifts the sequence training sees (exact resume depends on it).
        self.zgen = torch.Generator().manual_seed(cfg.seed + 1)
        self.step = self.nimg = self.batches = 0
        self.cond_source: Batch | None = None
        return other

    def sample_z(self, n: int) -> torch.Tensor:
        """``n`` latents for this process's share of the batch."""
        return self.shared_randn(n, self.cfg.z_dim)

    def shared_randn(self, n: int, *shape: int) -> torch.Tensor:
        """This process's ``n`` rows of a normal draw made for the whole global batch.

        Every process draws all ``n * world`` rows from the same latent generator and
        keeps its own, so K processes see exactly the latents one process would, and
        the generator's state, saved in checkpoints, does not depend on K.
        """
        rank, world = self.dist.rank, self.dist.world
        z = torch.randn(n * world, *shape, generator=self.zgen)
        return z[rank * n : (rank + 1) * n].to(self.device)

    def _next_real(self, source: Batch) -> torch.Tensor:
        real = source(self.batches)
        self.batches += 1
        return real.contiguous(memory_format=self.layout)

    @torch.no_grad()
    def update_ema(self, batch: int) -> None:
        """G_ema <- lerp towards G with a half-life of ``ema_kimg`` thousand images."""
        half_life = self.cfg.ema_kimg * 1000
        if self.cfg.ema_rampup > 0:
            half_life = min(half_life, self.nimg * self.cfg.ema_rampup)
        beta = 0.5 ** (batch / max(half_life, 1e-8))
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, ema: bool = True, c: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Images in [-1, 1] for latents ``z`` (and conditions ``c``) from G_ema or G."""
        net = self.G_ema if ema else self.G
        was_training = net.training
        net.eval()
        extra = () if c is None else (c.to(self.device),)
        out = net(z.to(self.device), *extra)
        net.train(was_training)
        return out
