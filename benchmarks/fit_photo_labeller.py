"""Regenerate the photo labeller's head (src/landgan/metrics/photo_head.pt) from the judged set.

Fits on the ``fit`` rows of judged/photos.csv only (the ``eval`` rows are never read), with
400 unlabelled photos from ../shared/data/landscapes/ (none of them judged) joining the fit
photos for the label-free standardisation and PCA. Prints a 5-fold cross-validation of the
method on the fit photos, then trains on all of them and writes the head. Deterministic
for a given --seed and thread count; about 3 minutes on 2 CPU cores.

    python benchmarks/fit_photo_labeller.py [--out src/landgan/metrics/photo_head.pt]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from landgan.data.synthetic import ELEMENTS
from landgan.metrics import photo_fit as pf
from landgan.metrics.inception import FIDInception
from landgan.metrics.photo_labeller import HEAD_FILE, CompositionHead, PhotoLabeller

REPO = Path(__file__).resolve().parents[1]


def unlabelled_photos(data: Path, judged_csv: Path, n: int, seed: int) -> list[Path]:
    """``n`` photos of data/landscapes/<category>/ that are not in the judged set at all."""
    judged = set(pf.read_judged(judged_csv, None, "main")[0])
    files = sorted(
        p
        for p in (data / "landscapes").glob("*/*")
        if p.is_file() and str(p.relative_to(data)) not in judged
    )
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [files[i] for i in sorted(pick)]


def features(net, data: Path, judged_csv: Path, args) -> tuple[dict, dict, np.ndarray]:
    t = time.perf_counter()
    paths, y = pf.read_judged(judged_csv, "fit")
    images = [v for p in paths for v in pf.variants(pf.load_photo(data / p))]
    fit_feats = pf.extract(net, images)
    print(
        f"fit photos: {len(paths)} x 4 variants (as is, mirrored, via 64 px, both), "
        f"features in {time.perf_counter() - t:.0f} s"
    )
    t = time.perf_counter()
    extra = unlabelled_photos(data, judged_csv, args.unlabelled, args.seed)
    unl_feats = pf.extract(net, [pf.load_photo(p) for p in extra])
    print(
        f"unlabelled photos for standardisation/PCA: {len(extra)}, {time.perf_counter() - t:.0f} s"
    )
    return fit_feats, unl_feats, y


def report(name: str, pred: np.ndarray, y: np.ndarray) -> None:
    err = np.abs(pred - y).mean(0)
    print(
        f"{name}: MAE {err.mean():.4f} ("
        + ", ".join(f"{e} {v:.3f}" for e, v in zip(ELEMENTS, err))
        + ")"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judged", default=str(REPO / "judged/photos.csv"))
    ap.add_argument("--data", default=str(REPO.parent / "shared/data"))
    ap.add_argument("--unlabelled", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HEAD_FILE))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net = FIDInception.from_torchscript()
    fit_feats, unl_feats, y = features(net, Path(args.data), Path(args.judged), args)
    both = {g: torch.cat([fit_feats[g], unl_feats[g]]) for g in fit_feats}
    projections = pf.fit_projections(both, args.seed)
    z = pf.project(fit_feats, projections)
    z = z.view(len(y), 4, *z.shape[1:])
    print(
        f"per-location features: {z.shape[-1]} (PCA {pf.PCA_DIMS}, weights {pf.GROUP_WEIGHTS}, "
        f"local {pf.LOCAL_WEIGHTS.size}); L2 {pf.L2}, entropy {pf.ENTROPY}, "
        f"{pf.STEPS} Adam steps at lr {pf.LR}"
    )
    t = time.perf_counter()
    report("5-fold cross-validation on fit", pf.cross_validate(z, y, 5, args.seed), y)
    head = pf.train_head(z, y, args.seed)
    report("trained on all fit photos, in-sample", pf.predict(head, z[:, 0]), y)
    folded = pf.fold(head, projections)
    with torch.no_grad():
        raw = {g: f[::4] for g, f in fit_feats.items()}
        gap = np.abs(folded(raw).softmax(1).mean((2, 3)).numpy() - pf.predict(head, z[:, 0])).max()
    assert gap < 1e-4, f"folding changed the head's output by {gap}"
    print(f"heads trained in {time.perf_counter() - t:.0f} s; folded head matches to {gap:.1e}")
    note = (
        f"fit by benchmarks/fit_photo_labeller.py on {len(y)} judged fit photos, seed {args.seed}, "
        f"{args.unlabelled} unlabelled photos for PCA"
    )
    torch.save(folded.state(note), args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KiB)")
    labeller = PhotoLabeller(
        net, CompositionHead.from_state(torch.load(args.out, weights_only=True))
    )
    paths = pf.read_judged(Path(args.judged), "fit")[0][:8]
    check = np.concatenate(
        [labeller.label_photos(pf.load_photo(Path(args.data) / p)[None]) for p in paths]
    )
    report("first 8 fit photos through the saved file", check, y[:8])


if __name__ == "__main__":
    main()
