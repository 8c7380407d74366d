"""The layers of a procedural landscape, painted a batch of scenes at a time.

:func:`pack` stacks a batch's :class:`~landgan.data.scene.SceneParams` into arrays; the
painters then draw onto one planar (3, N, H, W) float32 canvas, back to front: sky (with
sun or moon, clouds and stars), mountain ridges (with snow), the lake's reflection, the
foreground vegetation; each returns the mask of what it painted, from which
:mod:`landgan.data.synthetic` builds the element map. They live apart from it because
they are the numerics of one batch (vectorised numpy, tuned for speed), while it holds the
public API: sizes, chunking, fractions and the dataset.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from landgan.data.scene import (
    _GLOW,
    _PALETTES,
    _SNOW,
    _WATER,
    MAX_RIDGES,
    OCTAVES,
    TIMES_OF_DAY,
    TREE_CELLS,
    SceneParams,
)

_BANK = 512  # side of the shared, deterministic noise texture


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed, tileable texture (3, _BANK**2): soft clouds, white noise, fine grain.

    Built once from a constant seed, so it is the same in every process; each scene
    reads it at its own offset instead of synthesising 2-D noise per image.
    """
    rng = np.random.default_rng(20240601)
    f = np.fft.fftfreq(_BANK)
    k = np.hypot(f[:, None], f[None, :])
    k[0, 0] = 1.0
    chans = []
    for slope in (1.6, 0.9):  # amplitude ~ 1/f**slope: fBm clouds, then grainier texture
        spec = np.fft.fft2(rng.standard_normal((_BANK, _BANK))) * k**-slope
        spec[0, 0] = 0.0
        z = np.fft.ifft2(spec).real
        chans.append(np.clip(0.5 + z / (6.0 * z.std()), 0.0, 1.0))
    bank = np.stack([chans[0], rng.random((_BANK, _BANK)), chans[1]])
    bank = bank.reshape(3, -1).astype(np.float32)
    bank.setflags(write=False)
    return bank


def pack(params: list[SceneParams]) -> dict[str, np.ndarray]:
    """Stack the batch's parameters into float32 arrays, ridges padded to MAX_RIDGES.

    Colours come out as (3, N) so they broadcast against the (3, N, H, W) canvas;
    an element switched off (None) becomes a level outside the image.
    """

    def col(name, none=0.0):
        vals = [getattr(p, name) for p in params]
        return np.array([none if v is None else v for v in vals], np.float32)

    def ridges(name, pad):
        return np.array(
            [
                tuple(getattr(p, name)) + (pad,) * (MAX_RIDGES - len(p.ridge_heights))
                for p in params
            ],
            np.float32,
        )

    tod = np.array([TIMES_OF_DAY.index(p.time_of_day) for p in params])
    # In 0..255 units, so the canvas needs no scaling before uint8; the light scales
    # every surface colour (rock, snow, water, plants) with it.
    pal = np.asarray(_PALETTES, np.float32)[tod].transpose(1, 2, 0) * 255.0  # (5 colours, 3, N)
    trees = [
        np.resize(t, TREE_CELLS) if len(t) != TREE_CELLS else t
        for t in (p.tree_heights for p in params)
    ]
    return dict(
        tod=tod,
        zenith=pal[0],
        horizon=pal[1],
        sun_color=pal[2],
        light=pal[3],
        cloud_color=pal[4],
        glow=np.asarray(_GLOW, np.float32)[tod],
        sun=col("sun"),
        cover=col("cloud_cover"),
        cloud_offset=col("cloud_offset"),
        count=np.array([len(p.ridge_heights) for p in params], np.float32),
        height=ridges("ridge_heights", 9.0),  # a missing ridge stands below the image
        amp=ridges("ridge_amplitudes", 0.0),
        rough=ridges("ridge_roughness", 0.5),
        freq=ridges("ridge_frequencies", 1.0),
        phase=ridges("ridge_phases", (0.0,) * OCTAVES),
        rock=col("rock_color").T,
        snow=col("snow_line", -9.0),
        lake=col("lake_level", 9.0),
        ripple=col("ripple"),
        veg=col("vegetation_level", 9.0),
        green=col("vegetation_color").T,
        tree_h=col("tree_height"),
        tree_f=col("tree_frequency"),
        grass=col("grass_height"),
        tree_hs=np.array(trees, np.float32),
    )


