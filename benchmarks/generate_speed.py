"""Single-image generation latency: PyTorch eager vs onnxruntime, dcgan5 at 64/128/256 px.

Latency does not depend on the weights, so fresh generators are used (no checkpoint needed).

    python benchmarks/generate_speed.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from landgan.config import TrainConfig
from landgan.models import build_models


def latency_ms(fn, repeats: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    print(
        f"threads: {torch.get_num_threads()}, onnxruntime {ort.__version__}, median of {args.repeats}"
    )
    print("| resolution | PyTorch ms/image | onnxruntime ms/image |\n|---|---|---|")
    for res in (64, 128, 256):
        G = build_models("dcgan5", TrainConfig(model="dcgan5", resolution=res).net_args())[0].eval()
        z = torch.randn(1, 100)
        path = Path(tempfile.mkdtemp()) / "g.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                G,
                (z,),
                str(path),
                input_names=["z"],
                output_names=["image"],
                opset_version=17,
                dynamo=False,
            )
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            pt = latency_ms(lambda: G(z), args.repeats)
        ox = latency_ms(lambda: sess.run(None, {"z": z.numpy()}), args.repeats)
        print(f"| {res} | {pt:.2f} | {ox:.2f} |", flush=True)


if __name__ == "__main__":
    main()
