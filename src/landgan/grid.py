"""Sample grids: many uint8 images tiled into one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile uint8 NHWC images into one HWC image, ``nrow`` per row (default: square)."""
    n, h, w, c = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol = math.ceil(n / nrow)
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def save_grid(images: np.ndarray, path: str | Path, nrow: int | None = None) -> Path:
    """Write ``images`` as one PNG grid; the parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_grid(images, nrow)).save(path)
    return path
