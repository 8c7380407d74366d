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
    meta = dict(meta, format_version=FORMAT_VERSION, count=int(images.shape[0]),
                resolution=int(images.shape[1]))
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


def open_dataset(path: str | Path) -> ImageDataset:
    """Open a prepared dataset memory-mapped; raise :class:`UserError` if it is not one."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"dataset not found: {p}")
    if not is_dataset(p):
        raise UserError(f"{p} is not a prepared dataset (no {IMAGES_FILE} + {META_FILE}); "
                        f"create one with: landgan prepare SRC --out {p}")
    try:
        meta = json.loads((p / META_FILE).read_text())
        images = np.load(p / IMAGES_FILE, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read dataset {p}: {e}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 \
            or images.shape[1] != images.shape[2]:
        raise UserError(f"{p}/{IMAGES_FILE} is not an (N, R, R, 3) uint8 array")
    if len(images) == 0:
        raise UserError(f"dataset {p} holds no images")
    labels = meta.get("labels")
    conds = meta.get("conditions")
    return ImageDataset(
        images=images,
        labels=None if labels is None else np.asarray(labels, dtype=np.int64),
        classes=list(meta.get("classes") or []),
        conditions=None if conds is None else np.asarray(conds, dtype=np.float32),
        condition_names=list(meta.get("condition_names") or []),
        meta=meta,
        name=str(p),
    )


def condition_matrix(ds: ImageDataset) -> tuple[np.ndarray, list[str]]:
    """(N, K) float32 condition vectors and their names, for ``--conditional``.

    Composition fractions when the data carries them (the procedural scenes), else a
    one-hot of the class from first-level subfolders.
    """
    if ds.conditions is not None and ds.condition_names:
        return np.asarray(ds.conditions, np.float32), list(ds.condition_names)
    if ds.labels is not None and ds.classes:
        return np.eye(len(ds.classes), dtype=np.float32)[ds.labels], list(ds.classes)
    raise UserError(f"--conditional needs data with classes (first-level subfolders given to "
                    f"landgan prepare) or composition labels; {ds.name} has neither")
