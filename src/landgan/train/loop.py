"""``landgan train``: the training driver around a trainer's step.

It owns everything a step does not: the run folder, the budget (steps and/or
minutes), logging to text, TensorBoard and the progress bar, sample grids from a
fixed latent batch, checkpoints, and resuming.

Under ``torchrun`` every process runs this loop in lockstep (see
:mod:`landgan.train.distributed`); rank 0 alone writes the run folder, logs,
samples, metrics and checkpoints, and every decision that changes the flow (stop,
time budget, rollback, new best) is agreed by all processes before it is acted on.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from landgan.checkpoint import (
    checkpoint_path,
    load_latest,
    new_run_dir,
    prune_checkpoints,
    remove_stale_temporaries,
    run_dir_of,
    save_checkpoint,
)
from landgan.config import TrainConfig, check_size
from landgan.data.dataset import condition_matrix
from landgan.device import resolve_device
from landgan.errors import UserError
from landgan.grid import save_grid
from landgan.images import to_model, to_uint8
from landgan.models import get_model
from landgan.composer import stored_conditions
from landgan.train import get_trainer
from landgan.train.data import StepSampler, fetch, load_training_data
from landgan.train.distributed import Distributed, distributed_session
from landgan.train.evaluator import TrainingEvaluator
from landgan.train.guard import DivergenceGuard, GracefulStop
from landgan.train.logs import Meter, NoWriter, RunLog

# Fields a resumed run may change; anything else would make it a different run.
RESUME_OVERRIDES = {
    "out",
    "steps",
    "minutes",
    "sample_every",
    "ckpt_every",
    "log_every",
    "device",
    "keep",
    "eval_every",
    "eval_n",
    "eval_metric",
    "amp",
    "channels_last",
    "compile",
}
GRID_SIZE = 64


def resume_config(saved: dict, overrides: dict) -> TrainConfig:
    """The checkpoint's config with the allowed command-line changes applied."""
    cfg = TrainConfig.from_dict(saved)
    for k, v in overrides.items():
        if k in RESUME_OVERRIDES:
            setattr(cfg, k, v)
        elif getattr(cfg, k) != v:
            raise UserError(
                f"--{k.replace('_', '-')} cannot change when resuming "
                f"(the run has {getattr(cfg, k)!r}); start a new run instead"
            )
    return cfg.validated()


def train(
    cfg: TrainConfig,
    resume: str | None = None,
    overrides: dict | None = None,
    progress: bool = True,
) -> Path:
    """Train per ``cfg`` (or continue ``resume``); return the run folder.

    Launched by ``torchrun``, each process calls this and they train one model together.
    """
    state = ckpt = None
    if resume:
        ckpt, state = load_latest(resume, cfg.out)
        cfg = resume_config(state["config"], overrides or {})
    cfg.validated()
    with distributed_session(resolve_device(cfg.device)) as (dist, device):
        dist.check_batch(cfg.batch_size)
        return _train(cfg, device, dist, ckpt, state, progress)


def _train(
    cfg: TrainConfig,
    device: torch.device,
    dist: Distributed,
    ckpt: Path | None,
    state: dict | None,
    progress: bool,
) -> Path:
    """:func:`train` inside the (possibly single-process) process group."""
    data, trainer, evaluator = _prepare(cfg, device, dist, ckpt, state)
    run_dir = run_dir_of(ckpt) if state is not None else None
    fresh = run_dir is None  # a new run, or a loose checkpoint: nothing written beside it
    if fresh:
        tag = f"{cfg.model}-{Path(cfg.data).name}-{cfg.resolution}"
        run_dir = dist.run_on_main(lambda: new_run_dir(cfg.out, tag))
    elif dist.is_main:
        remove_stale_temporaries(run_dir)
    try:
        dist.seed_noise(cfg.seed, trainer.step, (state or {}).get("rng", {}).get("torch_ranks"))
        log = RunLog(run_dir, echo=progress, enabled=dist.is_main)
        if dist.is_main:
            (run_dir / "config.json").write_text(cfg.to_json())
        processes = f" x {dist.world} processes" if dist.world > 1 else ""
        log(
            ("resuming from " + str(ckpt) + "\n" if state else "")
            + f"run folder: {run_dir}\ndevice: {device}{processes}\n"
            f"data: {data.name} ({len(data)} images)\nconfig:\n{cfg.to_json()}"
        )
        session = _Session(cfg, trainer, data, run_dir, log, evaluator, dist)
    except BaseException as e:
        # Failing before the first step leaves nothing worth keeping: no empty run folder.
        if fresh and dist.is_main:
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(e, OSError):  # a full disk or a read-only folder
            raise UserError(f"cannot write {e.filename or run_dir}: {e.strerror or e}") from None
        raise
    try:
        with GracefulStop() as stop:
            session.run(progress, stop)
    except OSError as e:  # a full disk or a vanished folder while writing logs or samples
        raise UserError(
            f"cannot write {e.filename or run_dir}: {e.strerror or e}; the run "
            f"stopped at step {trainer.step} and its checkpoints are intact"
        ) from None
    return run_dir


