"""The random choices of one procedural landscape, drawn from its seed.

:class:`SceneParams` holds every choice (time of day, sun, clouds, ridges, snow line,
lake, vegetation); :func:`sample_params` draws them from a seed alone, so a scene is
reproducible on its own. :mod:`landgan.data.synthetic` renders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from landgan.errors import UserError

ELEMENTS: tuple[str, ...] = ("sky", "mountain", "snow", "water", "vegetation")
SIZES: tuple[int, ...] = (32, 64, 128, 256)
TIMES_OF_DAY: tuple[str, ...] = ("day", "golden", "dusk", "night")
MAX_RIDGES = 3
OCTAVES = 8  # the finest has 90-200 cycles across: detail for 256 px; dropped when smaller
TREE_CELLS = 32  # distinct tree heights along the tree line before they repeat
_SCALARS = 48  # uniforms reserved for the scalar choices of a scene (it uses fewer)

# Per time of day (rows as in TIMES_OF_DAY): zenith, horizon, sun or moon, light
# falling on the land, clouds. Night light is dim and blue, golden hour warm.
_PALETTES = (
    (
        (0.20, 0.40, 0.78),
        (0.66, 0.80, 0.94),
        (1.0, 0.98, 0.88),
        (1.0, 0.98, 0.94),
        (0.97, 0.97, 0.98),
    ),
    (
        (0.28, 0.40, 0.68),
        (1.0, 0.76, 0.48),
        (1.0, 0.88, 0.60),
        (1.0, 0.82, 0.62),
        (1.0, 0.84, 0.68),
    ),
    (
        (0.10, 0.10, 0.30),
        (0.92, 0.46, 0.36),
        (1.0, 0.60, 0.38),
        (0.62, 0.46, 0.52),
        (0.80, 0.48, 0.52),
    ),
    (
        (0.02, 0.03, 0.09),
        (0.09, 0.12, 0.26),
        (0.92, 0.92, 0.84),
        (0.30, 0.34, 0.48),
        (0.24, 0.26, 0.34),
    ),
)
_GLOW = (0.15, 0.45, 0.55, 0.08)  # how far the sun's light spreads into the sky
_ROCKS = ((0.46, 0.45, 0.47), (0.50, 0.42, 0.34), (0.38, 0.42, 0.50), (0.42, 0.40, 0.36))
_GREENS = ((0.16, 0.32, 0.12), (0.22, 0.36, 0.12), (0.09, 0.24, 0.14), (0.30, 0.36, 0.14))
_WATER = (0.10, 0.22, 0.30)
_SNOW = (0.95, 0.96, 1.00)


@dataclass(frozen=True)
class SceneParams:
    """Every random choice of one scene; positions are fractions of the image side.

    Vertical positions count from the top (0) to the bottom (1). Ridges are listed
    far to near; each ridge's tuples have the same length. ``None`` switches an
    element off, so a hand-built scene can contain exactly what a test needs.
    """

    time_of_day: str = "day"
    sun: tuple[float, float, float] = (0.7, 0.2, 0.05)  # x, y, radius of the sun or moon
    cloud_cover: float = 0.0  # 0 clear .. 1 overcast
    cloud_offset: tuple[float, float] = (0.0, 0.0)  # where in the noise texture the sky lies
    ridge_heights: tuple[float, ...] = ()  # mean top of each ridge
    ridge_amplitudes: tuple[float, ...] = ()  # how far peaks and valleys stray from the mean
    ridge_roughness: tuple[float, ...] = ()  # amplitude ratio of octaves: 0.3 smooth, 0.7 jagged
    ridge_frequencies: tuple[float, ...] = ()  # cycles of the coarsest octave across the image
    ridge_phases: tuple[tuple[float, ...], ...] = ()  # OCTAVES phases per ridge
    rock_color: tuple[float, float, float] = _ROCKS[0]
    snow_line: float | None = None  # ridge pixels above this height are snow
    lake_level: float | None = None  # rows at or below this are water
    ripple: tuple[float, float] = (0.5, 0.0)  # strength 0..1, phase
    vegetation_level: float | None = None  # foot of the tree line
    vegetation_color: tuple[float, float, float] = _GREENS[0]
    tree_height: float = 0.05  # 0: no trees, only grass
    grass_height: float = 0.01  # height of single blades of grass; 0 with no trees: a flat edge
    tree_frequency: float = 24.0  # trees across the image
    tree_heights: tuple[float, ...] = (1.0,)  # relative height of successive trees, cycled

    def __post_init__(self):
        if self.time_of_day not in TIMES_OF_DAY:
            raise ValueError(f"time_of_day must be one of {TIMES_OF_DAY}, not {self.time_of_day!r}")
        n = len(self.ridge_heights)
        if n > MAX_RIDGES or any(
            len(t) != n
            for t in (
                self.ridge_amplitudes,
                self.ridge_roughness,
                self.ridge_frequencies,
                self.ridge_phases,
            )
        ):
            raise ValueError(f"the ridge_* tuples need one entry per ridge, at most {MAX_RIDGES}")


def draws_for_seeds(seeds: list[int]) -> np.ndarray:
    """Uniform numbers for each seed: (len(seeds), _SCALARS + ridge phases + tree heights).

    SplitMix64 of (seed, index): counter-based, so a scene's numbers depend on its
    own seed only, and a whole chunk is hashed in a few array operations -- about
    ten times cheaper than seeding one numpy generator per scene.
    """
    if any(not 0 <= s < 2**64 for s in seeds):
        raise UserError("scene seeds must be integers in [0, 2**64)")

    def mix(z):
        z = (z ^ (z >> 30)) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> 27)) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> 31)

    golden = np.uint64(0x9E3779B97F4A7C15)
    count = _SCALARS + MAX_RIDGES * OCTAVES + TREE_CELLS
    key = mix(np.array(seeds, np.uint64) + golden)
    bits = mix(key[:, None] + np.arange(1, count + 1, dtype=np.uint64) * golden)
    u = (bits >> np.uint64(11)) * 2.0**-53
    u[:, _SCALARS:-TREE_CELLS] *= 2 * math.pi  # ridge phases
    u[:, -TREE_CELLS:] = 0.3 + 0.7 * u[:, -TREE_CELLS:]  # relative tree heights
    return u


def sample_params(seed: int) -> SceneParams:
    """Draw one scene from ``seed`` (an int in [0, 2**64)); the same seed gives the same scene."""
    return scene_from_draws(draws_for_seeds([int(seed)])[0].tolist())


def scene_from_draws(draws: list[float]) -> SceneParams:
    """Turn one row of :func:`draws_for_seeds` into a scene."""
    nxt = iter(draws[:_SCALARS]).__next__

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * nxt()

    r = nxt()
    tod = 0 if r < 0.45 else 1 if r < 0.7 else 2 if r < 0.85 else 3
    lake = u(0.55, 0.78) if nxt() < 0.5 else None
    ground = lake if lake is not None else u(0.62, 0.8)  # foot of the nearest ridge
    # Vegetation stands in front of the lake and leaves some of it visible.
    veg = u(lake + 0.1, 0.97) if lake is not None else u(ground + 0.02, 0.95)
    veg = veg if nxt() < 0.75 else None
    n = 1 + int(nxt() * MAX_RIDGES)
    # Far ridges stand high in the image and near ones low: perspective.
    heights = sorted(u(0.3, ground - 0.1) for _ in range(n))
    snow = heights[0] + u(0.02, 0.14) if nxt() < 0.5 else None
    sun_y = u(*((0.08, 0.3), (0.2, 0.4), (0.3, 0.5), (0.08, 0.35))[tod])  # low at golden hour, dusk
    tall_trees = nxt() < 0.7
    phases = draws[_SCALARS : _SCALARS + n * OCTAVES]
    return SceneParams(
        time_of_day=TIMES_OF_DAY[tod],
        snow_line=snow,
        lake_level=lake,
        vegetation_level=veg,
        sun=(u(0.1, 0.9), sun_y, u(0.035, 0.07) if tod != 1 else u(0.05, 0.09)),
        cloud_cover=u(0.0, 0.8) if nxt() < 0.8 else 0.0,
        cloud_offset=(nxt(), nxt()),
        ridge_heights=tuple(heights),
        ridge_amplitudes=tuple(u(0.05, 0.11) for _ in range(n)),
        ridge_roughness=tuple(u(0.35, 0.5) for _ in range(n)),
        ridge_frequencies=tuple(u(0.7, 1.6) for _ in range(n)),
        ridge_phases=tuple(tuple(phases[k : k + OCTAVES]) for k in range(0, len(phases), OCTAVES)),
        rock_color=_ROCKS[int(nxt() * len(_ROCKS))],
        ripple=(u(0.2, 1.0), u(0.0, 2 * math.pi)),
        vegetation_color=_GREENS[int(nxt() * len(_GREENS))],
        tree_height=u(0.02, 0.12) if tall_trees else u(0.0, 0.02),
        tree_frequency=u(14, 36),
        grass_height=u(0.005, 0.02),
        tree_heights=tuple(draws[-TREE_CELLS:]),
    )
