"""``landgan prepare``: turn a folder or a .zip of photos into a prepared dataset.

Each image file is decoded once by :func:`landgan.data.decode.decode_image` (made
square, resized; its docstring lists every check and conversion) and stored in the
format of :mod:`landgan.data.dataset`. A file that cannot be used is skipped with
its reason; nothing a single file does stops the run.

Folders are searched recursively; links leading out of SRC are skipped unless
``follow_links``, the others followed, each real folder read once (so link loops end);
a subfolder that cannot be read is listed as skipped (:mod:`landgan.data.limits`). A
.zip is read in memory, never extracted: members with absolute names or '..' are
skipped as unsafe, zip bombs (by declared size, ratio and total, see limits) as too
large, and extra entries of a repeated name as duplicates. Names starting with '.' and
``__MACOSX`` are ignored. Classes: if every stored image lies in a first-level
subfolder, the sorted subfolder names are the classes and labels index them; any
image directly in SRC means no classes (labels None). A zip whose entries share one
top folder (what zipping a folder gives) is read as that folder.

Names in the reports (``sources`` in dataset.json, skipped.json, skipped.txt, class
names) are for people and always valid text: bytes of a file name that are not
UTF-8, and control characters (a newline would split a line of skipped.txt), are
written as ``\\xNN`` escapes (see :func:`landgan.data.sources.display_name`). Files are
still read by their real names. Listing SRC is :mod:`landgan.data.sources`.

Worker processes decode (:mod:`landgan.data.workers`); results arrive in order and
are appended to ``images.npy`` at once, so memory holds one decode per worker (bounded
by the budget of :mod:`landgan.data.limits`) and a few finished images, whatever the
dataset size. Outputs get temporary names
(``*.tmp``), renamed at the end, dataset.json last. OUT is locked against a second
prepare meanwhile; temporaries are removed on any error and on SIGTERM, and those left
by a killed run (SIGKILL, power loss) are removed, and said so, by the next one.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from landgan.data.dataset import FORMAT_VERSION, IMAGES_FILE, META_FILE
from landgan.data.decode import DEFAULT_MAX_PIXELS, SourceDecoder
from landgan.data.limits import BYTES_PER_PIXEL, claim_out, sigterm_unwinds
from landgan.data.sources import Source, display_name, name_parts, scan_source
from landgan.data.workers import ordered_map
from landgan.errors import UserError

RESOLUTIONS = (32, 64, 128, 256)
RESIZE_FILTER = "centre crop; Image.reduce (integer box) then LANCZOS, reducing_gap=3"
SKIPPED_JSON, SKIPPED_TXT = "skipped.json", "skipped.txt"
_NPY_HEADER_LEN = 128  # what np.save writes for a 4-d uint8 array; fixed so it can be rewritten


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` did; ``summary()`` is what the CLI prints."""

    out: Path
    found: int  # image files found (by extension), plus refused zip members and folders
    written: int  # images stored
    # (display name of the path relative to SRC or of the zip member, reason), sorted
    skipped: list[tuple[str, str]]
    seconds: float
    classes: list[str]
    notes: list[str] = field(default_factory=list)  # e.g. stale temporaries removed

    @property
    def images_per_second(self) -> float:
        """Files processed (stored or skipped) per second of the whole run."""
        return self.found / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A few human-readable lines: counts, classes, where the skip report is, speed."""
        kinds = Counter(reason.split(":")[0] for _, reason in self.skipped)  # "too large: ..."
        detail = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        out = display_name(str(self.out))
        return "\n".join(
            [
                f"prepared {self.written} of {self.found} image files into {out} "
                f"in {self.seconds:.1f} s ({self.images_per_second:.0f} images/s)",
                f"classes ({len(self.classes)}): {', '.join(self.classes)}"
                if self.classes
                else "classes: none (not every image is inside a class subfolder)",
                f"skipped {len(self.skipped)} ({detail}); list in {out}/{SKIPPED_TXT}"
                if self.skipped
                else "skipped 0",
                *self.notes,
            ]
        )


def _decode_all(source: Source, size: int, max_pixels: int, workers: int, progress: bool):
    """Yield (index, array or None, reason) for every name of ``source``, in order."""
    tasks = list(enumerate(source.names))
    args = (str(source.path), source.is_zip, size, max_pixels)
    workers = min(workers, len(tasks))
    with tqdm(total=len(tasks), unit="img", desc="prepare", disable=not progress) as bar:
        if workers <= 1:  # in-process: no start-up cost, and easier to debug
            decoder = SourceDecoder(*args)
            try:
                for result in map(decoder, tasks):
                    bar.update()
                    yield result
            finally:
                decoder.close()
            return
        for result in ordered_map(SourceDecoder, args, tasks, workers):
            bar.update()
            yield result


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """An .npy (format 1.0) header for a C-order uint8 array, padded as np.save pads it."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (shape,)
    text = text.ljust(_NPY_HEADER_LEN - 11) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def _write_images(
    path: Path, source: Source, size: int, max_pixels: int, workers: int, progress: bool
) -> tuple[list[str], list[tuple[str, str]]]:
    """Decode everything into the .npy file ``path``; return (stored names, skipped).

    Names are the real ones (not yet :func:`display_name`), skipped in source order.
    """
    kept, skipped = [], list(source.refused)
    with open(path, "wb") as f:
        # Results arrive in order, so images are appended as they come: nothing is
        # held in memory, and the count in the header is fixed once it is known.
        f.write(_npy_header((len(source.names), size, size, 3)))
        # closing(): an error here (disk full) stops the pool now, not at garbage collection
        with closing(_decode_all(source, size, max_pixels, workers, progress)) as results:
            for index, arr, reason in results:
                if arr is None:
                    skipped.append((source.names[index], reason))
                else:
                    f.write(arr.tobytes())
                    kept.append(source.names[index])
        f.seek(0)
        f.write(_npy_header((len(kept), size, size, 3)))
    return kept, skipped


