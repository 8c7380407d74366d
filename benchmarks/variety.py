"""Variety within a request: do 8 pictures asked for the same composition differ in layout?

For each of the six standard requests (controllability.py's PHOTO_ROWS), 8 images of one
seed, and the *thumbnail spread*: each image's 8x8 luminance thumbnail (area means),
standardised to zero mean and unit spread (where the light and dark masses lie, not how
bright the picture is), and the mean absolute difference per thumbnail pixel over all
pairs. The baseline, measured in the same run: the 8 training photos whose labelled
composition is nearest each request. A layout model draws its map from ``choices`` maps
picked, most varied first, from the ``pool`` nearest the request in composition;
``--settings`` measures several side by side.

    python benchmarks/variety.py --ckpt landscapes --photos DATA/train_map --settings 8:8,8:32
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from landgan.data.dataset import condition_matrix, open_dataset
from landgan.label import estimate_with
from landgan.models.layout import mean_composition
from landgan.sampling import load_generator, sample_images

from controllability import PHOTO_ROWS

PER_REQUEST = 8


def thumbnail_spread(images: np.ndarray) -> float:
    """Mean pairwise L1 distance (per pixel) between standardised 8x8 luminance thumbnails."""
    lum = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    n, h, w = lum.shape
    thumbs = lum.reshape(n, 8, h // 8, 8, w // 8).mean((2, 4)).reshape(n, 64)
    thumbs = (thumbs - thumbs.mean(1, keepdims=True)) / (thumbs.std(1, keepdims=True) + 1e-6)
    pairs = [np.abs(thumbs[i] - thumbs[j]).mean() for i, j in itertools.combinations(range(n), 2)]
    return float(np.mean(pairs))


def photo_baseline(photos: str) -> dict[str, float]:
    """Spread of the PER_REQUEST training photos nearest each request in composition."""
    data = open_dataset(photos)
    conds, names = condition_matrix(data)
    comps = mean_composition(conds, 5) if len(names) != 5 else conds
    images = np.asarray(data.images)
    out = {}
    for name, row in PHOTO_ROWS.items():
        near = np.abs(comps - np.float32(row)).sum(1).argsort()[:PER_REQUEST]
        out[name] = thumbnail_spread(images[np.sort(near)])
    return out


def model_rows(G, cfg, seed: int) -> dict[str, tuple[float, float]]:
    """Per request: (thumbnail spread, labeller's mean absolute error) of PER_REQUEST images."""
    out = {}
    for name, row in PHOTO_ROWS.items():
        images = sample_images(G, cfg, PER_REQUEST, seed, condition=torch.tensor(row))
        read = estimate_with("photo", images).mean(0)
        out[name] = (thumbnail_spread(images), float(np.abs(read - np.float32(row)).mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True, help="model name, model file, checkpoint or run")
    ap.add_argument("--photos", required=True, help="labelled training dataset (the baseline)")
    ap.add_argument(
        "--settings",
        default="",
        help="layout models: comma list of CHOICES:POOL "
        "to compare, e.g. 8:8,8:32 (default: the model's own)",
    )
    ap.add_argument("--seeds", default="7,11", help="comma list of seeds; each gives 8 images")
    args = ap.parse_args()
    torch.manual_seed(0)
    G, cfg = load_generator(args.ckpt)
    seeds = [int(s) for s in args.seeds.split(",")]
    base = photo_baseline(args.photos)
    own = f"{getattr(G, 'choices', 0)}:{getattr(G, 'pool', 0)}"
    settings = [c for c in args.settings.split(",") if c] or [own]
    results = {}
    for setting in settings:
        if hasattr(G, "choices"):
            choices, pool = (int(v) for v in setting.split(":"))
            G.choices, G.pool = min(choices, len(G.bank)), min(max(pool, choices), len(G.bank))
        per_seed = [model_rows(G, cfg, s) for s in seeds]
        results[setting] = {
            n: tuple(np.mean([p[n][k] for p in per_seed]) for k in (0, 1)) for n in PHOTO_ROWS
        }
    head = " | ".join(f"{c} (choices:pool): spread / MAE" for c in settings)
    print(f"\n{args.ckpt}, {PER_REQUEST} images per request, seeds {args.seeds}\n")
    print(f"| request | photos: spread | {head} |\n|---|---|" + "---|" * len(settings))
    for name in PHOTO_ROWS:
        cells = " | ".join(
            f"{results[c][name][0]:.2f} / {results[c][name][1]:.3f}" for c in settings
        )
        print(f"| {name} | {base[name]:.2f} | {cells} |")
    means = " | ".join(
        f"**{np.mean([results[c][n][0] for n in PHOTO_ROWS]):.2f}** / "
        f"{np.mean([results[c][n][1] for n in PHOTO_ROWS]):.3f}"
        for c in settings
    )
    print(f"| mean | **{np.mean(list(base.values())):.2f}** | {means} |")


if __name__ == "__main__":
    main()
