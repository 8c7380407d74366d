"""Nothing lost: divergence rollback, graceful SIGTERM, kept checkpoints, bad files, full disks."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import dcgan4_config, end_process
from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan import checkpoint as ck
from landgan.train.gan import GANTrainer
from landgan.train.loop import train


def _cfg(tmp_path, data, **kw):
    base = dict(
        data=str(data),
        out=str(tmp_path / "runs"),
        resolution=32,
        batch_size=16,
        g_width=16,
        d_width=16,
        steps=12,
        sample_every=0,
        ckpt_every=0,
        log_every=2,
    )
    return dcgan4_config(**{**base, **kw})


def test_divergence_rolls_back_and_lowers_lr(tmp_path, tiny_dataset, monkeypatch):
    real_step, poisoned = GANTrainer.train_step, {5, 9}

    def flaky(self, source):
        stats = real_step(self, source)
        if self.step in poisoned:
            poisoned.discard(self.step)  # fail once at this step, as a real blow-up would
            stats["loss/d"] = torch.tensor(float("nan"))
        return stats

    monkeypatch.setattr(GANTrainer, "train_step", flaky)
    run = train(_cfg(tmp_path, tiny_dataset), progress=False)
    log = (run / "log.txt").read_text()
    assert "step 5: non-finite loss or weights; rolled back to step 4" in log
    assert "step 9: non-finite loss or weights; rolled back to step 8" in log
    state = ck.load_checkpoint(ck.list_checkpoints(run)[-1])
    assert state["step"] == 12 and state["config"]["lr_g"] == pytest.approx(2e-4 / 4)


def test_unstable_setting_stops_with_a_clear_message(tmp_path, tiny_dataset):
    cfg = _cfg(
        tmp_path, tiny_dataset, loss="wasserstein", optimizer="rmsprop", lr_g=1e25, lr_d=1e25
    )
    with pytest.raises(UserError, match="training diverged 3 times"):
        train(cfg, progress=False)


def test_keep_last_k_and_corrupt_latest_falls_back(tmp_path, tiny_dataset, capsys):
    run = train(_cfg(tmp_path, tiny_dataset, steps=6, ckpt_every=1, keep=2), progress=False)
    assert [p.name for p in ck.list_checkpoints(run)] == ["step_0000005.pt", "step_0000006.pt"]
    ck.list_checkpoints(run)[-1].write_bytes(b"torn")
    path, state = ck.load_latest(run)
    assert path.name == "step_0000005.pt" and state["step"] == 5
    assert "falling back to step_0000005.pt" in capsys.readouterr().err
    again = train(
        TrainConfig(out=str(tmp_path / "runs")),
        resume="auto",
        overrides={"steps": 7},
        progress=False,
    )
    assert again == run and (run / "checkpoints" / "step_0000007.pt").exists()


def test_full_disk_keeps_previous_checkpoint(tmp_path, tiny_dataset, monkeypatch):
    run = train(_cfg(tmp_path, tiny_dataset, steps=2), progress=False)

    def full(path, state):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("landgan.train.loop.save_checkpoint", full)
    with pytest.raises(UserError, match="No space left on device; the previous checkpoints"):
        train(
            TrainConfig(out=str(tmp_path / "runs")),
            resume=str(run),
            overrides={"steps": 4},
            progress=False,
        )
    assert ck.load_checkpoint(run / "checkpoints" / "step_0000002.pt")["step"] == 2


def _start(tmp_path, data, steps):
    cmd = [
        sys.executable,
        "-m",
        "landgan",
        "train",
        "--model",
        "dcgan4",
        "--data",
        str(data),
        "--resolution",
        "32",
        "--batch-size",
        "16",
        "--g-width",
        "16",
        "--d-width",
        "16",
        "--steps",
        str(steps),
        "--ckpt-every",
        "1",
        "--keep",
        "3",
        "--sample-every",
        "0",
        "--quiet",
        "--out",
        str(tmp_path / "runs"),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(tmp_path, proc, timeout=300):
    """Until the run's first checkpoint exists; on failure the training is killed, not left.

    The bound is generous: on a starved CI runner start-up alone (importing torch) has
    taken over a minute.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if any((tmp_path / "runs").glob("*/checkpoints/step_*.pt")):
            return
        time.sleep(0.05)
    end_process(proc, signal.SIGKILL, timeout=10)
    raise AssertionError(f"no checkpoint appeared (exit {proc.returncode})")


@pytest.mark.slow
def test_sigterm_saves_and_exits(tmp_path, tiny_dataset):
    proc = _start(tmp_path, tiny_dataset, 100_000)
    _wait_for_checkpoint(tmp_path, proc)
    assert end_process(proc, signal.SIGTERM, timeout=120) == 130
    assert "Traceback" not in proc.stderr.read()
    (run,) = (tmp_path / "runs").iterdir()
    assert "SIGTERM at step" in (run / "log.txt").read_text()


def _resume_cmd(tmp_path) -> list[str]:
    """``landgan train --resume auto``: the newest whole checkpoint of the run under test."""
    runs = str(tmp_path / "runs")
    return [sys.executable, "-m", "landgan", "train", "--resume", "auto", "--out", runs, "--quiet"]


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_a_run(tmp_path, tiny_dataset):
    """Kill -9 mid-training (often mid-checkpoint-write: one is written every step) and resume."""
    rng, steps = random.Random(0), 40
    for _ in range(4):
        proc = (
            _start(tmp_path, tiny_dataset, steps)
            if not (tmp_path / "runs").exists()
            else subprocess.Popen(
                _resume_cmd(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
        )
        _wait_for_checkpoint(tmp_path, proc)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        (run,) = (tmp_path / "runs").iterdir()
        for p in ck.list_checkpoints(run):  # every checkpoint that exists is whole
            ck.load_checkpoint(p)
    r = subprocess.run(_resume_cmd(tmp_path), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert ck.load_checkpoint(ck.list_checkpoints(run)[-1])["step"] == steps
    assert not [p for p in os.listdir(run / "checkpoints") if p.startswith(".")]  # no temporaries
