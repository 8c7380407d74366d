"""The UI's engine and server helpers against hostile input (issue 14, items 6 and 7),
without a server process: unreadable checkpoints and runs folders, a bounded scratch folder,
cut log lines, and the temporary folder a killed server leaves. test_hostile_ui.py has the
same limits checked through a running ``landgan ui``.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from landgan.errors import UserError
from landgan.ui.app import Handlers
from landgan.ui.engine import Engine
from landgan.ui.outputs import FILES_KEPT
from landgan.ui.server import ShortLines, remove_stale_scratch
from ui_runs import BROKEN, COND, PLAIN, broken_runs, ckpt_file, tiny_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tiny_runs(tmp_path_factory)


# ---- the UI's engine: unavailable checkpoints, a bounded scratch folder -------------------


def test_an_unreadable_checkpoint_is_listed_not_fatal(runs, tmp_path):
    root = broken_runs(runs, tmp_path / "runs")
    h = Handlers(Engine(root, scratch=tmp_path / "out"))
    first, init = h.first_usable()
    assert first == PLAIN and init["names"] == []  # the newest that loads
    names, notice = h.choices()
    assert names == [PLAIN, COND] and BROKEN in notice and "not a readable" in notice
    with pytest.raises(UserError, match=f"{BROKEN} is unavailable: .*not a readable"):
        h.engine.model(BROKEN)
    shutil.copy(ckpt_file(runs, PLAIN), ckpt_file(root, BROKEN))  # repaired: offered again
    assert h.choices() == ([BROKEN, PLAIN, COND], "")
    for name in (PLAIN, COND):
        ckpt_file(root, name).write_bytes(b"\0" * 10)
    ckpt_file(root, BROKEN).write_text("not torch")
    with pytest.raises(UserError, match="none of the 3 checkpoints under .* can be loaded"):
        Handlers(Engine(root, scratch=tmp_path / "out")).first_usable()


def test_an_unreadable_runs_folder_is_one_line(tmp_path, monkeypatch):
    from landgan.ui.validate import list_ui_checkpoints

    def denied(self):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", denied)  # chmod 000 does not stop root, who runs CI
    with pytest.raises(UserError, match="cannot read the runs folder .*: Permission denied"):
        list_ui_checkpoints(tmp_path)


def test_scratch_folder_stays_bounded(runs, tmp_path, monkeypatch):
    eng = Engine(runs, scratch=tmp_path / "out")
    images, _ = eng.generate(PLAIN, 16, 0, None, None)
    for _ in range(FILES_KEPT // 16 + 10):  # 10 requests' worth over the file bound
        newest = eng.write_pngs(images, {})
    files = list((tmp_path / "out").rglob("*.png"))
    assert len(files) == FILES_KEPT and all(p.exists() for p in newest)
    size = sum(p.stat().st_size for p in newest)  # one request's (they are all alike)
    monkeypatch.setattr("landgan.ui.outputs.BYTES_KEPT", int(3.5 * size))
    eng.write_pngs(images, {})
    assert len(list((tmp_path / "out").iterdir())) == 3  # the size bound holds too


def test_short_lines_cuts_every_line():
    class Sink:
        text = ""

        def write(self, s):
            self.text += s

    sink = Sink()
    out = ShortLines(sink, limit=50)
    out.write("ok\n" + "y" * 30)
    out.write("y" * 10**6 + "\nshort\n")  # one line over two writes
    assert sink.text.split("\n") == ["ok", "y" * 50 + " [cut]", "short", ""]


def test_stale_scratch_of_a_killed_server_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"landgan-ui-{dead.pid}-abc" / "out").mkdir(parents=True)
    (tmp_path / f"landgan-ui-{os.getpid()}-def").mkdir()  # alive: kept
    (tmp_path / "landgan-ui-notapid-x").mkdir()  # not ours to judge: kept
    assert remove_stale_scratch(tmp_path) == [tmp_path / f"landgan-ui-{dead.pid}-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"landgan-ui-{os.getpid()}-def",
        "landgan-ui-notapid-x",
    ]