def _prepare(
    cfg: TrainConfig, device: torch.device, dist: Distributed, ckpt: Path | None, state: dict | None
):
    """(data, trainer, evaluator), every check passed: runs before the run folder exists."""
    data = load_training_data(cfg)
    if cfg.conditional:
        names = ",".join(condition_matrix(data)[1])
        if cfg.conditions and cfg.conditions != names:
            raise UserError(
                f"the run was trained with conditions {cfg.conditions!r}, but the data "
                f"now has {names!r}"
            )
        cfg.conditions = names
        check_size(cfg)  # the number of conditions is known only now
    trainer = get_trainer(get_model(cfg.model).trainer)(cfg, device, dist)
    evaluator = TrainingEvaluator(cfg, data, device, dist) if cfg.eval_every else None
    if state is not None:
        try:
            trainer.load_state_dict(state)
            if evaluator:
                evaluator.load_state_dict(state.get("eval", {}))
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            # torch's first line only says "Error(s) in loading state_dict"; the next names
            # the weight that does not fit.
            why = " ".join(" ".join(str(e).split("\n")[:2]).split())[:240] or type(e).__name__
            raise UserError(
                f"checkpoint {ckpt} does not fit its own config (model {cfg.model}): {why}"
            ) from None
    return data, trainer, evaluator


