"""Hostile command lines from issue 14: ``evaluate`` counts whose features cannot fit and
result rows of the wrong kind (refused in one line), and ``train`` flags that would do
nothing in the configuration asked for (refused, or warned about once, before any work).
The tests about the processes the tests start are in test_hostile_processes.py.
"""

from __future__ import annotations

import argparse
import json

import pytest

from landgan import cli
from landgan.cli import main
from landgan.config import TrainConfig
from landgan.config_flags import FLAG_RULES, USED_BY_ALL, unused_flags


# ---- evaluate: counts whose features cannot fit, result rows of the wrong kind -------------


def test_evaluate_refuses_counts_whose_features_cannot_fit(tmp_path, monkeypatch, capsys):
    from landgan import evaluate as evaluate_mod

    missing = str(tmp_path / "none.pt")  # refused before the checkpoint is even looked for
    monkeypatch.setattr(evaluate_mod, "_is_run", lambda p: True)
    assert main(["evaluate", missing, "--n", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n 1,000,000,000 images need 15,258.8 GiB" in err
    assert "at most" in err and "images fit" in err and "Traceback" not in err

    monkeypatch.setattr(evaluate_mod, "available_memory", lambda: 4 * 2**30)  # a 4 GiB machine
    limit = 2 * 2**30 // (2048 * 8)
    assert evaluate_mod.feature_image_limit()[0] == limit
    assert main(["evaluate", missing, "--n", str(limit // 2), "--n-real", str(limit)]) == 2
    err = capsys.readouterr().err
    assert f"plus --n-real {limit:,} images" in err and "half of the 4.0 GiB" in err
    monkeypatch.setattr(evaluate_mod, "available_memory", lambda: None)  # unknown: the cap
    assert evaluate_mod.feature_image_limit() == (
        evaluate_mod.MAX_FEATURE_IMAGES,
        "landgan's fixed cap",
    )
    assert main(["evaluate", "--real", missing, "--n-real", "0"]) == 2
    assert "--n-real must be at least 1, got 0" in capsys.readouterr().err


def test_a_huge_n_does_not_block_reading_result_files(tmp_path, capsys):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"dataset": "d", "model": "m", "resolution": 64, "fid": 9.5}]))
    assert main(["evaluate", str(rows), "--n", "1000000000"]) == 0  # nothing is sampled
    assert "9.50" in capsys.readouterr().out


@pytest.mark.parametrize(
    "row,message",
    [
        ({"fid": "12.5"}, "row 2: fid must be a number or null, got '12.5'"),
        ({"resolution": 64.0}, "row 2: resolution must be a whole number or null, got 64.0"),
        ({"kid_mean": True}, "row 2: kid_mean must be a number or null, got True"),
        ({"n_fake": [1]}, "row 2: n_fake must be a whole number or null, got [1]"),
        ({"model": 7}, "row 2: model must be a string or null, got 7"),
        ({"precision": "x" * 500}, "row 2: precision must be a number or null, got 'xxx"),
    ],
)
def test_result_rows_of_the_wrong_kind_are_one_line(tmp_path, capsys, row, message):
    path = tmp_path / "rows.json"
    good = {
        "dataset": "d",
        "model": "m",
        "resolution": 64,
        "fid": 9.5,
        "kid_mean": 0.01,
        "kid_std": 0.001,
        "n_real": 10,
        "n_fake": 10,
    }
    path.write_text(json.dumps([good, {**good, **row}]))
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: {message}" in err and len(err) < 200, err


# ---- train: flags that would do nothing -------------------------------------------------------


def _train_parser():
    parser = cli._build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["train"]


def test_every_train_flag_is_used_by_every_model_or_has_a_rule():
    flags = {a.dest for a in _train_parser()._actions if a.dest != "help"}
    ruled = {r.field for r in FLAG_RULES}
    unruled = sorted(flags - USED_BY_ALL - ruled)
    assert not unruled, (
        f"train flags with no rule for where they do nothing: {unruled}; add "
        "them to config_flags.USED_BY_ALL or config_flags.FLAG_RULES"
    )
    assert not (USED_BY_ALL | ruled) - flags  # no rule for a flag that is gone
    assert not USED_BY_ALL & ruled


# field -> (a value that asks for something, a config in which it does nothing)
IDLE = {
    "conditional": (True, {"model": "vae"}),
    "cond_bn": (True, {}),
    "cond_aux": (0.5, {}),
    "mode_seeking": (1.0, {}),
    "stage1": ("run", {}),
    "loss": ("bce", {"model": "autoencoder"}),
    "lr_d": (1e-3, {"model": "vae"}),
    "d_steps": (5, {"model": "vae"}),
    "clip": (0.01, {"model": "vae"}),
    "gp": (10.0, {"model": "vae"}),
    "r1": (1.0, {"model": "vae"}),
    "balance": ("adaptive", {"model": "vae"}),
    "diffaug": ("color", {"model": "vae"}),
    "r1_every": (8, {}),
    "amp": ("bf16", {"model": "vae"}),
    "compile": (True, {"model": "vae"}),
    "beta1": (0.9, {"optimizer": "rmsprop"}),
    "beta2": (0.99, {"optimizer": "rmsprop"}),
    "synthetic_count": (64, {"data": "some/folder"}),
    "eval_n": (100, {}),
    "eval_metric": ("fid", {}),
    "ema_rampup": (0.1, {"ema_kimg": 0.0}),
    "keep": (3, {"ckpt_every": 0}),
}


@pytest.mark.parametrize("rule", FLAG_RULES, ids=lambda r: r.field)
def test_each_rule_names_its_flag_where_it_does_nothing(rule):
    value, where = IDLE[rule.field]
    flag = "--" + rule.field.replace("_", "-")
    idle = TrainConfig.for_model(**where, **{rule.field: value})
    refusals, warnings = unused_flags(idle, {rule.field: value})
    lines = refusals if rule.refuse else warnings
    assert len(refusals + warnings) == 1 and lines[0].startswith(f"{flag} does nothing ")
    assert unused_flags(idle, {}) == ([], [])  # set by a model or preset, not by the user
    for neutral in rule.neutral:  # asking for nothing is never flagged
        assert unused_flags(idle, {rule.field: neutral}) == ([], [])


def test_a_used_flag_is_neither_refused_nor_warned_about():
    cfg = TrainConfig.for_model(
        model="dcgan4",
        conditional=True,
        cond_aux=0.5,
        r1=1.0,
        r1_every=8,
        eval_every=10,
        eval_n=100,
        mode_seeking=1.0,
    )
    given = {
        "conditional": True,
        "cond_aux": 0.5,
        "r1": 1.0,
        "r1_every": 8,
        "eval_every": 10,
        "eval_n": 100,
        "mode_seeking": 1.0,
        "loss": "hinge",
        "clip": 0.01,
    }
    assert unused_flags(cfg, given) == ([], [])


def test_train_refuses_or_warns_once_before_any_work(tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    assert main(["train", "--cond-bn", "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "landgan: error: --cond-bn does nothing without --conditional: there is no "
        "condition to modulate G's BatchNorms; leave it out\n"
    )
    assert main(["train", "--model", "dcgan4", "--stage1", "x.pt", "--out", str(out)]) == 2
    assert "--stage1 does nothing for model dcgan4" in capsys.readouterr().err
    assert not out.exists()

    started = []
    monkeypatch.setattr(
        "landgan.train.loop.train", lambda cfg, progress: started.append(cfg) or out
    )
    assert main(["train", "--r1-every", "8", "--eval-n", "50", "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "landgan: warning: --r1-every does nothing while --r1 is 0 (off); it is ignored",
        "landgan: warning: --eval-n does nothing while --eval-every is 0 (nothing is "
        "evaluated during training); it is ignored",
    ]
    assert started[0].r1_every == 8  # warned, then trained as asked
