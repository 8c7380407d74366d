"""``landgan generate``: images from a checkpoint, reproducible by seed.

Only the verb lives here (output paths, messages); loading and sampling are
:mod:`landgan.sampling`'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from landgan.errors import UserError
from landgan.grid import save_grid
from landgan.sampling import (check_seed_and_truncation, load_generator, nearest_seen,
                              parse_condition, sample_images)


def generate(ckpt: str | Path, out: str | Path, n: int = 64, seed: int = 0,
             truncation: float | None = None, ema: bool = True, force: bool = False,
             device: str = "cpu", condition: str | None = None) -> Path:
    """Write ``n`` images: one grid PNG if ``out`` ends in .png, else a folder of PNGs.

    ``condition`` ("name=value,...") drives a conditional model; see :func:`landgan.sampling.parse_condition`.
    """
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    check_seed_and_truncation(seed, truncation)  # before anything is loaded
    out = Path(out)
    as_grid = out.suffix.lower() == ".png"
    if out.exists() and not force and (as_grid or not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists; pass --force to overwrite")
    if out.exists() and not as_grid and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder or a .png path")
    G, cfg, state = load_generator(ckpt, device, ema, with_state=True)
    cond = None
    if condition is not None:
        if not cfg.conditional:
            raise UserError("--mix/--composition need a conditional model (trained with "
                            "--conditional); this one is unconditional")
        names = cfg.condition_names
        cond, note = parse_condition(condition, names)
        for msg in (note, nearest_seen(cond, state.get("condition_bank"), names)):
            if msg:
                print(f"landgan: {msg}", file=sys.stderr)
    images = sample_images(G, cfg, n, seed, truncation, condition=cond)
    if as_grid:
        return save_grid(images, out)
    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(out / f"seed{seed:04d}_{i:05d}.png")
    return out
