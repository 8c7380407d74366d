"""Does the adaptive balancer rescue a run whose discriminator overpowers the generator?

Trains DCGAN on the procedural landscapes twice from the same seed, in a setting
built for D to win (D twice as wide, with twice the learning rate): once on the
fixed 1:1 schedule, once with ``--balance adaptive``. Prints, for each, how often D
was near-perfect, G's loss, and the quality of the final samples measured as the
Frechet distance between 8x8-downsampled pixel statistics of generated and real
images (lower is better; no Inception network needed).

    python benchmarks/balancer.py [--steps 600] [--resolution 32] [--lr-mults 2,5] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

from landgan.config import TrainConfig
from landgan.data.synthetic import make_synthetic_dataset
from landgan.sampling import sample_images
from landgan.images import to_model
from landgan.train.gan import GANTrainer


def pixel_fd(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance of 8x8x3 downsampled pixels (uint8 NHWC inputs)."""

    def feats(x):
        t = torch.as_tensor(x).permute(0, 3, 1, 2).float() / 255
        return F.adaptive_avg_pool2d(t, 8).flatten(1).double().numpy()

    fa, fb = feats(a), feats(b)
    m1, m2, s1, s2 = fa.mean(0), fb.mean(0), np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def run(balance: str, lr_mult: float, args, data) -> dict:
    cfg = TrainConfig(
        model="dcgan4",
        resolution=args.resolution,
        batch_size=64,
        d_width=args.d_width,
        lr_d=2e-4 * lr_mult,
        balance=balance,
        seed=1,
        device=args.device,
    ).validated()
    tr = GANTrainer(cfg, torch.device(args.device))
    rng = np.random.default_rng(0)
    order = [np.sort(rng.choice(len(data), 64, replace=False)) for _ in range(args.steps * 3)]
    source = lambda i: to_model(data.images[order[i]], args.device)
    margins, g_losses = [], []
    t0 = time.perf_counter()
    for _ in range(args.steps):
        s = tr.train_step(source)
        if "d/real" in s:  # D's mean logit on reals minus on fakes: how far ahead D is
            margins.append(float(s["d/real"]) - float(s["d/fake"]))
        g_losses.append(float(s["loss/g"]))
    half = args.steps // 2
    fake = sample_images(tr.G_ema, cfg, 1000, seed=5)
    return {
        "balance": balance,
        "d_updates": tr.d_updates,
        "D logit margin real-fake (2nd half)": np.mean(margins[len(margins) // 2 :]),
        "G loss (2nd half)": np.mean(g_losses[half:]),
        "pixel FD (lower better)": pixel_fd(fake, data.images[-1000:]),
        "sample diversity (pixel std across samples)": float(fake.reshape(1000, -1).std(0).mean()),
        "minutes": (time.perf_counter() - t0) / 60,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--lr-mults", default="2", help="D learning rate / G learning rate, comma list")
    ap.add_argument("--d-width", type=int, default=128, help="D width (G's is 64)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    data = make_synthetic_dataset(4096, args.resolution, seed=0)
    for mult in map(float, args.lr_mults.split(",")):
        rows = [run(b, mult, args, data) for b in ("off", "adaptive")]
        print(
            f"\nDCGAN, {args.resolution} px, D width {args.d_width} (G 64), lr_D = {mult:g} x "
            f"lr_G, {args.steps} steps, {args.device}"
        )
        print("| metric | fixed 1:1 | adaptive |\n|---|---|---|")
        for k in rows[0]:
            if k != "balance":
                print(f"| {k} | {rows[0][k]:.3g} | {rows[1][k]:.3g} |", flush=True)


if __name__ == "__main__":
    main()
