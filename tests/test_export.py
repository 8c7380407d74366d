"""Exported generators give the same images as PyTorch."""

import numpy as np
import pytest
import torch

from conftest import dcgan4_config
from landgan.cli import main
from landgan.sampling import load_generator
from landgan.train.loop import train


def tiny_run(tmp_path_factory, name: str, **overrides):
    """The run folder of a 32 px dcgan4 trained a few steps on blob images."""
    from conftest import blobs
    from landgan.data.dataset import save_dataset

    tmp = tmp_path_factory.mktemp(name)
    ds = save_dataset(tmp / "ds", blobs(32, 32), {"source": "test"})
    cfg = dcgan4_config(
        data=str(ds),
        out=str(tmp / "runs"),
        resolution=32,
        batch_size=16,
        g_width=16,
        d_width=16,
        sample_every=0,
        **overrides,
    )
    return train(cfg, progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory, "export", steps=2)


def test_onnx_matches_pytorch(run, tmp_path):
    ort = pytest.importorskip(
        "onnxruntime", reason="onnxruntime not installed (pip install landgan[export])"
    )
    out = tmp_path / "g.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    G, cfg = load_generator(run)
    z = torch.randn(5, cfg.z_dim)  # a batch size the export never saw: the axis is dynamic
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"z": z.numpy()}
    )[0]
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


def test_conditional_generator_exports_with_its_condition_input(tmp_path, tiny_dataset):
    ort = pytest.importorskip(
        "onnxruntime", reason="onnxruntime not installed (pip install landgan[export])"
    )
    import onnx

    cfg = dcgan4_config(
        data="synthetic",
        synthetic_count=64,
        out=str(tmp_path / "runs"),
        resolution=32,
        batch_size=16,
        g_width=8,
        d_width=8,
        steps=2,
        sample_every=0,
        conditional=True,
    )
    run = train(cfg, progress=False)
    out = tmp_path / "c.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    G, cfg = load_generator(run)
    z = torch.randn(1, cfg.z_dim).expand(3, -1).contiguous()  # rows differ only in c
    c = torch.tensor(
        [[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0.4, 0.3, 0, 0.2, 0.1]], dtype=torch.float32
    )
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["z", "c"]
    got = sess.run(None, {"z": z.numpy(), "c": c.numpy()})[0]
    with torch.no_grad():
        want = G(z, c).numpy()
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(got[0] - got[1]).max() > 1e-5  # the condition input is live
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["conditions"] == "sky,mountain,snow,water,vegetation" and meta["resolution"] == "32"
    ts = tmp_path / "c.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(ts)]) == 0
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(ts))(z, c), G(z, c), atol=1e-5)


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory):
    """A run folder keeping the checkpoints of steps 1, 2 and 3."""
    return tiny_run(tmp_path_factory, "average", steps=3, ckpt_every=1, keep=0)


def test_average_exports_the_mean_of_the_newest_generators(three_checkpoints, tmp_path):
    from landgan.checkpoint import list_checkpoints, load_checkpoint
    from landgan.modelfile import load_model_file

    paths = list_checkpoints(three_checkpoints)
    assert len(paths) == 3
    out = tmp_path / "avg.safetensors"
    cmd = ["export", str(three_checkpoints), "--format", "safetensors", "--out", str(out)]
    assert main([*cmd, "--average", "2"]) == 0
    got = load_model_file(out)
    nets = [load_checkpoint(p)["models"]["G_ema"] for p in paths[-2:]]
    weights = [k for k, v in nets[0].items() if v.is_floating_point()]
    assert any(not torch.equal(nets[0][k], nets[1][k]) for k in weights)  # two different G's
    for k in weights:
        assert torch.allclose(got["models"]["G_ema"][k], (nets[0][k] + nets[1][k]) / 2, atol=1e-6)
    assert got["step"] == 3 and "steps 2, 3" in got["made_by"]["weights"]
    G, _ = load_generator(out)  # the averaged file draws like any model file
    assert G(torch.randn(2, G.z_dim)).shape == (2, 3, 32, 32)


def test_average_refuses_what_it_cannot_do(three_checkpoints, tmp_path, capsys):
    from landgan.checkpoint import list_checkpoints

    out = tmp_path / "avg.safetensors"
    cmd = ["export", "--format", "safetensors", "--out", str(out)]
    assert main([*cmd, str(three_checkpoints), "--average", "4"]) == 2
    assert "keeps 3 checkpoint(s)" in capsys.readouterr().err
    loose = list_checkpoints(three_checkpoints)[-1]
    assert main([*cmd, str(loose), "--average", "2"]) == 2
    assert "needs a run folder" in capsys.readouterr().err
    assert main([*cmd, str(three_checkpoints), "--average", "0"]) == 2
    assert not out.exists()
