"""Hostile datasets and checkpoints are user errors: one line, exit 2, no traceback, and
nothing allocated or computed first (issue 14, item 4). Full disks, evaluate's outputs
and leftover run folders (items 5 and 6c) are in test_hostile_writes.py.

Every case goes through the command line, as the hostile probe does.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import blobs
from landgan import checkpoint as ck
from landgan.cli import main
from landgan.config import MAX_PARAMETERS, USUAL_SIZES
from landgan.data.dataset import save_dataset
from landgan.models import MODELS, count_parameters
from landgan.models.spec import NetArgs

SMALL = [
    "--model",
    "dcgan4",
    "--resolution",
    "32",
    "--g-width",
    "8",
    "--d-width",
    "8",
    "--batch-size",
    "8",
    "--sample-every",
    "0",
    "--quiet",
]


def _one_line_error(capsys, *fragments: str) -> str:
    """The captured stderr, asserted to be one ``landgan: error:`` line holding ``fragments``."""
    err = capsys.readouterr().err
    assert err.startswith("landgan: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _no_work(monkeypatch, *targets: str) -> list:
    """Replace each dotted ``targets`` callable by a spy that fails the test if called."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("work started before the inputs were checked")

    for target in targets:
        monkeypatch.setattr(target, spy)
    return calls


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """A 32 px dataset of 16 images in two classes."""
    out = tmp_path_factory.mktemp("data") / "labelled"
    return save_dataset(out, blobs(16, 32), {"classes": ["a", "b"], "labels": [0, 1] * 8})


def _damaged(tmp_path: Path, source: Path, change) -> Path:
    """A copy of dataset ``source`` whose dataset.json is ``change(meta)``."""
    out = tmp_path / "damaged"
    out.mkdir()
    (out / "images.npy").write_bytes((source / "images.npy").read_bytes())
    meta = json.loads((source / "dataset.json").read_text())
    (out / "dataset.json").write_text(json.dumps(change(meta)))
    return out


def _with(**fields):
    return lambda meta: {**meta, **fields}


TWO = ["sky", "sea"]  # condition names
BAD_META = {  # case -> (change to dataset.json, what the one line must say)
    "json is a list": (lambda m: [m], "holds a JSON list"),
    "count too large": (_with(count=1000), "count 1000, but images.npy has 16"),
    "count too small": (_with(count=3), "count 3, but images.npy has 16"),
    "count not a number": (_with(count="many"), "count many"),
    "resolution lies": (_with(resolution=64), "resolution 64"),
    "newer format": (_with(format_version=99), "format_version is 99"),
    "labels shorter": (_with(labels=[0, 1]), "labels must be 16 numbers"),
    "labels not numbers": (_with(labels=["a"] * 16), "labels must be 16 numbers"),
    "labels booleans": (_with(labels=[True] * 16), "labels must be 16 numbers"),
    "labels an object": (_with(labels={"a": 0}), "labels must be 16 numbers"),
    "label beyond the classes": (_with(labels=[5] * 16), "label 5 names no class"),
    "negative label": (_with(labels=[-1] * 16), "label -1 names no class"),
    "classes a string": (_with(classes="ab"), "classes is not a list of names"),
    "classes repeated": (_with(classes=["a", "a"]), "classes names some entry twice"),
    "conditions shorter": (
        _with(condition_names=TWO, conditions=[[0.5, 0.5]] * 3),
        "conditions must be 16 rows",
    ),
    "conditions ragged": (
        _with(condition_names=TWO, conditions=[[0.5, 0.5]] * 15 + [[1]]),
        "conditions must be 16 rows",
    ),
    "conditions wider than names": (
        _with(condition_names=TWO, conditions=[[0.2] * 3] * 16),
        "rows of 2 numbers",
    ),
    "conditions NaN": (
        _with(condition_names=TWO, conditions=[[float("nan"), 1]] * 16),
        "not a finite float32",
    ),
    "conditions overflow float32": (
        _with(condition_names=TWO, conditions=[[1e39, 1]] * 16),
        "not a finite float32",
    ),
    "conditions without names": (_with(conditions=[[1.0]] * 16), "but no condition_names"),
}


