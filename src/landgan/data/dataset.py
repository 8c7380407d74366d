"""The on-disk dataset format and its in-memory view.

A prepared dataset is a folder holding

* ``images.npy`` -- uint8 array (N, R, R, 3), opened memory-mapped so a dataset
  larger than RAM trains without decoding anything per step;
* ``dataset.json`` -- count, resolution, class names, per-image labels and
  conditions, and the source path of every image.

The built-in procedural landscapes produce the same :class:`ImageDataset` in memory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from landgan.errors import UserError

FORMAT_VERSION = 1
IMAGES_FILE = "images.npy"
META_FILE = "dataset.json"
# dataset.json is read whole: a file far larger than its images could need is refused
# before it is parsed (each image's source path, label and conditions take ~100 bytes).
MAX_META_BYTES, MAX_META_BYTES_PER_IMAGE = 16 << 20, 16 << 10
# --conditional makes an (N, K) float32 matrix and K-wide first layers: K stays sane.
MAX_CONDITIONS = 1024


@dataclass
class ImageDataset:
    """Images plus whatever labels came with them."""

    images: np.ndarray  # (N, R, R, 3) uint8, possibly a read-only memmap
    labels: np.ndarray | None = None  # (N,) int64 class index, or None without classes
    classes: list[str] = field(default_factory=list)  # class names, index = label
    conditions: np.ndarray | None = None  # (N, K) float32 condition vectors, or None
    condition_names: list[str] = field(default_factory=list)  # name of each condition column
    meta: dict = field(default_factory=dict)  # the rest of dataset.json
    name: str = ""  # where it came from, for logs ("synthetic", a folder path)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[1])


def save_dataset(out: str | Path, images: np.ndarray, meta: dict) -> Path:
    """Write ``images`` and ``meta`` to the folder ``out`` (which must not hold a dataset).

    Files are written under temporary names and renamed, so an interrupted run never
    leaves a folder that looks complete.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(
        meta,
        format_version=FORMAT_VERSION,
        count=int(images.shape[0]),
        resolution=int(images.shape[1]),
    )
    tmp_img, tmp_meta = out / (IMAGES_FILE + ".tmp"), out / (META_FILE + ".tmp")
    with open(tmp_img, "wb") as f:
        np.save(f, np.ascontiguousarray(images, dtype=np.uint8))
    tmp_meta.write_text(json.dumps(meta, indent=1))
    os.replace(tmp_img, out / IMAGES_FILE)
    os.replace(tmp_meta, out / META_FILE)
    return out


def is_dataset(path: str | Path) -> bool:
    """True if ``path`` is a folder written by :func:`save_dataset`."""
    p = Path(path)
    return (p / IMAGES_FILE).is_file() and (p / META_FILE).is_file()


def prepare_hint(p: Path) -> str:
    """How to make a dataset of ``p``, a path that is not one.

    Never ``--out p`` for photos: p is then the source, and prepare would write into it.
    A folder (or a .zip) of photos is offered a new folder beside it, named for the
    resolution prepare uses by default; a half-written dataset is offered a fresh one.
    """
    if any((p / name).exists() for name in (IMAGES_FILE, META_FILE)):
        return f"recreate it with: landgan prepare SRC --out {p} --force"
    named = p if p.name not in ("", ".", "..") else p.resolve()
    out = named.with_name(f"{named.stem if p.is_file() else named.name}-64")
    if is_dataset(out):
        return f"{out} beside it is one; use that"
    return f"make one from these photos with: landgan prepare {p} --out {out}"


