"""Time to quality: KID against held-out images after a fixed CPU budget, per recipe.

Trains each recipe (:data:`RECIPES`: a model and a preset) on the same data, in chunks
that alternate between the recipes, or with ``--parallel`` side by side (either way any
other load on the machine falls on all alike), each chunk a ``landgan train --minutes``
call that resumes the last. The budget is in CPU-minutes per recipe (user + system time
of its training processes, from the OS): each chunk trains, resuming, until its share of
that budget is used, so a busy machine stretches the wall time but not the CPU budget.
After every chunk the run's generator (G_ema; the report preset keeps none, so it is G
itself) is scored with KID and FID against held-out images never trained on: photos split
off ``--photos``, or procedural scenes from seeds training never used with ``--photos
synthetic``. ``--amp`` defaults to off, so the figures hold on CPUs without native bf16.
Prints a markdown table and, when asked, a plot of KID against CPU-minutes (``--plot``,
matplotlib) and each recipe's final samples (``--grids``). It writes nothing into docs/
unless given a path there.

    python benchmarks/time_to_quality.py --recipes dcgan4,fastgan --cpu-minutes 30
    python benchmarks/time_to_quality.py --recipes dcgan5,fastgan --resolution 128 --cpu-minutes 60 --parallel
    python benchmarks/time_to_quality.py --recipes dcgan4,fastgan --photos synthetic --cpu-minutes 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import torch

from landgan.checkpoint import resolve_checkpoint
from landgan.config import TrainConfig
from landgan.data.dataset import open_dataset, save_dataset
from landgan.data.prepare import prepare_dataset
from landgan.data.synthetic import make_synthetic_dataset
from landgan.evaluate import HELD_OUT_SEED_OFFSET
from landgan.grid import save_grid
from landgan.metrics.inception import load_feature_extractor
from landgan.metrics.scores import fid_from_features, kid
from landgan.sampling import load_generator, sample_images
from plots import kid_plot, require_matplotlib

REPO = Path(__file__).resolve().parents[1]
RECIPES = {  # name -> landgan train flags
    "report": "--model dcgan4 --preset report".split(),
    "fast": "--model dcgan4 --preset fast".split(),
    "dcgan4": "--model dcgan4 --preset fast".split(),
    "dcgan5": "--model dcgan5 --preset fast".split(),
    "fastgan": "--model fastgan --preset fast".split(),  # its defaults: batch 16, no cutout
    # fastgan's earlier batches (64, then 32 for a day, 2026-12-01): the comparisons that
    # moved the default down to 16 (docs/performance.md).
    "fastgan-b64": "--model fastgan --batch-size 64 --diffaug color,translation,cutout".split(),
    "fastgan-b32": "--model fastgan --batch-size 32 --diffaug color,translation,cutout".split(),
    # Batch 16 with the cutout it had then, spelt out so its figures stay reproducible.
    "fastgan-b16": "--model fastgan --batch-size 16 --diffaug color,translation,cutout".split(),
    # FastGAN's reference policy, DiffAugment colour and translation without cutout: the
    # default since 2026-12-01, late; the recipes above spell out the cutout they ran with.
    "fastgan-ct": "--model fastgan --batch-size 16 --diffaug color,translation".split(),
}


def split_photos(photos: Path, work: Path, held_out: int, res: int) -> tuple[Path, np.ndarray]:
    """(training dataset folder, held-out uint8 images) from a folder of photos."""
    prepare_dataset(photos, work / "all", res, progress=False)
    images = np.asarray(open_dataset(work / "all").images)
    perm = np.random.default_rng(0).permutation(len(images))
    train = save_dataset(
        work / "train",
        images[np.sort(perm[held_out:])],
        {"source": f"{photos} minus {held_out} held out"},
    )
    return Path(train), images[np.sort(perm[:held_out])]


def chunk_command(
    recipe: str, data: str, out: Path, minutes: float, res: int, amp: str
) -> list[str]:
    """The ``landgan train`` call for one chunk of ``minutes``: a new run, or a resume."""
    cmd = [
        sys.executable,
        "-m",
        "landgan",
        "train",
        "--quiet",
        "--minutes",
        str(minutes),
        "--amp",
        amp,
    ]
    if not out.exists():
        return cmd + [
            *RECIPES[recipe],
            "--data",
            data,
            "--resolution",
            str(res),
            "--steps",
            "0",
            "--out",
            str(out),
            "--sample-every",
            "0",
            "--ckpt-every",
            "0",
            "--log-every",
            "100",
        ]
    return cmd + ["--resume", str(next(out.glob("0*")))]


def run_chunks(commands: dict[str, list[str]], threads: int) -> dict[str, float]:
    """Runs the chunks' processes at once; CPU-seconds (user + system) each one used.

    ``os.wait4`` reports each child's own usage, so recipes that train side by side are
    billed separately, and both see the same load from whatever else the machine runs.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    running = {}  # pid -> (name, process), until reaped
    for name, cmd in commands.items():
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
        running[proc.pid] = name, proc
    used = {}
    while running:
        pid, status, usage = os.wait4(-1, 0)  # whichever finishes first
        if pid not in running:
            continue
        name, proc = running.pop(pid)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode != 0:
            for _, other in running.values():  # no training left running after the script
                other.kill()
                other.wait()
            raise SystemExit(f"training {name} failed (exit {proc.returncode})")
        used[name] = usage.ru_utime + usage.ru_stime
    return used


