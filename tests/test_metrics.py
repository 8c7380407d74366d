"""FID, KID, precision/recall and IS against closed forms and independent code."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from landgan.errors import UserError
from landgan.metrics.scores import (
    fid,
    fid_from_features,
    inception_score,
    kid,
    knn_radii,
    mmd2_unbiased,
    precision_recall,
)


def reference_fid(f1, f2, eps=1e-6):
    """pytorch-fid's formula (scipy sqrtm of S1 S2, eps offset when singular)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def reference_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b/d + 1)^3, written out as explicit sums."""
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---- FID -------------------------------------------------------------------


def test_fid_of_a_set_with_itself_is_zero(rng):
    f = rng.normal(size=(300, 16))
    assert abs(fid_from_features(f, f)) < 1e-8


def test_fid_closed_form_for_diagonal_gaussians(rng):
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    closed = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert fid(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed, rel=1e-10)
    # The same from samples, up to sampling error.
    f1 = mu1 + rng.normal(size=(40_000, 6)) * np.sqrt(s1)
    f2 = mu2 + rng.normal(size=(40_000, 6)) * np.sqrt(s2)
    assert fid_from_features(f1, f2) == pytest.approx(closed, rel=0.03)


def test_fid_symmetric(rng):
    a, b = rng.normal(size=(200, 12)), rng.gamma(2.0, size=(150, 12))
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-9)


@pytest.mark.parametrize("n1,n2,d", [(400, 300, 10), (30, 40, 48)])
def test_fid_agrees_with_scipy_sqrtm_reference(rng, n1, n2, d):
    mix = rng.normal(size=(d, d))
    f1, f2 = rng.normal(size=(n1, d)) @ mix, rng.normal(size=(n2, d)) @ mix * 1.3 + 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the few-samples bias warning (second case)
        ours = fid_from_features(f1, f2)
    assert ours == pytest.approx(reference_fid(f1, f2), rel=1e-3)


def test_fid_sample_count_checks(rng):
    with pytest.raises(UserError, match="at least 2"):
        fid_from_features(rng.normal(size=(1, 4)), rng.normal(size=(10, 4)))
    with pytest.warns(UserWarning, match="biased"):
        fid_from_features(rng.normal(size=(10, 64)), rng.normal(size=(10, 64)))


# ---- KID -------------------------------------------------------------------


def test_mmd2_matches_explicit_sums(rng):
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(25, 5)) + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(reference_mmd2(x, y), rel=1e-3)


def test_kid_with_whole_sets_matches_reference(rng):
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) * 1.5
    mean, std = kid(x, y, subsets=3, subset_size=1000)  # clipped to 30: every subset is all
    assert mean == pytest.approx(reference_mmd2(x, y), rel=1e-3) and std < 1e-12


def test_kid_is_unbiased(rng):
    """Small samples of one distribution: estimates average to 0 (FID's would not)."""
    est = [mmd2_unbiased(rng.normal(size=(20, 8)), rng.normal(size=(20, 8))) for _ in range(400)]
    assert abs(np.mean(est)) < 3 * np.std(est) / np.sqrt(len(est))


def test_kid_separates_distributions(rng):
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 1.0
    mean, std = kid(a, b, subsets=20, subset_size=50, seed=1)
    assert mean > 3 * std > 0
    assert kid(a, b, subsets=20, subset_size=50, seed=1) == (mean, std)  # seeded


# ---- precision / recall ----------------------------------------------------------


def test_knn_radii_brute_force(rng):
    f = rng.normal(size=(50, 3))
    d = np.sort(cdist(f, f, "sqeuclidean"), axis=1)
    assert np.allclose(knn_radii(f, 3, batch_size=7), d[:, 3])


def test_precision_recall_identical_and_far_apart(rng):
    real = rng.normal(size=(120, 6))
    assert precision_recall(real, real.copy(), k=3, batch_size=50) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0, k=3) == (0.0, 0.0)


def test_precision_recall_mode_dropping(rng):
    """Fakes covering one of two real clusters: precision high, recall about half."""
    real = np.concatenate([rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 20])
    fake = rng.normal(size=(200, 4))
    p, r = precision_recall(real, fake)
    assert p > 0.9 and 0.4 < r < 0.6


# ---- IS ------------------------------------------------------------------------


def test_is_uniform_predictions_is_one():
    mean, std = inception_score(np.full((100, 10), 0.1), splits=5)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("classes", [2, 7, 10])
def test_is_confident_even_predictions_is_class_count(classes):
    probs = np.eye(classes)[np.arange(classes * 40) % classes]
    assert inception_score(probs, splits=4)[0] == pytest.approx(classes)


def test_is_accepts_logits(rng):
    logits = rng.normal(size=(60, 5)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert inception_score(logits, splits=3) == pytest.approx(inception_score(probs, splits=3))
    assert inception_score(logits, splits=3, from_logits=True) == pytest.approx(
        inception_score(probs, splits=3)
    )


def test_is_too_few_samples():
    with pytest.raises(UserError, match="10 splits"):
        inception_score(np.full((5, 3), 1 / 3), splits=10)
