"""``landgan evaluate`` and evaluation during training, with the real FID Inception."""

import json

import pytest

from landgan.cli import main
from landgan.data.dataset import save_dataset
from landgan.errors import UserError
from landgan.metrics.inception import default_weights_path
from landgan.checkpoint import load_checkpoint
from landgan.train.loop import train

from conftest import blobs, dcgan4_config


@pytest.fixture(autouse=True)
def _inception(tmp_path, monkeypatch):
    try:
        default_weights_path()
    except UserError as e:
        pytest.skip(f"FID Inception weights unavailable ({e})")
    monkeypatch.setenv("LANDGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def small(tmp_path):
    return save_dataset(tmp_path / "small", blobs(24, 32, seed=1), {"source": "test"})


def _cfg(tmp_path, data, **kw):
    return dcgan4_config(
        data=str(data),
        out=str(tmp_path / "runs"),
        resolution=32,
        batch_size=8,
        g_width=8,
        d_width=8,
        sample_every=0,
        ckpt_every=0,
        **kw,
    )


@pytest.mark.slow
def test_evaluate_run_gather_and_table(tmp_path, small, capsys):
    run = train(_cfg(tmp_path, small, steps=2), progress=False)
    js, md = tmp_path / "r.json", tmp_path / "t.md"
    assert main(["evaluate", str(run), "--n", "12", "--json", str(js)]) == 0
    (row,) = json.loads(js.read_text())
    assert row["dataset"] == "small" and row["model"] == "dcgan4" and row["n_fake"] == 12
    assert row["n_real"] == 24 and row["fid"] > 0 and 0 <= row["precision"] <= 1
    assert "kid_mean" in row and "kid_std" in row
    # Gather the earlier result with the real data's own row into the report's Table 3.
    assert (
        main(["evaluate", str(js), "--real", str(small), "--split-half", "--table", str(md)]) == 0
    )
    table = md.read_text().splitlines()
    assert table[0] == "| dataset | dcgan4 @ 32 | real data |"
    assert table[2].startswith("| small | IS \u2014<br>FID ")
    assert main(["evaluate", str(js), "--table", str(md)]) == 2  # no overwrite without --force
    assert "already exists" in capsys.readouterr().err


def test_inception_score_needs_weights(tmp_path, small, capsys):
    assert main(["evaluate", "--real", str(small), "--metrics", "is"]) == 2
    assert "IS unavailable" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_during_training_keeps_best(tmp_path, small):
    run = train(_cfg(tmp_path, small, steps=4, eval_every=2, eval_n=8), progress=False)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4]
    best = min(lines, key=lambda r: r["kid_mean"])
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["step"] == best["step"] and ckpt["eval"]["best"] == pytest.approx(best["kid_mean"])
    assert (run / "checkpoints" / "step_0000004.pt").exists()


@pytest.mark.slow
def test_evaluate_conditional_run_draws_conditions_from_its_data(tmp_path, capsys):
    cfg = dcgan4_config(
        data="synthetic",
        synthetic_count=32,
        out=str(tmp_path / "runs"),
        resolution=32,
        batch_size=8,
        g_width=8,
        d_width=8,
        steps=1,
        sample_every=0,
        conditional=True,
    )
    run = train(cfg, progress=False)
    js = tmp_path / "c.json"
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--n",
                "8",
                "--n-real",
                "16",
                "--metrics",
                "kid",
                "--json",
                str(js),
            ]
        )
        == 0
    )
    (row,) = json.loads(js.read_text())
    assert row["n_fake"] == 8 and row["dataset"] == "synthetic" and "kid_mean" in row
