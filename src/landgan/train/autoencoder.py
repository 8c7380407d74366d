"""The reconstruction training step for the non-adversarial baselines.

One class trains both models of :mod:`landgan.models.autoencoder`:

* ``autoencoder`` -- minimises the per-element mean squared error between images
  in [-1, 1] and their reconstructions, and keeps running statistics of the codes
  so that generation can sample a Gaussian fitted to them.
* ``vae`` -- minimises the negative ELBO per image with beta = 1: a Gaussian
  decoder of fixed per-pixel variance :data:`PIXEL_VAR` on [-1, 1] images (so the
  reconstruction term is the per-pixel *sum* of squared errors / (2 PIXEL_VAR)),
  plus the KL divergence of the posterior from N(0, I) summed over latent
  dimensions. Summing both terms over their dimensions keeps them on the scale the
  ELBO weighs them at; a per-element mean against a summed KL would inflate the KL
  3*R*R-fold and collapse the posterior.

It fulfils the :class:`~landgan.train.base.Trainer` contract and shares its setup
(the encoder E takes the discriminator's place) and its EMA copy of the generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from landgan.models.autoencoder import CodeStats, GaussianDecoder, VAEEncoder
from landgan.train.base import Batch, Trainer
from landgan.train.distributed import Distributed
from landgan.train.gan import make_optimizer

# Fixed decoder variance of the VAE on [-1, 1] pixels. 1/2 makes the reconstruction
# term the plain sum of squared errors (sigma ~ 0.71, about a third of the pixel
# range): blurrier than a smaller variance, but prior samples stay on the data
# manifold instead of falling into holes between posterior modes.
PIXEL_VAR = 0.5


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def code_decay(cfg, batch: int) -> float:
    """How much the code statistics keep per batch: a half-life of ``ema_kimg`` kimg.

    The same horizon as G_ema's, so the fitted Gaussian describes the codes of
    roughly the encoders that G_ema's decoder averages over. Unlike G_ema there is
    no ramp-up: a z_dim-dimensional covariance needs many more than z_dim codes,
    and the normalised weights of :class:`CodeStats` already avoid start-up bias.
    """
    return 0.5 ** (batch / max(cfg.ema_kimg * 1000, 1e-8))


class AETrainer(Trainer):
    """Owns the decoder G, its EMA copy G_ema, the encoder E, one optimiser and the RNG."""

    def __init__(self, cfg, device: torch.device, dist: Distributed | None = None):
        self.E = self.setup(cfg, device, dist)
        self.variational = isinstance(self.E, VAEEncoder)
        # The autoencoder's G wraps the decoder in the fitted Gaussian; training
        # feeds codes to the decoder itself.
        self.decoder = self.G.decoder if isinstance(self.G, GaussianDecoder) else self.G
        self.opt = make_optimizer(cfg, [*self.E.parameters(), *self.decoder.parameters()], cfg.lr_g)
        # Reparameterisation noise comes from the shared latent generator ``zgen``.
        self.codes = CodeStats(cfg.z_dim).to(device)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "E": self.E, "G_ema": self.G_ema}

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, str]]:
        return {"AE": (self.opt, "lr_g")}

    def _vae_loss(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(objective, reconstruction, stats): the negative ELBO per image, beta = 1."""
        mu, logvar = self.E(real)
        eps = self.shared_randn(mu.shape[0], *mu.shape[1:])
        recon = self.decoder(mu + (0.5 * logvar).exp() * eps)
        nll = (recon - real).pow(2).flatten(1).sum(1) / (2 * PIXEL_VAR)
        kl = kl_divergence(mu, logvar)
        return (
            (nll + kl).mean(),
            recon,
            {"loss/kl": kl.detach().mean(), "loss/nelbo": (nll + kl).detach().mean()},
        )

    def _ae_loss(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(objective, reconstruction, stats): the mean squared error; records the codes."""
        code = self.E(real)
        recon = self.decoder(code)
        # Every process folds in the codes of the whole global batch, so the fitted
        # Gaussian is the same everywhere and the same as a single process's.
        codes = self.dist.gather_rows(code.detach())
        self.codes.update(codes, code_decay(self.cfg, codes.shape[0]))
        return F.mse_loss(recon, real), recon, {}

    def train_step(self, source: Batch) -> dict[str, torch.Tensor]:
        """One encoder + decoder update on a fresh real batch from ``source``."""
        real = self._next_real(source)
        loss, recon, stats = (self._vae_loss if self.variational else self._ae_loss)(real)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_gradients(self.opt)
        self.opt.step()
        self.step += 1
        n = real.shape[0] * self.dist.world  # images of the global batch
        self.nimg += n
        self.update_ema(n)
        # loss/recon is the per-element MSE for both models, so they compare directly.
        return {"loss/recon": F.mse_loss(recon.detach(), real), **stats}

    @torch.no_grad()
    def fit_latents(self) -> None:
        """Refresh the autoencoder's latent Gaussian in G and G_ema from the code statistics.

        Only generation reads it, so it is refitted on demand (before each sample
        grid and checkpoint) rather than paying a Cholesky factorisation every step.
        """
        if not self.variational:
            self.G.fit(self.codes)
            self.G_ema.fit(self.codes)

    def generate(self, z: torch.Tensor, ema: bool = True, c=None) -> torch.Tensor:
        """Images in [-1, 1] for latents ``z`` ~ N(0, I) from G_ema (eval mode) or G."""
        self.fit_latents()
        return super().generate(z, ema, c)

    def state_dict(self) -> dict:
        """Everything resuming needs; G and G_ema carry a freshly fitted latent Gaussian."""
        self.fit_latents()
        return {
            "models": {
                "G": self.G.state_dict(),
                "E": self.E.state_dict(),
                "G_ema": self.G_ema.state_dict(),
            },
            "optims": {"AE": self.opt.state_dict()},
            "codes": self.codes.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "z": self.zgen.get_state()},
            "counters": {"step": self.step, "nimg": self.nimg, "batches": self.batches},
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        m = state["models"]
        self.G.load_state_dict(m["G"])
        self.E.load_state_dict(m["E"])
        self.G_ema.load_state_dict(m["G_ema"])
        self.opt.load_state_dict(state["optims"]["AE"])
        self.codes.load_state_dict(state["codes"])
        torch.set_rng_state(state["rng"]["torch"])
        self.zgen.set_state(state["rng"]["z"])
        c = state["counters"]
        self.step, self.nimg, self.batches = int(c["step"]), int(c["nimg"]), int(c["batches"])
