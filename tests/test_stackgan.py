"""StackGAN stage II: shapes, a frozen stage I, self-contained checkpoints, exact resume."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import blobs, dcgan4_config
from landgan.cli import main
from landgan.config import TrainConfig
from landgan.data.dataset import save_dataset
from landgan.errors import UserError
from landgan.sampling import load_generator, sample_images
from landgan.models import NetArgs, build_models
from landgan.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from landgan.train.loop import train

Z = 16  # shared by both stages
TINY = dict(batch_size=8, d_width=8, sample_every=0, ckpt_every=0, log_every=1, z_dim=Z)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second OpenMP thread buys nothing, and on a shared,
    oversubscribed machine its spin-waits made this file several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The same kind of images at 64 px (stage I) and 128 px (stage II)."""
    root = tmp_path_factory.mktemp("data")
    return {
        r: save_dataset(root / f"blobs{r}", blobs(16, r), {"source": "test"}) for r in (64, 128)
    }


@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory, data):
    """A barely trained dcgan4 at 64 px, wider than stage II so its width must be recorded."""
    out = tmp_path_factory.mktemp("stage1")
    return train(
        dcgan4_config(data=str(data[64]), out=str(out), resolution=64, g_width=16, steps=2, **TINY),
        progress=False,
    )


def _cfg(out, datasets, stage1, **kw):
    base = dict(
        model="stackgan",
        stage1=str(stage1),
        data=str(datasets[128]),
        out=str(out),
        resolution=128,
        g_width=8,
        steps=3,
        **TINY,
    )
    return TrainConfig.for_model(**{**base, **kw})


def _models(run, step=None):
    ckpts = list_checkpoints(run)
    ckpt = ckpts[-1] if step is None else [p for p in ckpts if p.name == f"step_{step:07d}.pt"][0]
    return load_checkpoint(ckpt)["models"]


@pytest.mark.parametrize("res", [128, 256])
def test_shapes_and_stage1_architecture(res, stage1_run):
    stage1, stage1_cfg = load_generator(stage1_run)  # what the trainer hands the builder
    G, D = build_models(
        "stackgan",
        NetArgs(
            res, z_dim=Z, g_width=8, d_width=8, stage1=stage1, stage1_config=stage1_cfg.to_dict()
        ),
    )
    assert G.stage1.project.in_features == Z
    assert G.stage1_config["g_width"] == 16  # read from the stage-I checkpoint
    z = torch.randn(2, Z)
    x = G(z)
    assert x.shape == (2, 3, res, res) and x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (2,)
    G.train()
    assert not G.stage1.training and G.stage2.training
    assert not any(p.requires_grad for p in G.stage1.parameters())
    G.eval()
    assert torch.equal(G(z), G.stage2(G.stage1(z), z))  # the same z feeds both stages


@pytest.fixture(scope="module")
def stage2_run(tmp_path_factory, data, stage1_run):
    """Two steps, a checkpoint after each."""
    return train(
        _cfg(tmp_path_factory.mktemp("stage2"), data, stage1_run, steps=2, ckpt_every=1),
        progress=False,
    )


def test_stage1_stays_frozen_and_stage2_learns(stage1_run, stage2_run):
    stage1 = _models(stage1_run)["G_ema"]
    mid, end = _models(stage2_run, 1), _models(stage2_run, 2)
    for net in ("G", "G_ema"):
        for name, t in stage1.items():
            assert torch.equal(end[net]["stage1." + name], t), f"{net}.stage1.{name} moved"
    moved = [
        k
        for k in end["G"]
        if k.startswith("stage2.")
        and end["G"][k].is_floating_point()
        and not torch.equal(end["G"][k], mid["G"][k])
    ]
    assert moved
    n_stage2 = sum(k.startswith("stage2.") for k in end["G"]) - sum(
        k.startswith("stage2.") and ("running_" in k or "num_batches" in k) for k in end["G"]
    )
    state = load_checkpoint(list_checkpoints(stage2_run)[-1])
    assert len(state["optims"]["G"]["param_groups"][0]["params"]) == n_stage2


