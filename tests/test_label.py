"""The composition estimator: learns the procedural scenes, and labels a dataset safely."""

import numpy as np
import pytest

from landgan import label
from landgan.cli import main
from landgan.config import TrainConfig
from landgan.data.dataset import open_dataset, save_dataset
from landgan.data.synthetic import render_seeds
from landgan.train.loop import train

from conftest import blobs


@pytest.fixture(scope="module")
def quick_net():
    return label.train_estimator(steps=60, batch=16, pool=256)


def test_estimator_learns_procedural_compositions(quick_net):
    images, truth = render_seeds(range(9_000_000, 9_000_064), 64)
    untrained = label.estimate(label.PixelClassifier().eval(), images)
    est = label.estimate(quick_net, images)
    assert np.allclose(est.sum(1), 1, atol=1e-5)
    # A short training already halves the error of an untrained net (the full one reaches
    # about 0.02; see benchmarks/label_accuracy.py).
    assert np.abs(est - truth).mean() < 0.5 * np.abs(untrained - truth).mean()


def test_label_verb_writes_conditions_used_by_conditional_training(tmp_path, quick_net,
                                                                   monkeypatch, capsys):
    monkeypatch.setattr(label, "load_estimator", lambda cache_dir=None: quick_net)
    ds = save_dataset(tmp_path / "ds", blobs(32, 32), {"source": "test"})
    assert main(["label", str(ds)]) == 0
    assert "mean composition: sky" in capsys.readouterr().out
    data = open_dataset(ds)
    assert data.conditions.shape == (32, 5) and np.allclose(data.conditions.sum(1), 1, atol=1e-3)
    assert main(["label", str(ds)]) == 2  # conditions exist: no silent overwrite
    assert "--force" in capsys.readouterr().err
    run = train(TrainConfig(data=str(ds), out=str(tmp_path / "runs"), resolution=32, batch_size=16,
                            g_width=8, d_width=8, steps=1, conditional=True, sample_every=0),
                progress=False)
    assert main(["generate", str(run), "--n", "1", "--composition", "sky=0.5,water=0.5",
                 "--out", str(tmp_path / "g.png")]) == 0
