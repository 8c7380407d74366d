"""Hostile cases of ``landgan prepare`` from issue 14: SIGTERM and SIGKILL mid-run, stale
and live temporaries, links out of SRC, unwritable OUT. Memory and zip bombs are in
test_hostile_prepare_memory.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from landgan.cli import main
from landgan.data.dataset import open_dataset
from landgan.data.prepare import prepare_dataset
from landgan.errors import UserError

from conftest import end_process, process_exists, start_process
from hostile_bytes import encode

posix_only = pytest.mark.skipif(os.name != "posix", reason="needs signals, symlinks")


def _slow_source(root: Path, n: int) -> None:
    """``n`` PNGs that compress to little but take milliseconds each to decode."""
    root.mkdir()
    data = encode(Image.new("RGB", (800, 800), (30, 60, 90)), compress_level=1)
    for i in range(n):
        (root / f"{i:04d}.png").write_bytes(data)


def _start_prepare(src: Path, out: Path) -> subprocess.Popen:
    """prepare in its own group (workers get signals too), half-way; killed if it never is."""
    proc = start_process(
        [
            sys.executable,
            "-m",
            "landgan",
            "prepare",
            str(src),
            "--out",
            str(out),
            "--resolution",
            "32",
            "--workers",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for_progress(proc, out / "images.npy.tmp")
    except BaseException:
        end_process(proc, signal.SIGKILL)
        raise
    return proc


def _wait_for_progress(proc: subprocess.Popen, tmp: Path) -> None:
    """Until ``tmp`` holds a few images (the run is mid-way), or fail."""
    deadline = time.monotonic() + 60
    while not (tmp.exists() and tmp.stat().st_size > 128 + 5 * 32 * 32 * 3):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "prepare never started writing"
        time.sleep(0.02)


def _mid_run(tmp_path: Path):
    """A prepare of 150 slow images, half-way: (process, SRC, OUT, its workers' pids or None)."""
    src, out = tmp_path / "src", tmp_path / "out"
    _slow_source(src, 150)
    proc = _start_prepare(src, out)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")  # Linux only
    workers = [int(p) for p in children.read_text().split()] if children.exists() else None
    return proc, src, out, workers


@posix_only
def test_sigterm_mid_run_leaves_no_temporary(tmp_path):
    proc, src, out, workers = _mid_run(tmp_path)
    os.killpg(proc.pid, signal.SIGTERM)  # parent and workers, as a service manager does
    try:  # A Pool used to hang here, rarely, on a lock a signalled worker held (reliability.md).
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
        assert workers is None or (len(workers) == 2 and not any(map(process_exists, workers)))
    finally:  # after the checks: the group's SIGKILL would hide workers that outlived it
        end_process(proc, signal.SIGKILL, 0)
    assert not list(tmp_path.rglob("*.tmp"))
    assert not out.exists()  # created by the run and left empty: removed
    report = prepare_dataset(src, out, 32, workers=1, progress=False)  # no --force needed
    assert report.written == 150 and report.notes == []


@posix_only
def test_workers_of_a_killed_prepare_exit(tmp_path):
    """SIGKILL to the parent alone (OOM killer): its workers see their pipes close and stop."""
    proc, _, _, workers = _mid_run(tmp_path)
    try:
        if workers is None:
            pytest.skip("needs Linux's /proc/PID/task/PID/children to find the workers")
        proc.kill()
        proc.communicate(timeout=30)
        deadline = time.monotonic() + 30
        while any(map(process_exists, workers)):
            assert time.monotonic() < deadline, "orphaned workers still running"
            time.sleep(0.05)
    finally:  # the group's SIGKILL: orphans that did not stop must not outlive the test
        end_process(proc, signal.SIGKILL, 0)
    assert len(workers) == 2


@posix_only
def test_sigkill_leftover_is_recognised_as_stale(tmp_path):
    """A killed run cannot clean up; the next one removes its temporaries and says so."""
    src, out = tmp_path / "src", tmp_path / "out"
    _slow_source(src, 150)
    proc = _start_prepare(src, out)
    os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=30)
    finally:
        end_process(proc, signal.SIGKILL, 0)
    assert [p.name for p in out.iterdir()] == ["images.npy.tmp"]
    report = prepare_dataset(src, out, 32, workers=1, progress=False)  # no --force needed
    assert report.written == 150
    assert "removed images.npy.tmp, a temporary left by an interrupted prepare" in report.summary()
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset.json",
        "images.npy",
        "skipped.json",
        "skipped.txt",
    ]


