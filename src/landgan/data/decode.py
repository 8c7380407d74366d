"""Decode one untrusted image file into a square 8-bit RGB array.

:func:`decode_image` is what ``landgan prepare`` does to every file; everything a
file can do wrong ends in :class:`SkipImage`, whose ``reason`` goes to the skip
report. Steps:

1. Read: only regular files (a FIFO would block, ``/dev/zero`` never ends), at most
   ``BYTES_PER_PIXEL * max_pixels`` bytes. Before decoding, skip an empty file, one
   Pillow cannot identify as JPEG, PNG, WebP, BMP or TIFF (other formats are not
   even tried: Pillow's EPS plugin, for one, runs Ghostscript), a header announcing
   over ``max_pixels`` pixels (decompression bombs) or a short side under 8 px.
   There is no aspect-ratio limit.
2. Decode fully with ``LOAD_TRUNCATED_IMAGES`` off, so a truncated or corrupt file
   is skipped instead of stored half grey. JPEGs use ``draft`` (a 1/2-1/8 DCT
   scale) when that keeps a short side of 3x the target. Before decoding, the file's
   bytes plus the memory the decoded pixels take (counted per mode and format by
   :func:`landgan.data.limits.decoded_bytes`) must fit ``BYTES_PER_PIXEL *
   max_pixels``: a 16-bit or RGBA image costs more than an 8-bit grey one.
3. Take the centre square (as stored) and shrink it by a whole factor with
   ``Image.reduce`` (a box average) while 3x the target remains, converting to 8-bit
   RGB a strip of rows at a time, so the conversion never holds a second full-size
   copy. Transparency is composited onto white (the colour under transparent
   pixels is arbitrary; white is how viewers show it). 16-bit data ('I;16*', and
   'I' taken as 16-bit) is scaled by 255/65535, not clipped; 'F' is read as [0, 1]
   if its maximum is <= 1, else [0, 255]. CMYK, grayscale and palettes use
   Pillow's conversion (ICC profiles are not applied).
4. Apply the EXIF orientation to the small square (broken EXIF: as stored).
5. ``resize(LANCZOS, reducing_gap=3)`` to the target size: antialiased, and it also
   upsamples small images.

Steps 3 and 5 are in :mod:`landgan.data.convert`.

:class:`SourceDecoder` is what each of ``prepare``'s worker processes runs
(:mod:`landgan.data.workers`): it reads from a folder or a zip and turns every
failure, even an unexpected one, into a skip.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zipfile
import zlib
from contextlib import contextmanager, suppress

import numpy as np
from PIL import Image, ImageFile

from landgan.data.convert import REDUCING_GAP, shrink_to_rgb, square_resize
from landgan.data.limits import BYTES_PER_PIXEL, decoded_bytes, read_member

MIN_SIDE = 8  # a shorter side carries too little picture to be worth upsampling
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default bomb limit, 1024**3 // 4 // 3
# Pillow names of the formats behind prepare's extensions (the JPEG opener also
# returns the multi-picture JPEGs many cameras write, as format MPO).
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")
# EXIF orientation -> the transposition that shows the image upright (as ImageOps.exif_transpose)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What Pillow's plugins and C codecs raise on malformed data. Listed rather than a bare
# ``Exception`` so that a bug of ours still surfaces; the fuzz test in
# tests/test_decode_fuzz.py checks that nothing else escapes.
BAD_DATA = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
    NotImplementedError,
    RecursionError,
)


class SkipImage(Exception):
    """The file cannot be used; ``reason`` is a short text for the skip report.

    The text before the first ':' is the kind ("too large", "corrupt image", ...),
    which ``PrepareReport.summary`` counts.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def decode_image(
    source: bytes | str | os.PathLike, resolution: int, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Encoded image bytes, or a file path, -> uint8 array (resolution, resolution, 3).

    Raises :class:`SkipImage` for anything that makes the file unusable (see the
    module docstring), :class:`ValueError` only for bad arguments. Pillow's two
    process-wide settings (``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``) are
    changed during the call and restored after it, so do not decode in threads
    alongside other Pillow code that needs different values.
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer (got {resolution!r})")
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer (got {max_pixels!r})")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = read_image_file(source, BYTES_PER_PIXEL * max_pixels)
    with _pillow_settings():
        img = _open(data, resolution, max_pixels)
        upright = None
        with suppress(Exception):  # broken EXIF: keep the image as stored
            upright = _UPRIGHT.get(img.getexif().get(0x0112))
        try:
            img = shrink_to_rgb(img, resolution)
        except MemoryError:
            raise SkipImage("too large: out of memory while converting") from None
        except BAD_DATA as e:  # Pillow has no conversion (e.g. from LAB)
            raise SkipImage(f"unsupported colour mode {img.mode}: {_describe(e)}") from None
        return square_resize(img.transpose(upright) if upright is not None else img, resolution)


def read_image_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``; :class:`SkipImage` if it cannot be used."""
    try:
        # stat first: merely opening some devices has effects (a tape rewinds).
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise SkipImage("not a regular file")
        # O_NONBLOCK: if a FIFO is swapped in after the stat, open must not wait for
        # a writer; fstat below then refuses it. (No effect on regular files.)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SkipImage("not a regular file")
            if info.st_size > max_bytes:
                raise SkipImage(f"too large: {info.st_size} bytes")
            data = f.read(max_bytes + 1)  # bounded even if the file grows meanwhile
    except PermissionError:
        raise SkipImage("permission denied") from None
    except OSError as e:  # ELOOP (symlink loop), ENOENT (dangling link), EIO, ...
        raise SkipImage(f"unreadable: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise SkipImage(f"too large: over {max_bytes} bytes")
    return data


@contextmanager
def _pillow_settings():
    """Pillow settings for untrusted files, put back afterwards; warnings silenced.

    Our own pixel check replaces Pillow's (ours reports W x H, and takes any limit),
    and a truncated file must raise on load() rather than come back padded with grey.
    Pillow warns about e.g. corrupt EXIF; a skip reason says more, and warnings
    printed from worker processes would garble the progress bar.
    """
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _open(data: bytes, size: int, max_pixels: int) -> Image.Image:
    """Identify, check the announced size, then decode fully (JPEG: DCT-scaled)."""
    if not data:
        raise SkipImage("empty file")
    try:
        img = Image.open(io.BytesIO(data), formats=_formats())
    except Image.UnidentifiedImageError:
        # Pillow says the same for a JPEG with a broken header as for a text file.
        if _has_magic(data):
            raise SkipImage("corrupt image: broken header") from None
        raise SkipImage("not an image: no JPEG, PNG, WebP, BMP or TIFF data") from None
    except BAD_DATA as e:  # identified, but the header is broken
        raise SkipImage(_failure(data, e)) from None
    w, h = img.size
    if w * h > max_pixels:
        raise SkipImage(f"too large: {w} x {h} pixels")
    if min(w, h) < MIN_SIDE:
        raise SkipImage(f"too small: {w} x {h} pixels")
    try:
        img.draft(None, (int(REDUCING_GAP * size),) * 2)  # JPEG: DCT downscale; others: no-op
        _check_memory(img, (w, h), len(data), max_pixels)
        img.load()
    except BAD_DATA as e:
        raise SkipImage(_failure(data, e)) from None
    return img


def _check_memory(img: Image.Image, full: tuple[int, int], nbytes: int, max_pixels: int) -> None:
    """Skip an image whose file and decoded pixels together exceed the worker's budget."""
    fmt = "JPEG" if img.format == "MPO" else img.format
    progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    need = nbytes + decoded_bytes(img.mode, len(img.getbands()), img.size, full, fmt, progressive)
    if need > BYTES_PER_PIXEL * max_pixels:
        raise SkipImage(
            f"too large: {full[0]} x {full[1]} {img.mode} pixels need "
            f"{need >> 20} MiB to decode (limit {BYTES_PER_PIXEL * max_pixels >> 20})"
        )


def _has_magic(data: bytes) -> bool:
    """Whether ``data`` starts like one of :data:`FORMATS`."""
    return data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\0", b"MM\0*")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )


def _failure(data: bytes, e: BaseException) -> str:
    """The skip reason for a decoding error: truncated or corrupt, and Pillow's words."""
    if isinstance(e, MemoryError):  # under max_pixels, yet more than this machine has
        return "too large: out of memory while decoding"
    # libwebp only says "could not create decoder object"; the RIFF header's length
    # tells whether the file was cut short.
    riff_short = data[:4] == b"RIFF" and len(data) < 8 + int.from_bytes(data[4:8], "little")
    kind = "truncated" if riff_short or "truncated" in str(e).lower() else "corrupt"
    return f"{kind} image: {_describe(e)}"


def _formats() -> list[str]:
    # Those this Pillow has (one built without libwebp has no WEBP opener; naming it
    # would raise KeyError). Image.init() imports all plugins once, then is a no-op.
    Image.init()
    return [f for f in FORMATS if f in Image.OPEN]


def _describe(e: BaseException) -> str:
    # Some Pillow errors have an empty message (struct.error, bare IndexError).
    return str(e) or type(e).__name__


class SourceDecoder:
    """Turns a task (index, name) into (index, array or None, reason); never raises.

    ``root`` is a folder (names are relative paths) or a .zip (names are members).
    """

    def __init__(self, root: str, is_zip: bool, size: int, max_pixels: int):
        self.root, self.size, self.max_pixels = root, size, max_pixels
        self.max_bytes = BYTES_PER_PIXEL * max_pixels
        self.zip = zipfile.ZipFile(root) if is_zip else None  # one open per worker

    def _read_member(self, name: str) -> bytes:
        # Sizes and ratios were checked when the zip was listed (limits.zip_refusals);
        # read_member bounds what is actually inflated, whatever the headers say.
        try:
            return read_member(self.zip, name, self.max_bytes)
        except ValueError as e:
            raise SkipImage(str(e)) from None
        except (RuntimeError, NotImplementedError) as e:  # encrypted, unknown compression
            raise SkipImage(f"unreadable zip member: {e}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise SkipImage(f"corrupt zip member: {_describe(e)}") from None

    def __call__(self, task: tuple[int, str]) -> tuple[int, np.ndarray | None, str]:
        index, name = task
        try:
            if self.zip is not None:
                data = self._read_member(name)
            else:
                data = read_image_file(os.path.join(self.root, name), self.max_bytes)
            return index, decode_image(data, self.size, self.max_pixels), ""
        except SkipImage as e:
            return index, None, e.reason
        except Exception as e:  # noqa: BLE001 -- one bad file must never stop the run
            return index, None, f"unreadable: {type(e).__name__}: {e}"

    def close(self) -> None:
        """Close the zip file, if any."""
        if self.zip is not None:
            self.zip.close()
