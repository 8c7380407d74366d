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
from landgan.train.checkpoint import (checkpoint_path, load_latest, prune_checkpoints,
                                      remove_stale_temporaries, save_checkpoint)
from landgan.train.guard import DivergenceGuard, GracefulStop
from landgan.train.data import StepSampler, condition_matrix, fetch, load_training_data
from landgan.models import get_model
from landgan.train import get_trainer
from landgan.train.rundir import new_run_dir

# Fields a resumed run may change; anything else would make it a different run.
RESUME_OVERRIDES = {"steps", "minutes", "sample_every", "ckpt_every", "log_every", "device", "keep",
                    "eval_every", "eval_n", "eval_metric", "amp", "channels_last", "compile"}
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
        ckpt, state = load_latest(resume, cfg.out)
        cfg = resume_config(state["config"], overrides or {})
    cfg.validated()
    device = resolve_device(cfg.device)
    data = load_training_data(cfg)  # fail on bad data before creating anything
    if cfg.conditional:
        names = ",".join(condition_matrix(data)[1])
        if cfg.conditions and cfg.conditions != names:
            raise UserError(f"the run was trained with conditions {cfg.conditions!r}, but the data "
                            f"now has {names!r}")
        cfg.conditions = names
    trainer = get_trainer(get_model(cfg.model).trainer)(cfg, device)
    evaluator = None
    if cfg.eval_every:
        from landgan.train.evaluator import TrainingEvaluator

        evaluator = TrainingEvaluator(cfg, data, device)
    if state is not None:
        trainer.load_state_dict(state)
        if evaluator:
            evaluator.load_state_dict(state.get("eval", {}))
        run_dir = ckpt.parent.parent
        remove_stale_temporaries(run_dir)
    else:
        run_dir = new_run_dir(cfg.out, f"{cfg.model}-{Path(cfg.data).name}-{cfg.resolution}")
    log = RunLog(run_dir, echo=progress)
    (run_dir / "config.json").write_text(cfg.to_json())
    log(("resuming from " + str(ckpt) + "\n" if state else "") +
        f"run folder: {run_dir}\ndevice: {device}\ndata: {data.name} ({len(data)} images)\n"
        f"config:\n{cfg.to_json()}")
    with GracefulStop() as stop:
        _Session(cfg, trainer, data, run_dir, log, evaluator).run(progress, stop)
    return run_dir


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


class _Session:
    """One invocation of the loop: steps until the budget is spent, with its side jobs."""

    def __init__(self, cfg, trainer, data, run_dir: Path, log, evaluator):
        self.cfg, self.trainer, self.data, self.run_dir, self.log = cfg, trainer, data, run_dir, log
        self.evaluator = evaluator
        self.sampler = StepSampler(len(data), cfg.batch_size, cfg.seed)
        self.fixed_z = torch.randn(GRID_SIZE, cfg.z_dim,
                                   generator=torch.Generator().manual_seed(cfg.seed + 2))
        self.saved = self.sampled = -1
        self.fixed_c = self.bank = None
        if cfg.conditional:
            conds = torch.from_numpy(condition_matrix(data)[0])
            # A sample of the training conditions travels in every checkpoint, so generation
            # can warn about requests far from anything the model saw.
            pick = torch.randperm(len(conds), generator=torch.Generator().manual_seed(0))[:2048]
            self.bank = conds[pick].contiguous()
            trainer.cond_source = lambda i: conds[self.sampler.indices(i)].to(trainer.device)
            # The grid shows conditions spread over the whole dataset, fixed for the run.
            self.fixed_c = conds[torch.linspace(0, len(conds) - 1, GRID_SIZE).long()]
        self.guard = DivergenceGuard(cfg, trainer, log)

    def source(self, i: int) -> torch.Tensor:
        """Real batch number ``i``, scaled to [-1, 1] on the training device."""
        batch = fetch(self.data, self.sampler.indices(i))
        if self.trainer.device.type == "cuda":
            batch = batch.pin_memory()  # lets the copy below overlap with GPU work
        return to_model(batch, self.trainer.device)

    def save(self, path: Path | None = None) -> Path:
        state = self.trainer.state_dict()
        state["config"] = self.cfg.to_dict()
        if self.evaluator:
            state["eval"] = self.evaluator.state_dict()
        if self.bank is not None:
            state["condition_bank"] = self.bank
        regular = path is None
        if regular:
            path, self.saved = checkpoint_path(self.run_dir, self.trainer.step), self.trainer.step
        try:
            save_checkpoint(path, state)
        except OSError as e:
            raise UserError(f"cannot write checkpoint {path}: {e.strerror or e}; the previous "
                            "checkpoints are intact") from None
        if regular:
            prune_checkpoints(self.run_dir, self.cfg.keep)
        return path

    def sample(self) -> None:
        images = to_uint8(self.trainer.generate(self.fixed_z, c=self.fixed_c))
        save_grid(images, self.run_dir / "samples" / f"step_{self.trainer.step:07d}.png")
        self.writer.add_images("samples", images, self.trainer.step, dataformats="NHWC")
        self.sampled = self.trainer.step

    def evaluate(self) -> None:
        scores, best = self.evaluator(self.trainer, self.run_dir, self.writer)
        self.log(f"step {self.trainer.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()
                                                          if isinstance(v, float))
                 + (" (best so far: saved checkpoints/best.pt)" if best else ""))
        if best:
            self.save(self.run_dir / "checkpoints" / "best.pt")

    def after_step(self, stats: dict, meter: _Meter) -> None:
        cfg, s = self.cfg, self.trainer.step
        if s % cfg.log_every == 0 or s == cfg.steps:
            meter.log(s, stats)
        if cfg.sample_every and s % cfg.sample_every == 0:
            self.sample()
        if self.evaluator and s % cfg.eval_every == 0:
            self.evaluate()
        if cfg.ckpt_every and s % cfg.ckpt_every == 0:
            self.save()

    def run(self, progress: bool, stop: GracefulStop) -> None:
        from torch.utils.tensorboard import SummaryWriter

        cfg, tr = self.cfg, self.trainer
        self.writer = SummaryWriter(str(self.run_dir), purge_step=tr.step)
        deadline = time.monotonic() + cfg.minutes * 60 if cfg.minutes else None
        bar = tqdm(total=cfg.steps or None, initial=tr.step, disable=not progress,
                   unit="step", dynamic_ncols=True)
        meter = _Meter(cfg, self.run_dir, self.writer, bar, tr.step)
        try:
            while not (cfg.steps and tr.step >= cfg.steps):
                stats = tr.train_step(self.source)
                if not self.guard.check(stats):
                    bar.n = tr.step  # rolled back to the last good state, lower learning rates
                    continue
                bar.update(1)
                self.after_step(stats, meter)
                if stop.requested:
                    self.log(f"{stop.requested} at step {tr.step}: saving a checkpoint and stopping")
                    self.save()
                    raise KeyboardInterrupt
                if deadline and time.monotonic() >= deadline:
                    self.log(f"time budget of {cfg.minutes} min reached at step {tr.step}")
                    break
        finally:
            bar.close()
        if self.saved != tr.step:
            self.save()
        if self.sampled != tr.step:
            self.sample()
        self.writer.close()
        self.log(f"done at step {tr.step}; samples in {self.run_dir / 'samples'}, "
                 f"checkpoints in {self.run_dir / 'checkpoints'}")
