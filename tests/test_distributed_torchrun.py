"""Training under torchrun: ``landgan train`` launched as 2 CPU processes trains what one
process does (to the tolerance test_distributed.py explains), rank 0 alone writes, and
runs resume across process counts. Apart from test_distributed.py, which checks the
pieces inside one spawned pair of processes, because each test here launches the CLI.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from landgan.checkpoint import checkpoint_path, load_checkpoint
from landgan.config import TrainConfig
from landgan.train import get_trainer
from landgan.train.loop import train

from test_distributed import TINY, assert_same_training


def _torchrun(cwd: Path, *args: str) -> subprocess.Popen:
    """``torchrun --nproc_per_node=2 -m landgan train ...`` (torchrun picks a free port)."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "landgan",
        "train",
        "--quiet",
        "--device",
        "cpu",
        *args,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # A session of its own, so that a timeout can stop torchrun and its workers together.
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen) -> None:
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    assert proc.returncode == 0, out[-4000:]


@pytest.mark.slow
def test_torchrun_equals_one_process_and_resumes_across_process_counts(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    one = train(TrainConfig.for_model(**TINY, out=str(tmp_path / "one"), steps=6), progress=False)
    resumable = work / "from1" / one.name  # the 1-process run as it was at step 2
    (resumable / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoint_path(one, 2), checkpoint_path(resumable, 2))
    flags = [
        f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}")
        for k, v in TINY.items()
        if k != "device"
    ]
    fresh = _torchrun(work, *flags, "--out=two", "--steps=4")
    resumed = _torchrun(work, "--resume", str(resumable), "--steps=4")
    _finish(fresh)
    _finish(resumed)

    cfg = TrainConfig.for_model(**TINY)
    init = get_trainer("gan")(cfg, torch.device("cpu")).state_dict()["models"]
    want4 = load_checkpoint(checkpoint_path(one, 4))["models"]
    (two,) = (work / "two").iterdir()
    assert_same_training(load_checkpoint(checkpoint_path(two, 4))["models"], want4, init, "2 procs")
    assert_same_training(
        load_checkpoint(checkpoint_path(resumable, 4))["models"],
        want4,
        init,
        "1 proc to step 2, then 2 procs",
    )

    # Only rank 0 wrote: one run folder, one event file, every log line once.
    assert sorted(os.listdir(work)) == ["from1", "two"]
    files = sorted(str(p.relative_to(two)) for p in two.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith("events.")] == [
        "checkpoints/step_0000002.pt",
        "checkpoints/step_0000004.pt",
        "config.json",
        "log.txt",
        "samples/step_0000004.png",
    ]
    assert len([f for f in files if f.startswith("events.out.tfevents")]) == 1
    log = (two / "log.txt").read_text()
    assert "device: cpu x 2 processes" in log
    assert log.count("run folder:") == 1 and log.count("\nstep 3 ") == 1

    again = train(
        TrainConfig(out=str(work / "two")), resume=str(two), overrides={"steps": 6}, progress=False
    )
    assert again == two
    assert_same_training(
        load_checkpoint(checkpoint_path(two, 6))["models"],
        load_checkpoint(checkpoint_path(one, 6))["models"],
        init,
        "2 procs to step 4, then 1 proc",
    )


@pytest.mark.slow
def test_torchrun_trains_the_default_fastgan(tmp_path):
    """fastgan under torchrun (SyncBN, spectral norm, per-rank reconstruction quarters):
    two processes train, rank 0 alone writes, and the run resumes in one process."""
    proc = _torchrun(
        tmp_path,
        "--data=synthetic",
        "--synthetic-count=32",
        "--resolution=64",
        "--g-width=8",
        "--d-width=8",
        "--z-dim=16",
        "--batch-size=8",
        "--steps=2",
        "--sample-every=0",
        "--log-every=1",
        "--out=runs",
    )
    _finish(proc)
    (run,) = (tmp_path / "runs").iterdir()
    state = load_checkpoint(checkpoint_path(run, 2))
    assert state["config"]["model"] == "fastgan" and "loss/recon" in (run / "log.txt").read_text()
    assert all(
        torch.isfinite(t).all() for t in state["models"]["G_ema"].values() if t.is_floating_point()
    )
    assert (
        train(
            TrainConfig(out=str(tmp_path / "runs")),
            resume=str(run),
            overrides={"steps": 3},
            progress=False,
        )
        == run
    )
