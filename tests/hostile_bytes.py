"""Builders of image and zip bytes shared by the hostile-input tests of ``prepare`` and of
:func:`landgan.data.decode.decode_image` (test_hostile_images.py, test_decode_fuzz.py,
test_hostile_prepare.py, test_hostile_prepare_memory.py). Not a test module: each of those
used to carry its own copy of these.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    """``img`` saved in memory as ``fmt`` with Pillow's save options ``kw``."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(w: int, h: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A w x h image of uniform random pixels, converted to ``mode``."""
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)
    return Image.fromarray(a).convert(mode)


def patch_central(data: bytearray, name: str, offset: int, fmt: str, value: int) -> None:
    """Overwrite a field of ``name``'s central-directory record (what zipfile trusts)."""
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        n = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + n] == name.encode():
            struct.pack_into(fmt, data, at + offset, value)
            return
        at += 4
    raise KeyError(name)
