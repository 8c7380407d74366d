"""files.replacing: a file is written whole or not at all."""

from __future__ import annotations

import pytest

from landgan.checkpoint import remove_stale_temporaries
from landgan.files import replacing, temporary_name, temporaries


@pytest.mark.parametrize("durable", [False, True])
def test_replacing_swaps_in_the_new_file_and_leaves_no_temporary(tmp_path, durable):
    path = tmp_path / "report.txt"
    path.write_text("old")
    with replacing(path, durable=durable) as tmp:
        assert tmp.parent == tmp_path and tmp != path
        tmp.write_text("new")
        assert path.read_text() == "old"  # nothing visible until the block ends
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_removes_the_half_written_one(tmp_path, error):
    path = tmp_path / "step_0000100.pt"
    path.write_bytes(b"the last good checkpoint")
    with pytest.raises(type(error)):
        with replacing(path) as tmp:
            tmp.write_bytes(b"half of a new")
            raise error
    assert path.read_bytes() == b"the last good checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["step_0000100.pt"]


def test_a_killed_writers_temporary_is_found_and_checkpoint_cleanup_removes_it(tmp_path):
    """A process killed mid-write cannot unlink its temporary; the run's next start must."""
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    left = temporary_name(ckpts / "step_0000300.pt")
    left.write_bytes(b"half")
    (ckpts / "step_0000200.pt").write_bytes(b"good")
    (ckpts / ".notes.txt.tmp7").write_text("not a checkpoint's")
    assert temporaries(ckpts, "*.pt") == [left]
    remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in ckpts.iterdir()) == [".notes.txt.tmp7", "step_0000200.pt"]
