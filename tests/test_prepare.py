"""Tests for landgan.data.prepare: odd and broken inputs, zips, OUT handling, real photos."""

from __future__ import annotations

import io
import json
import os
import zipfile
from contextlib import suppress
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landgan.data.dataset import open_dataset
from landgan.data.prepare import prepare_dataset
from landgan.errors import UserError

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/landscapes"
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8))


def _halves(w: int, h: int) -> Image.Image:
    """Left half red, right half blue."""
    img = Image.new("RGB", (w, h), RED)
    img.paste(BLUE, (w // 2, 0, w, h))
    return img


def _exif_rotated() -> bytes:
    """An 80x40 left-red/right-blue JPEG tagged orientation 6 (display rotated 90° clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _jpeg_bytes(_halves(80, 40), exif=exif.tobytes())


def _make_tree(root: Path) -> dict[str, str]:
    """Two class folders of good and broken files; returns {relative path: expected reason}."""
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    _noise(64, 48).save(root / "a/good.jpg", quality=90)
    Image.new("RGB", (50, 50), (10, 200, 30)).save(root / "a/good.PNG")
    Image.new("L", (40, 40), 100).save(root / "a/gray.png")
    pal = Image.new("P", (30, 30), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.save(root / "a/palette_alpha.png", transparency=0)  # all pixels transparent red
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(root / "a/cmyk.jpg")
    Image.fromarray(np.full((40, 40), 40000, np.uint16)).save(root / "b/sixteen.png")
    (root / "b/exif6.jpg").write_bytes(_exif_rotated())
    _halves(300, 40).save(root / "b/wide.png")
    (root / "b/corrupt.jpg").write_bytes(np.random.default_rng(1).bytes(5000))
    whole = _jpeg_bytes(_noise(128, 128, seed=2))
    (root / "b/truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "b/empty.jpg").write_bytes(b"")
    (root / "b/text.png").write_text("this is not a picture\n")
    Image.new("RGB", (5, 30)).save(root / "b/tiny.png")
    (root / "b/notes.txt").write_text("ignored: not an image extension")
    Image.new("RGB", (20, 20)).save(root / "b/.hidden.png")  # ignored: hidden
    return {
        "b/corrupt.jpg": "not an image",
        "b/truncated.jpg": "truncated image",
        "b/empty.jpg": "empty file",
        "b/text.png": "not an image",
        "b/tiny.png": "too small: 5 x 30 pixels",
    }


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("src") / "photos"
    return root, _make_tree(root)


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    """The tree prepared once at 32 px through a 2-process pool."""
    out = tmp_path_factory.mktemp("out") / "ds"
    return prepare_dataset(tree[0], out, 32, workers=2, progress=False), open_dataset(out)


def _pixel(ds, name: str) -> np.ndarray:
    return ds.images[ds.meta["sources"].index(name)].astype(int)


def test_counts_reasons_and_report_files(tree, prepared):
    report, ds = prepared
    expected = tree[1]
    assert report.found == 13 and report.written == 8 and len(report.skipped) == 5
    reasons = dict(report.skipped)
    assert set(reasons) == set(expected)
    for path, start in expected.items():
        assert reasons[path].startswith(start), (path, reasons[path])
    listed = json.loads((report.out / "skipped.json").read_text(encoding="utf-8"))
    assert [(d["path"], d["reason"]) for d in listed] == report.skipped
    lines = (report.out / "skipped.txt").read_text(encoding="utf-8").splitlines()
    assert lines == [f"{p}\t{r}" for p, r in report.skipped]
    text = report.summary()
    assert "8 of 13" in text and "skipped.txt" in text and "images/s" in text


def test_dataset_contents(prepared):
    report, ds = prepared
    assert ds.images.dtype == np.uint8 and ds.images.shape == (8, 32, 32, 3)
    assert ds.meta["sources"] == sorted(ds.meta["sources"])  # deterministic order
    assert ds.classes == report.classes == ["a", "b"]
    want = [0 if s.startswith("a/") else 1 for s in ds.meta["sources"]]
    assert ds.labels.tolist() == want
    assert ds.meta["skipped_count"] == 5 and ds.meta["conditions"] is None
    assert ds.meta["condition_names"] == [] and ds.meta["resize_filter"]
    assert ds.meta["count"] == 8 and ds.meta["resolution"] == 32
    buf = io.BytesIO()
    np.save(buf, np.zeros((8, 32, 32, 3), np.uint8))  # same .npy header as save_dataset's
    assert (report.out / "images.npy").read_bytes()[:128] == buf.getvalue()[:128]


def test_modes_converted(prepared):
    _, ds = prepared
    assert np.abs(_pixel(ds, "a/gray.png") - 100).max() <= 1
    assert _pixel(ds, "a/palette_alpha.png").min() >= 254  # transparent -> white
    cmyk = _pixel(ds, "a/cmyk.jpg").mean(axis=(0, 1))
    assert cmyk[0] > 200 and cmyk[1] < 60 and cmyk[2] < 60  # CMYK red stays red
    assert np.abs(_pixel(ds, "b/sixteen.png") - 40000 / 257).max() <= 1  # scaled, not clipped


def test_exif_orientation_applied(prepared):
    _, ds = prepared
    img = _pixel(ds, "b/exif6.jpg")
    top, bottom = img[:12].mean(axis=(0, 1)), img[-12:].mean(axis=(0, 1))
    # Rotated 90° clockwise, the left (red) half is on top and the right (blue) below.
    assert top[0] > 180 and top[2] < 80 and bottom[2] > 180 and bottom[0] < 80


def test_wide_image_centre_cropped(prepared):
    _, ds = prepared
    img = _pixel(ds, "b/wide.png")  # 300x40 crop is x in [130, 170): red | blue at 150
    assert img[:, :12, 0].mean() > 200 and img[:, -12:, 2].mean() > 200


def test_large_jpeg_and_pixel_limit(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _halves(1600, 1200).save(src / "big.jpg", quality=90)  # DCT draft + reduce path
    Image.new("RGB", (200, 200)).save(src / "limit.png")
    report = prepare_dataset(src, tmp_path / "out", 64, workers=1, progress=False)
    assert report.written == 2 and report.classes == [] and not report.skipped
    img = open_dataset(tmp_path / "out").images[0].astype(int)  # big.jpg sorts first
    assert img[:, :20, 0].mean() > 200 and img[:, -20:, 2].mean() > 200
    report = prepare_dataset(
        src, tmp_path / "out2", 64, workers=1, progress=False, max_pixels=200 * 200
    )  # limit.png is exactly at the limit
    assert report.written == 1
    assert report.skipped == [("big.jpg", "too large: 1600 x 1200 pixels")]


def test_zip_source(tmp_path):
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pics/a/x.png", _jpeg_bytes(Image.new("RGB", (40, 40), RED)))
        zf.writestr("pics/b/y.jpg", _jpeg_bytes(Image.new("RGB", (40, 30), BLUE)))
        zf.writestr("pics/b/bad.jpg", b"")
        zf.writestr("../evil.png", _jpeg_bytes(Image.new("RGB", (40, 40))))
        zf.writestr("pics/readme.txt", "not an image")
        zf.writestr("__MACOSX/pics/a/._x.png", b"apple double")
    report = prepare_dataset(path, tmp_path / "out", 32, workers=2, progress=False)
    assert (report.found, report.written) == (4, 2)
    assert report.skipped == [
        ("../evil.png", "unsafe path in zip"),
        ("pics/b/bad.jpg", "empty file"),
    ]
    ds = open_dataset(tmp_path / "out")
    assert ds.classes == ["a", "b"]  # the one top folder 'pics' is the root
    assert ds.meta["sources"] == ["pics/a/x.png", "pics/b/y.jpg"] and ds.labels.tolist() == [0, 1]
    assert not (tmp_path / "evil.png").exists()


def test_root_images_mean_no_classes_and_symlink_loop(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    Image.new("RGB", (20, 20)).save(src / "root.png")
    Image.new("RGB", (20, 20)).save(src / "a/one.png")
    os.symlink(src, src / "a/loop")  # a folder link back up: must not loop
    report = prepare_dataset(src, tmp_path / "out", 32, workers=1, progress=False)
    ds = open_dataset(tmp_path / "out")
    assert report.written == 2 and ds.classes == [] and ds.labels is None
    assert ds.meta["sources"] == ["a/one.png", "root.png"]


def _tiny_set(path: Path, colour) -> Path:
    path.mkdir(parents=True)
    Image.new("RGB", (20, 20), colour).save(path / "x.png")
    return path


def test_out_exists_force_and_user_files(tmp_path):
    out = tmp_path / "out"
    prepare_dataset(_tiny_set(tmp_path / "s1", RED), out, 32, workers=1, progress=False)
    (out / "my_notes.md").write_text("keep me")
    src2 = _tiny_set(tmp_path / "s2", BLUE)
    with pytest.raises(UserError, match="--force"):
        prepare_dataset(src2, out, 32, workers=1, progress=False)
    assert open_dataset(out).images[0, 0, 0, 0] > 200  # untouched: still red
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"junk")
    with pytest.raises(UserError, match="all 1 image files"):
        prepare_dataset(bad, out, 32, force=True, workers=1, progress=False)
    assert open_dataset(out).images[0, 0, 0, 0] > 200  # a failed run keeps the old one
    prepare_dataset(src2, out, 64, force=True, workers=1, progress=False)
    ds = open_dataset(out)
    assert ds.resolution == 64 and ds.images[0, 0, 0, 2] > 200
    assert (out / "my_notes.md").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset.json",
        "images.npy",
        "my_notes.md",
        "skipped.json",
        "skipped.txt",
    ]


def test_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        prepare_dataset(tmp_path / "missing", tmp_path / "o", 32, progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("x")
    with pytest.raises(UserError, match=r"no images found .*\.jpg"):
        prepare_dataset(tmp_path / "empty", tmp_path / "o", 32, progress=False)
    with pytest.raises(UserError, match="resolution must be one of"):
        prepare_dataset(tmp_path / "empty", tmp_path / "o", 48, progress=False)
    with pytest.raises(UserError, match="folder or a .zip"):
        prepare_dataset(tmp_path / "empty/readme.txt", tmp_path / "o", 32, progress=False)
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read zip"):
        prepare_dataset(tmp_path / "fake.zip", tmp_path / "o", 32, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"")
    with pytest.raises(UserError, match="skipped"):
        prepare_dataset(bad, tmp_path / "o", 32, workers=1, progress=False)
    assert not (tmp_path / "o").exists()  # nothing left behind


def test_permission_denied(tmp_path, monkeypatch):
    src = _tiny_set(tmp_path / "src", RED)
    Image.new("RGB", (20, 20)).save(src / "locked.png")
    (src / "locked.png").chmod(0)
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root reads anything: fail as for a user
        real_open = os.open

        def denied(path, *args, **kw):
            if os.path.basename(path) == "locked.png":
                raise PermissionError(13, "Permission denied", path)
            return real_open(path, *args, **kw)

        monkeypatch.setattr(os, "open", denied)
    report = prepare_dataset(src, tmp_path / "out", 32, workers=1, progress=False)
    assert report.skipped == [("locked.png", "permission denied")] and report.written == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_real_permission_denied(tmp_path):
    """chmod 000 for real, on a file and a folder; test_permission_denied simulates it."""
    src = tmp_path / "src"
    (src / "shut").mkdir(parents=True)
    for name in ("ok.png", "locked.png", "shut/inside.png"):
        Image.new("RGB", (20, 20)).save(src / name)
    (src / "locked.png").chmod(0)
    (src / "shut").chmod(0)
    try:
        with suppress(PermissionError), open(src / "locked.png", "rb"):
            pytest.skip("this user reads files whatever their mode (root, CAP_DAC_OVERRIDE)")
        report = prepare_dataset(src, tmp_path / "out", 32, workers=1, progress=False)
    finally:
        (src / "shut").chmod(0o755)  # so pytest can clean up
    assert report.written == 1 and report.skipped == [
        ("locked.png", "permission denied"),
        ("shut", "unreadable folder: Permission denied"),
    ]


def test_real_photos_subset(tmp_path):
    if not SHARED.is_dir():
        pytest.skip("../shared/data/landscapes not found (fresh clone without shared data)")
    for cls in ("forest", "sea"):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for f in sorted((SHARED / cls).iterdir())[:20]:
            os.symlink(f, tmp_path / "src" / cls / f.name)
    # The links lead out of SRC: read only when asked (issue 14, item 8)
    report = prepare_dataset(
        tmp_path / "src", tmp_path / "out", 64, workers=2, progress=False, follow_links=True
    )
    ds = open_dataset(tmp_path / "out")
    assert report.written == len(ds) == 40 and not report.skipped
    assert ds.classes == ["forest", "sea"] and np.bincount(ds.labels).tolist() == [20, 20]
    assert 20 < ds.images.mean() < 235  # real pictures, not blank
