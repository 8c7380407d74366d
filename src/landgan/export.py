"""``landgan export``: the generator alone, as a landgan model file or for other runtimes.

``--format safetensors`` writes a model file (:mod:`landgan.modelfile`): what the
shipped models are, and what every verb takes by path.

ONNX (opset 17, dynamic batch: input ``z`` (N, z_dim) float32, output ``image``
(N, 3, R, R) in [-1, 1]) for onnxruntime and other runtimes, or TorchScript for
``torch.jit.load``. A conditional generator takes a second input ``c`` (N, K) float32:
the condition vector over the names stored in the ONNX metadata as ``conditions``
(proportions summing to 1, as ``landgan generate --mix/--composition`` builds them). Both hold only the EMA generator's weights and graph: nothing in
them can run code on load beyond the graph itself.
"""

from __future__ import annotations

import shlex
import warnings
from pathlib import Path

import torch

from landgan.checkpoint import average_checkpoints, resolve_checkpoint
from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.files import replacing
from landgan.modelfile import save_model_file, source_commit
from landgan.sampling import load_generator

FORMATS = ("onnx", "torchscript", "safetensors")


def export(
    ckpt: str | Path,
    out: str | Path,
    fmt: str = "onnx",
    ema: bool = True,
    force: bool = False,
    half: bool = False,
    command: str = "",
    average: int = 1,
) -> Path:
    """Write the checkpoint's generator to ``out`` in ``fmt``; return the path.
    ``command``: what the user typed, recorded in a model file. ``average`` > 1: the
    generator averaged over a run's newest that many checkpoints
    (:func:`~landgan.checkpoint.average_checkpoints`)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if half and fmt != "safetensors":
        raise UserError("--half applies to --format safetensors only")
    out = Path(out)
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite")
    state = averaged_state(ckpt, average, ema)
    if fmt == "safetensors":
        return export_model_file(ckpt, out, ema, half, command, state)
    G, cfg = load_generator(ckpt, "cpu", ema, state=state)
    args, names = (torch.randn(2, cfg.z_dim),), ["z"]
    if cfg.conditional:
        k = len(cfg.condition_names)
        args, names = (*args, torch.full((2, k), 1.0 / k)), ["z", "c"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation notices, not user problems
        if fmt == "onnx":
            torch.onnx.export(
                G,
                args,
                str(tmp),
                input_names=names,
                output_names=["image"],
                dynamic_axes={**{n: {0: "n"} for n in names}, "image": {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
            _add_metadata(tmp, cfg)
        else:
            torch.jit.save(
                torch.jit.trace(G, args), str(tmp), _extra_files={"conditions": cfg.conditions}
            )
    return out


def averaged_state(ckpt, average: int, ema: bool) -> dict | None:
    """The checkpoint dict with its generator averaged over the run's newest ``average``
    checkpoints, or None (load ``ckpt`` as it is) when ``average`` is 1."""
    if average == 1:
        return None
    if average < 1:
        raise UserError(f"--average must be at least 1, not {average}")
    if not Path(ckpt).is_dir() and str(ckpt) != "auto":
        raise UserError("--average needs a run folder (it averages the run's newest checkpoints)")
    newest = resolve_checkpoint(ckpt)
    return average_checkpoints(newest.parent.parent, average, "G_ema" if ema else "G")


def export_model_file(
    ckpt, out: Path, ema: bool = True, half: bool = False, command: str = "", state=None
) -> Path:
    """A landgan model file (:mod:`landgan.modelfile`) of the checkpoint's generator (or
    of ``state``, a checkpoint dict already loaded): its weights, config, condition bank
    (a layout model's maps and weights), and the command and commit that made the file."""
    # One load: the checks a user of the file will meet, and for a layout model its set
    # of maps as the generator draws with them (chosen from an older checkpoint's sample).
    G, _, state = load_generator(ckpt, "cpu", ema, with_state=True, state=state)
    key = "G_ema" if ema and "G_ema" in state["models"] else "G"
    cfg = TrainConfig.from_dict(state["config"])
    if "layout_grid" in state:  # the maps stand for the sample
        extra = {"layout_bank": state["layout_bank"], "layout_weights": state["layout_weights"]}
    else:
        extra = {"condition_bank": state.get("condition_bank")}
    made_by = dict(state.get("made_by") or {})
    made_by.setdefault("trained_with", training_command(cfg))
    made_by.update(
        exported_with=command or "landgan.export.export()",
        commit=source_commit(),
        source_step=str(state["step"]),
        weights="G_ema" if key == "G_ema" else "G (raw, not EMA)",
    )
    if state.get("averaged_steps"):
        steps = ", ".join(str(s) for s in state["averaged_steps"])
        made_by["weights"] += f", the mean over the checkpoints of steps {steps}"
    settings = {}
    if "layout_bank" in extra:  # how it draws its maps, fixed in the file
        settings = {"layout_choices": G.choices, "layout_pool": G.pool}
    return save_model_file(
        out, state["models"][key], state["config"], state["step"], extra, made_by, half, settings
    )


def training_command(cfg: TrainConfig) -> str:
    """The ``landgan train`` command that gives ``cfg``: the flags whose values differ from
    that model's defaults (a record for the model card, not a script to replay blindly:
    ``--data`` names the folder as the trainer saw it)."""
    base = TrainConfig.for_model(model=cfg.model, preset=cfg.preset).to_dict()
    flags = []
    for k, v in cfg.to_dict().items():
        if k in ("conditions", "out") or base.get(k) == v:
            continue
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            flags.append(flag if v else f"--no-{k.replace('_', '-')}")
        else:
            flags.append(f"{flag} {shlex.quote(str(v))}")
    return "landgan train " + " ".join(flags)


def _add_metadata(path: Path, cfg) -> None:
    """Record resolution and condition names in the ONNX file, for runtimes without landgan."""
    try:
        import onnx
    except ImportError:  # the graph works without it; only the metadata is skipped
        return
    model = onnx.load(str(path))
    for key, value in (
        ("landgan_model", cfg.model),
        ("resolution", str(cfg.resolution)),
        ("conditions", cfg.conditions),
    ):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
