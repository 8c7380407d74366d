"""Evaluate a generator against real images: FID, KID, precision/recall, IS.

Generated images come from a caller-supplied ``sample_fn(n, seed) -> uint8 (n, H, W, 3)``
so this module needs nothing from the training code. Real-image features come from
:func:`landgan.metrics.sources.image_source_features` (cached on disk); generated
ones are never cached. Both go through the same extractor and preprocessing.

Typical use::

    ext = load_feature_extractor()
    clf = load_is_classifier(path) if path else None   # IS needs its own weights
    row = evaluate_model(sample_fn, "data/alps-64", ext, n=10_000, classifier=clf,
                         dataset="alps", model="dcgan", resolution=64)
    print(format_table([row]))
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from landgan.errors import UserError
from landgan.metrics.is_classifier import IS_UNAVAILABLE
from landgan.metrics.scores import fid_from_features, inception_score, kid, precision_recall
from landgan.metrics.sources import Source, image_source_features, plan_source
from landgan.metrics.tables import REAL_DATA, format_table, table3_markdown

SampleFn = Callable[[int, int], np.ndarray]  # (n, seed) -> uint8 (n, H, W, 3)
Classifier = Callable[[np.ndarray], np.ndarray]  # uint8 images -> (n, classes) logits
METRICS = ("fid", "kid", "pr", "is")

__all__ = [
    "image_source_features",
    "sample_features",
    "score_features",
    "evaluate_model",
    "evaluate_real",
    "format_table",
    "table3_markdown",
    "REAL_DATA",
    "METRICS",
]


def _chunk_seed(seed: int, i: int) -> int:
    # Independent streams per chunk: seed + i would make run(seed=0) chunk 1 equal
    # run(seed=1) chunk 0, correlating evaluations that should be independent.
    return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


def sample_features(
    sample_fn: SampleFn,
    n: int,
    extractor,
    *,
    seed: int = 0,
    classifier: Classifier | None = None,
    chunk_size: int = 500,
    batch_size: int = 50,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Draw ``n`` images from ``sample_fn`` in chunks; return (features, logits, info).

    Chunk ``i`` calls ``sample_fn(size, s_i)`` with ``s_i`` derived from ``seed`` and
    ``i``, so memory stays bounded and the result depends only on ``seed``. Logits
    are computed on the same images when a ``classifier`` is given, else None;
    features are None when ``extractor`` is None (IS only).
    """
    if n < 1:
        raise UserError(f"number of generated images must be >= 1, got {n}")
    feats, logits, shape = [], [], None
    starts = range(0, n, chunk_size)
    if progress:
        from tqdm import tqdm  # only needed for the bar

        starts = tqdm(starts, desc=f"generated features ({chunk_size} per step)", unit="step")
    for i, s in enumerate(starts):
        size = min(chunk_size, n - s)
        images = np.asarray(sample_fn(size, _chunk_seed(seed, i)))
        if (
            images.dtype != np.uint8
            or images.ndim != 4
            or images.shape[0] != size
            or images.shape[3] != 3
        ):
            raise ValueError(
                f"sample_fn({size}, seed) returned {images.dtype} "
                f"{images.shape}; expected uint8 ({size}, H, W, 3)"
            )
        shape = images.shape[1:3]
        if extractor is not None:
            feats.append(extractor.features(images, batch_size=batch_size))
        if classifier is not None:
            logits.append(np.asarray(classifier(images), dtype=np.float64))
    info = {
        "n": n,
        "seed": seed,
        "resolution": int(shape[0]),
        "extractor": getattr(extractor, "name", None),
    }
    return (
        np.concatenate(feats) if feats else None,
        np.concatenate(logits) if logits else None,
        info,
    )


