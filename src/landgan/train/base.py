"""What every trainer shares: latents, batch feeding, the EMA generator, sampling."""

from __future__ import annotations

from typing import Callable

import torch

Batch = Callable[[int], torch.Tensor]  # batch index -> real images NCHW in [-1, 1]


class TrainerBase:
    """Mixin for trainers that own ``cfg``, ``device``, ``G``, ``G_ema``, ``zgen``, ``dist``
    (a :class:`~landgan.train.distributed.Distributed`) and the counters ``nimg`` and
    ``batches``."""

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
        return z[rank * n:(rank + 1) * n].to(self.device)

    def _next_real(self, source: Batch) -> torch.Tensor:
        real = source(self.batches)
        self.batches += 1
        return real.contiguous(memory_format=getattr(self, "layout", torch.channels_last))

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
    def generate(self, z: torch.Tensor, ema: bool = True,
                 c: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] for latents ``z`` (and conditions ``c``) from G_ema or G."""
        net = self.G_ema if ema else self.G
        was_training = net.training
        net.eval()
        extra = () if c is None else (c.to(self.device),)
        out = net(z.to(self.device), *extra)
        net.train(was_training)
        return out