def test_planted_stale_temporaries_do_not_block(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (20, 20)).save(src / "x.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "images.npy.tmp").write_bytes(b"half an old run")
    (out / "dataset.json.tmp").write_text("{")
    assert main(["prepare", str(src), "--out", str(out), "--resolution", "32"]) == 0
    printed = capsys.readouterr().out
    assert "removed images.npy.tmp" in printed and "removed dataset.json.tmp" in printed
    assert not list(out.glob("*.tmp")) and len(open_dataset(out)) == 1
    (out / "notes.txt").write_text("a user's file")  # a real dataset still needs --force
    with pytest.raises(UserError, match="--force"):
        prepare_dataset(src, out, 32, progress=False)


@pytest.mark.skipif(os.name != "posix", reason="fcntl locks")
def test_running_prepare_holds_out(tmp_path):
    """A temporary of a prepare still running is not stale: OUT's lock says so."""
    import fcntl  # POSIX only, as the mark says

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    Image.new("RGB", (20, 20)).save(src / "x.png")
    out.mkdir()
    (out / "images.npy.tmp").write_bytes(b"being written")
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running prepare holds it
        with pytest.raises(UserError, match="another prepare is writing"):
            prepare_dataset(src, out, 32, workers=1, progress=False)
        assert (out / "images.npy.tmp").read_bytes() == b"being written"
    finally:
        os.close(fd)


def _links_tree(tmp_path: Path) -> Path:
    """SRC with images inside, and links out of it: a folder, a file, '/', plus a loop."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("o1.png", "o2.png"):
        Image.new("RGB", (20, 20), (0, 0, 200)).save(outside / name)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    Image.new("RGB", (20, 20), (200, 0, 0)).save(src / "a.png")
    Image.new("RGB", (20, 20), (200, 0, 0)).save(src / "sub/b.png")
    os.symlink(outside, src / "outdir")
    os.symlink(outside / "o1.png", src / "outfile.png")
    os.symlink("/", src / "rootlink")
    os.symlink("..", src / "sub/loop")  # back up to SRC: inside, followed once
    os.symlink("sub/b.png", src / "inside.png")  # inside SRC: read
    return src


@posix_only
def test_links_out_of_src_skipped_by_default(tmp_path):
    src = _links_tree(tmp_path)
    start = time.monotonic()
    report = prepare_dataset(src, tmp_path / "out", 32, workers=1, progress=False)
    assert time.monotonic() - start < 10  # the link to / is not walked
    assert open_dataset(tmp_path / "out").meta["sources"] == ["a.png", "inside.png", "sub/b.png"]
    reasons = dict(report.skipped)
    assert sorted(reasons) == ["outdir", "outfile.png", "rootlink"]
    assert reasons["rootlink"] == "outside SRC: a link to / (--follow-links reads it)"
    real = os.path.realpath(tmp_path / "outside")  # as the reason shows it
    assert reasons["outfile.png"].startswith(f"outside SRC: a link to {real}")
    assert "skipped 3 (3 outside SRC)" in report.summary()


@posix_only
def test_follow_links_reads_outside(tmp_path, capsys):
    src = _links_tree(tmp_path)
    (src / "rootlink").unlink()  # followed, it would walk the whole disk
    code = main(
        [
            "prepare",
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--resolution",
            "32",
            "--workers",
            "1",
            "--follow-links",
        ]
    )
    assert code == 0, capsys.readouterr().err
    sources = open_dataset(tmp_path / "out").meta["sources"]
    assert sources == [
        "a.png",
        "inside.png",
        "outdir/o1.png",
        "outdir/o2.png",
        "outfile.png",
        "sub/b.png",
    ]  # and the loop did not repeat anything


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("landgan: error: "), err
    return err


@posix_only
def test_out_under_read_only_parent(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (20, 20)).save(src / "x.png")
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        try:
            (parent / "probe").touch()
            pytest.skip("this user writes anywhere (root, CAP_DAC_OVERRIDE)")
        except PermissionError:
            pass
        err = _one_line_error(capsys, ["prepare", str(src), "--out", str(parent / "ds")])
    finally:
        parent.chmod(0o755)  # so pytest can clean up
    assert "cannot create" in err and "Permission denied" in err
    assert list(parent.iterdir()) == []


def test_out_under_a_file(tmp_path, capsys):
    """Needs no chmod (so it runs as root too): OUT's parent is a regular file."""
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (20, 20)).save(src / "x.png")
    (tmp_path / "afile").write_text("not a folder")
    err = _one_line_error(capsys, ["prepare", str(src), "--out", str(tmp_path / "afile/ds")])
    assert "cannot create" in err and (tmp_path / "afile").read_text() == "not a folder"
