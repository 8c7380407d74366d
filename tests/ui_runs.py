"""Runs folders the UI tests serve: tiny trained checkpoints, built once per test session,
and a copy whose newest checkpoint is broken. Not a test module: test_ui.py,
test_ui_e2e.py, test_hostile_ui.py and the modules split from them all use these.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from conftest import SHARED_DATA, dcgan4_config
from landgan.cli import main
from landgan.data.dataset import save_dataset
from landgan.data.decode import decode_image
from landgan.data.synthetic import render_seeds
from landgan.train.loop import train

COND = "00000-dcgan4-photos-64/step_0000002.pt"  # names make_runs produces
PLAIN = "00001-dcgan4-synthetic-32/step_0000001.pt"
BROKEN = "00002-broken/step_0000005.pt"  # the newest run of broken_runs: not a checkpoint


def photo_dataset(root: Path, n: int = 16) -> Path:
    """``n`` photos at 64 px labelled by ``landgan label`` (its default, the photo estimator).

    Real photos from ../shared/data where it is present (CI); procedural scenes otherwise,
    so the UI tests also run in a bare clone.
    """
    folder = SHARED_DATA / "landscapes"
    if folder.is_dir():
        files = [
            sorted((folder / cat).iterdir())[i]
            for i in range(n // 4)
            for cat in ("forest", "glacier", "mountain", "sea")
        ]
        images = np.stack([decode_image(f, 64) for f in files])
    else:
        images = render_seeds(range(n), 64)[0]
    ds = save_dataset(root / "photos", images, {"source": "test"})
    assert main(["label", str(ds)]) == 0
    return ds


def make_runs(root: Path) -> Path:
    """A runs folder with a tiny composition model of photos (64 px) and an unconditional
    32 px one of procedural scenes."""
    base = dict(out=str(root / "runs"), batch_size=8, g_width=8, d_width=8, sample_every=0)
    train(
        dcgan4_config(
            **base, data=str(photo_dataset(root)), resolution=64, steps=2, conditional=True
        ),
        progress=False,
    )
    train(
        dcgan4_config(**base, data="synthetic", synthetic_count=16, resolution=32, steps=1),
        progress=False,
    )
    return root / "runs"


_BUILT: dict[str, Path] = {}


def tiny_runs(tmp_path_factory) -> Path:
    """make_runs once per test session: test_ui_e2e.py uses the same folder (it saves ~7 s)."""
    if "runs" not in _BUILT:
        _BUILT["runs"] = make_runs(tmp_path_factory.mktemp("ui"))
    return _BUILT["runs"]


def ckpt_file(runs: Path, name: str) -> Path:
    run, file = name.split("/")
    return runs / run / "checkpoints" / file


def broken_runs(runs: Path, dest: Path) -> Path:
    """A copy of ``runs`` whose newest run holds a checkpoint that is not one."""
    shutil.copytree(runs, dest, ignore=shutil.ignore_patterns("00002-later"))
    bad = ckpt_file(dest, BROKEN)
    bad.parent.mkdir(parents=True)
    bad.write_bytes(ckpt_file(runs, PLAIN).read_bytes()[:300])  # truncated mid-write
    return dest
