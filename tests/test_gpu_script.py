"""The GPU benchmark script runs end to end on a CPU with a tiny budget (no GPU in CI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import blobs, load_benchmark


@pytest.mark.slow
def test_gpu_fastgan_script_runs_on_cpu(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, img in enumerate(blobs(40, 64, seed=1)):
        Image.fromarray(img).save(photos / f"{i}.png")
    result = load_benchmark("gpu_fastgan", monkeypatch).main(
        [
            "--photos",
            str(photos),
            "--resolution",
            "64",
            "--minutes",
            "0.03",
            "--held-out",
            "12",
            "--n",
            "12",
            "--batches",
            "8",
            "--amps",
            "off",
            "--sweep-steps",
            "1",
            "--device",
            "cpu",
            "--width",
            "8",
            "--out",
            str(tmp_path / "runs"),
        ]
    )
    assert result["steps"] >= 1 and result["held_out"] == 12
    assert np.isfinite(result["kid"]) and np.isfinite(result["fid"])
    assert Path(result["run"]).is_dir()
