"""How many procedural landscapes one CPU core renders per second.

    python benchmarks/synthetic_speed.py [--size 64] [--n 4096] [--repeats 3] [--grid PNG]

Runs single-threaded on purpose: the thread variables are set before numpy is
imported and the process is pinned to one core, so the figure is per core and
data-loading workers can be sized from it. Prints the best of --repeats runs of
``render_seeds`` (parameter sampling included). The machine's other load counts
too: compare figures taken side by side. With --grid it also writes an 8x8 grid
of 64 px scenes (seeds 0-63), upscaled 2x with nearest neighbours, to that path.
"""

from __future__ import annotations

import os

# Before numpy is imported: thread pools read these once, at start-up.
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from landgan.data.synthetic import render_seeds  # noqa: E402
from landgan.errors import UserError  # noqa: E402


def pin_to_one_core() -> str:
    """Restrict this process to one of the cores it may use; describe the result."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def write_grid(path: str | Path, size: int = 64, rows: int = 8, scale: int = 2) -> Path:
    """Write a rows x rows grid of scenes (seeds 0..rows**2-1), each upscaled ``scale`` times."""
    images, _ = render_seeds(range(rows * rows), size)
    grid = images.reshape(rows, rows, size, size, 3).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * size, rows * size, 3).repeat(scale, 0).repeat(scale, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Time ``render_seeds`` and print images per second; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="image side: 32, 64, 128 or 256")
    ap.add_argument("--n", type=int, default=4096, help="images per timed run")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    ap.add_argument("--grid", default=None, help="also write an 8x8 example grid PNG here")
    args = ap.parse_args(argv)
    pinned = pin_to_one_core()
    try:
        render_seeds(range(8), args.size)  # warm-up: builds the shared noise texture once
        times = []
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            render_seeds(range(args.n), args.size)
            times.append(time.perf_counter() - start)
    except UserError as e:
        print(f"synthetic_speed: error: {e}", file=sys.stderr)
        return 2
    best, median = min(times), float(np.median(times))
    print(f"size={args.size} n={args.n} repeats={len(times)} threads=1, {pinned}")
    print(
        f"images/s: {args.n / best:.0f} (best)  {args.n / median:.0f} (median)  "
        f"ms/image: {1000 * best / args.n:.3f}"
    )
    if args.grid:
        print(f"grid: {write_grid(args.grid)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
