"""How far a layout model's pictures are from their requests, per size of its map pool.

A composition request draws one of the ``choices`` most varied of the ``pool`` maps
nearest it (:class:`landgan.models.layout.LayoutGenerator`): a wider pool brings more
varied layouts (``benchmarks/variety.py``) and maps a little further from the request.
This prints the photo labeller's error on the same requests for each pool size: the
readings of held-out photos, one image per request, as ``controllability.py`` does.

    python benchmarks/pool_error.py --ckpt landscapes --held-out DATA/held --pools 8,16,32
"""

from __future__ import annotations

import argparse

import numpy as np

from controllability import sampler
from landgan.data.dataset import open_dataset
from landgan.label import estimate_with
from landgan.metrics import control
from landgan.sampling import load_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--ckpt", required=True, help="layout model: name, model file, checkpoint or run"
    )
    ap.add_argument("--held-out", required=True, help="prepared photos the model never saw")
    ap.add_argument("--n", type=int, default=500, help="requests")
    ap.add_argument("--pools", default="8,16,32", help="comma list of pool sizes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    G, cfg = load_generator(args.ckpt)
    if not hasattr(G, "pool"):
        raise SystemExit(f"{args.ckpt} is not a layout model: it has no map pool")
    held = np.asarray(open_dataset(args.held_out).images)
    requests = estimate_with("photo", held)[: args.n]
    read = lambda x: estimate_with("photo", x)
    print(f"\n{args.ckpt}, {len(requests)} requests, {G.choices} choices\n")
    print("| pool | MAE | per element |\n|---|---|---|")
    for pool in (int(p) for p in args.pools.split(",")):
        G.pool = min(max(pool, G.choices), len(G.bank))
        mae, per = control.composition_error(sampler(G, cfg), read, requests, args.seed)
        print(f"| {G.pool} | {mae:.3f} | {' / '.join(f'{v:.3f}' for v in per)} |", flush=True)


if __name__ == "__main__":
    main()
