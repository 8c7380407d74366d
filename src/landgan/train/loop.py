"""``landgan train``: the training driver around a trainer's step.

It owns everything a step does not: the run folder, the budget (steps and/or
minutes), logging to text, TensorBoard and the progress bar, sample grids from a
fixed latent batch, checkpoints, and resuming.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm

from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.grid import save_grid
from landgan.images import to_model, to_uint8
from landgan.train.checkpoint import (checkpoint_path, load_checkpoint, resolve_checkpoint,
                                      save_checkpoint)
from landgan.train.data import StepSampler, fetch, load_training_data
from landgan.models import get_model
from landgan.train import get_trainer
from landgan.train.rundir import new_run_dir

# Fields a resumed run may change; anything else would make it a different run.
RESUME_OVERRIDES = {"steps", "minutes", "sample_every", "ckpt_every", "log_every", "device"}
GRID_SIZE = 64


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def resume_config(saved: dict, overrides: dict) -> TrainConfig:
    """The checkpoint's config with the allowed command-line changes applied."""
    cfg = TrainConfig.from_dict(saved)
    for k, v in overrides.items():
        if k in RESUME_OVERRIDES:
            setattr(cfg, k, v)
        elif getattr(cfg, k) != v:
            raise UserError(f"--{k.replace('_', '-')} cannot change when resuming "
                            f"(the run has {getattr(cfg, k)!r}); start a new run instead")
    return cfg.validated()


class RunLog:
    """Appends lines to ``log.txt`` and echoes them without breaking the progress bar."""

    def __init__(self, run_dir: Path, echo: bool = True):
        self.path, self.echo = run_dir / "log.txt", echo

    def __call__(self, msg: str) -> None:
        with open(self.path, "a") as f:
            f.write(msg + "\n")
        if self.echo:
            tqdm.write(msg)


def train(cfg: TrainConfig, resume: str | None = None, overrides: dict | None = None,
          progress: bool = True) -> Path:
    """Train per ``cfg`` (or continue ``resume``); return the run folder."""
    state = None
    if resume:
        ckpt = resolve_checkpoint(resume, cfg.out)
        state = load_checkpoint(ckpt)
        cfg = resume_config(state["config"], overrides or {})
    cfg.validated()
    device = resolve_device(cfg.device)
    data = load_training_data(cfg)  # fail on bad data before creating anything
    trainer = get_trainer(get_model(cfg.model).trainer)(cfg, device)
    if state is not None:
        trainer.load_state_dict(state)
        run_dir = ckpt.parent.parent
    else:
        run_dir = new_run_dir(cfg.out, f"{cfg.model}-{Path(cfg.data).name}-{cfg.resolution}")
    log = RunLog(run_dir, echo=progress)
    (run_dir / "config.json").write_text(cfg.to_json())
    log(("resuming from " + str(ckpt) + "\n" if state else "") +
        f"run folder: {run_dir}\ndevice: {device}\ndata: {data.name} ({len(data)} images)\n"
        f"config:\n{cfg.to_json()}")
    _loop(cfg, trainer, data, run_dir, log, progress)
    return run_dir


def _save(trainer, cfg: TrainConfig, run_dir: Path) -> Path:
    state = trainer.state_dict()
    state["config"] = cfg.to_dict()
    return save_checkpoint(checkpoint_path(run_dir, trainer.step), state)


def _sample(trainer, fixed_z: torch.Tensor, run_dir: Path, writer) -> None:
    images = to_uint8(trainer.generate(fixed_z))
    save_grid(images, run_dir / "samples" / f"step_{trainer.step:07d}.png")
    writer.add_images("samples", images, trainer.step, dataformats="NHWC")


class _Meter:
    """Images/s between log points, and the log line itself."""

    def __init__(self, cfg, run_dir: Path, writer, bar, step: int):
        self.cfg, self.path, self.writer, self.bar = cfg, run_dir / "log.txt", writer, bar
        self.t, self.step = time.perf_counter(), step

    def log(self, step: int, stats: dict) -> None:
        now = time.perf_counter()
        ips = (step - self.step) * self.cfg.batch_size / max(now - self.t, 1e-9)
        self.t, self.step = now, step
        vals = {k: float(v) for k, v in stats.items()} | {"perf/images_per_s": ips}
        for k, v in vals.items():
            self.writer.add_scalar(k, v, step)
        self.bar.set_postfix({k.split("/")[-1]: f"{vals[k]:.3f}" for k in ("loss/d", "loss/g")
                              if k in vals} | {"ips": f"{ips:.0f}"})
        with open(self.path, "a") as f:
            f.write(f"step {step} " + " ".join(f"{k}={v:.4g}" for k, v in vals.items()) + "\n")


def _loop(cfg, trainer, data, run_dir, log, progress) -> None:
    """Step until the budget is spent, then save a final checkpoint and grid."""
    from torch.utils.tensorboard import SummaryWriter

    sampler = StepSampler(len(data), cfg.batch_size, cfg.seed)
    fixed_z = torch.randn(GRID_SIZE, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
    writer = SummaryWriter(str(run_dir), purge_step=trainer.step)
    deadline = time.monotonic() + cfg.minutes * 60 if cfg.minutes else None
    bar = tqdm(total=cfg.steps or None, initial=trainer.step, disable=not progress,
               unit="step", dynamic_ncols=True)
    meter = _Meter(cfg, run_dir, writer, bar, trainer.step)

    def source(i: int) -> torch.Tensor:
        return to_model(fetch(data, sampler.indices(i)), trainer.device)

    saved = sampled = -1
    try:
        while not (cfg.steps and trainer.step >= cfg.steps):
            stats = trainer.train_step(source)
            bar.update(1)
            s = trainer.step
            if s % cfg.log_every == 0 or s == cfg.steps:
                meter.log(s, stats)
            if cfg.sample_every and s % cfg.sample_every == 0:
                _sample(trainer, fixed_z, run_dir, writer)
                sampled = s
            if cfg.ckpt_every and s % cfg.ckpt_every == 0:
                _save(trainer, cfg, run_dir)
                saved = s
            if deadline and time.monotonic() >= deadline:
                log(f"time budget of {cfg.minutes} min reached at step {s}")
                break
    except KeyboardInterrupt:
        log(f"interrupted at step {trainer.step}; saving a checkpoint")
        _save(trainer, cfg, run_dir)
        raise
    finally:
        bar.close()
    if saved != trainer.step:
        _save(trainer, cfg, run_dir)
    if sampled != trainer.step:
        _sample(trainer, fixed_z, run_dir, writer)
    writer.close()
    log(f"done at step {trainer.step}; samples in {run_dir / 'samples'}, "
        f"checkpoints in {run_dir / 'checkpoints'}")
