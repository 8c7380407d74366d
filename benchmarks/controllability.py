"""Does a conditional model draw what it is asked for?  (results: docs/composition.md)

Classes (``--class-ckpt``, a model trained with --conditional on photo categories): a scene
classifier is trained here on 80% of the real labelled photos (its held-out accuracy on the
other 20% is printed), then judges ``--n`` images generated for each pure class.

Compositions (``--comp-ckpt``, a model trained with --conditional on the procedural scenes):
the requested fractions are those of procedural scenes from seeds never used in training;
the ``net`` estimator of ``landgan label`` is run on the generated images and compared with
the request (mean absolute error; the ``rules`` estimator's figure is shown for reference).

Photos (``--photo-ckpt``, a model trained with --conditional on photos labelled by
``landgan label``, and ``--held-out``, a prepared dataset of photos it never trained on):
the requests are the ``photo`` labeller's readings of ``--n-comp`` held-out photos, and
the same labeller reads the generated images (its own error against people is measured
by ``benchmarks/label_accuracy.py``). With ``--uncond-ckpt`` (an unconditional model of
the same data and budget) it prints the KID ratio conditional / unconditional.
``--best-of K`` samples as ``generate --best-of`` does; the MAE is then no longer
independent of the sampling, KID still is.

All report KID and FID (FID-Inception features) against held-out real images, so control is
not bought with quality, and write example grids (the same seeds at several conditions).

    python benchmarks/controllability.py --class-ckpt RUN_OR_CKPT --comp-ckpt RUN_OR_CKPT \\
        [--photos ../shared/data/landscapes] [--grids docs]
    python benchmarks/controllability.py --photo-ckpt RUN --held-out DATASET \\
        [--uncond-ckpt RUN] [--grids docs]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from landgan.data.dataset import open_dataset
from landgan.data.prepare import prepare_dataset
from landgan.data.synthetic import ELEMENTS, render_seeds
from landgan.metrics.photo_labeller import reader_for
from landgan.sampling import load_generator, sample_images
from landgan.grid import save_grid
from landgan.label import estimate_with
from landgan.metrics import control
from landgan.metrics.inception import load_feature_extractor
from landgan.metrics.scores import fid_from_features, kid

REPO = Path(__file__).resolve().parents[1]
HELD_OUT_SEEDS = 10**7  # procedural seeds from here on are never rendered for training


def sampler(G, cfg, truncation: float | None = None, best_of: int = 1):
    """(conditions (K,) or (N, K), seed) -> uint8 images; N = rows, or ``n`` for one vector.

    ``best_of`` > 1: each image the one of that many candidates the photo labeller reads
    nearest its request (``generate --best-of``)."""
    read = reader_for(cfg.condition_names) if best_of > 1 else None

    def sample(cond: np.ndarray, seed: int, n: int | None = None) -> np.ndarray:
        c = torch.from_numpy(np.asarray(cond, np.float32))
        count = n if c.dim() == 1 else len(c)
        return sample_images(
            G, cfg, count, seed, truncation, condition=c, best_of=best_of if read else 1, read=read
        )

    return sample


def quality(sample, conds: np.ndarray, ref: np.ndarray, extractor, seed: int) -> str:
    """KID and FID of images generated for ``conds`` against real features ``ref``."""
    fake = extractor.features(sample(conds, seed), batch_size=50)
    k, ks = kid(ref, fake)
    return f"KID×1000 {k * 1000:.1f} ± {ks * 1000:.1f}, FID {fid_from_features(ref, fake):.1f}"


def classes_part(args, extractor) -> None:
    tmp = Path(tempfile.mkdtemp()) / "photos"
    src = Path(args.photos)
    if not (src / "dataset.json").exists():
        prepare_dataset(src, tmp, 64, progress=False)
        src = tmp
    ds = open_dataset(src)
    images, labels, names = np.asarray(ds.images), np.asarray(ds.labels), list(ds.classes)
    tr, ho = control.holdout_split(len(images), 0.2, args.seed)
    t0 = time.perf_counter()
    clf = control.train_classifier(images[tr], labels[tr], len(names), steps=args.clf_steps)
    pred = control.classify(clf, images[ho])
    print(
        f"\n## classes: {args.class_ckpt}\n\nclassifier: trained on {len(tr)} photos in "
        f"{time.perf_counter() - t0:.0f} s; held-out accuracy {(pred == labels[ho]).mean():.1%} "
        f"on {len(ho)} photos"
    )
    G, cfg = load_generator(args.class_ckpt)
    assert cfg.conditions.split(",") == names, (cfg.conditions, names)
    sample = sampler(G, cfg)
    truncs = [None if t == "none" else float(t) for t in args.truncations.split(",")]
    agree = {
        t: control.class_agreement(
            lambda c, s, f=sampler(G, cfg, t): f(c, s, args.n), clf, names, args.n, args.seed
        )
        for t in truncs
    }
    heads = " | ".join(f"generated, truncation {t or 'off'}" for t in truncs)
    print(
        f"\n{args.n} images generated per class and truncation\n\n| class | held-out real photos "
        f"judged correctly | {heads} |\n" + "|---" * (len(truncs) + 2) + "|"
    )
    for k, name in enumerate(names):
        real_acc = (pred[labels[ho] == k] == k).mean()
        print(
            f"| {name} | {real_acc:.1%} | "
            + " | ".join(f"{agree[t][name]:.1%}" for t in truncs)
            + " |"
        )
    print(
        f"| mean | {(pred == labels[ho]).mean():.1%} | "
        + " | ".join(f"**{np.mean(list(agree[t].values())):.1%}**" for t in truncs)
        + " |"
    )
    conds = np.eye(len(names), dtype=np.float32)[labels[ho][: args.n_fid]]
    ref = extractor.features(images[ho][: args.n_fid], batch_size=50)  # once for every truncation
    for t in truncs:
        print(
            f"\nquality at truncation {t or 'off'}, {len(conds)} generated (held-out photos' "
            f"classes) vs {len(conds)} held-out photos: "
            f"{quality(sampler(G, cfg, t), conds, ref, extractor, args.seed)}"
        )
    if args.grids:
        rows = [np.eye(len(names))[k] for k in range(len(names))]
        rows += [np.array([0, 0, 0.5, 0.5]), np.array([0.5, 0, 0.5, 0]), np.array([0, 0.5, 0.5, 0])]
        grid = np.concatenate([sample(np.tile(r, (8, 1)).astype(np.float32), 7) for r in rows])
        print(
            f"grid: {save_grid(grid, Path(args.grids) / 'control_classes.png', nrow=8)} "
            f"(rows: {', '.join(names)}, mountain+sea, forest+mountain, glacier+mountain)"
        )


def composition_part(args, extractor) -> None:
    G, cfg = load_generator(args.comp_ckpt)
    assert cfg.conditions.split(",") == list(ELEMENTS)
    real, requests = render_seeds(
        range(HELD_OUT_SEEDS, HELD_OUT_SEEDS + args.n_comp), cfg.resolution
    )
    sample = sampler(G, cfg)
    print(
        f"\n## compositions: {args.comp_ckpt}\n\n{args.n_comp} requests = the exact fractions of "
        "held-out procedural scenes\n\n| estimator | MAE | "
        + " | ".join(ELEMENTS)
        + " |\n"
        + "|---" * (len(ELEMENTS) + 2)
        + "|"
    )
    for name in ("net", "rules"):
        truth_mae = np.abs(estimate_with(name, real) - requests).mean()
        mae, per = control.composition_error(
            sample, lambda x: estimate_with(name, x), requests, args.seed
        )
        print(
            f"| {name} on generated | **{mae:.3f}** | " + " | ".join(f"{v:.3f}" for v in per) + " |"
        )
        print(
            f"| {name} on the real scenes (its own error) | {truth_mae:.3f} |"
            + " – |" * len(ELEMENTS)
        )
    n = min(args.n_fid, args.n_comp)
    print(
        f"\nquality, {n} generated for held-out requests vs those {n} scenes: "
        f"{quality(sample, requests[:n], extractor.features(real[:n], batch_size=50), extractor, args.seed)}"
    )
    if args.grids:
        rows = [
            [0.5, 0.3, 0.05, 0, 0.15],
            [0.3, 0.3, 0.05, 0.3, 0.05],
            [0.3, 0.2, 0, 0.5, 0],
            [0.3, 0.4, 0.2, 0.05, 0.05],
            [0.2, 0.2, 0, 0.1, 0.5],
            [0.6, 0.2, 0, 0.1, 0.1],
        ]
        grid = np.concatenate([sample(np.tile(np.float32(r), (8, 1)), 7) for r in rows])
        print(
            f"grid: {save_grid(grid, Path(args.grids) / 'control_composition.png', nrow=8)} "
            "(rows, sky/mountain/snow/water/vegetation: "
            + "; ".join("/".join(f"{v:g}" for v in r) for r in rows)
            + ")"
        )


PHOTO_ROWS = {  # grid rows: sky, mountain, snow, water, vegetation
    "60% water, 30% sky, 10% mountain": [0.3, 0.1, 0, 0.6, 0],
    "50% vegetation, 30% sky, 20% mountain": [0.3, 0.2, 0, 0, 0.5],
    "40% snow, 30% sky, 30% mountain": [0.3, 0.3, 0.4, 0, 0],
    "50% sky, 50% mountain": [0.5, 0.5, 0, 0, 0],
    "80% vegetation, 20% mountain": [0, 0.2, 0, 0, 0.8],
    "40% water, 40% sky, 20% vegetation": [0.4, 0, 0, 0.4, 0.2],
}


def photo_part(args, extractor) -> None:
    G, cfg = load_generator(args.photo_ckpt)
    assert cfg.conditions.split(",") == list(ELEMENTS), cfg.conditions
    held = np.asarray(open_dataset(args.held_out).images)
    read = estimate_with("photo", held)  # what the labeller says of real, unseen photos
    requests = read[: args.n_comp]
    sample = sampler(G, cfg, best_of=args.best_of)
    if args.best_of > 1:
        print(
            f"\n**--best-of {args.best_of}: the labeller below chose each image, so its MAE "
            "is no longer an independent measure; KID and people's judgements are.**"
        )
    mae, per = control.composition_error(
        sample, lambda x: estimate_with("photo", x), requests, args.seed
    )
    print(
        f"\n## photo compositions: {args.photo_ckpt}\n\n{len(requests)} requests = the photo "
        f"labeller's readings of held-out photos ({args.held_out}); the same labeller reads "
        f"one generated image per request\n\n| | MAE | "
        + " | ".join(ELEMENTS)
        + " |\n"
        + "|---" * (len(ELEMENTS) + 2)
        + f"|\n| requested vs read | **{mae:.3f}** | "
        + " | ".join(f"{v:.3f}" for v in per)
        + " |"
    )
    if args.best_of > 1:  # a reader the choice did not use, however rough (docs/composition.md)
        plain = sampler(G, cfg)
        rules = lambda x: estimate_with("rules", x)
        for name, fn in (("plain", plain), (f"best of {args.best_of}", sample)):
            print(
                f"| rules estimator, {name} | "
                f"{control.composition_error(fn, rules, requests, args.seed)[0]:.3f} |"
            )
    # A model that ignored its request but drew realistic photos: another held-out
    # photo's reading against each request.
    ignored = np.abs(np.roll(requests, 1, 0) - requests)
    print(
        f"| a real photo ignoring the request | {ignored.mean():.3f} | "
        + " | ".join(f"{v:.3f}" for v in ignored.mean(0))
        + " |"
    )
    n = min(args.n_fid, len(held))
    if n >= 4:  # --n-fid 0: control only
        photo_quality(args, extractor, sample, held[:n], read[:n])
    if args.grids:
        photo_grids(args, sample)


def photo_quality(args, extractor, sample, held: np.ndarray, read: np.ndarray) -> None:
    """KID/FID of images generated for held-out photos' readings against those photos,
    and against an unconditional model's when ``--uncond-ckpt`` is given."""
    n = len(held)
    ref = extractor.features(held, batch_size=50)
    fake = extractor.features(sample(read, args.seed + 1), batch_size=50)
    k, ks = kid(ref, fake, subset_size=n // 2)
    print(
        f"\nquality, {n} generated (held-out photos' readings) vs {n} held-out photos: "
        f"KID×1000 {k * 1000:.1f} ± {ks * 1000:.1f}, FID {fid_from_features(ref, fake):.1f}"
    )
    if args.uncond_ckpt:
        G0, cfg0 = load_generator(args.uncond_ckpt)
        fake0 = extractor.features(sample_images(G0, cfg0, n, args.seed + 1), batch_size=50)
        k0, ks0 = kid(ref, fake0, subset_size=n // 2)
        print(
            f"unconditional ({args.uncond_ckpt}): KID×1000 {k0 * 1000:.1f} ± {ks0 * 1000:.1f}, "
            f"FID {fid_from_features(ref, fake0):.1f}; **KID conditional / unconditional = "
            f"{k / k0:.2f}**"
        )


def photo_grids(args, sample) -> None:
    """The grid of :data:`PHOTO_ROWS` (seed 7) with the labeller's reading of each row,
    and the same rows shuffled for blind judges (:func:`blind_grid`)."""
    rows = list(PHOTO_ROWS.values())
    grid = np.concatenate([sample(np.tile(np.float32(r), (8, 1)), 7) for r in rows])
    got = [estimate_with("photo", grid[8 * i : 8 * i + 8]).mean(0) for i in range(len(rows))]
    print(
        f"grid: {save_grid(grid, Path(args.grids) / 'control_photos.png', nrow=8)}; rows, "
        "asked -> read (sky/mountain/snow/water/vegetation):"
    )
    for (name, r), g in zip(PHOTO_ROWS.items(), got):
        print(
            f"- {name}: "
            + "/".join(f"{v:.2f}" for v in r)
            + " -> "
            + "/".join(f"{v:.2f}" for v in g)
        )
    blind_grid(sample, Path(args.grids) / "control_photos_blind.png")


def blind_grid(sample, path: Path, seed: int = 11) -> None:
    """The grid's rows in a shuffled order (other latents), for a judge who is told the
    requests but not which row is which; the key is printed, not written beside it."""
    names = list(PHOTO_ROWS)
    order = np.random.default_rng(1).permutation(len(names))
    rows = [sample(np.tile(np.float32(PHOTO_ROWS[names[i]]), (8, 1)), seed) for i in order]
    save_grid(np.concatenate(rows), path, nrow=8)
    print(
        f"blind grid: {path}; key: "
        + "; ".join(f"row {r + 1} = {names[i]}" for r, i in enumerate(order))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--class-ckpt", help="conditional model trained on photo categories")
    ap.add_argument("--comp-ckpt", help="conditional model trained on procedural compositions")
    ap.add_argument("--photo-ckpt", help="conditional model trained on labelled photos")
    ap.add_argument("--held-out", help="prepared dataset of photos --photo-ckpt never saw")
    ap.add_argument("--uncond-ckpt", help="unconditional model of the same data and budget")
    ap.add_argument(
        "--photos",
        default=str(REPO.parent / "shared/data/landscapes"),
        help="labelled photos: category subfolders, or a prepared 64 px dataset",
    )
    ap.add_argument("--n", type=int, default=250, help="generated images per class")
    ap.add_argument("--n-comp", type=int, default=500, help="composition requests")
    ap.add_argument("--n-fid", type=int, default=500, help="images per side for KID/FID")
    ap.add_argument(
        "--truncations",
        default="none,1.0",
        help="latent truncations to judge class agreement at ('none' = plain N(0, I))",
    )
    ap.add_argument("--clf-steps", type=int, default=1500, help="classifier training steps")
    ap.add_argument("--grids", default="", help="folder for example grids ('' = none)")
    ap.add_argument(
        "--best-of",
        type=int,
        default=1,
        help="photo part: each image the best of K candidates by the labeller (generate --best-of)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    extractor = load_feature_extractor()
    if args.class_ckpt:
        classes_part(args, extractor)
    if args.comp_ckpt:
        composition_part(args, extractor)
    if args.photo_ckpt:
        photo_part(args, extractor)


if __name__ == "__main__":
    main()