def test_generate_cli_makes_128px(tmp_path, stage2_run):
    assert main(["generate", str(stage2_run), "--out", str(tmp_path / "imgs"), "--n", "3"]) == 0
    files = sorted((tmp_path / "imgs").iterdir())
    assert len(files) == 3 and all(Image.open(f).size == (128, 128) for f in files)


def test_generation_does_not_need_the_stage1_file(tmp_path, stage2_run):
    state = load_checkpoint(list_checkpoints(stage2_run)[-1])
    state["config"]["stage1"] = str(tmp_path / "deleted-stage1-run")
    orphan = save_checkpoint(tmp_path / "orphan.pt", state)
    G, cfg = load_generator(orphan)  # stage I rebuilt from the config the checkpoint records
    assert G.stage1_config["g_width"] == 16
    assert np.array_equal(
        sample_images(G, cfg, 4, seed=3), sample_images(*load_generator(stage2_run), 4, seed=3)
    )


def test_resume_is_exact(tmp_path, data, stage1_run, stage2_run):
    two = train(_cfg(tmp_path, data, stage1_run, steps=1), progress=False)
    assert train(TrainConfig(), resume=str(two), overrides={"steps": 2}, progress=False) == two
    a, b = _models(stage2_run, 2), _models(two, 2)
    for net in ("G", "D", "G_ema"):
        for name, t in a[net].items():
            if name != "_extra_state":
                assert torch.equal(t, b[net][name]), f"{net}.{name} differs after resume"


def test_cli_train_uses_model_defaults(tmp_path, data, stage1_run):
    out = tmp_path / "runs"
    argv = [
        "train",
        "--model",
        "stackgan",
        "--stage1",
        str(stage1_run),
        "--resolution",
        "128",
        "--data",
        str(data[128]),
        "--g-width",
        "8",
        "--d-width",
        "8",
        "--z-dim",
        str(Z),
        "--batch-size",
        "8",
        "--steps",
        "1",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    (run,) = out.iterdir()
    assert load_checkpoint(list_checkpoints(run)[-1])["config"]["loss"] == "bce"


@pytest.fixture(scope="module")
def run32(tmp_path_factory):
    root = tmp_path_factory.mktemp("run32")
    ds = save_dataset(root / "blobs32", blobs(8, 32), {"source": "test"})
    return train(
        dcgan4_config(data=str(ds), out=str(root), resolution=32, g_width=8, steps=1, **TINY),
        progress=False,
    )


@pytest.mark.parametrize(
    "case,match",
    [
        ("none", "needs --stage1"),
        ("missing", "not found"),
        ("garbage", "not a readable landgan checkpoint"),
        ("32px", "generates 32 px images"),
        ("zdim", "pass --z-dim 16"),
        ("64px", "does not support 64 px"),
    ],
)
def test_clear_errors_create_nothing(tmp_path, data, stage1_run, run32, case, match):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    stage1 = {"none": "", "missing": tmp_path / "nope", "garbage": garbage, "32px": run32}.get(
        case, stage1_run
    )
    kw = {
        "zdim": dict(z_dim=32),
        "64px": dict(resolution=64, data="synthetic", synthetic_count=8),
    }.get(case, {})
    with pytest.raises(UserError, match=match):
        train(_cfg(tmp_path / "runs", data, stage1, **kw), progress=False)
    assert not (tmp_path / "runs").exists()


def test_cli_reports_errors(tmp_path, data, capsys):
    argv = [
        "train",
        "--model",
        "stackgan",
        "--resolution",
        "128",
        "--data",
        str(data[128]),
        "--batch-size",
        "8",
        "--steps",
        "1",
        "--out",
        str(tmp_path / "runs"),
    ]
    assert main(argv) == 2
    assert "needs --stage1" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
