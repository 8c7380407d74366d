"""Hostile cases of ``landgan prepare`` from issue 14 that attack memory: images that fit
the pixel limit but not the memory (16-bit, WebP's bytes per pixel) and zip bombs. Apart
from test_hostile_prepare.py (signals, links, OUT): these measure a worker's peak memory.

Memory is measured for real: prepare runs in a fresh subprocess, which reports the
peak RSS of its pool workers (``RUSAGE_CHILDREN``). Not the subprocess's own: Linux
carries the high-water mark of the process that started it (pytest, hundreds of MB
with torch loaded) across exec into ``RUSAGE_SELF``.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landgan.data.dataset import open_dataset
from landgan.data.limits import ZIP_TOTAL_FLOOR, read_member, zip_refusals
from landgan.data.prepare import prepare_dataset

from hostile_bytes import encode, patch_central

posix_only = pytest.mark.skipif(os.name != "posix", reason="needs resource")
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
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(src), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png16(path: Path, side: int, value: int) -> None:
    """A constant 16-bit grey PNG of side x side, streamed: ~190 kB for 9400 px."""
    row, packer = b"\0" + value.to_bytes(2, "big") * side, zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)  # 16-bit greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _zeros_member(zf: zipfile.ZipFile, name: str, mib: int) -> None:
    zero = bytes(1 << 20)
    with zf.open(name, "w") as member:  # streamed: never held in memory
        for _ in range(mib):
            member.write(zero)


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
        zf.writestr("set/good.png", encode(Image.new("RGB", (40, 40), (0, 90, 0))))
    data = bytearray(path.read_bytes())
    assert len(data) < 5_000_000
    # The declared inflated size: under the ratio floor, so it will be read.
    patch_central(data, "set/liar.png", 24, "<I", 4 << 20)
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
        f"too large: the zip inflates to over {ZIP_TOTAL_FLOOR} bytes in all"
    )
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
    (src / "rgb.webp").write_bytes(encode(img, "WEBP", lossless=True, method=0))
    (src / "rgb.png").write_bytes(encode(img, compress_level=1))
    _png16(src / "grey16.png", 2000, 1000)
    report = prepare_dataset(
        src, tmp_path / "out", 32, workers=1, progress=False, max_pixels=4_000_000
    )  # budget 8 x 4 M = 32 MB
    assert report.written == 2 and len(report.skipped) == 1
    name, reason = report.skipped[0]
    assert name == "rgb.webp" and reason.startswith("too large: 2000 x 2000 RGB pixels need")