def _classes(source: Source, kept: list[str]) -> tuple[list[str], list[int] | None]:
    """Class names and labels from first-level folders, or ([], None) (module docstring)."""
    folders = [name_parts(n)[source.strip :] for n in kept]
    if not folders or any(len(p) < 2 for p in folders):
        return [], None
    classes = sorted({p[0] for p in folders})
    index = {c: i for i, c in enumerate(classes)}
    return [display_name(c) for c in classes], [index[p[0]] for p in folders]


def _write_reports(tmp: dict[str, Path], meta: dict, skipped: list[tuple[str, str]]) -> None:
    """Write dataset.json, skipped.json and skipped.txt (to their temporary names).

    Every name is a :func:`display_name` already, so UTF-8 can encode it; UTF-8 is
    named because the locale's encoding (ASCII under LANG=C) may not. JSON keeps
    json's default ASCII-only output, which any reader decodes.
    """
    listed = [{"path": p, "reason": r} for p, r in skipped]
    tmp[SKIPPED_JSON].write_text(json.dumps(listed, indent=1), encoding="utf-8")
    tmp[SKIPPED_TXT].write_text("".join(f"{p}\t{r}\n" for p, r in skipped), encoding="utf-8")
    tmp[META_FILE].write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _check_args(resolution, workers, max_pixels) -> None:
    if isinstance(resolution, bool) or resolution not in RESOLUTIONS:
        raise UserError(
            f"resolution must be one of {', '.join(map(str, RESOLUTIONS))} (got {resolution})"
        )
    workers = 1 if workers is None else workers
    for name, value, least in (("workers", workers, 1), ("max_pixels", max_pixels, 64)):
        if not isinstance(value, int) or value < least:
            raise UserError(f"{name} must be an integer of at least {least} (got {value})")


_FINAL = (IMAGES_FILE, SKIPPED_JSON, SKIPPED_TXT, META_FILE)  # dataset.json renamed last


