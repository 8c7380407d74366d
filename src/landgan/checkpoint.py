"""Checkpoints and run folders: the files a run leaves, read and written in one place.

A run lives in a numbered folder (runs/00000-dcgan4-synthetic-64, runs/00001-...,
never reused) with its checkpoints under ``checkpoints/``. A checkpoint is one dict
of state_dicts, config, step and RNG state.

Written atomically (temporary file, fsync, rename) so a crash mid-write never leaves
a torn file under the final name, and read with ``weights_only=True`` so a file
from a stranger cannot run code on load.
"""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path

import torch

from landgan.errors import UserError
from landgan.files import replacing, temporaries

FORMAT = "landgan-checkpoint"
CKPT_DIR = "checkpoints"
_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CKPT_DIR / f"step_{step:07d}.pt"


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically; the old file stays intact on any failure.

    A failed write (full disk, read-only folder) raises :class:`OSError`, whatever layer
    of torch's writer noticed it first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, durable=True) as tmp, open(tmp, "wb") as f:
        try:
            torch.save(dict(state, format=FORMAT), f)
        except RuntimeError as e:
            raise _write_error(e) from None
    return path


def _write_error(e: RuntimeError) -> Exception:
    """The OSError behind a failure of torch's zip writer, or ``e`` itself if it is not one.

    The writer reports a failed write of the file it was given as a RuntimeError
    ("PytorchStreamWriter failed writing file ...", "enforce fail at inline_container");
    the OSError from the file object (ENOSPC...) is only its context, if there at all.
    """
    cause = e.__cause__ or e.__context__
    if isinstance(cause, OSError):
        return cause
    text = str(e)
    if "PytorchStreamWriter" in text or "inline_container" in text or "write failed" in text:
        return OSError(errno.EIO, f"the write failed ({text.strip().splitlines()[0][:120]})")
    return e


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint safely; raise :class:`UserError` for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 -- arbitrary bytes can fail in any way while parsing
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a readable landgan checkpoint ({first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a landgan checkpoint")
    for key in ("config", "step", "models"):
        if key not in state:
            raise UserError(f"{path} is an incomplete landgan checkpoint (no {key!r})")
    problem = _structure_problem(state)
    if problem:
        raise UserError(f"{path} is a damaged landgan checkpoint: {problem}")
    return state


def _structure_problem(state: dict) -> str | None:
    """What is wrong with the checkpoint's layout, or None: checked before any of it is used,
    so a forged or damaged file fails here with one line, not deep inside a model."""
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        return f"its step is {str(step)[:40]!r}, not a whole number >= 0"
    if not isinstance(state["config"], dict):
        return "its config is not a set of named fields"
    models = state["models"]
    if not isinstance(models, dict) or not all(isinstance(m, dict) for m in models.values()):
        return "its networks are not saved as state dicts"
    for name, weights in models.items():
        for key, value in weights.items():
            if not isinstance(key, str):
                return f"network {name!s:.40} has a weight named {key!r:.40}"
            # nn.Module extra state (StackGAN keeps stage I's config there) is a dict.
            if key.endswith("_extra_state") and not isinstance(value, dict):
                return f"{name!s:.40}.{key:.80} is not a dict"
    return None


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    d = Path(run_dir) / CKPT_DIR
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(target: str | Path, runs_root: str | Path = "runs") -> Path:
    """A checkpoint file from a file path, a run folder, or ``auto`` (latest run)."""
    if str(target) == "auto":
        runs = sorted(p for p in Path(runs_root).glob("[0-9]" * 5 + "-*") if list_checkpoints(p))
        if not runs:
            raise UserError(f"auto: no run with a checkpoint under {runs_root}")
        target = runs[-1]
    target = Path(target)
    if target.is_dir():
        ckpts = list_checkpoints(target)
        if not ckpts:
            raise UserError(f"no checkpoints in run folder {target}")
        return ckpts[-1]
    if not target.exists():
        raise UserError(f"checkpoint or run folder not found: {target}")
    return target


def load_latest(target: str | Path, runs_root: str | Path = "runs") -> tuple[Path, dict]:
    """Resolve and load a checkpoint; for a run folder or ``auto``, fall back past bad files.

    A checkpoint that cannot be read (torn by a crash the atomic write could not cover,
    e.g. a disk fault) is skipped with a warning and the one before it is tried, so a
    run always resumes from its newest readable state. An explicitly named file gets
    no fallback: the user asked for that one.
    """
    path = resolve_checkpoint(target, runs_root)
    if Path(target).is_file():
        return path, load_checkpoint(path)
    candidates = list_checkpoints(path.parent.parent)[::-1]
    for i, cand in enumerate(candidates):
        try:
            return cand, load_checkpoint(cand)
        except UserError as e:
            if i + 1 == len(candidates):
                raise
            print(
                f"landgan: warning: {e}; falling back to {candidates[i + 1].name}", file=sys.stderr
            )
    raise UserError(f"no readable checkpoint for {target}")


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints (``keep`` 0 keeps all)."""
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.unlink(missing_ok=True)


def average_checkpoints(run_dir: str | Path, count: int, network: str = "G_ema") -> dict:
    """The newest checkpoint of ``run_dir`` with its ``network`` replaced by the mean of
    that network's weights over the newest ``count`` checkpoints (integer buffers, such
    as BatchNorm's batch counter, stay the newest's); ``averaged_steps`` lists them.

    Averaging the EMA generator of checkpoints a few thousand steps apart smooths the
    step-to-step wander a GAN keeps even under EMA (weight averaging, as in Yazici et al.
    2019 and post-hoc EMA); docs/export.md has what it did for the shipped composer.
    """
    paths = list_checkpoints(run_dir)
    if count < 1 or count > len(paths):
        raise UserError(
            f"--average {count}: the run {run_dir} keeps {len(paths)} checkpoint(s); "
            "train with a larger --keep (a resume may change it) to average more"
        )
    states = [load_checkpoint(p) for p in paths[-count:]]
    newest = states[-1]
    if network not in newest["models"]:
        raise UserError(f"{paths[-1]} has no {network} network to average")
    nets = [s["models"].get(network) for s in states]
    shapes = {k: v.shape for k, v in nets[-1].items()}
    for path, net in zip(paths[-count:], nets):
        if net is None or {k: v.shape for k, v in net.items()} != shapes:
            raise UserError(f"{path} holds a different {network} than the newest checkpoint")
    mean = {
        k: torch.stack([n[k].float() for n in nets]).mean(0).to(v.dtype)
        if v.is_floating_point()
        else v
        for k, v in nets[-1].items()
    }
    steps = [s["step"] for s in states]
    return dict(newest, models=dict(newest["models"], **{network: mean}), averaged_steps=steps)


def remove_stale_temporaries(run_dir: str | Path) -> None:
    """Delete half-written checkpoint temporaries left by a process killed mid-write."""
    d = Path(run_dir) / CKPT_DIR
    if d.is_dir():
        for tmp in temporaries(d, "*.pt"):
            tmp.unlink(missing_ok=True)


def run_dir_of(ckpt: str | Path) -> Path | None:
    """The run folder a checkpoint belongs to, or None for a loose file.

    A checkpoint belongs to a run when it sits in ``RUN/checkpoints/`` and ``RUN`` is a
    numbered run folder or holds a run's ``config.json``; anywhere else (a copied file,
    the home folder) resuming must not write into its surroundings.
    """
    ckpt = Path(ckpt)
    run = ckpt.parent.parent
    numbered = re.match(r"^\d{5}-", run.name) is not None
    if ckpt.parent.name == CKPT_DIR and (numbered or (run / "config.json").is_file()):
        return run
    return None


def new_run_dir(root: str | Path, tag: str) -> Path:
    """Create the next numbered folder under ``root`` (created if needed)."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {root}: {e.strerror}") from None
    nums = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    n = max(nums, default=-1) + 1
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag).strip("_") or "run"
    while True:  # another process may have taken the number meanwhile
        path = root / f"{n:05d}-{safe}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
        except OSError as e:  # a read-only --out: one line, like the parent folder above
            raise UserError(f"cannot create run folder {path}: {e.strerror}") from None
