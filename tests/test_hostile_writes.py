"""A full disk, an unwritable output, a failure before the first step: one line, exit 2,
nothing lost and nothing left behind (issue 14, items 5a, 5c and 6c).

Every case goes through the command line, as the hostile probe does.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from conftest import blobs
from landgan import checkpoint as ck
from landgan.cli import main
from landgan.data.dataset import save_dataset
from landgan.errors import UserError
from test_hostile_io import SMALL, _no_work, _one_line_error


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """A 32 px dataset of 16 images in two classes."""
    out = tmp_path_factory.mktemp("data") / "labelled"
    return save_dataset(out, blobs(16, 32), {"classes": ["a", "b"], "labels": [0, 1] * 8})


def _enospc(*args):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), *args)


WRITER_FAILED = (
    "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed "
    "writing file data/0: file write failed"
)


def _full_disk_save(how: str):
    """A torch.save that writes a few bytes, then fails as torch does on a full disk."""

    def save(obj, f):
        f.write(b"PK\x03\x04 partial")
        if how == "OSError":  # the file object's own error, unwrapped
            raise _enospc()
        if how == "RuntimeError alone":  # older torch: nothing behind the writer's error
            raise RuntimeError(WRITER_FAILED)
        try:
            raise _enospc()
        except OSError:  # torch 2.x: the OSError is the writer error's context
            raise RuntimeError(WRITER_FAILED)

    return save


def _fail_on(monkeypatch, method: str, when, error: OSError | None = None) -> None:
    """Make ``Path.<method>`` raise ``error`` (ENOSPC by default) for the paths ``when`` picks."""
    original = getattr(Path, method)

    def failing(self, *args, **kwargs):
        if when(self):
            raise error or _enospc(str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, failing)


@pytest.mark.parametrize(
    "how,reason",
    [
        ("RuntimeError after OSError", "No space left on device"),
        ("RuntimeError alone", "PytorchStreamWriter failed writing file"),
        ("OSError", "No space left on device"),
    ],
)
def test_full_disk_during_a_checkpoint_write(tmp_path, labelled, capsys, monkeypatch, how, reason):
    out = tmp_path / "runs"
    assert (
        main(
            [
                "train",
                "--data",
                str(labelled),
                "--out",
                str(out),
                "--steps",
                "2",
                "--ckpt-every",
                "1",
                *SMALL,
            ]
        )
        == 0
    )
    run = next(out.iterdir())
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    assert sorted(before) == ["step_0000001.pt", "step_0000002.pt"]
    capsys.readouterr()
    monkeypatch.setattr(torch, "save", _full_disk_save(how))
    assert main(["train", "--resume", str(run), "--steps", "4", "--quiet"]) == 2
    _one_line_error(
        capsys,
        f"cannot write checkpoint {run / 'checkpoints' / 'step_0000003.pt'}",
        reason,
        "the previous checkpoints are intact",
    )
    after = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    assert after == before  # the earlier checkpoints byte for byte, and no temporary left


def test_full_disk_while_saving_a_sample_grid(tmp_path, labelled, capsys, monkeypatch):
    def full(images, path):
        raise _enospc(str(path))

    monkeypatch.setattr("landgan.train.loop.save_grid", full)
    assert (
        main(
            [
                "train",
                "--data",
                str(labelled),
                "--out",
                str(tmp_path / "runs"),
                "--steps",
                "2",
                *SMALL,
                "--sample-every",
                "2",
            ]
        )
        == 2
    )
    _one_line_error(capsys, "No space left on device", "step_0000002.png", "stopped at step 2")


def test_save_checkpoint_turns_writer_failures_into_oserror(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", _full_disk_save("RuntimeError after OSError"))
    with pytest.raises(OSError) as caught:
        ck.save_checkpoint(tmp_path / "c.pt", {"step": 1})
    assert caught.value.errno == errno.ENOSPC and os.listdir(tmp_path) == []


# ---- evaluate's outputs are checked before the work ----


def _read_only(*args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--json", "no/such/folder/out.json"], "the folder {tmp}/no/such/folder does not exist"),
        (["--table", "no/such/folder/t.md"], "the folder {tmp}/no/such/folder does not exist"),
        (["--json", ".", "--force"], "is a folder; give a file path"),
        (["--json", "locked/out.json"], "cannot write {tmp}/locked/out.json: Permission denied"),
    ],
)
def test_evaluate_outputs_are_checked_before_any_work(
    tmp_path, labelled, capsys, monkeypatch, flags, message
):
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (tmp_path / "locked").mkdir()
    if "locked/out.json" in flags:  # simulated: root may write into a read-only folder
        monkeypatch.setattr("landgan.evaluate.tempfile.TemporaryFile", _read_only)
    calls = _no_work(monkeypatch, "landgan.evaluate.load_feature_extractor")
    flags = [flags[0], str(tmp_path / flags[1]), *flags[2:]]
    assert (
        main(["evaluate", str(fakes), "--against", str(labelled), "--resolution", "32", *flags])
        == 2
    )
    _one_line_error(capsys, message.format(tmp=tmp_path))
    assert calls == [] and not (tmp_path / "no").exists()


def test_evaluate_checks_every_target_before_scoring_the_first(
    tmp_path, labelled, capsys, monkeypatch
):
    _no_work(monkeypatch, "landgan.evaluate.load_feature_extractor")
    assert (
        main(
            [
                "evaluate",
                str(tmp_path),
                str(tmp_path / "missing"),
                "--against",
                str(labelled),
                "--resolution",
                "32",
            ]
        )
        == 2
    )
    _one_line_error(capsys, "not a checkpoint, run folder, image folder or result JSON")
    assert (
        main(["evaluate", str(tmp_path), "--against", str(tmp_path / "gone"), "--resolution", "32"])
        == 2
    )
    _one_line_error(capsys, "real images not found")


def test_full_disk_when_evaluate_writes_its_json(tmp_path, capsys, monkeypatch):
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps([{"dataset": "d", "model": "m", "resolution": 32, "fid": 1.5}]))
    out = tmp_path / "out.json"
    out.write_text("old scores")
    # The temporary file exists (touched) when the disk fills: it must not be left behind.
    _fail_on(
        monkeypatch,
        "write_text",
        lambda p: p.name.startswith(".out.json.tmp") and (p.touch() or True),
    )
    assert main(["evaluate", str(earlier), "--json", str(out), "--force"]) == 2
    captured = capsys.readouterr()
    assert "1.5" in captured.out  # the scores were printed before the write failed
    assert captured.err == f"landgan: error: cannot write {out}: No space left on device\n"
    assert out.read_text() == "old scores"
    assert sorted(os.listdir(tmp_path)) == ["earlier.json", "out.json"]


# ---- options refused late must not leave a run folder ----


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--batch-size", "0"], "--batch-size must be between 1 and"),
        (["--batch-size", "17"], "fewer than the batch size 17"),
        (["--resolution", "64"], "holds 32 px images but --resolution is 64"),
        (["--model", "fastgan"], "fastgan does not support 32 px"),
    ],
)
def test_rejected_options_leave_no_run_folder(tmp_path, labelled, capsys, flags, message):
    out = tmp_path / "runs"
    assert (
        main(["train", "--data", str(labelled), "--out", str(out), "--steps", "1", *SMALL, *flags])
        == 2
    )
    _one_line_error(capsys, message)
    assert not out.exists() or list(out.iterdir()) == []


def test_synthetic_batch_larger_than_the_data_is_refused_before_rendering(
    tmp_path, capsys, monkeypatch
):
    calls = _no_work(monkeypatch, "landgan.train.data.make_synthetic_dataset")
    out = tmp_path / "runs"
    assert main(["train", "--out", str(out), "--steps", "1", *SMALL, "--synthetic-count", "4"]) == 2
    _one_line_error(capsys, "--synthetic-count 4 is fewer images than the batch size 8")
    assert calls == [] and not out.exists()


def _refuse(*args, **kwargs):
    raise UserError("refused during setup")


@pytest.mark.parametrize(
    "case,message",
    [
        # Any check that still comes after the folder (the probe will find new ones) must not
        # leave it behind, empty or with only config.json and log.txt.
        ("a late check", "refused during setup"),
        ("disk full writing config.json", "config.json: No space left on device"),
        ("read-only --out (simulated: root ignores permissions)", "cannot create run folder"),
    ],
)
def test_failures_before_the_first_step_leave_no_run_folder(
    tmp_path, labelled, capsys, monkeypatch, case, message
):
    out = tmp_path / "runs"
    out.mkdir()
    if case == "a late check":
        monkeypatch.setattr("landgan.train.loop.StepSampler", _refuse)
    elif case.startswith("disk full"):
        _fail_on(monkeypatch, "write_text", lambda p: p.name == "config.json")
    else:
        _fail_on(
            monkeypatch,
            "mkdir",
            lambda p: p.parent == out,
            PermissionError(errno.EACCES, os.strerror(errno.EACCES)),
        )
    assert main(["train", "--data", str(labelled), "--out", str(out), "--steps", "1", *SMALL]) == 2
    _one_line_error(capsys, message)
    assert list(out.iterdir()) == []
