"""Colour, position and texture rules that estimate a photo's scene composition.

The pixel network of :mod:`landgan.label` learns the procedural scenes almost exactly but
does not transfer to photographs: their palette and texture are too far from the
renderer's. These rules trade accuracy on procedural scenes (MAE about 0.11 against their
exact fractions, vs 0.02 for the network) for behaviour on photos that ranks sensibly
(sea photos the most water, forest the most vegetation, glacier the most snow/ice; see
``benchmarks/label_accuracy.py``). Each pixel gets one element:

- vegetation: green hues with some saturation, or dark pixels in the lower half;
- sky: blue, bright-grey or white pixels in the top third;
- water: below 45% of the height, blue or mid-grey, and either flat or with horizontal
  texture (waves and reflections change more down the image than across it; ice
  crevasses and rock do not);
- snow/ice: the remaining bright low-saturation or light-blue pixels;
- mountain/rock: everything else.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

ORDER = ("sky", "mountain", "snow", "water", "vegetation")  # = landgan.data.synthetic.ELEMENTS

HORIZONTAL = 0.62  # share of local gradient energy that is vertical, above which texture is "waves"
FLAT = 0.015  # local gradient energy below which a region counts as flat
WATER_TOP = 0.45  # water only below this fraction of the height
SKY_BOTTOM = 0.35  # sky only above this fraction of the height


def _hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hue in degrees, saturation and value of (N, 3, H, W) RGB in [0, 1]."""
    r, g, b = x.unbind(1)
    mx, mn = x.amax(1), x.amin(1)
    d = (mx - mn).clamp_min(1e-6)
    h = torch.where(
        mx == r, ((g - b) / d) % 6, torch.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)
    )
    return h * 60, (mx - mn) / mx.clamp_min(1e-6), mx


def _texture(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(vertical share of the local gradient energy, local gradient energy), both (N, H, W)."""
    lum = x.mean(1, keepdim=True)
    dx = F.pad((lum[..., :, 1:] - lum[..., :, :-1]).abs(), (0, 1))
    dy = F.pad((lum[..., 1:, :] - lum[..., :-1, :]).abs(), (0, 0, 0, 1))
    bx, by = F.avg_pool2d(dx, 5, 1, 2), F.avg_pool2d(dy, 5, 1, 2)
    return (by / (bx + by + 1e-4))[:, 0], (bx + by)[:, 0]


def element_map(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel element index (N, H, W) into :data:`ORDER` for RGB (N, 3, H, W) in [0, 1]."""
    h, s, v = _hsv(x)
    vertical, energy = _texture(x)
    y = torch.linspace(0, 1, x.shape[2]).view(1, -1, 1).expand_as(v)
    veg = ((h > 55) & (h < 165) & (s > 0.18) & (v > 0.08)) | ((v < 0.2) & (y > 0.5))
    blue = (h >= 165) & (h < 255) & (s > 0.12)
    bright = (v > 0.7) & (s < 0.25)
    sky = ~veg & (y < SKY_BOTTOM) & (blue | bright | ((v > 0.55) & (s < 0.25)))
    grey = (s < 0.2) & (v > 0.25) & (v < 0.8)
    wavy = (vertical > HORIZONTAL) | (energy < FLAT)
    water = ~veg & ~sky & (y > WATER_TOP) & wavy & (blue | grey)
    snow = ~veg & ~sky & ~water & (bright | (blue & (v >= 0.55)))
    out = torch.ones_like(v, dtype=torch.long)  # mountain/rock
    for k, mask in ((0, sky), (2, snow), (3, water), (4, veg)):
        out[mask] = k
    return out


def rule_fractions(x: torch.Tensor) -> torch.Tensor:
    """Area fractions (N, 5) over :data:`ORDER` for RGB (N, 3, H, W) in [0, 1]."""
    return F.one_hot(element_map(x), len(ORDER)).float().mean((1, 2))


def per_batch(fn, images: np.ndarray, size: int = 64, batch: int = 256) -> np.ndarray:
    """``fn`` (RGB (n, 3, size, size) in [0, 1] -> (n, 5) fractions) over uint8 NHWC images
    of any size, ``batch`` at a time so that memory stays bounded; float32 (N, 5)."""
    out = [np.zeros((0, len(ORDER)), np.float32)]
    for s in range(0, len(images), batch):
        x = torch.from_numpy(np.array(images[s : s + batch])).permute(0, 3, 1, 2).float() / 255
        if x.shape[-1] != size:
            x = F.interpolate(
                x, size=(size, size), mode="area" if x.shape[-1] > size else "bilinear"
            )
        out.append(fn(x).numpy())
    return np.concatenate(out).astype(np.float32)


def rule_estimate(images: np.ndarray, size: int = 64, batch: int = 256) -> np.ndarray:
    """Composition fractions (N, 5) for uint8 NHWC images of any size, judged at ``size`` px."""
    return per_batch(rule_fractions, images, size, batch)
