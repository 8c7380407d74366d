"""The GPU benchmark script runs end to end on a CPU with a tiny budget (no GPU in CI)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import REPO, blobs


def _load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # it imports time_to_quality beside it
    spec = importlib.util.spec_from_file_location("gpu_fastgan", REPO / "benchmarks" / "gpu_fastgan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_fastgan_script_runs_on_cpu(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, img in enumerate(blobs(40, 64, seed=1)):
        Image.fromarray(img).save(photos / f"{i}.png")
    result = _load_script(monkeypatch).main([
        "--photos", str(photos), "--resolution", "64", "--minutes", "0.03", "--held-out", "12",
        "--n", "12", "--batches", "8", "--amps", "off", "--sweep-steps", "1", "--device", "cpu",
        "--width", "8", "--out", str(tmp_path / "runs")])
    assert result["steps"] >= 1 and result["held_out"] == 12
    assert np.isfinite(result["kid"]) and np.isfinite(result["fid"])
    assert Path(result["run"]).is_dir()

