"""A fuzz test of :func:`landgan.data.decode.decode_image`: mutated PNG, JPEG, WebP, BMP
and TIFF bytes must decode or be skipped with a reason (``SkipImage``), quickly; no other
exception escapes. Apart from test_hostile_images.py, whose files go through ``prepare``.
"""

from __future__ import annotations

import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landgan.data.decode import SkipImage, decode_image

from hostile_bytes import encode, noise

# Tiny valid files of every format (and some variants) for the fuzz test to mutate.
_SEEDS = [
    encode(noise(16, 12, 30), "PNG"),
    encode(noise(16, 12, 31), "JPEG"),
    encode(noise(16, 12, 32), "JPEG", progressive=True),
    encode(noise(16, 12, 33), "WEBP"),
    encode(noise(16, 12, 34), "WEBP", lossless=True),
    encode(noise(16, 12, 35), "BMP"),
    encode(noise(16, 12, 36, "P"), "BMP"),
    encode(noise(16, 12, 37), "TIFF"),
    encode(noise(16, 12, 38), "TIFF", compression="tiff_lzw"),
    encode(noise(16, 12, 39, "P"), "PNG"),
    encode(noise(16, 12, 40, "RGBA"), "PNG"),
    encode(noise(16, 12, 41, "CMYK"), "JPEG"),
]
_MUTATION = st.one_of(  # (kind, position, payload); positions wrap around the data's length
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16)),
)


def _mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for kind, pos, payload in mutations:
        at = pos % (len(out) + 1)
        if kind == "flip" and at < len(out):
            out[at] ^= payload
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = payload
    return bytes(out)


# derandomize: the same 150 cases on every run, so the suite never flakes; for a longer
# random search set derandomize=False and raise max_examples.
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(seed=st.sampled_from(_SEEDS), mutations=st.lists(_MUTATION, min_size=1, max_size=6))
def test_fuzz_decode_image(seed, mutations):
    data = _mutate(seed, mutations)
    start = time.perf_counter()
    try:
        # A small pixel limit: a mutated header announcing a huge image is refused
        # before Pillow allocates it, which keeps every case fast.
        arr = decode_image(data, 8, max_pixels=64 * 64)
    except SkipImage as e:
        assert isinstance(e.reason, str) and e.reason
    else:
        assert arr.shape == (8, 8, 3) and arr.dtype == np.uint8
    assert time.perf_counter() - start < 2.0  # no near-hang on any input
