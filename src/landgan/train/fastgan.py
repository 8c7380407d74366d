"""FastGAN's training step: the GAN step plus D's self-supervised reconstruction.

Everything else (hinge loss from the model's defaults, DiffAugment, EMA, R1, the
balancer, conditioning, checkpoints) is :class:`~landgan.train.gan.GANTrainer`'s. What
differs is how D judges a real batch: with
:meth:`~landgan.models.fastgan.FastGANDiscriminator.real_scores_and_recon_loss`, whose
L1 reconstruction of the (augmented) real image and of a random quarter of it is added
to D's loss (with the condition head's loss of the same pass, in a conditional run with
``--cond-aux``). Fakes are judged as usual and never reconstructed, so D cannot learn to
tell them apart by how well they decode. The quarter is drawn from torch's global RNG,
which every checkpoint saves, so a resumed run continues exactly.
"""

from __future__ import annotations

import torch

from landgan.train.gan import GANTrainer


class FastGANTrainer(GANTrainer):
    """GANTrainer whose discriminator also reconstructs the real images it sees."""

    def _d_real(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, prediction, recon = self.D.real_scores_and_recon_loss(x, *self._c())
        extra = {"recon": recon.float()}
        if self._predicts():
            extra.update(self._cond_loss(prediction))
        return logits, extra