def top_up(
    recipes: list[str], cpu: dict[str, float], target: float, args, data: str, work: Path
) -> None:
    """Trains each recipe, resuming, until it has used ``target`` CPU-seconds.

    On a busy machine a wall-clock chunk gets less CPU than it would alone, hence the loop.
    With ``--parallel`` the recipes train at the same time, one process each; otherwise
    one after the other.
    """
    while True:
        behind = [r for r in recipes if cpu[r] < 0.97 * target]
        if not behind:
            return
        groups = [behind] if args.parallel else [[r] for r in behind]
        for group in groups:
            commands = {
                r: chunk_command(
                    r,
                    data,
                    work / r,
                    max((target - cpu[r]) / 60 / args.threads, 0.5),
                    args.resolution,
                    args.amp,
                )
                for r in group
            }
            for r, used in run_chunks(commands, args.threads).items():
                cpu[r] += used


def score(run: Path, real_feats: np.ndarray, extractor, n: int, grid: Path | None) -> dict:
    G, cfg, state = load_generator(resolve_checkpoint(run), with_state=True)
    images = sample_images(G, cfg, n, seed=123)
    if grid:
        save_grid(images[:64], grid)
    fake = extractor.features(images, batch_size=50)
    # Subsets of half the smaller set, so that the ± is a real spread (subsets as large as
    # the sets would all be the same sample); the mean is unbiased at any subset size.
    k, ks = kid(real_feats, fake, subset_size=min(len(real_feats), len(fake)) // 2)
    return {
        "step": int(state["step"]),
        "kid": k,
        "kid_std": ks,
        "fid": fid_from_features(real_feats, fake),
    }


def held_out_data(args, work: Path) -> tuple[str, np.ndarray]:
    """(training data for --data, held-out uint8 images it never sees)."""
    if args.photos == "synthetic":
        # The very scenes `--data synthetic` renders (seed 0), rendered once and saved, so
        # rendering at every (resumed) start is not counted as training CPU time; held-out
        # scenes come from seeds training never uses.
        train = make_synthetic_dataset(TrainConfig().synthetic_count, args.resolution, seed=0)
        path = save_dataset(work / "synthetic", np.asarray(train.images), {"source": "synthetic"})
        held = make_synthetic_dataset(args.held_out, args.resolution, seed=HELD_OUT_SEED_OFFSET)
        return str(path), np.asarray(held.images)
    train_ds, held = split_photos(Path(args.photos), work, args.held_out, args.resolution)
    return str(train_ds), held


def parse_args() -> argparse.Namespace:
    """The command line (its flags are listed in the module docstring's examples)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--photos",
        default=str(REPO.parent / "shared/data/landscapes"),
        help="a folder of photos, or 'synthetic' for the procedural scenes",
    )
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--cpu-minutes", type=float, default=30.0, help="CPU budget per recipe")
    # One thread by default: an idle OpenMP worker spins, and on a shared machine that spin
    # is billed as CPU time (2 threads under load: 134 dcgan4 steps in 14.6 CPU-minutes).
    ap.add_argument("--threads", type=int, default=1, help="threads each training process uses")
    ap.add_argument(
        "--score-threads",
        type=int,
        default=os.cpu_count(),
        help="threads for Inception scoring (not counted in the budget)",
    )
    ap.add_argument(
        "--parallel",
        action="store_true",
        help="train the recipes at the same time (one process each), not in turn",
    )
    ap.add_argument("--chunks", type=int, default=3, help="evaluations along the budget")
    ap.add_argument("--held-out", type=int, default=1000, help="real images kept out of training")
    ap.add_argument("--n-eval", type=int, default=1000, help="generated images per evaluation")
    ap.add_argument("--recipes", default="dcgan4,fastgan", help=f"from: {', '.join(RECIPES)}")
    ap.add_argument("--amp", default="off", help="--amp for training (off: float32 everywhere)")
    ap.add_argument(
        "--plot",
        default="",
        help="draw KID against CPU-minutes into this PNG "
        "(needs the bench extra; no plot unless asked)",
    )
    ap.add_argument(
        "--replot",
        default="",
        metavar="ROWS_JSON",
        help="only draw --plot from the rows a run wrote with --json (no training)",
    )
    ap.add_argument("--grids", default="", help="folder for each recipe's final 64 samples")
    ap.add_argument("--json", default="", help="also write the rows here")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.plot:
        require_matplotlib()  # now, not after the hours of training
    if args.replot:
        if not args.plot:
            raise SystemExit("--replot draws into --plot: give both")
        kid_plot(json.loads(Path(args.replot).read_text()), Path(args.plot))
        print(f"plot: {args.plot}")
        return
    work = Path(tempfile.mkdtemp(prefix="landgan-ttq-"))
    train_data, held = held_out_data(args, work)
    torch.set_num_threads(args.score_threads)
    extractor = load_feature_extractor()
    real_feats = extractor.features(held, batch_size=50)
    recipes = args.recipes.split(",")
    rows, cpu = [], {r: 0.0 for r in recipes}
    for chunk in range(args.chunks):
        t0 = time.perf_counter()
        top_up(
            recipes, cpu, args.cpu_minutes * 60 * (chunk + 1) / args.chunks, args, train_data, work
        )
        wall = time.perf_counter() - t0
        for recipe in recipes:
            last = chunk == args.chunks - 1
            grid = (
                Path(args.grids) / f"ttq_{recipe}_{args.resolution}.png"
                if args.grids and last
                else None
            )
            row = {
                "recipe": recipe,
                "chunk": chunk + 1,
                "cpu_min": cpu[recipe] / 60,
                "chunk_wall_s": wall,
                **score(next((work / recipe).glob("0*")), real_feats, extractor, args.n_eval, grid),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    report(args, rows, recipes)


def report(args, rows: list[dict], recipes: list[str]) -> None:
    """The markdown table, the ratio at the budget, the plot and the JSON."""
    print(
        f"\n{os.cpu_count()} cores, {args.threads} threads per recipe"
        f"{', recipes side by side' if args.parallel else ', recipes in turn'}, --amp {args.amp}, "
        f"{args.resolution} px, data {args.photos}; KID/FID: {args.n_eval} generated vs "
        f"{args.held_out} held-out\n\n| recipe | CPU-min | wall-s (chunk) | steps | KID×1000 | FID |"
        "\n|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['recipe']} | {r['cpu_min']:.1f} | {r['chunk_wall_s']:.0f} | {r['step']} | "
            f"{r['kid'] * 1000:.1f} ± {r['kid_std'] * 1000:.1f} | {r['fid']:.1f} |"
        )
    last = {r["recipe"]: r for r in rows}
    base = recipes[0]
    for other in recipes[1:]:
        print(
            f"\nat the budget: KID {other} / KID {base} = "
            f"{last[other]['kid'] / last[base]['kid']:.2f}, FID {other} / FID {base} = "
            f"{last[other]['fid'] / last[base]['fid']:.2f}"
        )
    if args.plot:
        kid_plot(rows, Path(args.plot))
        print(f"plot: {args.plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
