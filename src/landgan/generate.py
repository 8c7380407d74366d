"""``landgan generate``: images from a checkpoint, reproducible by seed.

Only the verb lives here (output paths, messages); loading and sampling are
:mod:`landgan.sampling`'s. A folder is written as the images come, a batch at a
time, so memory does not grow with ``--n``; a grid has to be held whole, so it is
refused beyond MAX_GRID_IMAGES images or MAX_GRID_PIXELS pixels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from landgan.data.synthetic import ELEMENTS
from landgan.errors import UserError
from landgan.files import replacing
from landgan.grid import save_grid
from landgan.composer import layout_request
from landgan.sampling import (
    check_seed_and_truncation,
    iter_best_of,
    iter_images,
    load_generator,
    nearest_seen,
    parse_condition,
)
from landgan.sketch import sketch_cells

MAX_GRID_IMAGES = 4096  # one .png grid; a folder has no limit
MAX_GRID_PIXELS = 2**25  # n * (resolution + 2)^2, about 5,800 x 5,800: ~100 MB per copy held
WRITE_BATCH = 64  # images generated, then written, at a time into a folder
MAX_BEST_OF = 64  # candidates per image: each costs a generation and a labeller reading


def generate(
    ckpt: str | Path,
    out: str | Path,
    n: int = 64,
    seed: int = 0,
    truncation: float | None = None,
    ema: bool = True,
    force: bool = False,
    device: str = "cpu",
    condition: str | None = None,
    best_of: int = 1,
    layout: str | Path | None = None,
) -> Path:
    """Write ``n`` images: one grid PNG if ``out`` ends in .png, else a folder of PNGs.

    ``ckpt``: a shipped model's name, a model file, a checkpoint or a run folder.
    ``condition`` ("name=value,...") drives a conditional model; see
    :func:`landgan.sampling.parse_condition`; without it (and without ``layout``) a
    conditional model draws conditions as they occur in its training photos.
    ``layout``: a sketch painted in :data:`landgan.sketch.PALETTE` that a layout model
    follows (``condition`` then rescales it to that composition).
    ``best_of`` > 1 (composition models only) keeps, for each image, the one of that many
    candidates whose composition the photo labeller reads nearest the request.
    """
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    if not 1 <= best_of <= MAX_BEST_OF:
        raise UserError(f"--best-of must be between 1 and {MAX_BEST_OF}, got {best_of}")
    check_seed_and_truncation(seed, truncation)  # before anything is loaded
    out = Path(out)
    as_grid = out.suffix.lower() == ".png"
    if as_grid and n > MAX_GRID_IMAGES:
        raise UserError(
            f"a .png grid holds at most {MAX_GRID_IMAGES} images, got --n {n}; "
            "give a folder as --out to write them one file each"
        )
    if out.exists() and not force and (as_grid or not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists; pass --force to overwrite")
    if out.exists() and not as_grid and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder or a .png path")
    sketch = read_sketch_file(layout) if layout is not None else None
    G, cfg, state = load_generator(ckpt, device, ema, with_state=True)
    if as_grid and n * (cfg.resolution + 2) ** 2 > MAX_GRID_PIXELS:
        raise UserError(
            f"a grid of {n} images at {cfg.resolution} px is over "
            f"{MAX_GRID_PIXELS:,} pixels; use a smaller --n or a folder as --out"
        )
    cond = _condition(cfg, state, condition)
    if sketch is not None:
        if "layout_grid" not in state:
            raise UserError(
                "--layout needs a layout model (such as the shipped 'landscapes'; "
                "see landgan label --layout); this one has no map to follow"
            )
        cond = layout_request(
            G, sketch_cells(sketch, cfg.condition_names, state["layout_grid"]), cond
        )
    batches = _batches(G, cfg, n, seed, truncation, cond, best_of, state)
    if as_grid:
        return save_grid(np.concatenate(list(batches)), out)
    out.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(n - 1)))  # names keep sorting in order past 99,999 images
    i = 0
    for batch in batches:
        for img in batch:
            _write_png(img, out / f"seed{seed:04d}_{i:0{width}d}.png", i, n)
            i += 1
    return out


def _batches(G, cfg, n: int, seed: int, truncation, cond, best_of: int, state: dict):
    """The images to write, WRITE_BATCH at a time: plain, or each the best of ``best_of``."""
    if best_of == 1:
        return iter_images(G, cfg, n, seed, truncation, WRITE_BATCH, condition=cond, state=state)
    # start-up cost: the labeller pulls in the metrics stack and SciPy; only --best-of reads
    from landgan.metrics.photo_labeller import reader_for

    read = reader_for(cfg.condition_names) if cond is not None else None
    if cond is not None and cond.shape[-1] != len(cfg.condition_names):
        raise UserError(
            "--best-of works with --composition alone, not with --layout: the "
            "labeller reads how much of each element, not where it lies"
        )
    if read is None:
        raise UserError(
            "--best-of needs --composition and a model conditioned on the "
            f"composition elements ({', '.join(ELEMENTS)}), whose reading "
            "the photo labeller gives"
        )
    return iter_best_of(G, cfg, n, seed, truncation, WRITE_BATCH, cond, best_of, read)


def _condition(cfg, state: dict, condition: str | None):
    """The condition vector for ``--mix``/``--composition`` (None without), notes on stderr."""
    if condition is None:
        return None
    if not cfg.conditional:
        raise UserError(
            "--mix/--composition need a conditional model (trained with "
            "--conditional); this one is unconditional"
        )
    names = cfg.condition_names
    cond, note = parse_condition(condition, names)
    for msg in (note, nearest_seen(cond, state.get("condition_bank"), names)):
        if msg:
            print(f"landgan: {msg}", file=sys.stderr)
    return cond


def read_sketch_file(path: str | Path) -> np.ndarray:
    """The pixels of a sketch file (any size and format Pillow reads), RGBA kept."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"sketch not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"{path} is not a readable image ({e})") from None


def _write_png(img, path: Path, i: int, n: int) -> None:
    """Write one PNG whole or not at all: an interrupted or full disk leaves no torn file."""
    try:
        with replacing(path) as tmp:
            Image.fromarray(img).save(tmp, format="PNG")
    except OSError as e:
        raise UserError(
            f"cannot write {path}: {e.strerror or e}; {i} of {n} images were "
            f"written to {path.parent}"
        ) from None
