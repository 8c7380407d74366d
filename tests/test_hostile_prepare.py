"""Hostile cases of ``landgan prepare`` from issue 14: memory bombs that fit the pixel
limit, zip bombs, SIGTERM and SIGKILL mid-run, links out of SRC, unwritable OUT.

Memory is measured for real: prepare runs in a fresh subprocess, which reports the
peak RSS of its pool workers (``RUSAGE_CHILDREN``). Not the subprocess's own: Linux
carries the high-water mark of the process that started it (pytest, hundreds of MB
with torch loaded) across exec into ``RUSAGE_SELF``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landgan.cli import main
from landgan.data.dataset import open_dataset
from landgan.data.limits import ZIP_TOTAL_FLOOR, read_member, zip_refusals
from landgan.data.prepare import prepare_dataset
from landgan.errors import UserError

from conftest import end_process, process_exists, start_process

posix_only = pytest.mark.skipif(os.name != "posix", reason="needs resource, signals, symlinks")
PNG16_BOUND_MB = 600  # worker peak for a 9400 x 9400 16-bit PNG (2.2-2.7 GB before the fix)
ZIP_BOUND_MB = 150  # worker peak for a zip of 200 MB members (each one read whole before)

_MEASURE = """
import json, resource, sys
from landgan.data.prepare import prepare_dataset
r = prepare_dataset(sys.argv[1], sys.argv[2], 32, workers=2, progress=False)
kib = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest pool worker
print(json.dumps({"written": r.written, "skipped": r.skipped, "images": r.found,
                  "peak_mb": peak * kib >> 20}))
"""


def _measure(src: Path, out: Path) -> dict:
    """Run prepare (2 workers) in a fresh process; its report and the peak RSS of its
    largest worker, in MB. Give it two files or more, so that a pool is used."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(src), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png16(path: Path, side: int, value: int) -> None:
    """A constant 16-bit grey PNG of side x side, streamed: ~190 kB for 9400 px."""
    row, packer = b"\0" + value.to_bytes(2, "big") * side, zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)  # 16-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))


def _zeros_member(zf: zipfile.ZipFile, name: str, mib: int) -> None:
    zero = bytes(1 << 20)
    with zf.open(name, "w") as member:  # streamed: never held in memory
        for _ in range(mib):
            member.write(zero)


def _declare_size(data: bytearray, name: str, size: int) -> None:
    """Make the central directory (what zipfile trusts) declare ``size`` inflated bytes."""
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        n = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46: at + 46 + n] == name.encode():
            struct.pack_into("<I", data, at + 24, size)
            return
        at += 4
    raise KeyError(name)


def _png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@posix_only
def test_16bit_png_9400_px_decodes_in_bounded_memory(tmp_path):
    """168 kB that decode to 88 M 16-bit pixels: stored, each worker under the bound."""
    src = tmp_path / "src"
    src.mkdir()
    _png16(src / "a.png", 9400, 40000)
    assert (src / "a.png").stat().st_size < 300_000
    Image.new("RGB", (20, 20)).save(src / "b.png")  # a second file: a pool is used
    result = _measure(src, tmp_path / "out")
    print(f"16-bit 9400 px PNG: worker peak {result['peak_mb']} MB")
    assert result["written"] == 2 and result["skipped"] == []
    assert result["peak_mb"] < PNG16_BOUND_MB
    image = open_dataset(tmp_path / "out").images[0]  # a.png sorts first
    assert np.abs(image.astype(int) - round(40000 / 257)).max() <= 1  # scaled, not clipped


