"""Non-adversarial baselines: a convolutional autoencoder and a VAE.

Both pair the DCGAN generator, used as the decoder, with a convolutional encoder
(the DCGAN discriminator's strided-conv stack followed by a linear layer to the
code). They differ in how they generate:

* ``autoencoder`` -- a deterministic code of size ``z_dim``. A Gaussian is fitted to
  the training codes (:class:`CodeStats`) and :class:`GaussianDecoder` maps
  z ~ N(0, I) through it, so ``landgan generate`` samples it like any generator.
* ``vae`` (Kingma & Welling 2014) -- the encoder gives a diagonal Gaussian posterior
  (mu, logvar) and the decoder is trained under a N(0, I) prior, so it generates
  from z ~ N(0, I) directly.

``build_*`` return ``(generator, encoder)``: the first is the z -> image network that
checkpoints store as ``G``/``G_ema``; the trainer (``landgan.train.autoencoder``)
knows the second is an encoder rather than a discriminator.
"""

from __future__ import annotations

import torch
from torch import nn

from landgan.models.dcgan import DCGANDiscriminator, DCGANGenerator, channel_plan, init_weights
from landgan.models.spec import NetArgs


def n_layers(resolution: int) -> int:
    """Doublings in the decoder (halvings in the encoder): 4 up to 64 px, 5 at 128 px."""
    return 4 if resolution <= 64 else 5


class Encoder(nn.Module):
    """image (N, 3, R, R) -> code (N, out_dim) through ``n_down`` strided convs + a linear."""

    def __init__(self, resolution: int, n_down: int, out_dim: int, width: int = 64):
        super().__init__()
        # The DCGAN discriminator's conv stack (stride-2 convs, BN, LeakyReLU 0.2) is
        # the encoder the report describes; only its one-logit head is replaced.
        self.body = DCGANDiscriminator(resolution, n_down, width).body
        final = resolution // 2**n_down
        channels = channel_plan(width, n_down)[0]  # the widest map, the stack's last
        self.head = nn.Linear(channels * final * final, out_dim)
        init_weights(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


class VAEEncoder(Encoder):
    """image -> (mu, logvar) of a diagonal Gaussian posterior over a ``z_dim`` latent."""

    def __init__(self, resolution: int, n_down: int, z_dim: int, width: int = 64):
        super().__init__(resolution, n_down, 2 * z_dim, width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = super().forward(x).chunk(2, dim=1)
        return mu, logvar


class CodeStats(nn.Module):
    """Running mean and covariance of codes, optionally exponentially forgetting.

    Batches are merged with Chan et al.'s parallel update (weighted means and the
    scatter of deviations), which stays accurate where ``E[zz^T] - mm^T`` would
    cancel. Before each batch the old statistics are down-weighted by ``decay``:
    1 gives the exact statistics of every code seen, less than 1 an exponential
    moving average whose early batches are not biased towards zero (the weights
    are normalised, as in Adam's bias correction). Sums are float64 buffers, so
    they travel with ``.to(device)`` and ``state_dict()``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("scatter", torch.zeros(dim, dim, dtype=torch.float64))

    @torch.no_grad()
    def update(self, codes: torch.Tensor, decay: float = 1.0) -> None:
        """Merge a batch of codes (N, dim), after scaling the old weight by ``decay``."""
        z = codes.detach().to(torch.float64)
        n = z.shape[0]
        batch_mean = z.mean(0)
        dev = z - batch_mean
        self.weight.mul_(decay)
        self.scatter.mul_(decay)
        total = self.weight + n
        delta = batch_mean - self.mean
        self.scatter.add_(dev.T @ dev).add_(torch.outer(delta, delta) * (self.weight * n / total))
        self.mean.add_(delta * (n / total))
        self.weight.copy_(total)

    def covariance(self) -> torch.Tensor:
        """The (biased, maximum-likelihood) covariance of the codes seen."""
        return self.scatter / self.weight.clamp_min(1e-12)

    def cholesky(self, ridge: float = 1e-4) -> torch.Tensor:
        """Cholesky factor of the covariance plus ``ridge`` x its mean variance.

        The ridge keeps the factor defined when fewer codes than dimensions have
        been seen or the codes collapse onto a subspace; being relative, it is
        equally small at any code scale.
        """
        cov = self.covariance()
        scale = cov.diagonal().mean().clamp_min(1e-12)
        eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        return torch.linalg.cholesky(cov + ridge * scale * eye)


class GaussianDecoder(nn.Module):
    """z ~ N(0, I) -> image: ``decoder(mean + z @ chol.T)``, i.e. codes ~ N(mean, chol chol^T).

    ``mean`` and ``chol`` are buffers, so they are saved with the weights and
    ``landgan generate`` needs nothing beyond the state dict. They start at zero and
    the identity (decode z itself) until :meth:`fit` sets them.
    """

    def __init__(self, decoder: nn.Module, z_dim: int):
        super().__init__()
        self.decoder, self.z_dim = decoder, z_dim
        self.register_buffer("mean", torch.zeros(z_dim))
        self.register_buffer("chol", torch.eye(z_dim))

    @torch.no_grad()
    def fit(self, stats: CodeStats) -> None:
        """Set the latent Gaussian from running code statistics (no-op before any code)."""
        if stats.weight > 0:
            self.mean.copy_(stats.mean)
            self.chol.copy_(stats.cholesky())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.mean + z @ self.chol.T)


def build_autoencoder(a: NetArgs) -> tuple[nn.Module, nn.Module]:
    """(GaussianDecoder around a DCGAN generator, Encoder to a ``z_dim`` code)."""
    n = n_layers(a.resolution)
    decoder = DCGANGenerator(a.resolution, n, a.z_dim, a.g_width)
    return GaussianDecoder(decoder, a.z_dim), Encoder(a.resolution, n, a.z_dim, a.d_width)


def build_vae(a: NetArgs) -> tuple[nn.Module, nn.Module]:
    """(DCGAN generator as the decoder, VAEEncoder giving mu and logvar)."""
    n = n_layers(a.resolution)
    return (
        DCGANGenerator(a.resolution, n, a.z_dim, a.g_width),
        VAEEncoder(a.resolution, n, a.z_dim, a.d_width),
    )