def open_dataset(path: str | Path) -> ImageDataset:
    """Open a prepared dataset memory-mapped; raise :class:`UserError` if it is not one.

    Everything ``dataset.json`` claims is checked against ``images.npy`` before any of
    it is used, so a damaged or hand-edited dataset fails here with one line instead of
    deep inside training: count and resolution must match the array, labels and
    conditions must have one entry per image, and every label must name a class.
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"dataset not found: {p}")
    if not is_dataset(p):
        raise UserError(
            f"{p} is not a prepared dataset (no {IMAGES_FILE} + {META_FILE}); " + prepare_hint(p)
        )
    images = _open_images(p)
    try:
        if (p / META_FILE).stat().st_size > MAX_META_BYTES + MAX_META_BYTES_PER_IMAGE * len(images):
            raise UserError(f"{p}/{META_FILE} is far larger than {len(images)} images need")
        meta = json.loads((p / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise UserError(f"cannot read dataset {p}: {str(e)[:200]}") from None
    fields = _checked_meta(meta, len(images), images.shape[1])
    if isinstance(fields, str):
        raise UserError(f"dataset {p} has a bad {META_FILE}: {fields}")
    labels, classes, conds, names = fields
    return ImageDataset(
        images=images,
        labels=labels,
        classes=classes,
        conditions=conds,
        condition_names=names,
        meta=meta,
        name=str(p),
    )


def _open_images(p: Path) -> np.ndarray:
    """``images.npy`` memory-mapped, checked to be a non-empty (N, R, R, 3) uint8 array."""
    try:
        images = np.load(p / IMAGES_FILE, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read dataset {p}: {str(e)[:200]}") from None
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[3] != 3
        or images.shape[1] != images.shape[2]
        or images.shape[1] < 1
    ):
        raise UserError(f"{p}/{IMAGES_FILE} is not an (N, R, R, 3) uint8 array")
    if len(images) == 0:
        raise UserError(f"dataset {p} holds no images")
    return images


def _checked_meta(meta, n: int, resolution: int):
    """(labels, classes, conditions, condition names) from ``meta``, or what is wrong with it."""
    if not isinstance(meta, dict):
        return f"it holds a JSON {type(meta).__name__}, not an object of fields"
    for key, actual in (("count", n), ("resolution", resolution)):
        claimed = meta.get(key, actual)
        if claimed != actual or isinstance(claimed, bool):
            return f"it gives {key} {str(claimed)[:40]}, but {IMAGES_FILE} has {actual}"
    version = meta.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        return f"format_version is {str(version)[:40]}; this landgan reads {FORMAT_VERSION}"
    classes, names = _names(meta, "classes"), _names(meta, "condition_names")
    if isinstance(classes, str) or isinstance(names, str):
        return classes if isinstance(classes, str) else names
    labels = _array(meta.get("labels"), n, None, "iu", "labels")
    if isinstance(labels, str):
        return labels
    if labels is not None and len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        bad = labels[(labels < 0) | (labels >= len(classes))][0]
        return f"label {bad} names no class (there are {len(classes)})"
    if meta.get("conditions") is not None and not names:
        return "it has conditions but no condition_names"
    conds = _array(meta.get("conditions"), n, len(names), "iuf", "conditions")
    if isinstance(conds, str):
        return conds
    return (
        None if labels is None else labels.astype(np.int64),
        classes,
        None if conds is None else conds.astype(np.float32),
        names,
    )


def _names(meta: dict, key: str) -> list[str] | str:
    """A list of distinct strings under ``key`` ([] when absent), or what is wrong with it."""
    value = meta.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return f"{key} is not a list of names"
    if len(set(value)) != len(value):
        return f"{key} names some entry twice"
    return value


def _array(value, n: int, width: int | None, kinds: str, key: str) -> np.ndarray | None | str:
    """``value`` as an array of ``n`` numbers (or ``n`` rows of ``width``), None if absent,
    or what is wrong with it. Only JSON numbers count: strings and booleans do not."""
    if value is None:
        return None
    shape = (n,) if width is None else (n, width)
    try:
        arr = np.asarray(value)
    except (ValueError, OverflowError):  # ragged rows, integers beyond 64 bits
        arr = None
    if (
        not isinstance(value, list)
        or arr is None
        or arr.shape != shape
        or (arr.size and arr.dtype.kind not in kinds)
    ):
        what = "numbers" if width is None else f"rows of {width} numbers"
        return f"{key} must be {n} {what}, one per image"
    if arr.size and not (np.abs(arr) <= np.finfo(np.float32).max).all():  # NaN fails too
        return f"{key} holds a value that is not a finite float32"
    return arr


def condition_matrix(ds: ImageDataset) -> tuple[np.ndarray, list[str]]:
    """(N, K) float32 condition vectors and their names, for ``--conditional``.

    Composition fractions when the data carries them (the procedural scenes), else a
    one-hot of the class from first-level subfolders.
    """
    if ds.conditions is not None and ds.condition_names:
        return np.asarray(ds.conditions, np.float32), list(ds.condition_names)
    if ds.labels is not None and ds.classes:
        if len(ds.classes) > MAX_CONDITIONS:  # before an (N, classes) one-hot matrix
            raise UserError(
                f"--conditional takes at most {MAX_CONDITIONS} classes; "
                f"{ds.name} has {len(ds.classes)}"
            )
        return np.eye(len(ds.classes), dtype=np.float32)[ds.labels], list(ds.classes)
    raise UserError(
        f"--conditional needs data with classes (first-level subfolders given to "
        f"landgan prepare) or composition labels; {ds.name} has neither"
    )