@pytest.mark.parametrize("case", BAD_META)
def test_bad_dataset_json_is_one_line_before_a_run_folder(tmp_path, labelled, capsys, case):
    change, message = BAD_META[case]
    data = _damaged(tmp_path, labelled, change)
    out = tmp_path / "runs"
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--out",
                str(out),
                "--steps",
                "1",
                "--conditional",
                *SMALL,
            ]
        )
        == 2
    )
    _one_line_error(capsys, f"dataset {data} has a bad dataset.json", message)
    assert not out.exists()


@pytest.mark.parametrize(
    "case", ["json is a list", "count too large", "labels shorter", "label beyond the classes"]
)
def test_bad_dataset_json_fails_evaluate_and_label_before_any_work(
    tmp_path, labelled, capsys, monkeypatch, case
):
    change, message = BAD_META[case]
    data = _damaged(tmp_path, labelled, change)
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    _no_work(monkeypatch, "landgan.evaluate.load_feature_extractor")
    assert main(["evaluate", str(fakes), "--against", str(data), "--resolution", "32"]) == 2
    _one_line_error(capsys, message)
    assert main(["evaluate", "--real", str(data), "--split-half"]) == 2
    _one_line_error(capsys, message)
    assert main(["label", str(data), "--estimator", "net"]) == 2
    _one_line_error(capsys, message)


def test_dataset_json_far_larger_than_its_images_need_is_not_parsed(
    tmp_path, labelled, capsys, monkeypatch
):
    data = _damaged(tmp_path, labelled, _with(padding="x" * (17 << 20)))  # limit 16.25 MiB here
    monkeypatch.setattr("landgan.data.dataset.json", SimpleNamespace(loads=None))
    calls = _no_work(monkeypatch, "landgan.data.dataset.json.loads")
    assert (
        main(
            ["train", "--data", str(data), "--out", str(tmp_path / "runs"), "--steps", "1", *SMALL]
        )
        == 2
    )
    _one_line_error(capsys, "dataset.json is far larger than 16 images need")
    assert calls == []


@pytest.mark.parametrize(
    "images,message",
    [
        (blobs(4, 32).astype(np.float32), "is not an (N, R, R, 3) uint8 array"),
        (blobs(4, 32)[..., :1], "is not an (N, R, R, 3) uint8 array"),
        (blobs(4, 32)[:, :16], "is not an (N, R, R, 3) uint8 array"),
        (np.zeros((0, 32, 32, 3), np.uint8), "holds no images"),
        (np.array([{"a": 1}], dtype=object), "cannot read dataset"),
    ],
)
def test_bad_images_npy_is_one_line(tmp_path, capsys, images, message):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "images.npy", images)
    (data / "dataset.json").write_text(json.dumps({"source": "test"}))
    assert (
        main(
            ["train", "--data", str(data), "--out", str(tmp_path / "runs"), "--steps", "1", *SMALL]
        )
        == 2
    )
    _one_line_error(capsys, message)
    assert not (tmp_path / "runs").exists()


def test_too_many_classes_for_conditional_training(tmp_path, capsys):
    names = [f"c{i}" for i in range(2000)]
    data = save_dataset(
        tmp_path / "many", blobs(16, 32), {"classes": names, "labels": list(range(16))}
    )
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "runs"),
                "--steps",
                "1",
                "--conditional",
                *SMALL,
            ]
        )
        == 2
    )
    _one_line_error(capsys, "--conditional takes at most 1024 classes")
    assert not (tmp_path / "runs").exists()


# ---- checkpoints whose config or weights cannot be trusted ----


@pytest.fixture(scope="module")
def trained(tmp_path_factory, labelled) -> Path:
    """The last checkpoint of a one-step dcgan4 run (module-wide: it takes seconds)."""
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "--data", str(labelled), "--out", str(out), "--steps", "1", *SMALL]) == 0
    return ck.list_checkpoints(next(out.iterdir()))[-1]


def _forged(tmp_path: Path, trained: Path, change) -> Path:
    """A copy of ``trained`` inside its own run folder, with ``change(state)`` applied."""
    state = ck.load_checkpoint(trained)
    state["config"], state["models"] = dict(state["config"]), dict(state["models"])
    change(state)
    return ck.save_checkpoint(ck.checkpoint_path(tmp_path / "00000-forged", 1), state)


