"""Is data ever the bottleneck? The loader alone vs the training step, in images/s.

Reads random batches from a prepared (memory-mapped) dataset exactly as training does
(step-indexed sampler, fancy-index copy out of the memmap, uint8 -> float [-1, 1] NCHW)
and compares with one dcgan4 training step at the same resolution and batch.

    python benchmarks/loader_speed.py [DATASET] [--batch 64] [--batches 200]

Without DATASET it prepares ../shared/data/landscapes at 64 px in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from landgan.config import TrainConfig
from landgan.data.dataset import open_dataset
from landgan.images import to_model
from landgan.train.data import StepSampler, fetch
from landgan.train.gan import GANTrainer

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", nargs="?")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=200)
    args = ap.parse_args()
    path = args.dataset
    if path is None:
        from landgan.data.prepare import prepare_dataset

        path = Path(tempfile.mkdtemp()) / "ds"
        prepare_dataset(REPO.parent / "shared/data/landscapes", path, 64, progress=False)
    ds = open_dataset(path)
    sampler = StepSampler(len(ds), args.batch, seed=0)
    t0 = time.perf_counter()
    for i in range(args.batches):
        x = to_model(fetch(ds, sampler.indices(i)))
    loader = args.batches * args.batch / (time.perf_counter() - t0)
    tr = GANTrainer(
        TrainConfig(model="dcgan4", resolution=ds.resolution, batch_size=args.batch),
        torch.device("cpu"),
    )
    tr.train_step(lambda i: x)
    t0 = time.perf_counter()
    for _ in range(3):
        tr.train_step(lambda i: x)
    step = 3 * args.batch / (time.perf_counter() - t0)
    print(f"dataset {path}: {len(ds)} images at {ds.resolution} px, batch {args.batch}")
    print(
        f"loader alone: {loader:9.0f} images/s\ntraining step: {step:8.1f} images/s\n"
        f"ratio: {loader / step:.0f}x"
    )


if __name__ == "__main__":
    main()
