"""Real-image sources for evaluation, and their on-disk feature cache.

A source is a prepared dataset folder (:func:`landgan.data.dataset.open_dataset`), an
in-memory :class:`~landgan.data.dataset.ImageDataset`, a uint8 (N, H, W, 3) array, or
a plain folder of image files. Features of a source are cached as float32 ``.npz``
(exact: the network computes in float32) under a key built from

* a full content hash (BLAKE2b) of the pixels, or of the files for a plain folder --
  a few seconds even for gigabytes, against an hour of Inception on a CPU;
* the number of images and the seed that picked them, the resolution, and
  :attr:`FeatureExtractor.name` (network + preprocessing + version).

The cache folder is ``$LANDGAN_CACHE/features``, default ``~/.cache/landgan/features``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from PIL import Image

from landgan.data.dataset import ImageDataset, is_dataset, open_dataset
from landgan.data.decode import SkipImage, decode_image, square_resize
from landgan.errors import UserError
from landgan.files import replacing

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
CACHE_VERSION = 2  # 2: folders decoded by landgan.data.decode, as prepare does
CHUNK = 500  # images decoded/resized at a time: bounded memory for 50k-image datasets
Source = Union[str, Path, np.ndarray, ImageDataset]


def default_cache_dir() -> Path:
    """``$LANDGAN_CACHE/features`` or ``~/.cache/landgan/features`` (read at each call)."""
    root = os.environ.get("LANDGAN_CACHE") or Path.home() / ".cache" / "landgan"
    return Path(root) / "features"


def hash_array(images: np.ndarray, chunk: int = 256) -> str:
    """BLAKE2b of an array's shape, dtype and bytes, read ``chunk`` images at a time.

    Chunks keep memory flat for memmapped datasets larger than RAM.
    """
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{images.dtype.str}{images.shape}".encode())
    for s in range(0, len(images), chunk):
        h.update(np.ascontiguousarray(images[s : s + chunk]).data)
    return h.hexdigest()


def hash_files(root: Path, files: list[Path]) -> str:
    """BLAKE2b of the relative names and full bytes of ``files``, in the given order."""
    h = hashlib.blake2b(digest_size=20)
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 24):
                h.update(block)
    return h.hexdigest()


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted, hidden names skipped)."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {folder}")
    return files


def load_folder_images(files: list[Path], resolution: int) -> np.ndarray:
    """Decode ``files`` exactly as ``landgan prepare`` does: uint8 (N, R, R, 3).

    The same function (:func:`landgan.data.decode.decode_image`: EXIF rotation, the
    decompression-bomb guard, RGB conversion, centre crop, resize), so a folder and a
    prepared dataset of the same photos give the same pixels and the same features.
    """
    out = np.empty((len(files), resolution, resolution, 3), dtype=np.uint8)
    for i, f in enumerate(files):
        try:
            out[i] = decode_image(f, resolution)
        except SkipImage as e:
            raise UserError(f"cannot read image {f}: {e.reason}") from None
    return out


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize square uint8 NHWC images to ``resolution`` (LANCZOS); no-op if equal."""
    if images.shape[1] == resolution and images.shape[2] == resolution:
        return images
    return np.stack([square_resize(Image.fromarray(np.asarray(im)), resolution) for im in images])


