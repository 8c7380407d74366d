"""``landgan prepare``: turn a folder or a .zip of photos into a prepared dataset.

Each image file is decoded once, made square, resized and stored in the format of
:mod:`landgan.data.dataset`. Per image:

1. Before decoding, skip (with the reason) an empty file, one Pillow cannot
   identify, a header announcing over ``max_pixels`` pixels (decompression bombs)
   or a short side under 8 px. There is no aspect-ratio limit.
2. Decode fully with ``LOAD_TRUNCATED_IMAGES`` off, so a truncated or corrupt file
   is skipped instead of stored half grey. JPEGs use ``draft`` (a 1/2-1/8 DCT
   scale) when that keeps a short side of 3x the target.
3. Apply the EXIF orientation (``ImageOps.exif_transpose``; broken EXIF: as stored).
4. To 8-bit RGB. Transparency is composited onto white (the colour under transparent
   pixels is arbitrary; white is how viewers show it). 16-bit data ('I;16*', and
   'I' taken as 16-bit) is scaled by 255/65535, not clipped; 'F' is read as [0, 1]
   if its maximum is <= 1, else [0, 255]. CMYK, grayscale and palettes use
   Pillow's conversion (ICC profiles are not applied).
5. Centre-crop to a square and ``resize(LANCZOS, box=crop, reducing_gap=3)``:
   Pillow first shrinks by a whole factor with ``Image.reduce`` (a fast box
   average) while 3x the target remains, then finishes with antialiased LANCZOS,
   which also upsamples small images.

Folders are searched recursively, following links but reading each real folder once
(so link loops end); a .zip is read in memory, never extracted, and members with
absolute names or '..' are skipped as unsafe. Names starting with '.' and
``__MACOSX`` are ignored. Classes: if every stored image lies in a first-level
subfolder, the sorted subfolder names are the classes and labels index them; any
image directly in SRC means no classes (labels None). A zip whose entries share one
top folder (what zipping a folder gives) is read as that folder.

A ``multiprocessing.Pool`` decodes; results arrive in order and are appended to
``images.npy`` at once, so memory holds one image per worker, whatever the dataset
size. Outputs get temporary names, renamed at the end, dataset.json last.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
import warnings
import zipfile
from collections import Counter
from contextlib import closing, suppress
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path, PurePath

import numpy as np
from PIL import Image, ImageFile, ImageOps
from tqdm import tqdm

from landgan.data.dataset import FORMAT_VERSION, IMAGES_FILE, META_FILE
from landgan.errors import UserError

RESOLUTIONS = (32, 64, 128, 256)
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MIN_SIDE = 8  # a shorter side carries too little picture to be worth upsampling
REDUCING_GAP = 3.0  # Pillow's docs: from ~3 on, indistinguishable from a plain LANCZOS
RESIZE_FILTER = "centre crop; Image.reduce (integer box) then LANCZOS, reducing_gap=3"
SKIPPED_JSON, SKIPPED_TXT = "skipped.json", "skipped.txt"
_NPY_HEADER_LEN = 128  # what np.save writes for a 4-d uint8 array; fixed so it can be rewritten


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` did; ``summary()`` is what the CLI prints."""

    out: Path
    found: int  # image files found (by extension)
    written: int  # images stored
    skipped: list[tuple[str, str]]  # (source path relative to SRC or zip member name, reason)
    seconds: float
    classes: list[str]

    @property
    def images_per_second(self) -> float:
        """Files processed (stored or skipped) per second of the whole run."""
        return self.found / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A few human-readable lines: counts, classes, where the skip report is, speed."""
        kinds = Counter(reason.split(":")[0] for _, reason in self.skipped)  # "too large: ..."
        detail = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        return "\n".join([
            f"prepared {self.written} of {self.found} image files into {self.out} "
            f"in {self.seconds:.1f} s ({self.images_per_second:.0f} images/s)",
            f"classes ({len(self.classes)}): {', '.join(self.classes)}" if self.classes
            else "classes: none (not every image is inside a class subfolder)",
            f"skipped {len(self.skipped)} ({detail}); list in {self.out / SKIPPED_TXT}"
            if self.skipped else "skipped 0"])


@dataclass
class _Source:
    """The image files of SRC, in the order they will be stored."""

    path: Path
    is_zip: bool
    names: list[str]  # relative posix paths, or zip member names; sorted
    unsafe: list[str]  # zip members refused for their names
    strip: int = 0  # leading name parts to ignore when reading class folders


def _parts(name: str) -> list[str]:
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in EXTENSIONS


def _wanted(name: str) -> bool:
    """An image by its extension, and not hidden (.name) nor macOS zip litter."""
    parts = _parts(name)
    return (bool(parts) and parts[0] != "__MACOSX" and _is_image_name(parts[-1])
            and not any(p.startswith(".") for p in parts))


def _scan_folder(root: Path) -> list[str]:
    names, errors, seen = [], [], {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=errors.append):
        reals = {d: os.path.realpath(os.path.join(dirpath, d)) for d in dirnames}
        # Links are followed, but a real folder is read once: link loops end here.
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and reals[d] not in seen]
        seen.update(reals[d] for d in dirnames)
        rel = PurePath(os.path.relpath(dirpath, root))
        names += [(rel / f).as_posix() for f in filenames if _wanted((rel / f).as_posix())]
    if not names and errors:
        raise UserError(f"cannot read {root}: {errors[0]}")
    return sorted(names)


def _scan(src: Path) -> _Source:
    """List the image files of SRC; raise UserError if there are none."""
    if not src.exists():
        raise UserError(f"SRC not found: {src}")
    if src.is_dir():
        source = _Source(src, False, _scan_folder(src), [])
    elif src.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(src) as zf:
                members = [i.filename for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as e:
            raise UserError(f"cannot read zip file {src}: {e}") from None
        unsafe = sorted(n for n in members if _is_unsafe(n) and _is_image_name(n))
        names = sorted(n for n in members if not _is_unsafe(n) and _wanted(n))
        firsts = {_parts(n)[0] for n in names if len(_parts(n)) > 1}
        strip = int(len(firsts) == 1 and all(len(_parts(n)) > 1 for n in names))
        source = _Source(src, True, names, unsafe, strip)
    else:
        raise UserError(f"SRC must be a folder or a .zip file: {src}")
    if not source.names and not source.unsafe:
        raise UserError(f"no images found in {src} (looked for {', '.join(EXTENSIONS)})")
    return source


def _is_unsafe(name: str) -> bool:
    n = name.replace("\\", "/")
    return n.startswith("/") or (len(n) > 1 and n[1] == ":") or ".." in n.split("/")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (see the module docstring for the choices)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if mode == "F":
            a = a * 255.0 if a.max(initial=0) <= 1.0 else a
        else:
            a = a / 257.0  # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L").convert("RGB")
    if "A" in mode or "a" in mode or "transparency" in img.info:
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")


def _decode(data: bytes, size: int, max_pixels: int) -> tuple[np.ndarray | None, str]:
    """Encoded image bytes -> (uint8 (size, size, 3) array, "") or (None, skip reason)."""
    if not data:
        return None, "empty file"
    try:
        img = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:
        return None, "not an image"
    w, h = img.size
    if w * h > max_pixels:
        return None, f"too large: {w} x {h} pixels"
    if min(w, h) < MIN_SIDE:
        return None, f"too small: {w} x {h} pixels"
    try:
        img.draft(None, (int(REDUCING_GAP * size),) * 2)  # JPEG: DCT downscale; others: no-op
        img.load()
    except OSError as e:
        kind = "truncated image" if "truncated" in str(e) else "corrupt image"
        return None, f"{kind}: {e}"
    except (SyntaxError, ValueError, EOFError) as e:  # Pillow's plugins raise all of these
        return None, f"corrupt image: {e}"
    with suppress(Exception):  # broken EXIF: keep the image as stored
        img = ImageOps.exif_transpose(img)
    try:
        img = _to_rgb(img)
    except ValueError as e:
        return None, f"unsupported colour mode {img.mode}: {e}"
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    img = img.resize((size, size), Image.Resampling.LANCZOS,
                     box=(left, top, left + s, top + s), reducing_gap=REDUCING_GAP)
    return np.asarray(img, dtype=np.uint8), ""


class _Decoder:
    """Turns a task (index, name) into (index, array or None, reason); never raises."""

    def __init__(self, root: str, is_zip: bool, size: int, max_pixels: int):
        self.root, self.size, self.max_pixels = root, size, max_pixels
        self.max_bytes = 8 * max_pixels  # room for an uncompressed 16-bit RGBA image
        self.zip = zipfile.ZipFile(root) if is_zip else None  # one open per worker

    def _read(self, name: str) -> bytes | str:
        """The file's bytes, or a skip reason."""
        path = os.path.join(self.root, name)
        nbytes = self.zip.getinfo(name).file_size if self.zip else os.stat(path).st_size
        if nbytes > self.max_bytes:
            return f"too large: {nbytes} bytes"
        return self.zip.read(name) if self.zip else Path(path).read_bytes()

    def __call__(self, task: tuple[int, str]) -> tuple[int, np.ndarray | None, str]:
        index, name = task
        try:
            data = self._read(name)
            if isinstance(data, str):
                return index, None, data
            with warnings.catch_warnings():  # Pillow's "corrupt EXIF" etc. would garble tqdm
                warnings.simplefilter("ignore")
                arr, reason = _decode(data, self.size, self.max_pixels)
            return index, arr, reason
        except PermissionError:
            return index, None, "permission denied"
        except Exception as e:  # noqa: BLE001 -- one bad file must never stop the run
            return index, None, f"unreadable: {type(e).__name__}: {e}"

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _set_pillow(settings: tuple) -> tuple:
    """Set (MAX_IMAGE_PIXELS, LOAD_TRUNCATED_IMAGES) process-wide; return the old pair."""
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = settings
    return saved