def _config(**fields):
    return lambda state: state["config"].update(fields)


FORGED = {  # case -> (change to the checkpoint, what the one line must say)
    "z_dim 10**12": (_config(z_dim=10**12), "--z-dim must be between 1 and"),
    "resolution 10**6": (_config(resolution=10**6), "--resolution must be between 1 and"),
    "huge widths": (_config(g_width=8192, d_width=8192), "over the limit"),
    "huge z_dim with huge width": (_config(z_dim=65536, g_width=4096), "over the limit"),
    "unsupported resolution": (_config(resolution=256), "does not support 256 px"),
    "config a list": (lambda s: s.__setitem__("config", [1, 2]), "its config is not"),
    "config with a wrong type": (_config(z_dim="100"), "config field z_dim must be int"),
    "step not a number": (lambda s: s.__setitem__("step", "x"), "its step is 'x'"),
    "networks a list": (lambda s: s.__setitem__("models", [1]), "not saved as state dicts"),
    "a network not a dict": (
        lambda s: s["models"].__setitem__("G_ema", 5),
        "not saved as state dicts",
    ),
    "weights that do not fit the config": (_config(g_width=16), "size mismatch"),
    "conditional config, unconditional weights": (
        _config(conditional=True, conditions="a,b"),
        "size mismatch",
    ),
}
NOT_BUILT = ["landgan.sampling.build_models", "landgan.train.base.build_models"]


@pytest.mark.parametrize("case", FORGED)
def test_forged_checkpoint_is_one_line_in_every_verb(tmp_path, trained, capsys, monkeypatch, case):
    change, message = FORGED[case]
    ckpt = str(_forged(tmp_path, trained, change))
    fits = message != "size mismatch"  # a config that passes its checks gets its networks built
    if fits:  # refused before any network is built, whatever sizes it claims
        _no_work(monkeypatch, *NOT_BUILT)
    _no_work(monkeypatch, "landgan.evaluate.load_feature_extractor")
    for verb in (
        ["generate", ckpt, "--out", str(tmp_path / "g.png")],
        ["export", ckpt, "--out", str(tmp_path / "g.pt"), "--format", "torchscript"],
        ["evaluate", ckpt, "--n", "4"],
        ["train", "--resume", ckpt, "--out", str(tmp_path / "runs"), "--steps", "2", "--quiet"],
    ):
        assert main(verb) == 2, verb
        _one_line_error(capsys, message if fits or verb[0] == "train" else "does not match")
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("g.*"))


def test_usual_sizes_stay_under_the_parameter_limit():
    # check_size trusts sizes up to USUAL_SIZES without counting: true for every model at
    # its largest resolution (the count grows with the resolution), conditions included.
    for name, spec in MODELS.items():
        args = NetArgs(
            max(spec.resolutions),
            USUAL_SIZES["z_dim"],
            USUAL_SIZES["g_width"],
            USUAL_SIZES["d_width"],
            USUAL_SIZES["cond_dim"] if spec.conditional else 0,
        )
        assert count_parameters(name, args) < MAX_PARAMETERS, name


def test_stackgan_checkpoint_with_an_absurd_stage_one_is_refused_before_building(
    tmp_path, capsys, monkeypatch
):
    # A stage-II checkpoint rebuilds stage I from the config recorded in its weights: that
    # config is checked like the checkpoint's own.
    _no_work(monkeypatch, *NOT_BUILT)
    stage1 = {"model": "dcgan4", "resolution": 64, "z_dim": 100, "g_width": 8192}
    for recorded, message in ((stage1, "over the limit"), ([1], "must be a JSON object")):
        state = {
            "config": {"model": "stackgan", "resolution": 128},
            "step": 1,
            "models": {"G_ema": {"_extra_state": {"stage1_config": recorded}}},
        }
        ckpt = ck.save_checkpoint(tmp_path / "c.pt", state)
        assert main(["generate", str(ckpt), "--out", str(tmp_path / "g.png")]) == 2
        _one_line_error(capsys, message)
