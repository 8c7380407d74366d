"""``landgan export``: the generator alone, for deployment without landgan.

ONNX (opset 17, dynamic batch: input ``z`` (N, z_dim) float32, output ``image``
(N, 3, R, R) in [-1, 1]) for onnxruntime and other runtimes, or TorchScript for
``torch.jit.load``. A conditional generator takes a second input ``c`` (N, K) float32:
the condition vector over the names stored in the ONNX metadata as ``conditions``
(proportions summing to 1, as ``landgan generate --mix/--composition`` builds them). Both hold only the EMA generator's weights and graph: nothing in
them can run code on load beyond the graph itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from landgan.errors import UserError
from landgan.files import replacing
from landgan.sampling import load_generator

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
    args, names = (torch.randn(2, cfg.z_dim),), ["z"]
    if cfg.conditional:
        k = len(cfg.condition_names)
        args, names = (*args, torch.full((2, k), 1.0 / k)), ["z", "c"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation notices, not user problems
        if fmt == "onnx":
            torch.onnx.export(G, args, str(tmp), input_names=names, output_names=["image"],
                              dynamic_axes={**{n: {0: "n"} for n in names}, "image": {0: "n"}},
                              opset_version=17, dynamo=False)
            _add_metadata(tmp, cfg)
        else:
            torch.jit.save(torch.jit.trace(G, args), str(tmp),
                           _extra_files={"conditions": cfg.conditions})
    return out


def _add_metadata(path: Path, cfg) -> None:
    """Record resolution and condition names in the ONNX file, for runtimes without landgan."""
    try:
        import onnx
    except ImportError:  # the graph works without it; only the metadata is skipped
        return
    model = onnx.load(str(path))
    for key, value in (("landgan_model", cfg.model), ("resolution", str(cfg.resolution)),
                       ("conditions", cfg.conditions)):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
