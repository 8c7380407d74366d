"""How good are the composition estimators of ``landgan label``?

For each built-in estimator (``photo``, ``rules`` and ``net``):

1. Against people: mean absolute error per element of the estimated fractions against
   the judged photos (judged/photos.csv, ``main`` pass; ``other`` dropped, the five
   renormalised), on the ``eval`` part (never fitted on) and, separately, on the ``fit``
   part (which the ``photo`` head was fitted to, so its figure there is optimistic).
   Photos are labelled at their own resolution (centre square, ~150 px) and again after
   a round trip through 64 px, a typical training resolution. The judges' own agreement
   (``second`` pass against ``main`` on the photos judged twice) is printed beside it.
2. Mean absolute error against the exact fractions of procedural scenes from seeds the
   ``net`` estimator never trained on.
3. On real photos (``--photos``, a folder of category subfolders; skip with
   ``--judged-only``), the mean estimated composition per category: sea should have the
   most water, forest the most vegetation, glacier the most snow/ice.

    python benchmarks/label_accuracy.py [--judged-only] [--photos ../shared/data/landscapes] [--n 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from landgan.data.dataset import open_dataset
from landgan.data.prepare import prepare_dataset
from landgan.data.synthetic import ELEMENTS, render_seeds
from landgan.label import ESTIMATORS, estimate_with
from landgan.metrics.photo_fit import load_photo, read_judged

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data"


def label_each(name: str, images: list[np.ndarray]) -> np.ndarray:
    """Fractions (n, 5) of images of mixed sizes, a batch per size."""
    out = np.zeros((len(images), len(ELEMENTS)))
    for shape in {im.shape for im in images}:
        idx = [i for i, im in enumerate(images) if im.shape == shape]
        out[idx] = estimate_with(name, np.stack([images[i] for i in idx]))
    return out


def row(label: str, err: np.ndarray, n: int) -> str:
    cells = " | ".join(f"{v:.3f}" for v in err.mean(0))
    return f"| {label} | {n} | {cells} | **{err.mean():.4f}** |"


def judges_agreement(csv_path: Path, split: str | None) -> tuple[np.ndarray, int]:
    """|second - main| (n, 5) on the photos judged twice."""
    main_paths, main = read_judged(csv_path, split, "main")
    second_paths, second = read_judged(csv_path, split, "second")
    index = {p: i for i, p in enumerate(main_paths)}
    return np.abs(second - main[[index[p] for p in second_paths]]), len(second_paths)


def judged_tables(csv_path: Path, data: Path) -> None:
    header = (
        "| estimator | photos | "
        + " | ".join(ELEMENTS)
        + " | mean |\n"
        + "|---" * (len(ELEMENTS) + 3)
        + "|"
    )
    for split in ("eval", "fit"):
        paths, truth = read_judged(csv_path, split)
        native = [load_photo(data / p) for p in paths]
        small = [
            np.asarray(Image.fromarray(im).resize((64, 64), Image.Resampling.LANCZOS))
            for im in native
        ]
        note = " (the photo head was fitted to these: optimistic)" if split == "fit" else ""
        print(
            f"\n## judged `{split}` photos: MAE per element against the main pass{note}\n\n{header}"
        )
        for name in ESTIMATORS:
            for tag, images in (("native", native), ("64 px", small)):
                print(row(f"{name} ({tag})", np.abs(label_each(name, images) - truth), len(paths)))
        err, n = judges_agreement(csv_path, split)
        print(row("judges: second pass vs main", err, n))
    err, n = judges_agreement(csv_path, None)
    print(f"\njudges' agreement over both parts: MAE {err.mean():.4f} on {n} photos judged twice")


def speed(data: Path, n: int = 256) -> None:
    """Photos per second of the ``photo`` estimator on real ~150 px photos, at every thread count."""
    files = sorted((data / "landscapes/sea").iterdir())[:n]
    images = np.stack(
        [load_photo(f)[:150, :150] for f in files if min(Image.open(f).size) >= 150][:n]
    )
    estimate_with("photo", images[:8])  # load the networks first
    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        t = time.perf_counter()
        estimate_with("photo", images)
        print(
            f"photo estimator: {len(images) / (time.perf_counter() - t):.1f} photos/s "
            f"({len(images)} photos of 150 px, {threads} thread(s))"
        )


def procedural_and_categories(args) -> None:
    images, truth = render_seeds(range(10**7, 10**7 + args.n), 64)
    photos = {}
    for cat in sorted(p for p in Path(args.photos).iterdir() if p.is_dir()):
        out = Path(tempfile.mkdtemp()) / cat.name
        prepare_dataset(cat, out, 64, progress=False)
        photos[cat.name] = open_dataset(out).images
    for name in ESTIMATORS:
        err = np.abs(estimate_with(name, images) - truth)
        print(
            f"\n## estimator {name}\n\nprocedural scenes (n={args.n}): MAE {err.mean():.3f}; "
            "per element " + ", ".join(f"{e} {v:.3f}" for e, v in zip(ELEMENTS, err.mean(0)))
        )
        table = {cat: estimate_with(name, imgs).mean(0) for cat, imgs in photos.items()}
        print(
            "\n| photos | n | " + " | ".join(ELEMENTS) + " |\n" + "|---" * (len(ELEMENTS) + 2) + "|"
        )
        for cat, means in table.items():
            best = [m >= max(t[i] for t in table.values()) for i, m in enumerate(means)]
            cells = [f"**{m:.3f}**" if b else f"{m:.3f}" for m, b in zip(means, best)]
            print(f"| {cat} | {len(photos[cat])} | " + " | ".join(cells) + " |")
        print("\n(bold: the category with the most of that element)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judged", default=str(REPO / "judged/photos.csv"))
    ap.add_argument("--data", default=str(DATA), help="the folder judged paths are relative to")
    ap.add_argument(
        "--judged-only", action="store_true", help="skip procedural scenes and categories"
    )
    ap.add_argument("--photos", default=str(DATA / "landscapes"))
    ap.add_argument("--n", type=int, default=500, help="held-out procedural scenes")
    args = ap.parse_args()
    judged_tables(Path(args.judged), Path(args.data))
    speed(Path(args.data))
    if not args.judged_only:
        procedural_and_categories(args)


if __name__ == "__main__":
    main()
