"""Feeding training batches: the data source and a step-indexed sampler."""

from __future__ import annotations

import numpy as np
import torch

from landgan.data.dataset import ImageDataset, open_dataset
from landgan.data.synthetic import make_synthetic_dataset
from landgan.errors import UserError


def load_training_data(cfg) -> ImageDataset:
    """The dataset named by ``cfg.data``, checked against ``cfg.resolution``."""
    if cfg.data == "synthetic":
        if cfg.synthetic_count < cfg.batch_size:  # before seconds of rendering
            raise UserError(
                f"--synthetic-count {cfg.synthetic_count} is fewer images than the "
                f"batch size {cfg.batch_size}; pass a smaller --batch-size"
            )
        return make_synthetic_dataset(cfg.synthetic_count, cfg.resolution, seed=cfg.seed)
    ds = open_dataset(cfg.data)
    if ds.resolution != cfg.resolution:
        raise UserError(
            f"dataset {cfg.data} holds {ds.resolution} px images but --resolution is "
            f"{cfg.resolution}; pass --resolution {ds.resolution} or prepare the data "
            f"at {cfg.resolution} px"
        )
    if len(ds) < cfg.batch_size:
        raise UserError(
            f"dataset {cfg.data} has {len(ds)} images, fewer than the batch size "
            f"{cfg.batch_size}; pass a smaller --batch-size"
        )
    return ds


class StepSampler:
    """Batch indices as a pure function of the step number.

    Each epoch is a fresh permutation seeded by (seed, epoch), so resuming at step
    ``s`` needs no sampler state and draws exactly the batches an uninterrupted run
    would have drawn. Indices within a batch are sorted, which keeps reads from a
    memory-mapped dataset sequential-ish; order within a batch does not matter.
    ``batch_size`` is the global batch; ``rank`` of ``world`` processes gets its
    contiguous slice of it, so the global batch of a step never depends on ``world``.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if n < batch_size:
            raise UserError(f"dataset has {n} images, fewer than the batch size {batch_size}")
        self.n, self.batch, self.seed = n, batch_size, seed
        self.rank, self.world = rank, world
        self.per_epoch = n // batch_size  # drop the ragged last batch
        self._epoch, self._perm = -1, None

    def indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n, generator=g).numpy()
            self._epoch = epoch
        idx = np.sort(self._perm[k * self.batch : (k + 1) * self.batch])
        # With several processes, each takes its own slice of the global batch. Slicing
        # after sorting gives rank r the rows a single process has at the same positions,
        # which is what pairs them with the same latents (drawn globally, then sliced).
        share = len(idx) // self.world
        return idx[self.rank * share : (self.rank + 1) * share]


def fetch(ds: ImageDataset, idx: np.ndarray) -> torch.Tensor:
    """uint8 NHWC batch for ``idx`` (a copy out of the memory map)."""
    return torch.from_numpy(np.ascontiguousarray(ds.images[idx]))
