"""Training: the trainer contract, one trainer per kind of step, data feeding and the loop.

Run folders and checkpoints are :mod:`landgan.checkpoint`'s; this package only uses them.
"""

from __future__ import annotations

from landgan.train.autoencoder import AETrainer
from landgan.train.base import Trainer
from landgan.train.fastgan import FastGANTrainer
from landgan.train.gan import GANTrainer
from landgan.train.stackgan import StackGANTrainer

# ModelSpec.trainer -> the Trainer subclass that fits that family. Every trainer takes
# ``(cfg, device, dist=None)`` (``dist``: a landgan.train.distributed.Distributed, for
# torchrun runs) and fulfils landgan.train.base.Trainer.
TRAINERS: dict[str, type[Trainer]] = {
    "gan": GANTrainer,
    "ae": AETrainer,
    "stackgan": StackGANTrainer,
    "fastgan": FastGANTrainer,
}


def get_trainer(kind: str) -> type[Trainer]:
    """The trainer class registered under ``kind``."""
    return TRAINERS[kind]
