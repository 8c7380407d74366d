"""Kill training with SIGKILL at random moments, resume each time, and check nothing is lost.

Trains a small DCGAN on procedural 32 px scenes with a checkpoint every
``--ckpt-every`` steps (so many kills land during a checkpoint write), kills it
``--kills`` times at a random moment, and resumes with ``--resume auto``. After each
kill it checks that every checkpoint on disk loads, and how many steps were lost: the
last step the log recorded minus the step of the newest checkpoint (the promise is
"at most the steps since the last checkpoint").

    python benchmarks/crash_resume.py [--kills 20] [--ckpt-every 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from landgan.checkpoint import list_checkpoints, load_checkpoint


def launch(out: Path, args, first: bool) -> subprocess.Popen:
    common = ["--out", str(out), "--quiet"]
    if first:
        cmd = [
            "train",
            "--data",
            "synthetic",
            "--synthetic-count",
            "256",
            "--resolution",
            "32",
            "--batch-size",
            "16",
            "--g-width",
            "16",
            "--d-width",
            "16",
            "--steps",
            "100000",
            "--ckpt-every",
            str(args.ckpt_every),
            "--log-every",
            "1",
            "--sample-every",
            "0",
            "--keep",
            "3",
        ]
    else:
        cmd = ["train", "--resume", "auto"]
    return subprocess.Popen(
        [sys.executable, "-m", "landgan", *cmd, *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def newest_step(out: Path) -> int:
    runs = list(out.glob("0*"))
    return max((int(p.stem.split("_")[1]) for r in runs for p in list_checkpoints(r)), default=-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--ckpt-every", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(tempfile.mkdtemp(prefix="landgan-crash-")) / "runs"
    survived, lost, unreadable = 0, [], 0
    for k in range(args.kills):
        before = newest_step(out)
        proc = launch(out, args, first=k == 0)
        while newest_step(out) <= before:  # resumed and made progress
            if proc.poll() is not None:
                sys.exit(f"resume {k} failed: {proc.stderr.read()}")
            time.sleep(0.02)
        survived += k > 0
        time.sleep(rng.uniform(0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        (run,) = out.iterdir()
        for p in list_checkpoints(run):
            try:
                load_checkpoint(p)
            except Exception:  # noqa: BLE001 -- count any failure to read as torn
                unreadable += 1
        logged = [
            int(m.group(1))
            for m in re.finditer(r"^step (\d+) ", (run / "log.txt").read_text(), re.M)
        ]
        lost.append(max(logged) - newest_step(out))
    final = launch(out, args, first=False)
    time.sleep(3)
    final.send_signal(signal.SIGTERM)
    final.wait(timeout=120)
    print(
        f"kills: {args.kills}, resumes that continued training: {survived}/{args.kills - 1}, "
        f"unreadable checkpoints seen: {unreadable}"
    )
    print(
        f"steps lost per kill (last logged - newest checkpoint): max {max(lost)}, "
        f"mean {sum(lost) / len(lost):.2f} (checkpoint every {args.ckpt_every})"
    )
    print(f"final SIGTERM exit code: {final.returncode} (130 = saved and stopped cleanly)")


if __name__ == "__main__":
    main()
