"""How good is the composition estimator of ``landgan label``?

For each built-in estimator (``rules`` and ``net``):

1. Mean absolute error of the estimated fractions against the exact ones, on procedural
   scenes from seeds the estimator never trained on.
2. On real photos (``--photos``, a folder of category subfolders), the mean estimated
   composition per category: sea should have the most water, forest the most vegetation,
   glacier the most snow/ice.

    python benchmarks/label_accuracy.py [--photos ../shared/data/landscapes] [--n 500]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from landgan.data.dataset import open_dataset
from landgan.data.prepare import prepare_dataset
from landgan.data.synthetic import ELEMENTS, render_seeds
from landgan.label import ESTIMATORS, estimate_with

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default=str(REPO.parent / "shared/data/landscapes"))
    ap.add_argument("--n", type=int, default=500, help="held-out procedural scenes")
    args = ap.parse_args()
    images, truth = render_seeds(range(10**7, 10**7 + args.n), 64)
    photos = {}
    for cat in sorted(p for p in Path(args.photos).iterdir() if p.is_dir()):
        out = Path(tempfile.mkdtemp()) / cat.name
        prepare_dataset(cat, out, 64, progress=False)
        photos[cat.name] = open_dataset(out).images
    for name in ESTIMATORS:
        err = np.abs(estimate_with(name, images) - truth)
        print(f"\n## estimator {name}\n\nprocedural scenes (n={args.n}): MAE {err.mean():.3f}; "
              "per element " + ", ".join(f"{e} {v:.3f}" for e, v in zip(ELEMENTS, err.mean(0))))
        table = {cat: estimate_with(name, imgs).mean(0) for cat, imgs in photos.items()}
        print("\n| photos | n | " + " | ".join(ELEMENTS) + " |\n" + "|---" * (len(ELEMENTS) + 2) + "|")
        for cat, means in table.items():
            best = [m >= max(t[i] for t in table.values()) for i, m in enumerate(means)]
            cells = [f"**{m:.3f}**" if b else f"{m:.3f}" for m, b in zip(means, best)]
            print(f"| {cat} | {len(photos[cat])} | " + " | ".join(cells) + " |")
        print("\n(bold: the category with the most of that element)")


if __name__ == "__main__":
    main()
