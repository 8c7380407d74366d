"""Evaluation plumbing: sources, the feature cache, generators, IS callables, tables.

A cheap stand-in replaces Inception (colour statistics as "features"), so these
tests exercise the plumbing in milliseconds; tests/test_inception.py covers the net.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from landgan.data.dataset import ImageDataset, save_dataset
from landgan.errors import UserError
from landgan.metrics.evaluate import evaluate_model, evaluate_real, sample_features, score_features
from landgan.metrics.sources import default_cache_dir, image_source_features
from landgan.metrics.tables import REAL_DATA, format_table, table3_markdown


class CountingExtractor:
    """Per-channel means and stds over 4 image quadrants: 24-d features."""

    def __init__(self, name="stub-v1"):
        self.name, self.calls, self.images = name, 0, 0

    def features(self, images, batch_size=50, progress=False):
        self.calls += 1
        self.images += len(images)
        x = np.asarray(images, dtype=np.float64) / 255
        h, w = x.shape[1] // 2, x.shape[2] // 2
        quads = [x[:, :h, :w], x[:, :h, w:], x[:, h:, :w], x[:, h:, w:]]
        return np.concatenate(
            [np.concatenate([q.mean((1, 2)), q.std((1, 2))], 1) for q in quads], 1
        )


def colour_classifier(images):
    """A tiny "ImageNet classifier": logits from the mean colour (3 classes)."""
    return np.asarray(images, dtype=np.float64).mean((1, 2)) / 8


def sample_fn(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)


def test_dataset_features_cached_on_second_call(tmp_path, images):
    save_dataset(tmp_path / "ds", images, {"classes": []})
    ext = CountingExtractor()
    f1, info1 = image_source_features(tmp_path / "ds", ext, cache_dir=tmp_path / "cache")
    f2, info2 = image_source_features(tmp_path / "ds", ext, cache_dir=tmp_path / "cache")
    assert ext.calls == 1 and not info1["cached"] and info2["cached"]
    assert np.allclose(f1, f2, atol=1e-6) and f2.dtype == np.float64
    assert info2["kind"] == "dataset" and info2["n"] == 40 and info2["resolution"] == 16
    # Any change of subset, resolution, extractor or content is a different entry.
    image_source_features(tmp_path / "ds", ext, n=20, cache_dir=tmp_path / "cache")
    image_source_features(tmp_path / "ds", ext, resolution=8, cache_dir=tmp_path / "cache")
    image_source_features(tmp_path / "ds", CountingExtractor("other"), cache_dir=tmp_path / "cache")
    assert ext.calls == 3
    save_dataset(tmp_path / "ds", images[::-1], {"classes": []})  # same size, new content
    _, info = image_source_features(tmp_path / "ds", ext, cache_dir=tmp_path / "cache")
    assert not info["cached"]


def test_subset_is_seeded_and_random(images):
    ext = CountingExtractor()
    a, _ = image_source_features(images, ext, n=10, seed=1, use_cache=False)
    b, _ = image_source_features(images, ext, n=10, seed=1, use_cache=False)
    c, _ = image_source_features(images, ext, n=10, seed=2, use_cache=False)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a, ext.features(images[:10]))


def test_default_cache_dir_follows_env(tmp_path, monkeypatch, images):
    monkeypatch.setenv("LANDGAN_CACHE", str(tmp_path / "lc"))
    assert default_cache_dir() == tmp_path / "lc" / "features"
    _, info = image_source_features(ImageDataset(images=images, name="mem"), CountingExtractor())
    assert info["cache_file"].startswith(str(tmp_path / "lc" / "features"))


def test_plain_folder_source(tmp_path):
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "imgs" / "a.png")
    Image.new("L", (30, 30), 128).save(tmp_path / "imgs" / "sub" / "b.jpg")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match="resolution"):
        image_source_features(tmp_path / "imgs", CountingExtractor(), cache_dir=tmp_path / "c")
    f, info = image_source_features(
        tmp_path / "imgs", CountingExtractor(), resolution=8, cache_dir=tmp_path / "c"
    )
    assert f.shape == (2, 24) and info["kind"] == "folder"
    assert np.allclose(f[0, :3], [1, 0, 0]) and np.allclose(f[1, :3], 128 / 255, atol=0.01)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        image_source_features(tmp_path / "empty", CountingExtractor(), resolution=8)
    with pytest.raises(UserError, match="not a prepared dataset or image folder"):
        image_source_features(tmp_path / "missing", CountingExtractor())


def test_sample_features_chunks_and_seeds():
    ext = CountingExtractor()
    f, logits, info = sample_features(
        sample_fn, 25, ext, seed=3, chunk_size=10, classifier=colour_classifier
    )
    assert f.shape == (25, 24) and logits.shape == (25, 3) and ext.calls == 3
    again, _, _ = sample_features(sample_fn, 25, CountingExtractor(), seed=3, chunk_size=10)
    other, _, _ = sample_features(sample_fn, 25, CountingExtractor(), seed=4, chunk_size=10)
    assert np.array_equal(f, again) and not np.array_equal(f, other)
    assert info["resolution"] == 16
    with pytest.raises(ValueError, match="uint8"):
        sample_features(lambda n, s: np.zeros((n, 8, 8, 3)), 2, ext)


def test_evaluate_model_row_and_is_path(tmp_path, images):
    save_dataset(tmp_path / "ds", images, {"classes": []})
    row = evaluate_model(
        sample_fn,
        tmp_path / "ds",
        CountingExtractor(),
        n=30,
        metrics=("fid", "kid", "pr", "is"),
        classifier=colour_classifier,
        dataset="alps",
        model="dcgan",
        cache_dir=tmp_path / "c",
        kid_subset_size=20,
        kid_subsets=5,
        is_splits=3,
    )
    assert row["dataset"] == "alps" and row["resolution"] == 16
    assert row["n_real"] == 40 and row["n_fake"] == 30
    for key in ("fid", "kid_mean", "kid_std", "precision", "recall", "is_mean", "is_std"):
        assert np.isfinite(row[key]), key
    assert row["is_mean"] >= 1.0


def test_is_without_classifier_says_why(images):
    with pytest.raises(UserError, match="IS unavailable: needs --is-weights PATH"):
        evaluate_model(sample_fn, images, CountingExtractor(), n=4, metrics=("fid", "is"))
    with pytest.raises(UserError, match="IS unavailable"):
        score_features(None, None, ("is",))
    with pytest.raises(UserError, match="unknown metric"):
        score_features(None, None, ("fidd",))


@pytest.mark.filterwarnings("ignore:FID from 20 samples")  # halves of 40 < 24 dims: expected
def test_evaluate_real_row(tmp_path, images):
    row = evaluate_real(
        images,
        CountingExtractor(),
        classifier=colour_classifier,
        split_half=True,
        dataset="alps",
        is_splits=2,
        kid_subset_size=10,
        kid_subsets=3,
        cache_dir=tmp_path,
    )
    assert row["model"] == REAL_DATA and row["n_real"] == 40 and row["is_mean"] >= 1
    assert row["fid"] >= 0 and row["split_half"]


def test_tables():
    rows = [
        {
            "dataset": "alps",
            "model": "dcgan",
            "resolution": 64,
            "fid": 41.234,
            "kid_mean": 0.0312,
            "kid_std": 0.0011,
            "n_real": 1000,
            "n_fake": 1000,
        },
        {"dataset": "alps", "model": REAL_DATA, "resolution": 64, "is_mean": 3.5, "is_std": 0.25},
        {
            "dataset": "coast",
            "model": "dcgan",
            "resolution": 64,
            "fid": 12.0,
            "is_mean": 2.0,
            "is_std": 0.1,
        },
        {"dataset": "coast", "model": "stackgan", "resolution": 128, "fid": 9.5},
    ]
    screen = format_table(rows)
    assert "41.23" in screen and "0.0312 \u00b1 0.0011" in screen and len(screen.splitlines()) == 6
    md = table3_markdown(rows).splitlines()
    assert md[0] == "| dataset | dcgan @ 64 | stackgan @ 128 | real data |"
    assert md[2].startswith(
        "| alps | IS \u2014<br>FID 41.23<br>KID 0.0312 \u00b1 0.0011 | \u2014 |"
    )
    assert "IS 3.50 \u00b1 0.25<br>FID \u2014<br>KID \u2014" in md[2]
    assert md[3].startswith("| coast | IS 2.00 \u00b1 0.10<br>FID 12.00")
    assert format_table([]) == "(no results)"


def test_is_only_needs_no_features(images):
    ext = CountingExtractor()
    row = evaluate_model(
        sample_fn, images, ext, n=20, metrics=("is",), classifier=colour_classifier, is_splits=2
    )
    assert ext.calls == 0 and row["n_fake"] == 20 and row["is_mean"] >= 1
    with pytest.raises(UserError, match="not found"):
        evaluate_model(sample_fn, "/nonexistent/ds", ext, n=4)
