"""Every model of the report on real photos, for the same CPU budget (docs/models.md).

Prepares ``--data`` at 64 px (and 128 px for StackGAN stage II), holds out a random
``--held-out`` images, trains each model for ``--minutes`` on the rest, then scores
``--n-eval`` generated images against the held-out photos with KID and FID (FID Inception
features). Prints the table as markdown and saves a sample grid per model under
``--grids``; it writes nothing into docs/ (the page there is edited by hand from the table).

    python benchmarks/compare_models.py [--data ../shared/data/landscapes] [--minutes 2.5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from landgan.config import TrainConfig
from landgan.data.dataset import is_dataset, open_dataset, save_dataset
from landgan.data.prepare import prepare_dataset
from landgan.sampling import load_generator, sample_images
from landgan.grid import save_grid
from landgan.metrics.evaluate import evaluate_model
from landgan.metrics.inception import load_feature_extractor
from landgan.checkpoint import list_checkpoints, load_checkpoint
from landgan.train.loop import train

REPO = Path(__file__).resolve().parents[1]
MODELS = ["mlp-gan", "autoencoder", "vae", "dcgan4", "dcgan5", "wgan", "wgan-gp", "stackgan"]


def split(src: Path, work: Path, res: int, held_out: int) -> tuple[Path, Path]:
    """(train dataset, held-out dataset) at ``res`` px, prepared once and reused."""
    full = work / f"full{res}"
    if not is_dataset(full):
        prepare_dataset(src, full, res, force=True, progress=False)
    ds = open_dataset(full)
    perm = np.random.default_rng(0).permutation(len(ds))
    train_dir, held_dir = work / f"train{res}", work / f"heldout{res}"
    if not is_dataset(train_dir):
        save_dataset(train_dir, ds.images[np.sort(perm[held_out:])], {"source": str(src)})
        save_dataset(held_dir, ds.images[np.sort(perm[:held_out])], {"source": str(src)})
    return train_dir, held_dir


def train_model(model: str, data: Path, runs: Path, minutes: float, stage1: str = "") -> dict:
    res = 128 if model == "stackgan" else 64
    cfg = TrainConfig.for_model(
        model=model,
        data=str(data),
        resolution=res,
        out=str(runs),
        steps=0,
        minutes=minutes,
        sample_every=0,
        ckpt_every=0,
        stage1=stage1,
    )
    t0 = time.perf_counter()
    run = train(cfg, progress=False)
    secs = time.perf_counter() - t0
    state = load_checkpoint(list_checkpoints(run)[-1])
    return {"run": run, "res": res, "steps": state["step"], "ips": state["counters"]["nimg"] / secs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/landscapes"))
    ap.add_argument("--minutes", type=float, default=2.5, help="training budget per model")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--held-out", type=int, default=500)
    ap.add_argument("--n-eval", type=int, default=300, help="generated images scored per model")
    ap.add_argument("--work", default="/tmp/landgan-compare")
    ap.add_argument("--grids", default="", help="folder for the sample grids (default: WORK/grids)")
    ap.add_argument(
        "--json", help="also write the score rows as JSON (for landgan evaluate --table)"
    )
    args = ap.parse_args()
    work = Path(args.work)
    grids = Path(args.grids) if args.grids else work / "grids"
    work.mkdir(parents=True, exist_ok=True)
    ext = load_feature_extractor()
    rows, stage1 = [], ""
    for model in args.models.split(","):
        res = 128 if model == "stackgan" else 64
        data, held = split(Path(args.data), work, res, args.held_out)
        r = train_model(model, data, work / "runs", args.minutes, stage1)
        if model == "dcgan4":
            stage1 = str(r["run"])
        G, cfg = load_generator(r["run"])
        fn = lambda n, s: sample_images(G, cfg, n, s)
        score = evaluate_model(
            fn,
            held,
            ext,
            n=args.n_eval,
            metrics=("fid", "kid"),
            dataset=Path(args.data).name,
            model=model,
            resolution=res,
        )
        grid = grids / f"{model}.png"
        save_grid(sample_images(G, cfg, 36, seed=0), grid)
        rows.append((model, r, score, grid))
        print(
            model,
            r["steps"],
            f"{r['ips']:.1f} img/s",
            f"KID {score['kid_mean']:.4f}",
            f"FID {score['fid']:.1f}",
            flush=True,
        )
    print_table(rows, args)
    if args.json:  # rows for `landgan evaluate ROWS.json --table`, the report's Table 3
        Path(args.json).write_text(json.dumps([s for _, _, s, _ in rows], indent=1, default=float))


def print_table(rows, args) -> None:
    """The comparison as a markdown paragraph and table, with each model's grid path."""
    lines = [
        "",
        f"Produced by `python benchmarks/compare_models.py --minutes {args.minutes} "
        f"--n-eval {args.n_eval}` on a {torch.get_num_threads()}-thread CPU. Data: "
        f"`{Path(args.data).name}` prepared at 64 px (128 px for StackGAN stage II), "
        f"{args.held_out} random photos held out. Each model trained for {args.minutes} "
        f"minutes with its paper's defaults; KID and FID use FID-Inception features of "
        f"{args.n_eval} generated vs the {args.held_out} held-out photos (lower is better; "
        "FID at this sample count is biased upwards, compare it only within this table; "
        "KID is unbiased). StackGAN stage II refines the dcgan4 run above at 128 px.",
        "",
        "| model | res | steps | images/s | KID (x1000) | FID | samples |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, r, s, grid in rows:
        lines.append(
            f"| {model} | {r['res']} | {r['steps']} | {r['ips']:.1f} | "
            f"{1000 * s['kid_mean']:.1f} ± {1000 * s['kid_std']:.1f} | {s['fid']:.1f} | "
            f"![{model}]({grid}) |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
