"""Memorisation check: are generated pictures copies of training photos?

For ``--n`` generated images (conditions drawn as they occur, ``generate`` without a
request) and ``--n`` held-out photos, the distance from each to its nearest training
photo in FID-Inception feature space (2048-d pool features, L2). A model that copies
its training photos has generated images much nearer the training set than unseen photos
are; one that does not has a distribution like the held-out one. The 8 closest
generated/training pairs are drawn side by side for a person to look at.

    python benchmarks/memorisation.py --ckpt landscapes --train DATA/train --held-out DATA/held \
        --pairs docs/pretrained_pairs.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from landgan.data.dataset import open_dataset
from landgan.metrics.inception import load_feature_extractor
from landgan.metrics.sources import image_source_features
from landgan.sampling import load_generator, sample_images


def nearest(queries: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each query's nearest reference row (L2), in float64."""
    q, r = torch.from_numpy(queries), torch.from_numpy(refs)
    d = torch.cdist(q, r)
    dist, idx = d.min(1)
    return dist.numpy(), idx.numpy()


def pairs_picture(gen: np.ndarray, train: np.ndarray, path: Path, scale: int = 2) -> Path:
    """Rows of (generated | nearest training photo), enlarged ``scale`` times, as JPEG."""
    rows = [
        np.concatenate([g, np.full((g.shape[0], 4, 3), 255, np.uint8), t], 1)
        for g, t in zip(gen, train)
    ]
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    img = np.concatenate([x for r in rows for x in (r, gap)][:-1])
    pic = Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
    pic.save(path, quality=90)
    return path


def summary(name: str, dist: np.ndarray) -> str:
    q = np.percentile(dist, [1, 5, 50])
    return f"| {name} | {len(dist)} | {dist.min():.2f} | {q[0]:.2f} | {q[1]:.2f} | {q[2]:.2f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True, help="model name, model file, checkpoint or run")
    ap.add_argument("--train", required=True, help="the prepared training photos")
    ap.add_argument("--held-out", required=True, help="prepared photos training never saw")
    ap.add_argument("--n", type=int, default=1000, help="generated and held-out images")
    ap.add_argument("--pairs", default="", help="write the 8 closest pairs here (a .jpg)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    G, cfg, state = load_generator(args.ckpt, with_state=True)
    train = np.asarray(open_dataset(args.train).images)
    held = np.asarray(open_dataset(args.held_out).images)[: args.n]
    gen = sample_images(G, cfg, args.n, args.seed, state=state)
    ext = load_feature_extractor()
    # Photos' features in file order (n=None), from landgan's feature cache when there.
    f_train, f_held = (
        image_source_features(p, ext, None, progress=True)[0] for p in (args.train, args.held_out)
    )
    f_held = f_held[: len(held)]
    f_gen = ext.features(gen, batch_size=50)
    d_gen, i_gen = nearest(f_gen, f_train)
    d_held, _ = nearest(f_held, f_train)
    print(
        f"\n{args.ckpt}: distance to the nearest of {len(train)} training photos, "
        "FID-Inception features (L2)\n"
    )
    print(
        "| images | n | min | 1st percentile | 5th percentile | median |\n|---|---|---|---|---|---|"
    )
    print(summary("generated", d_gen))
    print(summary("held-out photos", d_held))
    below = (d_gen < np.percentile(d_held, 1)).mean()
    print(
        f"\ngenerated images nearer a training photo than 99 % of held-out photos are: "
        f"{100 * below:.1f} % (1 % if generated images were like unseen photos)"
    )
    if args.pairs:
        order = np.argsort(d_gen)[:8]
        path = pairs_picture(gen[order], train[i_gen[order]], Path(args.pairs))
        print(
            f"8 closest pairs (generated | training photo): {path}; distances "
            + ", ".join(f"{d_gen[i]:.2f}" for i in order)
        )


if __name__ == "__main__":
    main()
