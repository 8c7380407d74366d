"""Time to quality: KID against held-out photos after a fixed CPU budget, per recipe.

Trains ``--preset report`` (the report's plain DCGAN) and ``--preset fast`` (landgan's
default recipe) on the same photos at 64 px, in chunks that alternate between the recipes
(so that any other load on the machine falls on both alike), each chunk a ``landgan train
--minutes`` call that resumes the last. After every chunk the run's generator (G_ema; the
report preset keeps none, so it is G itself) is scored with KID and FID against held-out
photos never trained on. Prints a markdown table and writes a PNG plot of KID against
CPU-minutes (user + system time of the training processes, on this machine's cores).

    python benchmarks/time_to_quality.py [--minutes 30] [--chunks 3] [--photos ../shared/data/landscapes]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from landgan.data.dataset import open_dataset, save_dataset
from landgan.data.prepare import prepare_dataset
from landgan.sampling import load_generator, sample_images
from landgan.metrics.inception import load_feature_extractor
from landgan.metrics.scores import fid_from_features, kid
from landgan.checkpoint import resolve_checkpoint

REPO = Path(__file__).resolve().parents[1]
COLOURS = {"report": (200, 60, 40), "fast": (30, 90, 200)}


def split_photos(photos: Path, work: Path, held_out: int) -> tuple[Path, np.ndarray]:
    """(training dataset folder, held-out uint8 images) from a folder of photos."""
    prepare_dataset(photos, work / "all", 64, progress=False)
    images = np.asarray(open_dataset(work / "all").images)
    perm = np.random.default_rng(0).permutation(len(images))
    train = save_dataset(work / "train", images[np.sort(perm[held_out:])],
                         {"source": f"{photos} minus {held_out} held out"})
    return Path(train), images[np.sort(perm[:held_out])]


def cpu_seconds() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def train_chunk(recipe: str, data: Path, out: Path, minutes: float, first: bool) -> float:
    """One ``landgan train`` call of ``minutes``; returns the CPU-seconds it used."""
    cmd = [sys.executable, "-m", "landgan", "train", "--quiet", "--minutes", str(minutes)]
    cmd += (["--data", str(data), "--preset", recipe, "--steps", "0", "--out", str(out),
             "--sample-every", "0", "--ckpt-every", "0", "--log-every", "100"]
            if first else ["--resume", str(next(out.glob("0*")))])
    before = cpu_seconds()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return cpu_seconds() - before


def score(run: Path, held: np.ndarray, real_feats: np.ndarray, extractor, n: int) -> dict:
    G, cfg, state = load_generator(resolve_checkpoint(run), with_state=True)
    fake = extractor.features(sample_images(G, cfg, n, seed=123), batch_size=50)
    k, ks = kid(real_feats, fake)
    return {"step": int(state["step"]), "kid": k, "kid_std": ks, "fid": fid_from_features(real_feats, fake)}


def plot(rows: list[dict], path: Path, size=(640, 420), pad=60) -> None:
    """KID vs CPU-minutes, one line per recipe (drawn with Pillow: no plotting dependency)."""
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    w, h = size[0] - 2 * pad, size[1] - 2 * pad
    xmax = max(r["cpu_min"] for r in rows) * 1.05
    ymax = max(r["kid"] for r in rows) * 1.1
    to_xy = lambda x, y: (pad + x / xmax * w, pad + h - y / ymax * h)
    d.line([to_xy(0, 0), to_xy(xmax, 0)], fill="black")
    d.line([to_xy(0, 0), to_xy(0, ymax)], fill="black")
    for frac in (0.25, 0.5, 0.75, 1.0):
        x, y = to_xy(xmax * frac, 0)
        d.text((x - 10, y + 6), f"{xmax * frac:.0f}", fill="black")
        x, y = to_xy(0, ymax * frac)
        d.text((6, y - 6), f"{ymax * frac:.3f}", fill="black")
    d.text((pad + w // 2 - 60, size[1] - 25), "CPU-minutes (training)", fill="black")
    d.text((10, 15), "KID vs held-out photos (lower is better)", fill="black")
    for i, recipe in enumerate(COLOURS):
        pts = [to_xy(r["cpu_min"], r["kid"]) for r in rows
                                             if r["recipe"] == recipe]
        if len(pts) > 1:
            d.line(pts, fill=COLOURS[recipe], width=3)
        for x, y in pts:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=COLOURS[recipe])
        d.text((size[0] - 190, 20 + 16 * i), f"--preset {recipe}", fill=COLOURS[recipe])
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default=str(REPO.parent / "shared/data/landscapes"))
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget per recipe")
    ap.add_argument("--chunks", type=int, default=3, help="evaluations along the budget")
    ap.add_argument("--held-out", type=int, default=1000, help="photos kept out of training")
    ap.add_argument("--n-eval", type=int, default=500, help="generated images per evaluation")
    ap.add_argument("--recipes", default="report,fast")
    ap.add_argument("--plot", default=str(REPO / "docs/time_to_quality.png"))
    ap.add_argument("--json", default="", help="also write the rows here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="landgan-ttq-"))
    train_ds, held = split_photos(Path(args.photos), work, args.held_out)
    extractor = load_feature_extractor()
    real_feats = extractor.features(held, batch_size=50)
    rows, cpu = [], {r: 0.0 for r in args.recipes.split(",")}
    for chunk in range(args.chunks):
        for recipe in cpu:
            out = work / recipe
            t0 = time.perf_counter()
            cpu[recipe] += train_chunk(recipe, train_ds, out, args.minutes / args.chunks, chunk == 0)
            wall = time.perf_counter() - t0
            row = {"recipe": recipe, "chunk": chunk + 1, "wall_min": args.minutes / args.chunks * (chunk + 1),
                   "cpu_min": cpu[recipe] / 60, "chunk_wall_s": wall,
                   **score(next(out.glob("0*")), held, real_feats, extractor, args.n_eval)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{os.cpu_count()} cores; KID/FID: {args.n_eval} generated vs {args.held_out} held-out "
          "photos\n\n| recipe | budget (min) | CPU-min | steps | KID×1000 | FID |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['recipe']} | {r['wall_min']:.0f} | {r['cpu_min']:.1f} | {r['step']} | "
              f"{r['kid'] * 1000:.1f} ± {r['kid_std'] * 1000:.1f} | {r['fid']:.1f} |")
    last = {r["recipe"]: r for r in rows}
    if {"report", "fast"} <= set(last):
        print(f"\nat the budget: KID fast / KID report = {last['fast']['kid'] / last['report']['kid']:.2f}")
    plot(rows, Path(args.plot))
    print(f"plot: {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