def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    metrics = tuple(metrics)
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise UserError(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    return metrics


def score_features(
    real: np.ndarray | None,
    fake: np.ndarray | None,
    metrics: Iterable[str] = ("fid", "kid", "pr"),
    *,
    fake_logits: np.ndarray | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    is_splits: int = 10,
    seed: int = 0,
) -> dict:
    """Compute ``metrics`` (of fid, kid, pr, is) from feature arrays.

    ``is`` uses ``fake_logits`` only (raises :class:`UserError` with the reason IS is
    unavailable when they are None); the others compare ``real`` with ``fake``.
    Returns a flat dict: fid, kid_mean, kid_std (the spread over ``kid_subsets`` subsets of
    ``kid_subset_size``, both also returned), precision, recall, is_mean, is_std, n_real,
    n_fake -- only the keys of the metrics asked for.
    """
    metrics = _check_metrics(metrics)
    out: dict = {}
    if set(metrics) & {"fid", "kid", "pr"}:
        if real is None or fake is None:
            raise ValueError("fid/kid/pr need both real and generated features")
        out.update(n_real=len(real), n_fake=len(fake))
    if "fid" in metrics:
        out["fid"] = fid_from_features(real, fake)
    if "kid" in metrics:
        # Subsets of at most half the smaller set: subsets as large as the sets would all be
        # the same samples, and their spread a meaningless 0.
        size = max(2, min(kid_subset_size, len(real) // 2, len(fake) // 2))
        out["kid_mean"], out["kid_std"] = kid(
            real, fake, subsets=kid_subsets, subset_size=size, seed=seed
        )
        out["kid_subsets"], out["kid_subset_size"] = kid_subsets, size
    if "pr" in metrics:
        out["precision"], out["recall"] = precision_recall(real, fake, k=pr_k)
    if "is" in metrics:
        if fake_logits is None:
            raise UserError(IS_UNAVAILABLE)
        out["is_mean"], out["is_std"] = inception_score(fake_logits, splits=is_splits)
        out.setdefault("n_fake", len(fake_logits))
    return out


def evaluate_model(
    sample_fn: SampleFn,
    real_source: Source,
    extractor,
    *,
    n: int = 10_000,
    n_real: int | None = None,
    metrics: Iterable[str] = ("fid", "kid", "pr"),
    classifier: Classifier | None = None,
    dataset: str = "",
    model: str = "",
    resolution: int | None = None,
    seed: int = 0,
    cache_dir=None,
    progress: bool = False,
    **score_kwargs,
) -> dict:
    """Score ``n`` generated images against real images; one result row.

    ``n_real`` real images (default: all) are compared at ``resolution`` (default:
    the generator's output size). Asking for ``is`` without a ``classifier`` raises
    :class:`UserError` before any work is done. ``score_kwargs`` go to
    :func:`score_features`.
    """
    metrics = _check_metrics(metrics)
    if "is" in metrics and classifier is None:
        raise UserError(IS_UNAVAILABLE)
    if isinstance(real_source, (str, Path)) and not Path(real_source).exists():
        raise UserError(f"real images not found: {real_source}")  # before generating
    t0 = time.perf_counter()
    needs_features = bool(set(metrics) - {"is"})
    fake, logits, finfo = sample_features(
        sample_fn,
        n,
        extractor if needs_features else None,
        seed=seed,
        classifier=classifier if "is" in metrics else None,
        progress=progress,
    )
    resolution = resolution or finfo["resolution"]
    real, rinfo = (None, {})
    if needs_features:
        real, rinfo = image_source_features(
            real_source,
            extractor,
            n_real,
            cache_dir,
            resolution=resolution,
            seed=seed,
            progress=progress,
        )
    row = {
        "dataset": dataset or str(rinfo.get("source", "")),
        "model": model,
        "resolution": resolution,
        "extractor": getattr(extractor, "name", None),
        "real_cached": rinfo.get("cached"),
    }
    row.update(score_features(real, fake, metrics, fake_logits=logits, seed=seed, **score_kwargs))
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def evaluate_real(
    real_source: Source,
    extractor=None,
    *,
    classifier: Classifier | None = None,
    n: int | None = None,
    dataset: str = "",
    resolution: int | None = None,
    split_half: bool = False,
    seed: int = 0,
    cache_dir=None,
    progress: bool = False,
    **score_kwargs,
) -> dict:
    """The "real data" row: IS of real images, and optionally a split-half reference.

    With ``split_half`` FID and KID compare two disjoint random halves of the real
    features -- a floor for what a generator can reach at n/2 samples (FID is biased
    upwards at small n, so this floor is higher than at n). Needs ``extractor``.
    """
    row: dict = {"dataset": dataset, "model": REAL_DATA, "resolution": resolution}
    if classifier is not None:
        plan = plan_source(real_source, n, resolution, seed)
        logits = np.concatenate(
            [
                np.asarray(classifier(chunk), dtype=np.float64)
                for chunk in plan.chunks(progress, "real-image logits")
            ]
        )
        row["is_mean"], row["is_std"] = inception_score(
            logits, splits=score_kwargs.pop("is_splits", 10)
        )
        row.update(
            dataset=dataset or plan.info["source"], resolution=plan.resolution, n_real=len(logits)
        )
    if split_half:
        if extractor is None:
            raise ValueError("split_half needs an extractor")
        feats, info = image_source_features(
            real_source,
            extractor,
            n,
            cache_dir,
            resolution=resolution,
            seed=seed,
            progress=progress,
        )
        perm = np.random.default_rng(seed).permutation(len(feats))
        a, b = feats[perm[: len(feats) // 2]], feats[perm[len(feats) // 2 :]]
        row.update(score_features(a, b, ("fid", "kid"), seed=seed, **score_kwargs))
        row.update(
            dataset=row["dataset"] or info["source"],
            resolution=info["resolution"],
            n_real=len(feats),
            split_half=True,
        )
    return row
