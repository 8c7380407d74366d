"""FastGAN on the photos at 128 px within a few minutes of one GPU: speed and quality.

1. A short sweep: images/s of the fastgan training step for each batch size and
   precision in ``--batches`` x ``--amps`` (synthetic tensors already on the device).
2. Training: ``landgan train --model fastgan`` on the photos (``--held-out`` of them
   kept out) at the fastest setting, for ``--minutes`` of wall time.
3. Scoring: KID and FID of ``--n`` generated images (G_ema) against the held-out photos.

    python benchmarks/gpu_fastgan.py --photos ../shared/data/landscapes --minutes 7

It runs anywhere: on a CPU with a tiny budget it is the CI smoke test of the same path
(tests/test_gpu_script.py). Prints one JSON line per result and a Markdown summary.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from landgan.config import TrainConfig
from landgan.device import resolve_device
from landgan.metrics.inception import load_feature_extractor
from landgan.metrics.scores import fid_from_features, kid
from landgan.sampling import load_generator, sample_images
from landgan.train import get_trainer
from landgan.train.loop import train

# The held-out split of time_to_quality.py (same photos, same seed), so the GPU figures are
# scored against exactly the photos the CPU comparison held out.
from time_to_quality import split_photos

REPO = Path(__file__).resolve().parents[1]


def step_speed(
    res: int, batch: int, amp: str, device: torch.device, steps: int, widths: dict
) -> float:
    """Images/s of the fastgan step at ``batch`` and ``amp`` (after 3 warm-up steps)."""
    cfg = TrainConfig.for_model(
        model="fastgan", resolution=res, batch_size=batch, amp=amp, device=str(device), **widths
    ).validated()
    tr = get_trainer("fastgan")(cfg, device)
    real = torch.rand(batch, 3, res, res, device=device) * 2 - 1
    source = lambda i: real
    for _ in range(3):
        tr.train_step(source)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step(source)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default=str(REPO.parent / "shared/data/landscapes"))
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--minutes", type=float, default=7.0, help="training wall-clock budget")
    ap.add_argument("--held-out", type=int, default=1000)
    ap.add_argument("--n", type=int, default=1000, help="generated images scored")
    ap.add_argument("--batches", default="32,64,128")
    ap.add_argument("--amps", default="off,bf16")
    ap.add_argument("--sweep-steps", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--width", type=int, default=0, help="g_width = d_width (0: the default)")
    ap.add_argument("--out", default="", help="run folder parent (default: a temporary one)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    widths = {"g_width": args.width, "d_width": args.width} if args.width else {}
    speeds = {}
    for batch in map(int, args.batches.split(",")):
        for amp in args.amps.split(","):
            speeds[(batch, amp)] = step_speed(
                args.resolution, batch, amp, device, args.sweep_steps, widths
            )
            print(
                json.dumps({"batch": batch, "amp": amp, "images_per_s": speeds[(batch, amp)]}),
                flush=True,
            )
    batch, amp = max(speeds, key=speeds.get)
    work = Path(tempfile.mkdtemp(prefix="landgan-gpu-"))
    data, held = split_photos(Path(args.photos), work, args.held_out, args.resolution)
    cfg = TrainConfig.for_model(
        model="fastgan",
        data=str(data),
        resolution=args.resolution,
        batch_size=batch,
        amp=amp,
        device=str(device),
        steps=0,
        minutes=args.minutes,
        out=args.out or str(work / "runs"),
        sample_every=500,
        ckpt_every=0,
        **widths,
    )
    t0 = time.perf_counter()
    run = train(cfg, progress=False)
    wall = time.perf_counter() - t0
    G, gcfg, state = load_generator(run, device, with_state=True)
    extractor = load_feature_extractor(device)
    real = extractor.features(held, batch_size=50)
    fake = extractor.features(sample_images(G, gcfg, args.n, seed=123), batch_size=50)
    k, ks = kid(real, fake)
    result = {
        "batch": batch,
        "amp": amp,
        "steps": int(state["step"]),
        "train_s": round(wall, 1),
        "images_per_s": state["step"] * batch / wall,
        "kid": k,
        "kid_std": ks,
        "fid": fid_from_features(real, fake),
        "n": args.n,
        "held_out": len(held),
        "run": str(run),
    }
    print(json.dumps(result))
    print(
        f"\n| batch | precision | steps | images/s | KID×1000 | FID (n={args.n}) |\n|---|---|---|---|---|---|\n"
        f"| {batch} | {amp} | {result['steps']} | {result['images_per_s']:.0f} | "
        f"{k * 1000:.1f} ± {ks * 1000:.1f} | {result['fid']:.1f} |"
    )
    return result


if __name__ == "__main__":
    main()
