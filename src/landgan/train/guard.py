"""Keeping a long run alive: divergence rollback, and SIGTERM handled like Ctrl-C."""

from __future__ import annotations

import copy
import math
import signal
import threading

import torch

from landgan.errors import UserError
from landgan.train.base import Trainer

MAX_DIVERGENCES = 3  # rollbacks before giving up
LR_FACTOR = 0.5  # learning-rate cut at each rollback


def _finite_params(net: torch.nn.Module) -> bool:
    norms = torch._foreach_norm([p.detach() for p in net.parameters()])
    return bool(torch.isfinite(torch.stack(norms)).all())


class DivergenceGuard:
    """Checks every step for non-finite losses or weights; rolls back and cools down.

    It keeps an in-memory copy of the last state that passed the check (refreshed every
    ``log_every`` steps). On a failure the trainer returns to that state, both learning
    rates are halved (the change is logged and saved in the config, so a resumed run
    keeps it), and training goes on; the ``MAX_DIVERGENCES``-th failure stops the run.

    With several processes (``dist``), a failure on any of them counts as a failure
    on all, so every process rolls back, or stops, at the same step; each restores
    its own snapshot, which equals the others' but for its noise generator.
    """

    def __init__(self, cfg, trainer: Trainer, log, dist=None):
        self.cfg, self.trainer, self.log = cfg, trainer, log
        self.agree = dist.all_true if dist is not None else bool
        self.failures = 0
        self._snapshot()

    def _snapshot(self) -> None:
        self.good = copy.deepcopy(self.trainer.state_dict())
        self.good_step = self.trainer.step

    def check(self, stats: dict) -> bool:
        """True if the step was sound; False after rolling back."""
        losses_ok = all(math.isfinite(float(v)) for v in stats.values())
        if self.agree(
            losses_ok and all(_finite_params(n) for n in self.trainer.networks().values())
        ):
            if self.trainer.step % self.cfg.log_every == 0:
                self._snapshot()
            return True
        self.failures += 1
        bad_step = self.trainer.step
        if self.failures >= MAX_DIVERGENCES:
            raise UserError(
                f"training diverged {self.failures} times (non-finite loss or "
                f"weights, last at step {bad_step}) even after lowering the learning "
                f"rates to lr_g={self.cfg.lr_g:g}, lr_d={self.cfg.lr_d:g}; stopped. "
                "Resume from the last checkpoint with smaller learning rates"
            )
        self.trainer.load_state_dict(self.good)
        self.cfg.lr_g *= LR_FACTOR
        self.cfg.lr_d *= LR_FACTOR
        for opt, lr_field in self.trainer.optimizers().values():
            for group in opt.param_groups:
                group["lr"] = getattr(self.cfg, lr_field)
        self.log(
            f"step {bad_step}: non-finite loss or weights; rolled back to step "
            f"{self.good_step} and lowered the learning rates to lr_g={self.cfg.lr_g:g}, "
            f"lr_d={self.cfg.lr_d:g} ({self.failures}/{MAX_DIVERGENCES - 1} retries used)"
        )
        return False


class GracefulStop:
    """SIGINT/SIGTERM ask the loop to stop after the current step (it then saves).

    Stopping between steps, never inside one, keeps the saved state consistent. A
    second Ctrl-C interrupts at once, for a run stuck inside a step.
    """

    def __init__(self):
        self.requested: str | None = None
        self._previous: dict = {}

    def _handler(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
