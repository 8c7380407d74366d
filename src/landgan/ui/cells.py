"""Layout maps on the page, without Gradio: the labeller's per-cell reading, and maps drawn
as pictures and tables so a painted sketch can be set beside what was generated.

A map is flattened cell by cell (row-major), each cell listing the model's elements in
order (:func:`landgan.models.layout.layout_names`): ``(grid * grid * K,)``.
"""

from __future__ import annotations

import numpy as np
import torch

from landgan.data.synthetic import ELEMENTS
from landgan.metrics.photo_labeller import composition_maps
from landgan.models.layout import pool_maps

PICTURE_SIDE = 160  # px of a map drawn as a picture: a few cells, so it stays small
GRID_LINE = (255, 255, 255)  # between cells, so a cell's stripes read as one cell


def map_reader(names: list[str], grid: int):
    """``images (N, H, W, 3) uint8 -> (N, grid * grid * K)``: the photo labeller's
    per-location map (:func:`~landgan.metrics.photo_labeller.composition_maps`) pooled to
    the model's cells, in its element order; None unless the elements are the labeller's.
    """
    if sorted(names) != sorted(ELEMENTS):
        return None
    order = [ELEMENTS.index(k) for k in names]

    def read(images: np.ndarray) -> np.ndarray:
        maps = torch.from_numpy(composition_maps(images)[:, order])  # (N, K, 8, 8)
        return pool_maps(maps, grid).numpy()  # as `label --layout` pools them

    return read


def as_cells(cells, names: list[str], grid: int) -> np.ndarray:
    """A flattened map -> (grid, grid, K) float array, cell fractions summing to 1."""
    m = np.asarray(cells, np.float64).reshape(grid, grid, len(names)).clip(0, None)
    return m / np.maximum(m.sum(2, keepdims=True), 1e-12)


def map_picture(
    cells,
    names: list[str],
    grid: int,
    colours: dict[str, tuple[int, int, int]],
    side: int = PICTURE_SIDE,
) -> np.ndarray:
    """A map drawn in the brush colours: each cell split into vertical stripes as wide as
    its elements' fractions (left to right in the model's order), so a cell read as
    60 % water and 40 % sky shows both rather than a muddy blend. uint8 (side, side, 3)."""
    m = as_cells(cells, names, grid)
    palette = np.array([colours[n] for n in names], np.uint8)
    out = np.empty((side, side, 3), np.uint8)
    edges = np.linspace(0, side, grid + 1).round().astype(int)
    for r in range(grid):
        for c in range(grid):
            y0, y1, x0, x1 = edges[r], edges[r + 1], edges[c], edges[c + 1]
            # each pixel column takes the element whose cumulative share covers its middle
            where = (np.arange(x1 - x0) + 0.5) / (x1 - x0)
            k = np.searchsorted(np.cumsum(m[r, c]), where, side="right").clip(0, len(names) - 1)
            out[y0:y1, x0:x1] = palette[k][None]
    out[edges[1:-1]] = GRID_LINE
    out[:, edges[1:-1]] = GRID_LINE
    return out


def agreement(asked, read, names: list[str], grid: int) -> tuple[int, float]:
    """(cells whose main element the reading shares with the sketch, mean absolute
    difference per cell and element)."""
    a, r = as_cells(asked, names, grid), as_cells(read, names, grid)
    same = int((a.argmax(2) == r.argmax(2)).sum())
    return same, float(np.abs(a - r).mean())


def reading_markdown(asked, read, names: list[str], grid: int, n: int, best_of: int = 1) -> str:
    """Markdown: how far the labeller's per-cell reading of ``n`` images matches the
    sketch, then each element's reading per cell (rows top to bottom, cells left to right)."""
    same, gap = agreement(asked, read, names, grid)
    r = as_cells(read, names, grid)
    rows = [
        "top row" if i == 0 else "bottom row" if i == grid - 1 else f"row {i + 1}"
        for i in range(grid)
    ]
    lines = [f"| % read, cells left to right | {' | '.join(rows)} |", f"|---{'|---' * grid}|"]
    for k, name in enumerate(names):
        cells = [" ".join(f"{100 * v:.0f}" for v in r[i, :, k]) for i in range(grid)]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    chosen = (
        (
            f" Each image is the best of {best_of} candidates by this same labeller, so it "
            "reads them closer than people would."
        )
        if best_of > 1
        else ""
    )
    return (
        f"The labeller reads the painted main element in **{same} of {grid * grid}** "
        f"cells (mean of {n} image{'s' * (n > 1)}; mean difference {100 * gap:.0f} "
        f"points per cell and element).{chosen}\n\n" + "\n".join(lines)
    )
