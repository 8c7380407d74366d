"""GAN objectives as pure functions of discriminator logits.

Each entry of :data:`LOSSES` is a pair ``(d_loss(real, fake), g_loss(fake))`` taking
the raw discriminator outputs; none of them applies a sigmoid first, so the
cross-entropy stays finite however confident the discriminator becomes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the report's DCGAN: -log D(x) - log(1 - D(G(z)))."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def bce_g(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z)) (Goodfellow 2014, section 3)."""
    return F.softplus(-fake).mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss of SNGAN / SAGAN for the discriminator."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    """Hinge-GAN generator loss: raise the critic's score of fakes."""
    return -fake.mean()


def wasserstein_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic loss of WGAN (the report's eq. 4 with labels -1 real, +1 fake)."""
    return fake.mean() - real.mean()


def wasserstein_g(fake: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss."""
    return -fake.mean()


def condition_kl(logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """KL(c || softmax(logits)), batch mean: how far a predicted condition is from ``c``.

    ``c`` is a class one-hot or a composition's fractions (rows are renormalised to sum
    to 1). Zero exactly when the prediction equals ``c``; unlike cross-entropy it does not
    count the composition's own entropy, so its logged value reads as an error. A layout
    head's logits (N, cells, K) are scored cell by cell (``c`` flattened (N, cells * K)),
    the mean over batch and cells.
    """
    c = c.float().reshape(logits.shape)
    c = c / c.sum(-1, keepdim=True).clamp_min(1e-12)
    log_p = F.log_softmax(logits.float(), -1)
    return (torch.xlogy(c, c) - c * log_p).sum(-1).mean()


LOSSES = {
    "bce": (bce_d, bce_g),
    "hinge": (hinge_d, hinge_g),
    "wasserstein": (wasserstein_d, wasserstein_g),
}
