"""FastGAN inside landgan: its training step, exact resume, conditioning, export, the guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import blobs
from landgan.checkpoint import list_checkpoints, load_checkpoint
from landgan.cli import main
from landgan.config import TrainConfig
from landgan.data.dataset import save_dataset
from landgan.errors import UserError
from landgan.images import to_model
from landgan.sampling import load_generator, sample_images
from landgan.train import TRAINERS
from landgan.train.loop import train

TINY = dict(
    model="fastgan",
    resolution=64,
    batch_size=8,
    g_width=8,
    d_width=8,
    z_dim=16,
    sample_every=0,
    ckpt_every=0,
    log_every=1,
)


@pytest.fixture(scope="module")
def blobs64(tmp_path_factory):
    return save_dataset(
        tmp_path_factory.mktemp("fg") / "blobs64", blobs(32, 64), {"source": "test"}
    )


def _cfg(out, data, **kw):
    return TrainConfig.for_model(**{**TINY, "data": str(data), "out": str(out), **kw})


def test_fastgan_is_the_default_and_report_still_the_reports_dcgan():
    cfg = TrainConfig.for_model()
    assert cfg == TrainConfig() and cfg.model == "fastgan"
    assert cfg.loss == "hinge" and cfg.diffaug == "color,translation" and cfg.g_width == 32
    assert TRAINERS["fastgan"].__name__ == "FastGANTrainer"
    report = TrainConfig.for_model(preset="report")
    assert (
        report.model,
        report.loss,
        report.g_width,
        report.d_width,
        report.z_dim,
        report.batch_size,
        report.lr_g,
        report.beta1,
    ) == ("dcgan4", "bce", 64, 64, 100, 64, 2e-4, 0.5)
    assert (report.amp, report.ema_kimg, report.diffaug) == ("off", 0.0, "")


def test_reconstruction_is_trained_and_the_gap_opens(blobs64):
    """D learns to reconstruct reals (its L1 falls) and to tell them from fakes."""
    cfg = _cfg("unused", blobs64, lr_d=1e-3, diffaug="").validated()
    tr = TRAINERS["fastgan"](cfg, torch.device("cpu"))
    real = to_model(torch.from_numpy(blobs(8, 64, seed=3)))
    stats = [tr.train_step(lambda i: real) for _ in range(25)]
    recon = [float(s["loss/recon"]) for s in stats]
    gap = [float(s["d/real"] - s["d/fake"]) for s in stats]
    assert np.mean(recon[-5:]) < 0.8 * np.mean(recon[:5])
    assert np.mean(gap[-5:]) > np.mean(gap[:5]) + 0.1


def test_resume_is_exact(tmp_path, blobs64):
    one = train(_cfg(tmp_path / "a", blobs64, steps=4), progress=False)
    two = train(_cfg(tmp_path / "b", blobs64, steps=2), progress=False)
    train(TrainConfig(), resume=str(two), overrides={"steps": 4}, progress=False)
    a = load_checkpoint(list_checkpoints(one)[-1])["models"]
    b = load_checkpoint(list_checkpoints(two)[-1])["models"]
    for net in ("G", "D", "G_ema"):
        for name, t in a[net].items():
            assert torch.equal(t, b[net][name]), f"{net}.{name} differs after resume"


@pytest.mark.slow
@pytest.mark.parametrize("cond_bn", [False, True])
def test_conditional_fastgan_obeys_its_class(tmp_path, cond_bn):
    """Class 0 is dark scenes, class 1 bright ones; asked for each, G mostly complies."""
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 60, (48, 64, 64, 3), dtype=np.uint8)
    bright = rng.integers(190, 255, (48, 64, 64, 3), dtype=np.uint8)
    ds = save_dataset(
        tmp_path / "ds",
        np.concatenate([dark, bright]),
        {"source": "test", "classes": ["dark", "bright"], "labels": [0] * 48 + [1] * 48},
    )
    # No colour augmentation: brightness is the very thing the condition must control.
    run = train(
        _cfg(
            tmp_path / "runs",
            ds,
            steps=80,
            conditional=True,
            lr_g=1e-3,
            lr_d=1e-3,
            diffaug="",
            batch_size=16,
            cond_bn=cond_bn,
        ),
        progress=False,
    )
    G, cfg = load_generator(run)
    assert cfg.cond_bn == cond_bn and (G.cond_bn is not None) == cond_bn
    means = [
        sample_images(G, cfg, 16, seed=1, condition=torch.eye(2)[k]).mean((1, 2, 3))
        for k in range(2)
    ]
    threshold = (means[0].mean() + means[1].mean()) / 2
    accuracy = ((means[0] < threshold).mean() + (means[1] >= threshold).mean()) / 2
    assert means[1].mean() > means[0].mean() + 20 and accuracy > 0.75


def test_export_matches_pytorch(tmp_path, blobs64):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    run = train(_cfg(tmp_path, blobs64, steps=1), progress=False)
    assert main(["export", str(run), "--out", str(tmp_path / "g.onnx")]) == 0
    G, cfg = load_generator(run)
    z = torch.randn(3, cfg.z_dim)
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"z": z.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - G(z).numpy()).max() < 1e-4


def test_guard_rolls_back_a_diverged_fastgan(tmp_path, blobs64, monkeypatch):
    """A NaN in D's reconstruction loss is caught like any other non-finite loss."""
    from landgan.train import fastgan as trainer_module

    original = trainer_module.FastGANTrainer._d_real
    calls = {"n": 0}

    def poisoned(self, x):
        logits, extra = original(self, x)
        calls["n"] += 1
        if calls["n"] == 3:
            extra = {"recon": extra["recon"] * float("nan")}
        return logits, extra

    monkeypatch.setattr(trainer_module.FastGANTrainer, "_d_real", poisoned)
    run = train(_cfg(tmp_path, blobs64, steps=4), progress=False)
    assert "rolled back" in (run / "log.txt").read_text()


def test_generate_cli_and_ui_engine_serve_a_conditional_fastgan(tmp_path):
    from landgan.ui.engine import Engine  # the UI package is the top layer: only this test needs it

    run = train(
        _cfg(tmp_path / "runs", "synthetic", synthetic_count=16, steps=1, conditional=True),
        progress=False,
    )
    assert (
        main(
            [
                "generate",
                str(run),
                "--composition",
                "sky=0.5,water=0.5",
                "--n",
                "4",
                "--out",
                str(tmp_path / "g.png"),
            ]
        )
        == 0
    )
    eng = Engine(tmp_path / "runs", scratch=tmp_path / "ui")
    (name,) = eng.checkpoints()
    images, _ = eng.generate(name, 2, 0, None, torch.tensor([0.5, 0, 0, 0.5, 0]))
    assert len(images) == 2 and images[0].shape == (64, 64, 3)
    assert eng.interpolate(name, (1, 2), (torch.full((5,), 0.2),) * 2, 3, None).shape == (
        3,
        64,
        64,
        3,
    )


def test_cond_bn_is_refused_where_no_model_has_it_and_off_for_old_configs():
    with pytest.raises(UserError, match="no conditional BatchNorm"):
        TrainConfig.for_model(model="dcgan4", cond_bn=True).validated()
    old = {k: v for k, v in TrainConfig(conditional=True).to_dict().items() if k != "cond_bn"}
    assert TrainConfig.from_dict(old).cond_bn is False  # checkpoints from before it
