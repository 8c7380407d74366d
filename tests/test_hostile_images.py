"""Hostile inputs for ``prepare``: every bad file is skipped with its reason, odd but
usable ones are stored, and nothing else in the dataset is lost. The fuzz test of
:func:`landgan.data.decode.decode_image` on mutated image bytes is in test_decode_fuzz.py.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landgan.data.dataset import open_dataset
from landgan.data.decode import decode_image
from landgan.data.prepare import display_name, prepare_dataset

from hostile_bytes import encode, noise, patch_central

posix_only = pytest.mark.skipif(os.name != "posix", reason="needs symlinks, FIFOs, byte names")
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root ignores file permissions
RED = (255, 0, 0)


def _png_bomb(w: int, h: int) -> bytes:
    """A PNG header announcing w x h RGB pixels; what follows does not matter."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(ihdr))
    return b"\x89PNG\r\n\x1a\n\0\0\0\x0d" + ihdr + crc + b"\0\0\0\0IEND\xaeB`\x82"  # no pixels


def _jpeg_bomb(w: int, h: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is changed to announce w x h pixels."""
    data = bytearray(encode(noise(16, 16), "JPEG"))
    struct.pack_into(">HH", data, data.find(b"\xff\xc0") + 5, h, w)
    return bytes(data)


def _corrupt(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def _exif_jpeg(exif: bytes) -> bytes:
    """An 80x40 JPEG, left half red and right half blue, with the APP1 segment ``exif``."""
    img = Image.new("RGB", (80, 40), RED)
    img.paste((0, 0, 255), (40, 0, 80, 40))
    return encode(img, "JPEG", quality=95, exif=exif)


def _bad_files() -> dict[str, tuple[bytes | Image.Image, str]]:
    """Files to be skipped: name -> (bytes or an image to save, start of the skip reason)."""
    jpg, png = encode(noise(64, 48, 1), "JPEG"), encode(noise(40, 40, 2), "PNG")
    webp = encode(noise(40, 40, 3), "WEBP", quality=80)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"  # Ghostscript bait
    return {
        "truncated.jpg": (jpg[: len(jpg) // 2], "truncated image"),
        "truncated.png": (png[: len(png) // 2], "truncated image"),
        "truncated.webp": (webp[: len(webp) // 2], "truncated image"),
        "corrupt.jpg": (_corrupt(jpg, jpg.find(b"\xff\xc4") + 5, b"\xff" * 16), "corrupt image"),
        "corrupt.png": (_corrupt(png, png.find(b"IDAT") + 40, b"\0" * 40), "corrupt image"),
        "corrupt.webp": (_corrupt(webp, webp.find(b"\x9d\x01\x2a"), b"\0\0\0"), "corrupt image"),
        "corrupt_header.jpg": (
            _corrupt(jpg, jpg.find(b"\xff\xc0") + 9, b"\0"),  # 0 channels
            "corrupt image: broken header",
        ),
        "empty.jpg": (b"", "empty file"),
        "empty.png": (b"", "empty file"),
        "empty.webp": (b"", "empty file"),
        os.fsdecode(b"bad\xff.jpg"): (b"", "empty file"),
        "text.png": (b"this is not a picture\n", "not an image"),
        "page.jpg": (b"<html><body>404</body></html>", "not an image"),
        "random.webp": (np.random.default_rng(4).bytes(3000), "not an image"),
        "postscript.jpg": (eps, "not an image"),
        "gif.png": (encode(noise(20, 20, 5), "GIF"), "not an image"),  # GIF is not tried
        "bomb.png": (_png_bomb(50_000, 50_000), "too large: 50000 x 50000 pixels"),
        "bomb.jpg": (_jpeg_bomb(60_000, 60_000), "too large: 60000 x 60000 pixels"),
        "line.png": (Image.new("RGB", (10_000, 3)), "too small: 10000 x 3 pixels"),
        "dot.png": (Image.new("RGB", (1, 1)), "too small: 1 x 1 pixels"),
    }


def _good_files() -> dict[str, bytes | Image.Image | tuple]:
    """Files to be stored: name -> bytes, an image, or (image, save options)."""
    exif6 = Image.Exif()
    exif6[0x0112] = 6  # display rotated 90° clockwise
    pal = Image.new("P", (30, 30), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    return {
        "good.jpg": noise(64, 48, 6),
        "good.png": noise(40, 40, 7),
        "good.bmp": noise(40, 30, 8),
        "good.tif": noise(30, 40, 10),
        "good.webp": encode(noise(40, 40, 9), "WEBP", lossless=True),
        "cmyk.jpg": Image.new("CMYK", (40, 40), (0, 255, 255, 0)),
        "cmyk.tif": Image.new("CMYK", (40, 40), (0, 255, 255, 0)),
        "sixteen.png": Image.fromarray(np.full((40, 40), 40000, np.uint16)),
        "sixteen.tif": Image.fromarray(np.full((40, 40), 40000, np.uint16)),
        "float.tif": Image.fromarray(np.full((40, 40), 0.5, np.float32)),
        "palette.png": noise(40, 40, 11).convert("P"),
        "palette_alpha.png": (pal, {"transparency": 0}),  # every pixel transparent red
        "rgba.png": Image.new("RGBA", (30, 30), (0, 0, 255, 0)),  # transparent blue
        "gray_alpha.png": Image.new("LA", (30, 30), (0, 0)),
        "gray.jpg": Image.new("L", (40, 40), 100),
        "bilevel.bmp": Image.new("1", (40, 40), 1),
        "exif6.jpg": _exif_jpeg(exif6.tobytes()),
        "exif_broken.jpg": _exif_jpeg(b"Exif\0\0II*\0\xff\xff\xff\x7f" + b"\xee" * 40),
        "png_named.jpg": encode(noise(40, 40, 15), "PNG"),
        "wide.png": Image.new("RGB", (4000, 8), RED),  # 500:1 is fine; a short side of 3 is not
        "Gipfel–Übersicht 山.jpg": noise(50, 40, 12),
        os.fsdecode(b"\xff\xfe.png"): noise(20, 20, 13),
        "two\nlines.png": noise(20, 20, 14),
    }


OTHER_SKIPS = {  # made by _make_hostile, not plain files
    "sparse.bmp": "too large: 800000000 bytes",
    "dangling.png": "unreadable: No such file",
    "loop_a.png": "unreadable: Too many levels of symbolic links",
    "loop_b.png": "unreadable: Too many levels of symbolic links",
    "self.png": "unreadable: Too many levels of symbolic links",
    "fifo.png": "not a regular file",
    "zero.png": "not a regular file",
    "locked.png": "permission denied",
    "locked_dir": "unreadable folder: Permission denied",
}
SKIPS = {**{display_name(n): r for n, (_, r) in _bad_files().items()}, **OTHER_SKIPS}
STORED = {display_name(n) for n in _good_files()}


def _make_hostile(root: Path) -> None:
    root.mkdir()
    files = {**{n: what for n, (what, _) in _bad_files().items()}, **_good_files()}
    for name, what in files.items():
        if isinstance(what, bytes):
            (root / name).write_bytes(what)
        elif isinstance(what, tuple):
            what[0].save(root / name, **what[1])
        else:
            what.save(root / name)
    with open(root / "sparse.bmp", "wb") as f:  # 800 MB announced, nothing on disk
        f.truncate(800_000_000)
    for link, target in [
        ("loop_a.png", "loop_b.png"),
        ("loop_b.png", "loop_a.png"),
        ("self.png", "self.png"),
        ("dangling.png", "missing.png"),
        ("zero.png", "/dev/zero"),
        ("loopdir", "."),
    ]:
        os.symlink(target, root / link)
    os.mkfifo(root / "fifo.png")  # opening it for reading would wait for a writer forever
    (root / "locked_dir").mkdir()
    for name in ("locked_dir/inside.png", "locked.png", ".hidden.png"):  # .hidden: ignored
        Image.new("RGB", (20, 20)).save(root / name)
    (root / "notes.txt").write_text("ignored: not an image extension")


def _deny(monkeypatch) -> None:
    """Make locked.png and locked_dir unreadable, also for root (who ignores chmod)."""
    real_open, real_scandir = os.open, os.scandir

    def open_(path, *args, **kw):
        if os.path.basename(path) == "locked.png":
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kw)

    def scandir(path="."):  # what os.walk lists a folder with
        if os.path.basename(path) == "locked_dir":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "scandir", scandir)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The hostile folder, prepared once at 32 px; (folder, report, dataset)."""
    root = tmp_path_factory.mktemp("hostile") / "src"
    _make_hostile(root)
    (root / "locked.png").chmod(0)
    (root / "locked_dir").chmod(0)
    out = tmp_path_factory.mktemp("out") / "ds"
    with pytest.MonkeyPatch.context() as mp:
        if AS_ROOT:
            _deny(mp)
        # A pool only when its workers inherit the patches above (fork), else in-process.
        workers = 2 if multiprocessing.get_start_method() == "fork" else 1
        try:
            report = prepare_dataset(root, out, 32, workers=workers, progress=False)
        finally:
            (root / "locked_dir").chmod(0o755)  # so pytest can clean up
    return root, report, open_dataset(out)


@posix_only
def test_hostile_folder_counts_and_reasons(hostile):
    _, report, ds = hostile
    reasons = dict(report.skipped)
    assert set(reasons) == set(SKIPS), set(reasons) ^ set(SKIPS)
    for name, start in SKIPS.items():
        assert reasons[name].startswith(start), (name, reasons[name])
    assert set(ds.meta["sources"]) == STORED and report.written == len(STORED) == len(ds)
    assert report.found == len(STORED) + len(SKIPS)  # each file once: loopdir not followed
    assert ds.classes == [] and ds.labels is None  # images lie directly in SRC
    listed = json.loads((report.out / "skipped.json").read_text(encoding="ascii"))
    assert [(d["path"], d["reason"]) for d in listed] == report.skipped
    lines = (report.out / "skipped.txt").read_text(encoding="utf-8").split("\n")
    assert lines[:-1] == [f"{p}\t{r}" for p, r in report.skipped] and lines[-1] == ""
    meta = json.loads((report.out / "dataset.json").read_text(encoding="ascii"))
    # Undecodable bytes and control characters are shown as \xNN; real Unicode stays.
    assert {"Gipfel–Übersicht 山.jpg", "\\xff\\xfe.png", "two\\x0alines.png"} <= set(
        meta["sources"]
    )
    assert "bad\\xff.jpg" in reasons
    assert "3 too large" in report.summary() and f"skipped {len(SKIPS)} (" in report.summary()


@posix_only
def test_stored_images_match_direct_decoding(hostile):
    """Every stored image is exactly its file decoded on its own: nothing shifted or mixed."""
    root, _, ds = hostile
    for real in _good_files():
        want = decode_image(root / real, 32)
        assert np.array_equal(ds.images[ds.meta["sources"].index(display_name(real))], want), real


@posix_only
def test_handled_modes(hostile):
    ds = hostile[2]

    def _pixels(ds, name: str) -> np.ndarray:
        return ds.images[ds.meta["sources"].index(name)].astype(int)

    for name in ("cmyk.jpg", "cmyk.tif", "wide.png"):  # red stays red
        r, g, b = _pixels(ds, name).mean(axis=(0, 1))
        assert r > 200 and g < 60 and b < 60, name
    for name in ("sixteen.png", "sixteen.tif"):  # 16-bit scaled, not clipped
        assert np.abs(_pixels(ds, name) - 40000 / 257).max() <= 1, name
    assert np.abs(_pixels(ds, "float.tif") - 128).max() <= 1  # 'F' in [0, 1]
    for name in ("palette_alpha.png", "rgba.png", "gray_alpha.png"):  # transparent -> white
        assert _pixels(ds, name).min() >= 254, name
    assert np.abs(_pixels(ds, "gray.jpg") - 100).max() <= 1
    assert _pixels(ds, "bilevel.bmp").min() >= 254
    img = _pixels(ds, "exif6.jpg")  # rotated: the left (red) half is now on top
    assert img[:12, :, 0].mean() > 180 and img[-12:, :, 2].mean() > 180
    img = _pixels(ds, "exif_broken.jpg")  # broken EXIF: as stored, red left, blue right
    assert img[:, :12, 0].mean() > 180 and img[:, -12:, 2].mean() > 180


def test_hostile_zip(tmp_path):
    good = {
        "set/a.png": encode(noise(40, 40, 20), "PNG"),
        "set/b.jpg": encode(noise(48, 40, 21), "JPEG"),
        "set/ユニコード.webp": encode(noise(40, 40, 22), "WEBP"),
        "set/twice.png": encode(noise(40, 40, 25), "PNG"),
    }  # 2nd copy; zipfile reads it
    unsafe = ("../evil.png", "/abs.png", "set/../../evil2.png", "C:/win.png", "..\\back.png")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, pytest.warns(UserWarning):
        zf.writestr("set/twice.png", encode(noise(40, 40, 26), "PNG"))  # "Duplicate name"
        for name, encoded in good.items():
            zf.writestr(name, encoded)
        for name in (*unsafe, "set/huge.png", "set/liar.png", "set/locked.png"):
            zf.writestr(name, encode(noise(20, 20, 24), "PNG"))  # over 1 kB
        zf.writestr("set/zeros.bmp", b"\0" * 9_000_000)  # ~9 kB compressed: a real bomb
        whole = encode(noise(40, 40, 23), "PNG")
        zf.writestr("set/truncated.png", whole[: len(whole) // 2])
        zf.writestr("set/empty.jpg", b"")
        zf.writestr("__MACOSX/set/._a.png", b"apple double")  # ignored
    data = bytearray(buf.getvalue())
    patch_central(data, "set/huge.png", 24, "<I", 0xFFFF_FFF0)  # announces 4 GiB
    patch_central(data, "set/liar.png", 24, "<I", 100)  # announces less than it holds
    flags = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("set/locked.png").flag_bits
    patch_central(data, "set/locked.png", 8, "<H", flags | 1)  # "encrypted"
    (tmp_path / "set.zip").write_bytes(bytes(data))
    report = prepare_dataset(
        tmp_path / "set.zip", tmp_path / "out", 32, workers=1, max_pixels=1_000_000, progress=False
    )  # member limit 8 MB
    want = {
        **dict.fromkeys(unsafe, "unsafe path in zip"),
        "set/huge.png": "too large: 4294967280 bytes uncompressed",
        "set/zeros.bmp": "too large: 9000000 bytes uncompressed",
        "set/liar.png": "corrupt zip member: Bad CRC-32",
        "set/locked.png": "unreadable zip member: File 'set/locked.png' is encrypted",
        "set/truncated.png": "truncated image",
        "set/empty.jpg": "empty file",
        "set/twice.png": "duplicate name in zip",
    }
    reasons = dict(report.skipped)
    assert set(reasons) == set(want) and len(report.skipped) == len(want)
    for name, start in want.items():
        assert reasons[name].startswith(start), (name, reasons[name])
    ds = open_dataset(tmp_path / "out")
    assert ds.meta["sources"] == sorted(good) and report.found == len(good) + len(want)
    for i, (name, encoded) in enumerate(sorted(good.items())):
        assert np.array_equal(ds.images[i], decode_image(encoded, 32)), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "set.zip"]  # nothing extracted