def _check_out(out: Path, force: bool) -> None:
    """OUT must be a folder (or absent), empty but for stale temporaries unless ``force``."""
    ours = {name + ".tmp" for name in _FINAL}
    try:
        if out.exists() and not out.is_dir():
            raise UserError(f"OUT exists and is not a folder: {display_name(str(out))}")
        if out.is_dir() and not force and any(p.name not in ours for p in out.iterdir()):
            raise UserError(
                f"OUT exists and is not empty: {display_name(str(out))}; pass --force to overwrite"
            )
    except OSError as e:
        raise UserError(f"cannot read {display_name(str(out))}: {e.strerror or e}") from None


def _build(
    source: Source,
    out: Path,
    tmp: dict[str, Path],
    resolution: int,
    max_pixels: int,
    workers: int,
    progress: bool,
):
    """Write the dataset's files under ``out``; return (kept names, skipped, classes)."""
    kept, skipped = _write_images(
        tmp[IMAGES_FILE], source, resolution, max_pixels, workers, progress
    )
    skipped = sorted((display_name(p), display_name(r)) for p, r in skipped)
    if not kept:
        path, reason = skipped[0]
        raise UserError(
            f"all {len(skipped)} image files in {display_name(str(source.path))} "
            f"were skipped (e.g. {path}: {reason})"
        )
    classes, labels = _classes(source, kept)
    meta = dict(
        classes=classes,
        labels=labels,
        sources=[display_name(n) for n in kept],
        source=display_name(str(source.path.resolve())),
        resize_filter=RESIZE_FILTER,
        skipped_count=len(skipped),
        conditions=None,
        condition_names=[],
        format_version=FORMAT_VERSION,
        count=len(kept),
        resolution=resolution,
    )
    _write_reports(tmp, meta, skipped)
    # Without dataset.json the folder does not look like a dataset while the old
    # images.npy is replaced, so an interruption never pairs old and new files.
    (out / META_FILE).unlink(missing_ok=True)
    for name in _FINAL:
        os.replace(tmp[name], out / name)
    return kept, skipped, classes


def prepare_dataset(
    src,
    out,
    resolution: int,
    *,
    force: bool = False,
    workers: int | None = None,
    max_pixels: int | None = None,
    progress: bool = True,
    follow_links: bool = False,
) -> PrepareReport:
    """Decode every image of ``src`` (folder or .zip) into a prepared dataset in ``out``.

    ``out`` must be empty or absent unless ``force`` (temporaries an interrupted run
    left do not count, and are removed); with ``force`` only the dataset's own files
    (images.npy, dataset.json, skipped.json, skipped.txt) are replaced, once the new
    ones are complete. ``workers`` defaults to ``os.cpu_count()``; 1 decodes in this
    process. ``max_pixels`` (default, or None: Pillow's 89,478,485) refuses images
    announcing more pixels, and files, zip members or decodes needing over 8 bytes per
    allowed pixel (:mod:`landgan.data.limits`). ``follow_links`` also reads links that
    lead out of a SRC folder. Files that cannot be used are skipped and listed in
    ``out/skipped.json`` and ``out/skipped.txt``.
    Raises :class:`UserError` for a bad argument or SRC, a non-empty OUT without
    ``force``, an OUT that cannot be created or written, no images found, or every
    image skipped.
    """
    start = time.perf_counter()
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    _check_args(resolution, workers, max_pixels)
    src, out = Path(src), Path(out)
    source = scan_source(src, BYTES_PER_PIXEL * max_pixels, follow_links)
    _check_out(out, force)
    tmp = {name: out / (name + ".tmp") for name in _FINAL}
    with sigterm_unwinds(), claim_out(out, list(tmp.values()), display_name(str(out))) as notes:
        try:
            kept, skipped, classes = _build(
                source, out, tmp, resolution, max_pixels, workers or os.cpu_count() or 1, progress
            )
        except OSError as e:
            raise UserError(
                f"cannot write {display_name(str(out))}: {display_name(str(e))}"
            ) from None
    return PrepareReport(
        out,
        len(source.names) + len(source.refused),
        len(kept),
        skipped,
        time.perf_counter() - start,
        classes,
        notes,
    )
