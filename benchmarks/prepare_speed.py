"""How fast ``landgan prepare`` turns photos into a dataset.

    python benchmarks/prepare_speed.py [SRC] [--resolution 64] [--workers N] [--out DIR]

SRC defaults to ../shared/data/landscapes next to the repository. Without --out the
dataset goes to a temporary folder that is deleted afterwards; with --out it is
kept (and overwritten if it exists). Prints files per second and the skip count.
The machine's other load counts too: compare figures taken side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from landgan.data.prepare import prepare_dataset
from landgan.errors import UserError

DEFAULT_SRC = Path(__file__).resolve().parents[1].parent / "shared/data/landscapes"


def main(argv: list[str] | None = None) -> int:
    """Run one prepare and print its speed; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", nargs="?", default=str(DEFAULT_SRC), help="folder or .zip of images")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None, help="default: os.cpu_count()")
    ap.add_argument("--out", default=None, help="keep the dataset here (default: temp dir)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="prepare_speed_") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "dataset"
        try:
            report = prepare_dataset(
                args.src,
                out,
                args.resolution,
                force=True,
                workers=args.workers,
                progress=not args.no_progress,
            )
        except UserError as e:
            print(f"prepare_speed: error: {e}", file=sys.stderr)
            return 2
        size = (out / "images.npy").stat().st_size
    workers = args.workers or os.cpu_count()
    print(report.summary())
    print(
        f"src={args.src} resolution={args.resolution} workers={workers} "
        f"(cpu_count={os.cpu_count()})"
    )
    print(
        f"images/s: {report.images_per_second:.1f}  skipped: {len(report.skipped)}  "
        f"written: {report.written}  seconds: {report.seconds:.2f}  "
        f"images.npy: {size / 2**20:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
