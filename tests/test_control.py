"""Controllability metrics: a classifier that learns, agreement and composition error values."""

import numpy as np
import pytest

from landgan.metrics import control

COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]], np.uint8)


def coloured(labels: np.ndarray, seed: int = 0, size: int = 32) -> np.ndarray:
    """Noisy images whose dominant colour is their class."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-40, 40, (len(labels), size, size, 3))
    return np.clip(COLOURS[labels][:, None, None] + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clf():
    labels = np.random.default_rng(1).integers(0, 3, 300)
    return control.train_classifier(coloured(labels), labels, 3, steps=60, batch=32)


def test_holdout_split_is_a_seeded_partition():
    tr, ho = control.holdout_split(100, 0.2, seed=3)
    assert len(ho) == 20 and sorted(np.concatenate([tr, ho]).tolist()) == list(range(100))
    assert np.array_equal(ho, control.holdout_split(100, 0.2, seed=3)[1])
    assert not np.array_equal(ho, control.holdout_split(100, 0.2, seed=4)[1])


def test_classifier_learns_held_out_images(clf):
    labels = np.random.default_rng(2).integers(0, 3, 90)
    assert (control.classify(clf, coloured(labels, seed=9)) == labels).mean() > 0.9


def test_agreement_rewards_obedience_and_not_ignoring_the_condition(clf):
    names = ["red", "green", "blue"]
    obedient = lambda c, seed: coloured(np.full(30, int(np.argmax(c))), seed)
    stubborn = lambda c, seed: coloured(np.zeros(30, int), seed)  # always red
    assert control.class_agreement(obedient, clf, names, 30) == {n: 1.0 for n in names}
    got = control.class_agreement(stubborn, clf, names, 30)
    assert got["red"] == 1.0 and got["green"] == 0.0 and got["blue"] == 0.0


def test_composition_error_measures_the_gap():
    requests = np.random.default_rng(0).dirichlet(np.ones(5), 40).astype(np.float32)
    sample = lambda req, seed: np.zeros((len(req), 8, 8, 3), np.uint8)
    exact = lambda images: requests
    uniform = lambda images: np.full((len(images), 5), 0.2, np.float32)
    assert control.composition_error(sample, exact, requests)[0] == 0.0
    mae, per = control.composition_error(sample, uniform, requests)
    assert mae == pytest.approx(np.abs(requests - 0.2).mean(), rel=1e-6) and per.shape == (5,)
