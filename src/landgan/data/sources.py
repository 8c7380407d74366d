"""What SRC holds: the image files of a folder or a .zip, listed before anything is decoded.

:func:`scan_source` finds the files to store and those refused while listing (unsafe or
duplicate zip names, zip bombs, unreadable folders), and whether a zip's single top folder
is to be skipped when reading class folders; :func:`display_name` makes any name valid
text for reports and messages. The rules they follow are in :mod:`landgan.data.prepare`'s
docstring; they live apart from it because they only read names, never pixels or OUT.
"""

from __future__ import annotations

import os
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from landgan.data.limits import walk_folder, zip_refusals
from landgan.errors import UserError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def display_name(name: str) -> str:
    """``name`` as printable, valid text, for reports and messages.

    Names from ``os.walk`` carry undecodable bytes as lone surrogates, which cannot
    be encoded as UTF-8 (json.dumps would escape them, but printing or writing
    skipped.txt would fail). Such bytes become ``\\xNN``; so do control characters
    and line separators, which would otherwise break one-line-per-file reports.
    Two different names can therefore look alike; the files themselves are read by
    their real names.
    """
    try:
        raw = os.fsencode(name)  # surrogates back to the bytes they stand for
    except UnicodeEncodeError:  # a surrogate that is no escaped byte: keep it visible
        raw = name.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(_escape(c) if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


def _escape(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


@dataclass
class Source:
    """The image files of SRC, in the order they will be stored."""

    path: Path
    is_zip: bool
    names: list[str]  # relative posix paths, or zip member names; sorted
    # (name, reason) refused while listing: unsafe zip names, unreadable folders
    refused: list[tuple[str, str]] = field(default_factory=list)
    strip: int = 0  # leading name parts to ignore when reading class folders


def name_parts(name: str) -> list[str]:
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in EXTENSIONS


def _wanted(name: str) -> bool:
    """An image by its extension, and not hidden (.name) nor macOS zip litter."""
    parts = name_parts(name)
    return (
        bool(parts)
        and parts[0] != "__MACOSX"
        and _is_image_name(parts[-1])
        and not any(p.startswith(".") for p in parts)
    )


def _scan_zip(src: Path, max_bytes: int) -> Source:
    try:
        with zipfile.ZipFile(src) as zf:  # a repeated name: zipfile reads the last entry
            infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
            members = [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"cannot read zip file {display_name(str(src))}: {e}") from None
    refused = sorted(
        (n, "unsafe path in zip") for n in members if _is_unsafe(n) and _is_image_name(n)
    )
    names = [n for n in members if not _is_unsafe(n) and _wanted(n)]
    refused += [
        (n, "duplicate name in zip (the last copy is read)")
        for n, k in Counter(names).items()
        for _ in range(k - 1)
    ]
    names = sorted(set(names))
    bombs = zip_refusals([infos[n] for n in names], src.stat().st_size, max_bytes)
    names = [n for n in names if n not in bombs]
    firsts = {name_parts(n)[0] for n in names if len(name_parts(n)) > 1}
    strip = int(len(firsts) == 1 and all(len(name_parts(n)) > 1 for n in names))
    return Source(src, True, names, refused + sorted(bombs.items()), strip)


def scan_source(src: Path, max_bytes: int, follow_links: bool) -> Source:
    """List the image files of SRC; raise UserError if there are none."""
    if not src.exists():
        raise UserError(f"SRC not found: {display_name(str(src))}")
    if src.is_dir():
        try:
            names, refused = walk_folder(src, _wanted, follow_links)
        except OSError as e:  # SRC itself
            raise UserError(f"cannot read {display_name(str(src))}: {e.strerror or e}") from None
        source = Source(src, False, sorted(names), sorted(refused))
    elif src.suffix.lower() == ".zip":
        source = _scan_zip(src, max_bytes)
    else:
        raise UserError(f"SRC must be a folder or a .zip file: {display_name(str(src))}")
    if not source.names and not source.refused:
        raise UserError(
            f"no images found in {display_name(str(src))} (looked for {', '.join(EXTENSIONS)})"
        )
    return source


def _is_unsafe(name: str) -> bool:
    n = name.replace("\\", "/")
    return n.startswith("/") or (len(n) > 1 and n[1] == ":") or ".." in n.split("/")
