"""Sketches: a picture painted in five colours, read as a layout map.

``landgan generate MODEL --layout sketch.png`` and the web UI's Paint tab let a user say
*where* each element goes by painting it. A sketch may have any size: every pixel takes
the element whose :data:`PALETTE` colour is nearest, and the pixels are pooled to the
model's ``grid`` x ``grid`` cells, giving each cell's fractions in the order of
:func:`landgan.models.layout.layout_names`. Brush edges blend colours (anti-aliasing), so
a few pixels far from all five are tolerated; a picture that is mostly other colours (a
photo given by mistake) is an error that names the palette.
"""

from __future__ import annotations

import numpy as np
import torch

from landgan.errors import UserError

# One brush colour per element, in the elements' order. Chosen far apart from one another
# (the closest pair, sky and water, are 150 apart in RGB) and to read as what they paint.
PALETTE: dict[str, tuple[int, int, int]] = {
    "sky": (135, 206, 250),
    "mountain": (140, 100, 60),
    "snow": (255, 255, 255),
    "water": (0, 60, 200),
    "vegetation": (30, 150, 30),
}
FAR = 120.0  # RGB distance beyond which a pixel matches no brush colour
FAR_SHARE = 0.05  # share of such pixels tolerated (blended brush edges)
OPAQUE = 128  # alpha below this is unpainted canvas, read as sky
MAX_SIDE = 512  # larger sketches are read every few pixels: cells are coarse, and a
# per-pixel distance to five colours would cost 60 bytes a pixel (a poster-size sketch: GBs)


def palette_text(elements: list[str]) -> str:
    """``sky #87CEFA, mountain #8C643C, ...``: the palette as a user would type it."""
    return ", ".join(f"{e} #{''.join(f'{v:02X}' for v in PALETTE[e])}" for e in elements)


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB from grey, RGB or RGBA input; transparent pixels become sky."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
        raise UserError(f"a sketch must be an RGB image, got an array of shape {a.shape}")
    step = -(-max(a.shape[:2]) // MAX_SIDE)
    a = a[::step, ::step]  # nearest-pixel thinning keeps the brush colours pure
    if a.shape[2] == 4:
        rgb = a[..., :3].copy()
        rgb[a[..., 3] < OPAQUE] = PALETTE["sky"]
        return rgb
    return a


def sketch_labels(image: np.ndarray, elements: list[str]) -> np.ndarray:
    """Per-pixel element index (H, W) of a painted ``image``: the nearest palette colour.

    UserError when more than :data:`FAR_SHARE` of the pixels are far from all colours.
    """
    unknown = [e for e in elements if e not in PALETTE]
    if unknown:
        raise UserError(
            f"sketches paint {', '.join(PALETTE)}; this model also needs "
            f"{', '.join(unknown)}, which has no brush colour"
        )
    rgb = _rgb(image).astype(np.float32)
    colours = np.array([PALETTE[e] for e in elements], np.float32)
    dist = np.sqrt(((rgb[..., None, :] - colours) ** 2).sum(-1))  # (H, W, K)
    near = dist.min(-1)
    if (near > FAR).mean() > FAR_SHARE:
        y, x = np.unravel_index(int(near.argmax()), near.shape)
        odd = "#" + "".join(f"{int(v):02X}" for v in rgb[y, x])
        raise UserError(
            f"the sketch has colours far from the palette (e.g. {odd} at "
            f"x={x}, y={y}, {100 * (near > FAR).mean():.0f} % of its pixels); "
            f"paint with: {palette_text(elements)}"
        )
    return dist.argmin(-1)


def sketch_cells(image: np.ndarray, elements: list[str], grid: int) -> torch.Tensor:
    """A painted ``image`` -> the layout condition (grid * grid * K,): each cell's share of
    pixels per element, cells row by row, elements in ``elements`` order."""
    h, w = np.shape(image)[:2]
    if h < grid or w < grid:
        raise UserError(f"a sketch must be at least {grid}x{grid} pixels, got {w}x{h}")
    labels = sketch_labels(image, elements)
    h, w = labels.shape  # thinned, if the sketch was large
    onehot = np.eye(len(elements), dtype=np.float32)[labels]  # (H, W, K)
    rows = np.linspace(0, h, grid + 1).round().astype(int)
    cols = np.linspace(0, w, grid + 1).round().astype(int)
    cells = [
        onehot[rows[r] : rows[r + 1], cols[c] : cols[c + 1]].mean((0, 1))
        for r in range(grid)
        for c in range(grid)
    ]
    return torch.from_numpy(np.concatenate(cells))


def _bands(size: int, bands: list[tuple[str, float]]) -> np.ndarray:
    """A sketch of horizontal bands, top to bottom, each (element, share of the height)."""
    out = np.empty((size, size, 3), np.uint8)
    top = 0
    for i, (element, share) in enumerate(bands):
        bottom = size if i == len(bands) - 1 else top + round(share * size)
        out[top:bottom] = PALETTE[element]
        top = bottom
    return out


def _lake(size: int) -> np.ndarray:
    """Sky over mountains with a lake in the valley between wooded slopes."""
    img = _bands(size, [("sky", 0.35), ("mountain", 0.25), ("vegetation", 0.4)])
    yy, xx = np.mgrid[:size, :size] / size
    img[((xx - 0.5) / 0.3) ** 2 + ((yy - 0.78) / 0.14) ** 2 < 1] = PALETTE["water"]
    return img


def _peaks(size: int) -> np.ndarray:
    """Snowy peaks against the sky above rocky slopes."""
    img = _bands(size, [("sky", 0.3), ("mountain", 0.7)])
    yy, xx = np.mgrid[:size, :size] / size
    ridge = 0.3 + 0.25 * np.abs(((xx * 2) % 1) - 0.5)
    img[(yy < ridge) & (yy > 0.12 + 0.6 * np.abs(((xx * 2) % 1) - 0.5))] = PALETTE["snow"]
    return img


# Starting points for the Paint tab and the manual: size -> (size, size, 3) sketch.
STARTING_SKETCHES = {
    "sea under the sky": lambda size: _bands(size, [("sky", 0.4), ("water", 0.6)]),
    "lake in the valley": _lake,
    "snowy peaks": _peaks,
    "forest below mountains": lambda size: _bands(
        size, [("sky", 0.3), ("mountain", 0.25), ("vegetation", 0.45)]
    ),
}
