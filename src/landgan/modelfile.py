"""Model files: a trained generator alone, in safetensors, ready to sample.

A checkpoint (:mod:`landgan.checkpoint`) holds everything a run needs to go on: both
networks, optimisers, RNG states. A model file holds what *generating* needs: the EMA
generator's weights, its config, the condition names and the condition bank (for a
layout model, its set of maps and how often each occurs), and a record of the command and
commit that made it. It is a safetensors file: tensors plus string metadata, nothing that
can run code on load, and nothing of the training images.

:func:`load_model_file` returns the same dict shape as a checkpoint (``config``, ``step``,
``models``, ...), so every verb that reads checkpoints reads model files too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from landgan.errors import UserError
from landgan.files import replacing

FORMAT = "landgan-model"
SUFFIX = ".safetensors"
_PREFIX = "G_ema."
# Tensors besides the weights, saved under these names when the source has them.
_EXTRA = ("condition_bank", "layout_bank", "layout_weights")
# Whole numbers a layout model draws its maps with (models.layout.CHOICES, POOL): kept in
# the file, so a file draws as it did when made whatever the library's defaults become.
_SETTINGS = ("layout_choices", "layout_pool")


def is_model_file(path: str | Path) -> bool:
    """Whether ``path`` names a model file (by its suffix; the contents are checked on load)."""
    return str(path).lower().endswith(SUFFIX)


def save_model_file(
    path: str | Path,
    weights: dict,
    config: dict,
    step: int,
    extra: dict | None = None,
    made_by: dict | None = None,
    half: bool = False,
    settings: dict | None = None,
) -> Path:
    """Write a model file atomically. ``weights``: the generator's state dict; ``extra``:
    tensors of :data:`_EXTRA`; ``made_by``: strings recorded as they are (command, commit);
    ``settings``: whole numbers of :data:`_SETTINGS`. ``half`` stores floating weights in
    float16 (loaded back as float32)."""
    tensors = {}
    for k, v in weights.items():
        if not isinstance(v, torch.Tensor):
            raise UserError(
                f"weight {k} is not a tensor; this generator cannot be saved as a model file"
            )
        v = v.detach().cpu()
        tensors[_PREFIX + k] = v.half() if half and v.is_floating_point() else v
    for k, v in (extra or {}).items():
        if k in _EXTRA and v is not None:
            tensors[k] = v.detach().cpu().float().contiguous()
    meta = {
        "format": FORMAT,
        "config": json.dumps(config),
        "step": str(int(step)),
        "made_by": json.dumps(made_by or {}),
        **{k: str(int(v)) for k, v in (settings or {}).items() if k in _SETTINGS},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
        # safetensors creates its file private (0600); a model file is for sharing, so it
        # gets the mode any other file the user writes would (0644 under the usual umask).
        tmp.chmod(0o666 & ~_umask())
    return path


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_model_file(path: str | Path, map_location="cpu") -> dict:
    """Read a model file into a checkpoint-shaped dict; UserError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 -- arbitrary bytes can fail in any way while parsing
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path} is not a readable landgan model file ({first[:200]})") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is a safetensors file but not a landgan model file")
    try:
        config, step = json.loads(meta["config"]), int(meta["step"])
        made_by = json.loads(meta.get("made_by", "{}"))
        settings = {k: int(meta[k]) for k in _SETTINGS if k in meta}
    except (KeyError, ValueError) as e:
        raise UserError(f"{path} is a damaged landgan model file ({e})") from None
    weights = {
        k[len(_PREFIX) :]: v.float() if v.dtype == torch.float16 else v
        for k, v in tensors.items()
        if k.startswith(_PREFIX)
    }
    state = {
        "config": config,
        "step": step,
        "models": {"G_ema": weights},
        "made_by": made_by,
        "format": FORMAT,
    }
    state.update({k: tensors[k] for k in _EXTRA if k in tensors}, **settings)
    return {k: _to(v, map_location) for k, v in state.items()}


def _to(value, device):
    """Tensors (also inside the weights dict) on ``device``; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def source_commit(anchor: str | Path = __file__) -> str:
    """The git commit of the landgan source tree (``+dirty`` with uncommitted changes),
    or ``unknown`` outside a git checkout: recorded in the model files it writes."""
    cwd = Path(anchor).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
