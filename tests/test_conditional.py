"""Conditional models: class or composition vectors in, matching images out."""

import numpy as np
import pytest
import torch
from PIL import Image

from landgan.cli import main
from landgan.config import TrainConfig
from landgan.data.dataset import save_dataset
from landgan.errors import UserError
from landgan.sampling import load_generator, parse_condition, sample_images
from landgan.models import build_models
from landgan.checkpoint import list_checkpoints, load_checkpoint
from landgan.train.loop import train

from conftest import blobs, dcgan4_config


def _cfg(tmp_path, data="synthetic", **kw):
    base = dict(
        data=str(data),
        out=str(tmp_path / "runs"),
        resolution=32,
        batch_size=16,
        g_width=16,
        d_width=16,
        steps=4,
        sample_every=0,
        synthetic_count=128,
        conditional=True,
    )
    return dcgan4_config(**{**base, **kw})


def test_networks_use_the_condition():
    cfg = TrainConfig(
        model="dcgan4", resolution=32, g_width=8, d_width=8, conditional=True, conditions="a,b,c"
    )
    G, D = build_models(cfg.model, cfg.net_args())
    G.eval()
    z, c1, c2 = torch.randn(2, 100), torch.eye(3)[[0, 0]], torch.eye(3)[[2, 2]]
    assert not torch.allclose(G(z, c1), G(z, c2))
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(D(x, c1), D(x, c2))  # the projection term


def test_composition_model_trains_resumes_and_generates(tmp_path, capsys):
    run = train(_cfg(tmp_path, steps=2), progress=False)
    again = train(
        TrainConfig(out=str(tmp_path / "runs")),
        resume=str(run),
        overrides={"steps": 4},
        progress=False,
    )
    one_go = train(_cfg(tmp_path / "b", steps=4), progress=False)
    a = load_checkpoint(list_checkpoints(again)[-1])["models"]["G"]
    b = load_checkpoint(list_checkpoints(one_go)[-1])["models"]["G"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # exact resume with conditions
    assert (
        load_checkpoint(list_checkpoints(run)[-1])["config"]["conditions"]
        == "sky,mountain,snow,water,vegetation"
    )
    outs = {}
    for name, comp in (("sky", "sky=1"), ("lake", "sky=0.4,water=0.6"), ("lake2", "sky=2,water=3")):
        assert (
            main(
                [
                    "generate",
                    str(run),
                    "--n",
                    "2",
                    "--composition",
                    comp,
                    "--out",
                    str(tmp_path / f"{name}.png"),
                ]
            )
            == 0
        )
        outs[name] = np.asarray(Image.open(tmp_path / f"{name}.png"))
    assert "renormalised to sum to 1" in capsys.readouterr().err
    assert not np.array_equal(outs["sky"], outs["lake"])
    assert np.array_equal(outs["lake"], outs["lake2"])  # 2:3 is 0.4:0.6 after renormalising


def test_class_model_and_mix(tmp_path):
    labels = [0] * 16 + [1] * 16
    ds = save_dataset(
        tmp_path / "ds", blobs(32, 32), {"classes": ["lake", "peak"], "labels": labels}
    )
    run = train(_cfg(tmp_path, ds), progress=False)
    assert (
        main(
            [
                "generate",
                str(run),
                "--n",
                "2",
                "--mix",
                "lake=0.6,peak=0.4",
                "--out",
                str(tmp_path / "g.png"),
            ]
        )
        == 0
    )


@pytest.mark.parametrize(
    "spec,message",
    [
        ("moon=1", "unknown condition 'moon'; this model knows: sky, water"),
        ("sky=-0.5", "values must be finite and >= 0"),
        ("sky=0,water=0", "all zero"),
        ("sky=lots", "give NAME=NUMBER"),
    ],
)
def test_bad_proportions(spec, message):
    with pytest.raises(UserError, match=message):
        parse_condition(spec, ["sky", "water"])


def test_conditional_errors(tmp_path, tiny_dataset, capsys):
    with pytest.raises(UserError, match="needs data with classes"):
        train(_cfg(tmp_path, tiny_dataset), progress=False)
    with pytest.raises(UserError, match="no conditional form"):
        train(_cfg(tmp_path, model="mlp-gan"), progress=False)
    run = train(_cfg(tmp_path, steps=1), progress=False)
    # without --mix, the conditions are drawn as they occur in the training data
    assert main(["generate", str(run), "--n", "4", "--out", str(tmp_path / "x.png")]) == 0
    G, cfg = load_generator(run)
    with pytest.raises(UserError, match="pass --mix or --composition"):
        sample_images(G, cfg, 2)  # the library asks for a condition or the checkpoint's bank
    plain = train(_cfg(tmp_path, steps=1, conditional=False), progress=False)
    assert main(["generate", str(plain), "--mix", "sky=1", "--out", str(tmp_path / "y.png")]) == 2
    assert "need a conditional model" in capsys.readouterr().err


def test_far_request_warns_with_nearest_seen(tmp_path, capsys):
    labels = [0] * 32  # every training image is class "lake": a pure "peak" was never seen
    ds = save_dataset(
        tmp_path / "ds", blobs(32, 32), {"classes": ["lake", "peak"], "labels": labels}
    )
    run = train(_cfg(tmp_path, ds, steps=1), progress=False)
    assert (
        main(
            [
                "generate",
                str(run),
                "--n",
                "1",
                "--mix",
                "lake=0.9,peak=0.1",
                "--out",
                str(tmp_path / "a.png"),
            ]
        )
        == 0
    )
    assert "far from anything" not in capsys.readouterr().err
    assert (
        main(
            ["generate", str(run), "--n", "1", "--mix", "peak=1", "--out", str(tmp_path / "b.png")]
        )
        == 0
    )
    assert (
        "far from anything in the training data (L1 distance 2.00); the nearest seen was "
        "lake=1.00" in capsys.readouterr().err
    )
