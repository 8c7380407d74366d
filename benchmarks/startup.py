"""Start-up time of the ``landgan`` command: ``--help``, ``--version`` and a verb's help.

Each command runs ``--repeat`` times in a fresh interpreter; the median wall time is
printed, beside ``python -c pass`` measured the same way (the interpreter's own cost).

    python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "landgan --help": [sys.executable, "-m", "landgan", "--help"],
    "landgan --version": [sys.executable, "-m", "landgan", "--version"],
    "landgan generate --help": [sys.executable, "-m", "landgan", "generate", "--help"],
    "landgan train --help": [sys.executable, "-m", "landgan", "train", "--help"],
}


def median_seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print("| command | median seconds |\n|---|---|")
    for name, cmd in COMMANDS.items():
        print(f"| `{name}` | {median_seconds(cmd, args.repeat):.2f} |")


if __name__ == "__main__":
    main()