# Our own pixel check replaces Pillow's (ours reports W x H), and a truncated file must
# raise on load() rather than come back padded with grey.
_DECODE_SETTINGS = (None, False)


_WORKER: _Decoder | None = None  # per worker process, set by _init_worker


def _init_worker(args: tuple) -> None:
    global _WORKER
    _set_pillow(_DECODE_SETTINGS)  # a worker process is ours: no need to restore
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the pool, quietly
    _WORKER = _Decoder(*args)


def _work(task: tuple[int, str]) -> tuple[int, np.ndarray | None, str]:
    return _WORKER(task)


def _decode_all(source: _Source, size: int, max_pixels: int, workers: int, progress: bool):
    """Yield (index, array or None, reason) for every name of ``source``, in order."""
    tasks = list(enumerate(source.names))
    args = (str(source.path), source.is_zip, size, max_pixels)
    workers = min(workers, len(tasks))
    with tqdm(total=len(tasks), unit="img", desc="prepare", disable=not progress) as bar:
        if workers <= 1:  # in-process: no start-up cost, and easier to debug
            decoder, saved = _Decoder(*args), _set_pillow(_DECODE_SETTINGS)
            try:
                for result in map(decoder, tasks):
                    bar.update()
                    yield result
            finally:  # the caller's process: put its Pillow settings back
                _set_pillow(saved)
                decoder.close()
            return
        chunk = max(1, min(32, len(tasks) // (workers * 8)))
        with Pool(workers, _init_worker, (args,)) as pool:
            for result in pool.imap(_work, tasks, chunksize=chunk):
                bar.update()
                yield result


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """An .npy (format 1.0) header for a C-order uint8 array, padded as np.save pads it."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (shape,)
    text = text.ljust(_NPY_HEADER_LEN - 11) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def _write_images(path: Path, source: _Source, size: int, max_pixels: int, workers: int,
                  progress: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """Decode everything into the .npy file ``path``; return (stored names, skipped)."""
    kept, skipped = [], [(n, "unsafe path in zip") for n in source.unsafe]
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
    return kept, sorted(skipped)


def _classes(source: _Source, kept: list[str]) -> tuple[list[str], list[int] | None]:
    """Class names and labels from first-level folders, or ([], None) (module docstring)."""
    folders = [_parts(n)[source.strip:] for n in kept]
    if not folders or any(len(p) < 2 for p in folders):
        return [], None
    classes = sorted({p[0] for p in folders})
    index = {c: i for i, c in enumerate(classes)}
    return classes, [index[p[0]] for p in folders]


def _check_args(resolution, workers, max_pixels) -> None:
    if isinstance(resolution, bool) or resolution not in RESOLUTIONS:
        raise UserError(f"resolution must be one of {', '.join(map(str, RESOLUTIONS))} "
                        f"(got {resolution})")
    workers = 1 if workers is None else workers
    for name, value, least in (("workers", workers, 1), ("max_pixels", max_pixels, 64)):
        if not isinstance(value, int) or value < least:
            raise UserError(f"{name} must be an integer of at least {least} (got {value})")


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"OUT exists and is not a folder: {out}")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"OUT exists and is not empty: {out}; pass --force to overwrite")


def prepare_dataset(src, out, resolution: int, *, force: bool = False, workers: int | None = None,
                    max_pixels: int = 89_478_485, progress: bool = True) -> PrepareReport:
    """Decode every image of ``src`` (folder or .zip) into a prepared dataset in ``out``.

    ``out`` must be empty or absent unless ``force``; with ``force`` only the
    dataset's own files (images.npy, dataset.json, skipped.json, skipped.txt) are
    replaced, once the new ones are complete. ``workers`` defaults to
    ``os.cpu_count()``; 1 decodes in this process. Files that cannot be used are
    skipped and listed in ``out/skipped.json`` and ``out/skipped.txt``.
    Raises :class:`UserError` for a bad argument or SRC, a non-empty OUT without
    ``force``, no images found, or every image skipped.
    """
    start = time.perf_counter()
    _check_args(resolution, workers, max_pixels)
    src, out = Path(src), Path(out)
    source = _scan(src)
    _check_out(out, force)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    final = (IMAGES_FILE, SKIPPED_JSON, SKIPPED_TXT, META_FILE)  # dataset.json renamed last
    tmp = {name: out / (name + ".tmp") for name in final}
    try:
        kept, skipped = _write_images(tmp[IMAGES_FILE], source, resolution, max_pixels,
                                      workers or os.cpu_count() or 1, progress)
        if not kept:
            path, reason = skipped[0]
            raise UserError(f"all {len(skipped)} image files in {src} were skipped "
                            f"(e.g. {path}: {reason})")
        classes, labels = _classes(source, kept)
        meta = dict(classes=classes, labels=labels, sources=kept, source=str(src.resolve()),
                    resize_filter=RESIZE_FILTER, skipped_count=len(skipped), conditions=None,
                    condition_names=[], format_version=FORMAT_VERSION, count=len(kept),
                    resolution=resolution)
        listed = [{"path": p, "reason": r} for p, r in skipped]
        tmp[SKIPPED_JSON].write_text(json.dumps(listed, indent=1))
        tmp[SKIPPED_TXT].write_text("".join(f"{p}\t{r}\n" for p, r in skipped))
        tmp[META_FILE].write_text(json.dumps(meta, indent=1))
        # Without dataset.json the folder does not look like a dataset while the old
        # images.npy is replaced, so an interruption never pairs old and new files.
        (out / META_FILE).unlink(missing_ok=True)
        for name in final:
            os.replace(tmp[name], out / name)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e}") from None
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()
    return PrepareReport(out, len(source.names) + len(source.unsafe), len(kept), skipped,
                         time.perf_counter() - start, classes)
