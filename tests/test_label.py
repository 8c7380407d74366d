"""The composition estimator: learns the procedural scenes, and labels a dataset safely."""

import numpy as np
import pytest

from landgan import label
from landgan.cli import main
from landgan.data.dataset import open_dataset, save_dataset
from landgan.data.synthetic import render_seeds
from landgan.train.loop import train

from conftest import blobs, dcgan4_config


@pytest.fixture(scope="module")
def quick_net():
    return label.train_estimator(steps=60, batch=16, pool=256)


@pytest.mark.slow
def test_estimator_learns_procedural_compositions(quick_net):
    images, truth = render_seeds(range(9_000_000, 9_000_064), 64)
    untrained = label.estimate(label.PixelClassifier().eval(), images)
    est = label.estimate(quick_net, images)
    assert np.allclose(est.sum(1), 1, atol=1e-5)
    # A short training already halves the error of an untrained net (the full one reaches
    # about 0.02; see benchmarks/label_accuracy.py).
    assert np.abs(est - truth).mean() < 0.5 * np.abs(untrained - truth).mean()


def test_label_verb_writes_conditions_used_by_conditional_training(
    tmp_path, quick_net, monkeypatch, capsys
):
    monkeypatch.setattr(label, "load_estimator", lambda cache_dir=None: quick_net)
    ds = save_dataset(tmp_path / "ds", blobs(32, 32), {"source": "test"})
    assert main(["label", str(ds)]) == 0
    assert "mean composition: sky" in capsys.readouterr().out
    data = open_dataset(ds)
    assert data.conditions.shape == (32, 5) and np.allclose(data.conditions.sum(1), 1, atol=1e-3)
    assert main(["label", str(ds)]) == 2  # conditions exist: no silent overwrite
    assert "--force" in capsys.readouterr().err
    assert main(["label", str(ds), "--force", "--estimator", "net"]) == 0
    assert open_dataset(ds).meta["condition_kind"] == "composition (estimated: net)"
    run = train(
        dcgan4_config(
            data=str(ds),
            out=str(tmp_path / "runs"),
            resolution=32,
            batch_size=16,
            g_width=8,
            d_width=8,
            steps=1,
            conditional=True,
            sample_every=0,
        ),
        progress=False,
    )
    assert (
        main(
            [
                "generate",
                str(run),
                "--n",
                "1",
                "--composition",
                "sky=0.5,water=0.5",
                "--out",
                str(tmp_path / "g.png"),
            ]
        )
        == 0
    )


def _scene(rows: dict[str, np.ndarray], size: int = 64) -> np.ndarray:
    """A 64 px uint8 image stacked from horizontal bands of given pixels."""
    return np.concatenate(list(rows.values()), 0)[None].astype(np.uint8)


def test_rules_tell_waves_from_ice_and_forest(capsys):
    from landgan.label_rules import ORDER, rule_estimate

    rng = np.random.default_rng(0)
    sky = np.full((20, 64, 3), (90, 140, 220))
    rock = rng.integers(70, 120, (24, 64, 1)).repeat(3, 2)  # grey, isotropic texture
    waves = np.tile(np.where(np.arange(20) % 2, 60, 95)[:, None, None], (1, 64, 1)) * [
        0.5,
        0.8,
        1.6,
    ]
    ice = rng.integers(200, 255, (20, 64, 1)).repeat(3, 2) * [0.92, 0.97, 1.0]  # bright speckle
    green = np.full((20, 64, 3), (40, 120, 50))
    frac = dict(zip(ORDER, rule_estimate(_scene({"s": sky, "r": rock, "w": waves}))[0]))
    assert abs(frac["sky"] - 20 / 64) < 0.02 and abs(frac["water"] - 20 / 64) < 0.02
    assert abs(frac["mountain"] - 24 / 64) < 0.03
    frac = dict(zip(ORDER, rule_estimate(_scene({"s": sky, "r": rock, "i": ice}))[0]))
    # a few rows at the rock/ice edge read as horizontal texture
    assert abs(frac["snow"] - 20 / 64) < 0.03 and frac["water"] < 0.06
    frac = dict(zip(ORDER, rule_estimate(_scene({"s": sky, "r": rock, "g": green}))[0]))
    assert abs(frac["vegetation"] - 20 / 64) < 0.02


def test_rules_rank_real_photo_categories():
    """Sea photos hold the most water, forest the most vegetation, glacier the most snow/ice."""
    from PIL import Image

    from conftest import shared_data
    from landgan.label_rules import ORDER, rule_estimate

    root = shared_data("landscapes")
    means = {}
    for cat in ("forest", "glacier", "mountain", "sea"):
        files = sorted((root / cat).iterdir())[:300]
        imgs = np.stack(
            [
                np.asarray(Image.open(f).convert("RGB").resize((64, 64), Image.BILINEAR))
                for f in files
            ]
        )
        means[cat] = dict(zip(ORDER, rule_estimate(imgs).mean(0)))
    for element, cat in (("water", "sea"), ("vegetation", "forest"), ("snow", "glacier")):
        assert max(means, key=lambda c: means[c][element]) == cat, (element, means)
