"""Training throughput on CUDA with and without the GPU levers (bf16 autocast, channels-last,
torch.compile), for dcgan5 at 64 and 128 px, batch 64, data already on the GPU.

    python benchmarks/gpu_speed.py [--steps 30] [--compile]

Prints a Markdown table with the card's name; `docs/performance.md` records the figures.
"""

from __future__ import annotations

import argparse
import time

import torch

from landgan.config import TrainConfig
from landgan.train.gan import GANTrainer

VARIANTS = {  # name -> TrainConfig overrides
    "fp32, NCHW (plain)": dict(amp="off", channels_last=False),
    "fp32, channels-last": dict(amp="off", channels_last=True),
    "bf16 autocast, channels-last": dict(amp="bf16", channels_last=True),
    "fp16 autocast + grad scaler, channels-last": dict(amp="fp16", channels_last=True),
}


def images_per_s(res: int, overrides: dict, steps: int, batch: int = 64) -> float:
    cfg = TrainConfig(model="dcgan5", resolution=res, batch_size=batch, device="cuda", **overrides)
    tr = GANTrainer(cfg.validated(), torch.device("cuda"))
    real = torch.rand(batch, 3, res, res, device="cuda") * 2 - 1
    for _ in range(5 if not cfg.compile else 15):  # warm-up (cuDNN autotune, compilation)
        tr.train_step(lambda i: real)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step(lambda i: real)
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--compile", action="store_true", help="also time bf16 + torch.compile")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    variants = dict(VARIANTS)
    if args.compile:
        variants["bf16, channels-last, torch.compile"] = dict(
            amp="bf16", channels_last=True, compile=True
        )
    print(f"{torch.cuda.get_device_name()} | torch {torch.__version__}\n")
    print("| dcgan5, batch 64 | 64 px images/s | 128 px images/s |\n|---|---|---|")
    for name, ov in variants.items():
        cells = [f"{images_per_s(res, ov, args.steps):.0f}" for res in (64, 128)]
        print(f"| {name} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
