"""Sample-quality scores computed from feature or prediction arrays.

Pure functions on numpy arrays -- no network, no I/O -- so they are cheap to test
against closed forms and independent implementations:

* :func:`fid` / :func:`fid_from_features` -- Frechet Inception Distance (Heusel 2017);
* :func:`kid` -- Kernel Inception Distance, unbiased MMD^2 (Binkowski 2018);
* :func:`precision_recall` -- improved precision and recall (Kynkaanniemi 2019);
* :func:`inception_score` -- Inception Score (Salimans 2016).

Everything is computed in float64.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import rel_entr, softmax

from landgan.errors import UserError


def _as_features(f: np.ndarray, what: str, min_n: int = 2) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{what}: expected a 2-d (samples, dims) array, got shape {f.shape}")
    if len(f) < min_n:
        raise UserError(f"{what}: {len(f)} sample(s); at least {min_n} are needed")
    if not np.isfinite(f).all():
        raise UserError(f"{what}: features contain NaN or infinity")
    return f


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues < 0 -> 0)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``. The trace of the matrix root is
    taken as ``tr((R S2 R)^(1/2))`` with ``R = S1^(1/2)``: the same value (the two
    matrices are similar), but ``R S2 R`` is symmetric positive semi-definite, so
    symmetric eigendecompositions give it without complex parts and without the
    eps-offset retries that ``scipy.linalg.sqrtm(S1 @ S2)`` needs when the product
    is singular (fewer samples than dimensions). The result is symmetric in its two
    sides up to rounding and never negative.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"shape mismatch: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}"
        )
    # Symmetrise: covariances from np.cov are symmetric only up to rounding.
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    r = _psd_sqrt(s1)
    eig = np.linalg.eigvalsh(r @ s2 @ r)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean
    return float(max(value, 0.0))


def feature_stats(f: np.ndarray, what: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of a (samples, dims) feature array."""
    f = _as_features(f, what)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID between two feature sets, each (samples, dims).

    Raises :class:`UserError` below 2 samples. Warns when a set has fewer samples
    than dimensions: its covariance is then singular and FID is biased upwards
    (it falls as N grows; compare FIDs only at equal sample counts, 10k-50k usual).
    """
    f1, f2 = _as_features(f1, "first feature set"), _as_features(f2, "second feature set")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature dims differ: {f1.shape[1]} vs {f2.shape[1]}")
    n_min, dim = min(len(f1), len(f2)), f1.shape[1]
    if n_min < dim:
        warnings.warn(
            f"FID from {n_min} samples < {dim} feature dims: the covariance is "
            "singular and FID is strongly biased upwards; compare only FIDs "
            "computed from equal sample counts",
            stacklevel=2,
        )
    return fid(*feature_stats(f1), *feature_stats(f2))


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3, the kernel of the KID paper."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 estimate (a U-statistic) with the cubic polynomial kernel.

    Within-set sums leave out the diagonal (k(x_i, x_i)), which is what makes the
    estimate unbiased: its expectation is 0 when x and y share a distribution.
    """
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid(
    f1: np.ndarray, f2: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of unbiased MMD^2 over random subsets.

    Each of ``subsets`` rounds draws ``subset_size`` samples without replacement from
    each set (clipped to the smaller set) and computes :func:`mmd2_unbiased`. The
    mean is unbiased at any sample count, unlike FID; ``std`` is the spread of the
    subset estimates (ddof 0, as in torch-fidelity), not a standard error.
    """
    f1, f2 = _as_features(f1, "first feature set"), _as_features(f2, "second feature set")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature dims differ: {f1.shape[1]} vs {f2.shape[1]}")
    if subsets < 1:
        raise ValueError("subsets must be >= 1")
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise UserError("KID needs subsets of at least 2 samples")
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(
            f1[rng.choice(len(f1), m, replace=False)], f2[rng.choice(len(f2), m, replace=False)]
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows of a and rows of b (>= 0)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0, out=d)


def knn_radii(f: np.ndarray, k: int, batch_size: int = 1024) -> np.ndarray:
    """Squared distance from each row of ``f`` to its k-th nearest other row."""
    out = np.empty(len(f))
    for s in range(0, len(f), batch_size):
        d = _sq_dists(f[s : s + batch_size], f)
        # Column k after partitioning: column 0 is the point itself (distance 0).
        out[s : s + batch_size] = np.partition(d, k, axis=1)[:, k]
    return out


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, batch_size: int) -> float:
    """Fraction of ``points`` inside at least one ball (centre, radius^2)."""
    inside = 0
    for s in range(0, len(points), batch_size):
        d = _sq_dists(points[s : s + batch_size], centres)
        inside += int((d <= radii[None, :]).any(axis=1).sum())
    return inside / len(points)


def precision_recall(
    real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 3, batch_size: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    Each set's manifold is the union of balls around its samples reaching their k-th
    nearest neighbour. Precision: share of fake samples inside the real manifold
    (fidelity). Recall: share of real samples inside the fake manifold (coverage).
    Distances are computed ``batch_size`` rows at a time (memory ~ batch x N).
    """
    real = _as_features(real_feats, "real features", min_n=k + 1)
    fake = _as_features(fake_feats, "generated features", min_n=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dims differ: {real.shape[1]} vs {fake.shape[1]}")
    if k < 1:
        raise ValueError("k must be >= 1")
    precision = _coverage(fake, real, knn_radii(real, k, batch_size), batch_size)
    recall = _coverage(real, fake, knn_radii(fake, k, batch_size), batch_size)
    return precision, recall


def _is_probabilities(p: np.ndarray) -> bool:
    return bool((p >= 0).all() and np.allclose(p.sum(axis=1), 1.0, atol=1e-4))


def inception_score(
    probs_or_logits: np.ndarray, splits: int = 10, from_logits: bool | None = None
) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): (mean, std) over ``splits`` parts.

    Per part: ``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the part's mean
    prediction. Uniform predictions give 1; confident predictions spread evenly over
    C classes give C. ``from_logits=None`` treats rows that are non-negative and sum
    to 1 as probabilities and anything else as logits (softmax applied).
    """
    p = np.asarray(probs_or_logits, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"expected (samples, classes) predictions, got shape {p.shape}")
    if not 1 <= splits <= len(p):
        raise UserError(
            f"Inception Score with {splits} splits needs at least {splits} samples, got {len(p)}"
        )
    if from_logits is None:
        from_logits = not _is_probabilities(p)
    if from_logits:
        p = softmax(p, axis=1)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        # rel_entr(p, q) = p log(p/q), 0 where p == 0: one-hot rows are fine.
        scores.append(np.exp(rel_entr(part, py).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