def paint_sky(a: dict, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sky gradient, sun or moon with its glow, clouds and stars.

    Returns the canvas (3, N, H, W) and the texture (3, N, H, W) read from the noise
    bank, which the later layers reuse for grain instead of reading the bank again.
    """
    zen, hor = a["zenith"], a["horizon"]
    horizon = np.minimum(np.minimum(a["lake"], a["veg"]), 0.75)
    t = np.clip(v / horizon[:, None], 0.0, 1.0) ** 2
    grad = zen[:, :, None] + t * (hor - zen)[:, :, None]  # (3, N, H)
    dx = x - a["sun"][:, 0, None, None]
    dy = v[:, None] - a["sun"][:, 1, None, None]
    d2 = dx * dx + dy * dy
    r = np.maximum(a["sun"][:, 2, None, None], 1e-4)
    # Anti-aliased disk: r**2 - d**2 ~ 2 r (r - d), with r - d in pixels.
    disk = np.clip((r * r - d2) * (len(x) / (2.0 * r)) + 0.5, 0.0, 1.0)
    glow = a["glow"][:, None, None] / (1.0 + 30.0 * d2)

    s = _BANK
    off = (a["cloud_offset"] * s).astype(np.int64)
    bx = (np.floor(x * (0.4 * s)).astype(np.int64) + off[:, :1]) % s
    by = (np.floor(v * s).astype(np.int64) + off[:, 1:]) % s  # more rows than columns: wide clouds
    tex = _noise_bank().take(by[:, :, None] * s + bx[:, None, :], axis=1)
    dens = tex[0] - (0.78 - 0.5 * a["cover"])[:, None, None]
    low = np.clip((horizon[:, None] - v) * 5.0, 0.0, 1.0)  # clouds thin out toward the horizon
    alpha = np.clip(dens * 6.0, 0.0, 1.0) * low[:, :, None]
    shade = 1.0 - 0.2 * np.clip(dens * 3.0, 0.0, 1.0)  # thick cloud is darker underneath
    stars = (tex[1] > 0.996) & (a["tod"] == 3)[:, None, None]
    # Each layer is a per-pixel weight times a per-scene colour, so the canvas takes
    # three full-colour passes; the glow shines through the clouds, the disk does not.
    clear = 1.0 - alpha
    img = np.empty((3,) + d2.shape, np.float32)  # explicit, so the canvas is C-contiguous
    np.multiply(grad[..., None], (1.0 - disk) * clear, out=img)
    img += a["sun_color"][:, :, None, None] * (glow + (disk + 0.7 * stars) * clear)
    img += a["cloud_color"][:, :, None, None] * (alpha * shade)
    return img, tex


def _ridge_tops(a: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top edge of every ridge, full detail and coarse, each (N, MAX_RIDGES, W).

    Each octave is a folded sine, 1 - 2|sin|, whose sharp crests make peaks and
    whose round troughs make valleys. The octaves depend on the scene only, so a
    scene keeps its skyline at every size; octaves finer than the pixels are dropped.
    """
    j = np.arange(OCTAVES, dtype=np.float32)
    freq = a["freq"][..., None] * 2.0**j
    w = a["rough"][..., None] ** j
    norm = a["amp"] * 2.0 / w.sum(-1)
    w = w * (freq < len(x) / 2)
    waves = 1.0 - 2.0 * np.abs(np.sin((np.pi * freq)[..., None] * x + a["phase"][..., None]))
    terms = w[..., None] * waves
    coarse = terms[:, :, :3].sum(axis=2) * norm[..., None]
    fine = terms[:, :, 3:].sum(axis=2) * norm[..., None]
    return a["height"][..., None] - coarse - fine, a["height"][..., None] - coarse


def _ridge_tables(a: dict, coarse: np.ndarray, v: np.ndarray) -> tuple:
    """Flat lookup tables for :func:`paint_mountains`, indexed by ``scene * MAX_RIDGES + ridge``.

    Per column: lighting. Per row: the light/shadow shift, the share of the surface
    colour kept and the weight of the haze colour. Colour: rock rows, then snow rows.
    Farther ridges get more fog, carrying them toward the haze: atmospheric perspective.
    """
    w = coarse.shape[2]
    # Broad faces turned to the sun are lit, the others shaded; slope in image units.
    side = np.where(a["sun"][:, 0] > 0.5, 1.0, -1.0).astype(np.float32)[:, None, None]
    lit = 1.0 + 0.35 * np.clip(np.gradient(coarse, axis=-1) * (2.0 * w) * side, -1.0, 1.0)
    below = v - a["height"][..., None]  # (N, R, H): depth below the ridge's mean top
    shift = np.rint(side * 0.7 * w * below).astype(np.intp)
    count = a["count"][:, None]
    dist = (count - 1 - np.arange(MAX_RIDGES, dtype=np.float32)) / np.maximum(count - 1, 1)
    fog = (0.12 + 0.55 * dist)[..., None]  # 0.67 for the farthest ridge
    mist = np.clip(below * 0.75, 0.0, 0.25)  # valleys fill with haze
    light = a["light"][:, :, None]
    rock = a["rock"][:, :, None] * light * (0.75 + 0.25 * dist)  # near ridges darker
    ice = np.asarray(_SNOW, np.float32)[:, None, None] * light * np.ones_like(dist)
    return (
        lit.ravel(),
        shift.ravel(),
        ((1.0 - fog) * (1.0 - mist)).ravel(),
        (fog * (1.0 - mist) + mist).ravel(),
        np.stack([rock, ice], 1).reshape(3, -1),
    )


def paint_mountains(
    a: dict, img: np.ndarray, tex: np.ndarray, x: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Paint the ridges, nearer ones hiding farther ones -> (mountain mask, snow mask)."""
    tops, coarse = _ridge_tops(a, x)
    n, h, w = len(tops), len(v), len(x)
    vv = v[:, None]
    m = vv >= tops.min(axis=1)[:, None, :]  # under any ridge's top
    row = np.zeros((n, h, w), np.intp)  # table row: scene * MAX_RIDGES + nearest ridge
    for k in range(1, MAX_RIDGES):
        row[vv >= tops[:, k, None, :]] = k
    row += (np.arange(n) * MAX_RIDGES)[:, None, None]
    lit_t, shift_t, keep_t, haze_t, colour_t = _ridge_tables(a, coarse, v)
    by_row = row * h + np.arange(h)[:, None]
    # Light and shadow meet along lines running diagonally down from the crests.
    col = np.clip(shift_t.take(by_row) + np.arange(w), 0, w - 1)
    lit = lit_t.take(row * w + col)
    snow = m & (vv + 0.1 * (tex[2] - 0.5) < a["snow"][:, None, None])
    lit *= np.where(snow, 1.0, 0.88 + 0.24 * tex[2]) * keep_t.take(by_row)
    colour = colour_t.take(row + (n * MAX_RIDGES) * snow, axis=1)  # snow rows follow rock rows
    colour *= lit
    haze = (0.65 * a["horizon"] + 0.35 * a["zenith"])[:, :, None, None]
    colour += haze * haze_t.take(by_row)
    np.copyto(img, colour, where=m)
    return m, snow


def paint_lake(a: dict, img: np.ndarray) -> np.ndarray:
    """Mirror what lies above the lake into every row below its level -> (N, H) water rows.

    Ripples are drawn by mirroring each water row from a row slightly above or below
    its true mirror image, which breaks the reflection into horizontal streaks
    without any per-pixel gather.
    """
    _, n, h, _ = img.shape
    first = np.clip(np.ceil(a["lake"] * h - 0.5), 0, h).astype(np.intp)  # first water row
    water = np.arange(h) >= first[:, None]
    lo = int(first.min())
    if lo >= h:
        return water
    below = np.arange(lo, h) - first[:, None]
    depth = (np.maximum(below, 0) / h).astype(np.float32)
    wave = np.sin(a["ripple"][:, 1, None] + 60.0 * np.sqrt(depth))
    # Ripples grow toward the viewer; the jitter is in rows, scaled with the size.
    jitter = np.rint(wave * a["ripple"][:, 0, None] * (0.5 + 6.0 * depth) * (h / 64))
    jitter = jitter.astype(np.intp)
    src = np.clip(first[:, None] - 1 - below + jitter, 0, np.maximum(first[:, None] - 1, 0))
    refl = img[:, np.arange(n)[:, None], src]
    refl *= (0.72 + 0.08 * wave)[:, :, None]
    refl += (0.28 * np.asarray(_WATER, np.float32)[:, None] * a["light"])[:, :, None, None]
    np.copyto(img[:, :, lo:], refl, where=water[:, lo:, None])
    return water


def paint_vegetation(
    a: dict, img: np.ndarray, tex: np.ndarray, x: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """A foreground band topped by a row of pointed trees (or ragged grass) -> its mask."""
    u = x * a["tree_f"][:, None]
    cell = np.floor(u)
    tri = 1.0 - np.abs(2.0 * (u - cell) - 1.0)  # 1 at a tree's tip, 0 between trees
    th = np.take_along_axis(a["tree_hs"], cell.astype(np.intp) % TREE_CELLS, axis=1)
    blades = a["grass"][:, None] * tex[1, :, 0, :]  # white noise: each column its own blade
    top = a["veg"][:, None] - a["tree_h"][:, None] * th * tri**0.7 - blades
    vv = v[:, None]
    m = vv >= top[:, None, :]
    depth = np.clip((vv - a["veg"][:, None, None]) * 3.0, 0.0, 1.0)
    shade = (0.65 + 0.6 * tex[2]) * (1.0 - 0.45 * depth)
    np.copyto(img, (a["green"] * a["light"])[:, :, None, None] * shade, where=m)
    return m
