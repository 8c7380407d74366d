"""What every trainer shares: latents, batch feeding, the EMA generator, sampling."""

from __future__ import annotations

from typing import Callable

import torch

Batch = Callable[[int], torch.Tensor]  # batch index -> real images NCHW in [-1, 1]


class TrainerBase:
    """Mixin for trainers that own ``cfg``, ``device``, ``G``, ``G_ema``, ``zgen``,
    and the counters ``nimg`` and ``batches``."""

    def sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.z_dim, generator=self.zgen).to(self.device)

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
