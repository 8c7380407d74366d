"""Exported generators give the same images as PyTorch."""

import numpy as np
import pytest
import torch

from landgan.cli import main
from landgan.config import TrainConfig
from landgan.generate import load_generator
from landgan.train.loop import train


@pytest.fixture(scope="module")
def run(tmp_path_factory, request):
    from conftest import blobs
    from landgan.data.dataset import save_dataset

    tmp = tmp_path_factory.mktemp("export")
    ds = save_dataset(tmp / "ds", blobs(32, 32), {"source": "test"})
    cfg = TrainConfig(data=str(ds), out=str(tmp / "runs"), resolution=32, batch_size=16,
                      g_width=16, d_width=16, steps=2, sample_every=0)
    return train(cfg, progress=False)


def test_onnx_matches_pytorch(run, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install landgan[export])")
    out = tmp_path / "g.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    G, cfg = load_generator(run)
    z = torch.randn(5, cfg.z_dim)  # a batch size the export never saw: the axis is dynamic
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"z": z.numpy()})[0]
    with torch.no_grad():
        want = G(z).numpy()
    assert got.shape == (5, 3, 32, 32) and np.abs(got - want).max() < 1e-4


def test_torchscript_matches_pytorch(run, tmp_path, capsys):
    out = tmp_path / "g.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    G, cfg = load_generator(run)
    z = torch.randn(3, cfg.z_dim)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(out))(z), G(z), atol=1e-5)
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