@posix_only
def test_zip_of_huge_members_refused_before_inflating(tmp_path):
    """Members of 200 MB of zeros (a 2.6 MB zip): bombs by ratio, a liar stopped at its size."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        _zeros_member(zf, "set/bomb.bmp", 200)
        _zeros_member(zf, "set/bomb.png", 200)
        _zeros_member(zf, "set/liar.png", 200)
        zf.writestr("set/good.png", _png(Image.new("RGB", (40, 40), (0, 90, 0))))
    data = bytearray(path.read_bytes())
    assert len(data) < 5_000_000
    _declare_size(data, "set/liar.png", 4 << 20)  # under the ratio floor: it will be read
    path.write_bytes(bytes(data))
    result = _measure(path, tmp_path / "out")
    print(f"zip of 3 x 200 MB members: worker peak {result['peak_mb']} MB")
    reasons = dict(result["skipped"])
    assert reasons["set/bomb.bmp"].startswith("too large: zip bomb, 209715200 bytes packed")
    assert reasons["set/bomb.png"].startswith("too large: zip bomb")
    assert reasons["set/liar.png"].startswith("corrupt zip member: Bad CRC-32")
    assert result["written"] == 1 and result["images"] == 4
    assert result["peak_mb"] < ZIP_BOUND_MB


def test_zip_total_inflated_size_limited():
    """Members small enough one by one are refused once the zip's total passes the limit."""
    infos = []
    for i in range(5):
        info = zipfile.ZipInfo(f"m{i}.bmp")
        info.file_size, info.compress_size = 250 << 20, 100 << 20  # ratio 2.5: plausible
        infos.append(info)
    refused = zip_refusals(infos, archive_bytes=1 << 20, max_bytes=1 << 30)
    assert sorted(refused) == ["m4.bmp"]  # 4 x 250 MiB fit the 1 GiB floor, the 5th not
    assert refused["m4.bmp"] == (
        f"too large: the zip inflates to over {ZIP_TOTAL_FLOOR} bytes in all")
    assert zip_refusals(infos, archive_bytes=500 << 20, max_bytes=1 << 30) == {}  # 100 x 500 MiB


def test_read_member_stops_at_its_bound():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.bmp", bytes(3 << 20))
    with zipfile.ZipFile(buf) as zf:
        assert len(read_member(zf, "x.bmp", 3 << 20)) == 3 << 20
        with pytest.raises(ValueError, match="too large: 3145728 bytes uncompressed"):
            read_member(zf, "x.bmp", 1 << 20)


def test_bytes_per_pixel_counted(tmp_path):
    """At one pixel count, a WebP (16 bytes per pixel to decode) is refused, PNGs are not."""
    src = tmp_path / "src"
    src.mkdir()
    img = Image.new("RGB", (2000, 2000), (200, 30, 30))
    (src / "rgb.webp").write_bytes(_png(img, "WEBP", lossless=True, method=0))
    (src / "rgb.png").write_bytes(_png(img, compress_level=1))
    _png16(src / "grey16.png", 2000, 1000)
    report = prepare_dataset(src, tmp_path / "out", 32, workers=1, progress=False,
                             max_pixels=4_000_000)  # budget 8 x 4 M = 32 MB
    assert report.written == 2 and len(report.skipped) == 1
    name, reason = report.skipped[0]
    assert name == "rgb.webp" and reason.startswith("too large: 2000 x 2000 RGB pixels need")


def _slow_source(root: Path, n: int) -> None:
    """``n`` PNGs that compress to little but take milliseconds each to decode."""
    root.mkdir()
    data = _png(Image.new("RGB", (800, 800), (30, 60, 90)), compress_level=1)
    for i in range(n):
        (root / f"{i:04d}.png").write_bytes(data)


def _start_prepare(src: Path, out: Path) -> subprocess.Popen:
    """prepare in its own group (workers get signals too), half-way; killed if it never is."""
    proc = start_process([sys.executable, "-m", "landgan", "prepare", str(src), "--out",
                          str(out), "--resolution", "32", "--workers", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
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
        "dataset.json", "images.npy", "skipped.json", "skipped.txt"]


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
    code = main(["prepare", str(src), "--out", str(tmp_path / "out"), "--resolution", "32",
                 "--workers", "1", "--follow-links"])
    assert code == 0, capsys.readouterr().err
    sources = open_dataset(tmp_path / "out").meta["sources"]
    assert sources == ["a.png", "inside.png", "outdir/o1.png", "outdir/o2.png", "outfile.png",
                       "sub/b.png"]  # and the loop did not repeat anything


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
