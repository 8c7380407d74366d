import os
import pickle

import pytest
import torch

from landgan.errors import UserError
from landgan import checkpoint as ck


def _state(step=3):
    return {
        "config": {"model": "dcgan4"},
        "step": step,
        "models": {"G": {"w": torch.arange(4.0)}},
        "rng": {"torch": torch.get_rng_state()},
    }


def test_round_trip(tmp_path):
    p = ck.save_checkpoint(tmp_path / "c.pt", _state())
    back = ck.load_checkpoint(p)
    assert back["step"] == 3 and torch.equal(back["models"]["G"]["w"], torch.arange(4.0))
    assert torch.equal(back["rng"]["torch"], _state()["rng"]["torch"])


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    p = ck.save_checkpoint(tmp_path / "c.pt", _state(1))

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        ck.save_checkpoint(p, _state(2))
    monkeypatch.undo()
    assert ck.load_checkpoint(p)["step"] == 1
    assert os.listdir(tmp_path) == ["c.pt"]  # no temporary file left behind


@pytest.mark.parametrize("content", [b"", b"hello", os.urandom(300)])
def test_garbage_is_refused(tmp_path, content):
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(UserError, match="not a readable landgan checkpoint"):
        ck.load_checkpoint(p)


def test_other_torch_file_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a landgan checkpoint"):
        ck.load_checkpoint(tmp_path / "other.pt")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_payload_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "config": {}, "step": 0, "models": _Payload(str(marker))}, p)
    with pytest.raises(UserError):
        ck.load_checkpoint(p)
    assert not marker.exists()
    with open(tmp_path / "evil.pkl", "wb") as f:  # a plain pickle file, too
        pickle.dump(_Payload(str(marker)), f)
    with pytest.raises(UserError):
        ck.load_checkpoint(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_resolve_checkpoint(tmp_path):
    run = tmp_path / "00003-x"
    for s in (5, 20, 10):
        ck.save_checkpoint(ck.checkpoint_path(run, s), _state(s))
    assert ck.resolve_checkpoint(run).name == "step_0000020.pt"
    assert ck.resolve_checkpoint("auto", tmp_path).name == "step_0000020.pt"
    with pytest.raises(UserError):
        ck.resolve_checkpoint(tmp_path / "missing")
    with pytest.raises(UserError, match="no run"):
        ck.resolve_checkpoint("auto", tmp_path / "empty")
