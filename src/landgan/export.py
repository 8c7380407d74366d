"""``landgan export``: the generator alone, for deployment without landgan.

ONNX (opset 17, dynamic batch: input ``z`` (N, z_dim) float32, output ``image``
(N, 3, R, R) in [-1, 1]) for onnxruntime and other runtimes, or TorchScript for
``torch.jit.load``. Both hold only the EMA generator's weights and graph: nothing in
them can run code on load beyond the graph itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from landgan.errors import UserError
from landgan.generate import load_generator

FORMATS = ("onnx", "torchscript")


def export(ckpt: str | Path, out: str | Path, fmt: str = "onnx", ema: bool = True,
           force: bool = False) -> Path:
    """Write the checkpoint's generator to ``out`` in ``fmt``; return the path."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite")
    G, cfg = load_generator(ckpt, "cpu", ema)
    if cfg.conditional:
        raise UserError("exporting conditional generators is not supported yet")
    z = torch.randn(2, cfg.z_dim)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation notices, not user problems
        if fmt == "onnx":
            torch.onnx.export(G, (z,), str(tmp), input_names=["z"], output_names=["image"],
                              dynamic_axes={"z": {0: "n"}, "image": {0: "n"}},
                              opset_version=17, dynamo=False)
        else:
            torch.jit.save(torch.jit.trace(G, z), str(tmp))
    tmp.replace(out)
    return out