def choose(count: int, n: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of a seeded random subset of ``n`` of ``count``; None = all.

    Random, not the first n: prepared datasets are stored class by class.
    """
    if n is None or n >= count:
        if n is not None and n > count:
            warnings.warn(
                f"{n} images requested, the source holds {count}: using all", stacklevel=3
            )
        return None
    if n < 1:
        raise UserError(f"number of images must be >= 1, got {n}")
    return np.sort(np.random.default_rng(seed).choice(count, n, replace=False))


@dataclass
class SourcePlan:
    """Which images of a source to read, at what resolution, and its identity."""

    images: np.ndarray | None  # pixels of a dataset/array source (maybe memmapped)
    files: list[Path]  # image files of a plain-folder source
    order: np.ndarray  # indices into images/files, the chosen subset
    resolution: int
    info: dict  # kind, source, content_hash, n, seed, resolution, n_available

    def chunks(self, progress: bool = False, desc: str = "real images") -> Iterator[np.ndarray]:
        """The chosen images as uint8 (k, R, R, 3), ``CHUNK`` at a time."""
        starts = range(0, len(self.order), CHUNK)
        if progress:
            from tqdm import tqdm  # only needed for the bar

            starts = tqdm(starts, desc=f"{desc} ({CHUNK} per step)", unit="step")
        for s in starts:
            idx = self.order[s : s + CHUNK]
            if self.files:
                yield load_folder_images([self.files[i] for i in idx], self.resolution)
            else:
                yield resize_images(np.asarray(self.images[idx]), self.resolution)


def plan_source(
    source: Source, n: int | None = None, resolution: int | None = None, seed: int = 0
) -> SourcePlan:
    """Open ``source``, hash its content and choose ``n`` of its images (seeded)."""
    images, files = None, []
    if isinstance(source, (str, Path)):
        path = Path(source)
        if is_dataset(path):
            images, info = open_dataset(path).images, {"kind": "dataset", "source": str(path)}
        elif path.is_dir():
            files, info = list_images(path), {"kind": "folder", "source": str(path)}
            if resolution is None:
                raise UserError(
                    f"{path} is a plain image folder: give the resolution to "
                    "resize its images to (or prepare it with landgan prepare)"
                )
        else:
            raise UserError(f"not a prepared dataset or image folder: {path}")
    else:
        images = source.images if isinstance(source, ImageDataset) else source
        info = {
            "kind": "array",
            "source": (source.name if isinstance(source, ImageDataset) else "") or "array",
        }
        if (
            not isinstance(images, np.ndarray)
            or images.dtype != np.uint8
            or images.ndim != 4
            or images.shape[3] != 3
        ):
            raise ValueError("image source must be a path, an ImageDataset or uint8 (N, H, W, 3)")
    content_hash = hash_files(Path(source), files) if files else hash_array(images)
    count = len(files) if files else len(images)
    idx = choose(count, n, seed)
    resolution = int(resolution or images.shape[1])
    info.update(
        content_hash=content_hash,
        n=count if idx is None else len(idx),
        seed=None if idx is None else seed,
        resolution=resolution,
        n_available=count,
    )
    order = np.arange(count) if idx is None else idx
    return SourcePlan(images, files, order, resolution, info)


def cache_path(cache_dir: Path, info: dict) -> Path:
    """Cache file for a source described by ``info`` (hash, n, seed, resolution, extractor)."""
    fields = {k: info[k] for k in ("content_hash", "n", "seed", "resolution", "extractor")}
    key = hashlib.blake2b(
        json.dumps(dict(fields, v=CACHE_VERSION), sort_keys=True).encode(), digest_size=12
    ).hexdigest()
    stem = Path(str(info["source"])).name.replace(" ", "_")[:40] or "source"
    return cache_dir / f"{stem}-{info['resolution']}px-n{info['n']}-{key}.npz"


def _save(path: Path, features: np.ndarray, info: dict) -> None:
    """Write atomically: a killed run never leaves a truncated cache file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, features=features.astype(np.float32), info=json.dumps(info))


def image_source_features(
    source: Source,
    extractor,
    n: int | None = None,
    cache_dir: str | Path | None = None,
    *,
    resolution: int | None = None,
    seed: int = 0,
    batch_size: int = 50,
    progress: bool = False,
    use_cache: bool = True,
) -> tuple[np.ndarray, dict]:
    """Inception features of (a seeded random subset of ``n`` of) a real-image source.

    ``resolution`` resizes the images first (required for plain folders; for datasets
    and arrays it matches real data to a model trained at a lower resolution).
    Returns ``(features (n, 2048) float64, info)``; ``info['cached']`` tells whether
    the features came from the cache, ``info['cache_file']`` where they live.
    """
    plan = plan_source(source, n, resolution, seed)
    info = dict(plan.info, extractor=extractor.name)
    path = cache_path(Path(cache_dir) if cache_dir else default_cache_dir(), info)
    info["cache_file"] = str(path) if use_cache else None
    if use_cache and path.is_file():
        try:
            with np.load(path) as z:
                return z["features"].astype(np.float64), dict(info, cached=True)
        except (OSError, ValueError, KeyError) as e:  # unreadable: recompute and overwrite
            warnings.warn(f"ignoring unreadable feature cache {path}: {e}", stacklevel=2)
    features = np.concatenate(
        [
            extractor.features(chunk, batch_size=batch_size)
            for chunk in plan.chunks(progress, "real-image features")
        ]
    )
    if use_cache:
        _save(path, features, info)
    return features, dict(info, cached=False)
