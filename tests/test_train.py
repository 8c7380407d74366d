"""Training: losses move, samples change, checkpoints resume exactly."""

import json

import numpy as np
import pytest
import torch

from conftest import dcgan4_config
from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.sampling import load_generator, sample_images
from landgan.checkpoint import list_checkpoints, load_checkpoint
from landgan.train.loop import train


def _cfg(out, data, **kw):
    base = dict(
        data=str(data),
        out=str(out),
        resolution=32,
        batch_size=16,
        g_width=16,
        d_width=16,
        steps=12,
        sample_every=0,
        ckpt_every=0,
        log_every=4,
    )
    return dcgan4_config(**{**base, **kw})


def _weights(run, step):
    ckpt = [p for p in list_checkpoints(run) if p.name == f"step_{step:07d}.pt"][0]
    return load_checkpoint(ckpt)["models"]


def test_resume_is_exact(tmp_path, tiny_dataset):
    one = train(_cfg(tmp_path / "a", tiny_dataset, steps=10), progress=False)
    two = train(_cfg(tmp_path / "b", tiny_dataset, steps=4), progress=False)
    two_again = train(
        TrainConfig(out=str(tmp_path / "b")),
        resume=str(two),
        overrides={"steps": 10},
        progress=False,
    )
    assert two_again == two
    a, b = _weights(one, 10), _weights(two, 10)
    for net in ("G", "D", "G_ema"):
        for name, t in a[net].items():
            assert torch.equal(t, b[net][name]), f"{net}.{name} differs after resume"


def test_resume_refuses_changing_the_model(tmp_path, tiny_dataset):
    run = train(_cfg(tmp_path, tiny_dataset, steps=2), progress=False)
    with pytest.raises(UserError, match="cannot change when resuming"):
        train(TrainConfig(), resume=str(run), overrides={"lr_g": 1.0}, progress=False)


def test_run_folder_contents(tmp_path, tiny_dataset):
    run = train(_cfg(tmp_path, tiny_dataset, steps=6, sample_every=3, ckpt_every=3), progress=False)
    assert run.name == "00000-dcgan4-tiny-32"
    assert json.loads((run / "config.json").read_text())["steps"] == 6
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_0000003.png",
        "step_0000006.png",
    ]
    assert [p.name for p in list_checkpoints(run)] == ["step_0000003.pt", "step_0000006.pt"]
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    ckpt = load_checkpoint(list_checkpoints(run)[-1])
    assert ckpt["config"]["resolution"] == 32 and ckpt["step"] == 6
    assert {"G", "D", "G_ema"} <= set(ckpt["models"]) and {"G", "D"} <= set(ckpt["optims"])
    assert "step 6 " in (run / "log.txt").read_text()
    assert train(_cfg(tmp_path, tiny_dataset, steps=1), progress=False).name.startswith("00001-")


def test_training_on_synthetic_moves_losses_and_samples(tmp_path):
    cfg = _cfg(tmp_path, "synthetic", synthetic_count=256, steps=40, log_every=1, ema_kimg=0.05)
    untrained_dir = train(_cfg(tmp_path, "synthetic", synthetic_count=256, steps=1), progress=False)
    run = train(cfg, progress=False)
    lines = [l for l in (run / "log.txt").read_text().splitlines() if l.startswith("step ")]
    d_losses = [float(l.split("loss/d=")[1].split()[0]) for l in lines]
    g_losses = [float(l.split("loss/g=")[1].split()[0]) for l in lines]
    assert len(d_losses) == 40
    assert np.std(d_losses) > 0.01 and np.std(g_losses) > 0.01
    # The discriminator learns to separate real from fake: its loss falls below chance (2 ln 2).
    assert min(d_losses[5:]) < 2 * np.log(2) - 0.1
    G0, c0 = load_generator(untrained_dir)
    G1, c1 = load_generator(run)
    before, after = sample_images(G0, c0, 16, seed=1), sample_images(G1, c1, 16, seed=1)
    assert np.abs(before.astype(int) - after.astype(int)).mean() > 5


def test_bad_data_creates_nothing(tmp_path):
    with pytest.raises(UserError, match="dataset not found"):
        train(_cfg(tmp_path / "runs", tmp_path / "missing"), progress=False)
    assert not (tmp_path / "runs").exists()


def test_resolution_mismatch(tmp_path, tiny_dataset):
    with pytest.raises(UserError, match="holds 32 px images"):
        train(_cfg(tmp_path, tiny_dataset, resolution=64), progress=False)


def test_minutes_budget_stops(tmp_path, tiny_dataset):
    run = train(_cfg(tmp_path, tiny_dataset, steps=0, minutes=0.02), progress=False)
    step = load_checkpoint(list_checkpoints(run)[-1])["step"]
    assert step >= 1
    assert "time budget" in (run / "log.txt").read_text()
