"""Training: run folders, checkpoints, data feeding and the training loop."""

from __future__ import annotations

import importlib

# ModelSpec.trainer -> "module:Class". Every trainer takes ``(cfg, device, dist=None)``
# (``dist``: a landgan.train.distributed.Distributed, for torchrun runs) and offers
# ``train_step(source)`` (source: batch index -> real images NCHW in [-1, 1]),
# ``generate(z, ema)``, ``state_dict()``/``load_state_dict()`` and the counters
# ``step``/``nimg``. Its checkpoint's ``models["G_ema"]`` (or ``"G"``) is the
# z -> image network that ``landgan generate`` rebuilds with ``build_models``.
TRAINERS = {
    "gan": "landgan.train.gan:GANTrainer",
    "ae": "landgan.train.autoencoder:AETrainer",
    "stackgan": "landgan.train.stackgan:StackGANTrainer",
}


def get_trainer(kind: str):
    """The trainer class registered under ``kind`` (imported on first use)."""
    module, name = TRAINERS[kind].split(":")
    return getattr(importlib.import_module(module), name)
