"""StackGAN stage-II training: the GAN step with a frozen, pre-trained stage I.

Everything adversarial (loss, penalties, DiffAugment, balancer, EMA, checkpoint
layout) is :class:`~landgan.train.gan.GANTrainer`'s. What differs is set up here:
stage I's trained weights go into G and G_ema, and G's optimiser holds stage II's
parameters only. The discriminator sees real images at the full 128/256 px.
"""

from __future__ import annotations

import torch

from landgan.errors import UserError
from landgan.models.stackgan import RESOLUTIONS, check_stage1_config
from landgan.sampling import load_generator
from landgan.train.gan import GANTrainer, make_optimizer


def load_stage1(cfg) -> tuple[torch.nn.Module, dict]:
    """(stage I's EMA generator, its config dict) from ``cfg.stage1``, or a UserError."""
    # Checked here too so a wrong size is reported before a missing --stage1 is.
    if cfg.resolution not in RESOLUTIONS:
        raise UserError(
            f"model stackgan does not support {cfg.resolution} px; "
            f"it supports: {', '.join(map(str, RESOLUTIONS))}"
        )
    if not cfg.stage1:
        raise UserError(
            "--model stackgan needs --stage1 CKPT: the checkpoint or run folder "
            "of a trained 64 px generator (e.g. --model dcgan4 --resolution 64)"
        )
    stage1, stage1_cfg = load_generator(cfg.stage1, "cpu", ema=True)
    check_stage1_config(stage1_cfg.to_dict(), cfg.z_dim, cfg.stage1)
    return stage1, stage1_cfg.to_dict()


class StackGANTrainer(GANTrainer):
    """GANTrainer whose G is ``StackedGenerator`` (stage I frozen, stage II trained)."""

    def __init__(self, cfg, device: torch.device, dist=None):
        # Stage I is read once, here, before GANTrainer seeds torch (its own loading
        # draws no training RNG) and so that a bad --stage1 fails before anything is built.
        stage1, stage1_config = load_stage1(cfg)
        super().__init__(cfg, device, dist, stage1=stage1, stage1_config=stage1_config)
        # G_ema is a deep copy of G: each holds its own frozen copy of stage I.
        # GANTrainer's optimiser was built over all of G; stage I must not move.
        self.opt_g = make_optimizer(cfg, self.G.stage2.parameters(), cfg.lr_g)