class _Session:
    """One invocation of the loop: steps until the budget is spent, with its side jobs."""

    def __init__(self, cfg, trainer, data, run_dir: Path, log, evaluator, dist: Distributed):
        self.cfg, self.trainer, self.data, self.run_dir, self.log = cfg, trainer, data, run_dir, log
        self.evaluator, self.dist = evaluator, dist
        self.sampler = StepSampler(len(data), cfg.batch_size, cfg.seed, dist.rank, dist.world)
        self.fixed_z = torch.randn(
            GRID_SIZE, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2)
        )
        self.saved = self.sampled = -1
        self.fixed_c = self.bank = None
        if cfg.conditional:
            conds = torch.from_numpy(condition_matrix(data)[0])
            self.bank = stored_conditions(conds, cfg.condition_names)
            trainer.set_condition_source(
                lambda i: conds[self.sampler.indices(i)].to(trainer.device)
            )
            # The grid shows conditions spread over the whole dataset, fixed for the run.
            self.fixed_c = conds[torch.linspace(0, len(conds) - 1, GRID_SIZE).long()]
        self.guard = DivergenceGuard(cfg, trainer, log, dist)

    def source(self, i: int) -> torch.Tensor:
        """This process's share of real batch number ``i``, in [-1, 1] on the training device."""
        batch = fetch(self.data, self.sampler.indices(i))
        if self.trainer.device.type == "cuda":
            batch = batch.pin_memory()  # lets the copy below overlap with GPU work
        return to_model(batch, self.trainer.device)

    def save(self, path: Path | None = None) -> Path:
        """Checkpoint the run (every process calls it; rank 0 writes the file)."""
        state = self.trainer.state_dict()
        state["config"] = self.cfg.to_dict()
        if self.evaluator:
            state["eval"] = self.evaluator.state_dict()
        if self.bank is not None:
            state.update(self.bank)
        # Each process's noise stream, so a resume with as many processes continues exactly.
        streams = self.dist.gather_to_main(torch.get_rng_state())
        if self.dist.world > 1 and self.dist.is_main:
            state["rng"]["torch_ranks"] = streams
        regular = path is None
        if regular:
            path, self.saved = checkpoint_path(self.run_dir, self.trainer.step), self.trainer.step
        self.dist.run_on_main(lambda: self._write(path, state, regular))
        return path

    def _write(self, path: Path, state: dict, regular: bool) -> None:
        try:
            save_checkpoint(path, state)
        except OSError as e:
            raise UserError(
                f"cannot write checkpoint {path}: {e.strerror or e}; the previous "
                "checkpoints are intact"
            ) from None
        if regular:
            prune_checkpoints(self.run_dir, self.cfg.keep)

    def sample(self) -> None:
        """The fixed-latent grid (rank 0 only: no collectives, G_ema runs in eval mode)."""
        images = to_uint8(self.trainer.generate(self.fixed_z, c=self.fixed_c))
        save_grid(images, self.run_dir / "samples" / f"step_{self.trainer.step:07d}.png")
        self.writer.add_images("samples", images, self.trainer.step, dataformats="NHWC")
        self.sampled = self.trainer.step

    def evaluate(self) -> None:
        scores, best = self.evaluator(self.trainer, self.run_dir, self.writer)
        self.log(
            f"step {self.trainer.step}: "
            + ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if isinstance(v, float))
            + (" (best so far: saved checkpoints/best.pt)" if best else "")
        )
        if best:
            self.save(self.run_dir / "checkpoints" / "best.pt")

    def after_step(self, stats: dict, meter: Meter | None) -> None:
        cfg, s = self.cfg, self.trainer.step
        if s % cfg.log_every == 0 or s == cfg.steps:
            stats = self.dist.mean_stats(stats)  # each process saw only its share
            if meter:
                meter.log(s, stats)
        if cfg.sample_every and s % cfg.sample_every == 0 and self.dist.is_main:
            self.sample()
        if self.evaluator and s % cfg.eval_every == 0:
            self.evaluate()
        if cfg.ckpt_every and s % cfg.ckpt_every == 0:
            self.save()

    def run(self, progress: bool, stop: GracefulStop) -> None:
        cfg, tr, main = self.cfg, self.trainer, self.dist.is_main
        self.writer = SummaryWriter(str(self.run_dir), purge_step=tr.step) if main else NoWriter()
        deadline = time.monotonic() + cfg.minutes * 60 if cfg.minutes else None
        bar = tqdm(
            total=cfg.steps or None,
            initial=tr.step,
            disable=not (progress and main),
            unit="step",
            dynamic_ncols=True,
        )
        meter = Meter(cfg, self.run_dir, self.writer, bar, tr.step) if main else None
        try:
            while not (cfg.steps and tr.step >= cfg.steps):
                stats = tr.train_step(self.source)
                if not self.guard.check(stats):
                    bar.n = tr.step  # rolled back to the last good state, lower learning rates
                    continue
                bar.update(1)
                self.after_step(stats, meter)
                # Signals and clocks are per process; all must stop at the same step.
                stopping, out_of_time = self.dist.any_true(
                    stop.requested is not None, bool(deadline and time.monotonic() >= deadline)
                )
                if stopping:
                    self.log(
                        f"{stop.requested or 'a stop signal to another process'} at step "
                        f"{tr.step}: saving a checkpoint and stopping"
                    )
                    self.save()
                    raise KeyboardInterrupt
                if out_of_time:
                    self.log(f"time budget of {cfg.minutes} min reached at step {tr.step}")
                    break
        except BaseException:
            # Flushed now: a torchrun worker ends without the interpreter's shutdown (cli).
            self.writer.close()
            raise
        finally:
            bar.close()
        self._finish()

    def _finish(self) -> None:
        """The last checkpoint and sample grid, unless this very step already has them."""
        tr = self.trainer
        if self.saved != tr.step:
            self.save()
        if self.dist.is_main and self.sampled != tr.step:
            self.sample()
        self.writer.close()
        self.log(
            f"done at step {tr.step}; samples in {self.run_dir / 'samples'}, "
            f"checkpoints in {self.run_dir / 'checkpoints'}"
        )
