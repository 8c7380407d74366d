"""Steps 3 and 5 of :func:`landgan.data.decode.decode_image`: a decoded Pillow image to
the stored square of 8-bit RGB.

:func:`shrink_to_rgb` takes the centre square, box-reduces it by a whole factor and
converts any mode to 8-bit RGB a strip of rows at a time; :func:`square_resize` makes the
final LANCZOS resize (also used on images that never were files). The conversion
rules (16-bit, float, transparency) are listed in :mod:`landgan.data.decode`'s docstring.
Apart from it because these only transform pixels: nothing here reads a file or judges
whether one is usable.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from landgan.data.limits import STRIP_PIXELS

REDUCING_GAP = 3.0  # Pillow's docs: from ~3 on, indistinguishable from a plain LANCZOS


def shrink_to_rgb(img: Image.Image, size: int) -> Image.Image:
    """The centre square of ``img`` in 8-bit RGB, box-reduced while 3x ``size`` remains.

    Worked a strip of rows at a time (a whole number of reduction blocks high, so the
    result equals reducing the whole square), so the temporaries of the conversion
    scale with :data:`STRIP_PIXELS`, not with the image: a 9400 x 9400 16-bit PNG
    would otherwise pass through ~2 GB of float64 arrays.
    """
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    factor = max(1, int(s / (REDUCING_GAP * size)))
    rows = factor * max(1, STRIP_PIXELS // (s * factor))
    scale = _float_scale(img, rows)
    out = Image.new("RGB", (-(-s // factor),) * 2)
    for y in range(0, s, rows):
        strip = _to_rgb(img.crop((left, top + y, left + s, top + min(s, y + rows))), scale)
        out.paste(strip.reduce(factor) if factor > 1 else strip, (0, y // factor))
    return out


def _float_scale(img: Image.Image, rows: int) -> float:
    """What 'F' pixels are multiplied by: 255 if the image's maximum is <= 1, else 1.

    The maximum is the whole image's (NaN read as 0), found ``rows`` rows at a time.
    """
    if img.mode != "F":
        return 1.0
    top = max(
        np.nan_to_num(np.asarray(img.crop((0, y, img.width, y + rows)))).max(initial=0)
        for y in range(0, img.height, rows)
    )
    return 255.0 if top <= 1.0 else 1.0


def square_resize(img: Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop an RGB image to a square and resize it (decode step 5): uint8 (R, R, 3)."""
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    img = img.resize(
        (resolution, resolution),
        Image.Resampling.LANCZOS,
        box=(left, top, left + s, top + s),
        reducing_gap=REDUCING_GAP,
    )
    return np.asarray(img, dtype=np.uint8)


def _to_rgb(img: Image.Image, float_scale: float = 1.0) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB (decode step 3); 'F' is multiplied by ``float_scale``."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if mode == "F":
            a = a * float_scale
        else:
            a = a / 257.0  # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L").convert("RGB")
    if "A" in mode or "a" in mode or "transparency" in img.info:
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")
