"""What ``landgan prepare`` refuses to read, and what it never leaves behind.

Memory. A decoding worker holds one image at a time: the file's bytes and its decoded
pixels. Both are counted before anything is decoded (:func:`decoded_bytes` counts the
pixels as Pillow stores them, plus the decoder's own buffers), and an image needing more
than ``BYTES_PER_PIXEL * max_pixels`` bytes in all is skipped as too large. Conversion
to 8-bit RGB then works on strips of :data:`STRIP_PIXELS` pixels, so it adds megabytes,
not another copy of the image (:mod:`landgan.data.decode`).

:func:`available_memory` is what the machine can still give; ``landgan evaluate`` bounds
its feature arrays by it.

Zips. A member is refused before it is inflated if it declares more than
``BYTES_PER_PIXEL * max_pixels`` bytes, or more than :data:`ZIP_MAX_RATIO` times its
compressed size (once over :data:`ZIP_RATIO_FLOOR`); members are also refused once the
members accepted so far would inflate to more than :func:`zip_total_limit` in all.
Declared sizes can lie, so :func:`read_member` also counts the bytes it actually inflates
and stops at the declared size.

Links. By default a link (to a file or a folder) that resolves outside SRC is not
followed and is reported as skipped; links that stay inside SRC are followed, and each
real folder is listed once, so link loops end. ``follow_links`` lifts the SRC bound.

Temporaries. Under :func:`sigterm_unwinds` SIGTERM unwinds like an exception, so the
``finally`` of :func:`claim_out` removes the temporaries; those a SIGKILL or power loss
left are recognised as stale by the next run, which holds OUT's lock.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from landgan.errors import UserError

try:
    import fcntl  # POSIX: lock OUT against a second prepare
except ImportError:  # Windows: no lock
    fcntl = None

BYTES_PER_PIXEL = 8  # budget per allowed pixel: an uncompressed 16-bit RGBA file fits it
STRIP_PIXELS = 1 << 20  # pixels converted at a time: float temporaries of ~8 MB each
ZIP_MAX_RATIO = 100  # photos inflate ~1x, BMPs of photos ~3x; bombs 200x-1000x
ZIP_RATIO_FLOOR = 16 << 20  # a member inflating to less is harmless whatever its ratio
ZIP_TOTAL_FLOOR = 1 << 30  # inflating this much takes seconds: never worth refusing
_READ_CHUNK = 1 << 20
OUTSIDE = "outside SRC"  # the kind of skip reason of a link leading out of SRC


def decoded_bytes(
    mode: str,
    bands: int,
    size: tuple[int, int],
    full: tuple[int, int],
    fmt: str | None,
    progressive: bool = False,
) -> int:
    """Bytes Pillow holds to decode an image of ``mode`` at ``size`` (after ``draft``).

    Pillow stores 1-band 8-bit modes in 1 byte per pixel, 16-bit grey in 2 and
    everything else (RGB included) in 4. Some decoders buffer more at the file's
    ``full`` size: Pillow's WebP reader goes through libwebp's animation decoder
    (canvas, frame and a bytes copy: 16 bytes per pixel in all, measured), libjpeg
    keeps the 2-byte DCT coefficients of every channel of a progressive JPEG, and
    libtiff may read a strip as large as the image before unpacking it.
    """
    per_pixel = 2 if mode.startswith("I;16") else 4 if bands > 1 or mode in ("I", "F") else 1
    pixels, full_pixels = size[0] * size[1], full[0] * full[1]
    extra = {
        "WEBP": 12 * full_pixels,
        "TIFF": per_pixel * full_pixels,
        "JPEG": 2 * bands * full_pixels if progressive else 0,
    }.get(fmt, 0)
    return per_pixel * pixels + extra


def available_memory() -> int | None:
    """Bytes a new allocation can have now, or None where this cannot be told.

    Linux's MemAvailable (free memory plus the cache it would give back), lowered to what
    the cgroup (a container's memory limit) still allows; elsewhere the physical memory.
    """
    try:
        meminfo = Path("/proc/meminfo").read_text()
        avail = int(meminfo.split("MemAvailable:")[1].split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    for limit, used in (
        ("memory.max", "memory.current"),  # cgroup v2, then v1
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        try:
            room = int(Path("/sys/fs/cgroup", limit).read_text()) - int(
                Path("/sys/fs/cgroup", used).read_text()
            )
        except (OSError, ValueError):  # no such cgroup, or "max": no limit
            continue
        return max(0, min(avail, room))
    return avail


def zip_total_limit(archive_bytes: int) -> int:
    """Most bytes all members of a zip of ``archive_bytes`` may inflate to together."""
    return max(ZIP_MAX_RATIO * archive_bytes, ZIP_TOTAL_FLOOR)


def zip_refusals(
    infos: list[zipfile.ZipInfo], archive_bytes: int, max_bytes: int
) -> dict[str, str]:
    """{member name: skip reason} for members too large to inflate (module docstring).

    ``infos`` are the members to be read, in reading order: once the total is reached,
    the later ones are refused.
    """
    refused, total, limit = {}, 0, zip_total_limit(archive_bytes)
    for info in infos:
        size, packed = info.file_size, max(info.compress_size, 1)
        if size > max_bytes:
            refused[info.filename] = f"too large: {size} bytes uncompressed"
        elif size > ZIP_RATIO_FLOOR and size > ZIP_MAX_RATIO * packed:
            refused[info.filename] = (
                f"too large: zip bomb, {size} bytes packed into {packed} (over {ZIP_MAX_RATIO}:1)"
            )
        elif total + size > limit:
            refused[info.filename] = f"too large: the zip inflates to over {limit} bytes in all"
        else:
            total += size
    return refused


def read_member(zf: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    """The inflated bytes of member ``name``, never more than its declared size or ``max_bytes``.

    Raises ValueError (with the skip reason) past either bound, and zipfile's errors
    for a corrupt or encrypted member. zipfile itself stops at the declared size (a
    member that lies about it then fails its CRC check); counting here keeps the bound
    whatever zipfile does. The bytes go into one BytesIO, whose getvalue() hands its
    buffer over: the member is never held twice.
    """
    info = zf.getinfo(name)
    bound = min(info.file_size, max_bytes)
    if info.file_size > max_bytes:
        raise ValueError(f"too large: {info.file_size} bytes uncompressed")
    buf = io.BytesIO()
    with zf.open(name) as member:
        while chunk := member.read(min(_READ_CHUNK, bound + 1 - buf.tell())):
            buf.write(chunk)
            if buf.tell() > bound:
                raise ValueError(f"too large: inflates beyond {bound} bytes")
    return buf.getvalue()


def _inside(path: str, top: str) -> bool:
    return os.path.commonpath([top, path]) == top


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows links
    except OSError:  # a link loop, or gone meanwhile: the decoder will say so
        return False


def _leads_out(entry: os.DirEntry, top: str, is_dir: bool) -> str | None:
    """The real target of a link that would be read outside ``top``, else None.

    A link to a device, FIFO or missing file is left to the decoder, which refuses it
    as "not a regular file" or "unreadable" without opening it.
    """
    if not entry.is_symlink():
        return None
    target = os.path.realpath(entry.path)
    if _inside(target, top):
        return None
    if not is_dir:
        try:
            if not stat.S_ISREG(os.stat(target).st_mode):
                return None
        except OSError:
            return None
    return target


def walk_folder(
    root: str | os.PathLike, wanted: Callable[[str], bool], follow_links: bool = False
) -> tuple[list[str], list[tuple[str, str]]]:
    """(image names as relative posix paths, [(name, reason)] refused), both unsorted.

    Lists ``root`` recursively with the link policy of the module docstring. Hidden
    folders (.name) are not entered; ``wanted`` picks the files. A subfolder that
    cannot be listed is refused; for SRC itself the OSError is raised.
    """
    root = os.fspath(root)
    top = os.path.realpath(root)
    names, refused, seen = [], [], set()
    stack = [""]
    while stack:
        rel = stack.pop()
        path = os.path.join(root, rel) if rel else root
        try:
            info = os.stat(path)
            # A real folder is listed once, however many links lead to it: loops end here.
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as e:
            if not rel:
                raise
            refused.append((rel, f"unreadable folder: {e.strerror or e}"))
            continue
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            is_dir = _is_dir(entry)
            if is_dir and entry.name.startswith("."):
                continue
            target = None if follow_links else _leads_out(entry, top, is_dir)
            if target is not None and (is_dir or wanted(name)):
                refused.append((name, f"{OUTSIDE}: a link to {target} (--follow-links reads it)"))
            elif target is None and is_dir:
                stack.append(name)
            elif target is None and wanted(name):
                names.append(name)
    return names, refused


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # the shell's status for a process killed by SIGTERM


@contextmanager
def sigterm_unwinds():
    """Make SIGTERM raise SystemExit, so ``finally`` blocks remove the temporaries.

    SIGTERM's default action ends the process on the spot, leaving images.npy.tmp
    behind. Outside the main thread handlers cannot be set (nor do signals arrive).
    """
    try:
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    except ValueError:
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def claim_out(out: Path, tmp: list[Path], shown: str):
    """Create and lock the folder ``out``, remove stale temporaries ``tmp``; yield notes.

    ``shown`` is ``out`` as messages show it. Raises :class:`UserError` if ``out``
    cannot be created or another process holds the lock.

    The lock (on the folder, released when the process ends however it ends) tells a
    temporary of a running prepare from one a killed prepare left: once it is held,
    every temporary is stale. On the way out the temporaries go, and OUT if this
    call created it and it stayed empty.
    """
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY) if fcntl is not None else None
    except OSError as e:
        raise UserError(f"cannot create {shown}: {e.strerror or e}") from None
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its temporaries are not ours to remove
            os.close(fd)
            raise UserError(f"another prepare is writing to {shown}") from None
    try:
        stale = [path for path in tmp if path.exists()]
        for path in stale:
            path.unlink()
        yield [f"removed {path.name}, a temporary left by an interrupted prepare" for path in stale]
    finally:
        for path in tmp:
            path.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()
        if fd is not None:
            os.close(fd)
