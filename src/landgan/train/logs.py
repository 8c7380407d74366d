"""What a training run writes as it goes, besides checkpoints and sample grids.

:class:`RunLog` appends messages to the run's ``log.txt`` and echoes them; :class:`Meter`
writes the periodic loss line (to ``log.txt``, TensorBoard and the progress bar) with the
images/s since the last one; :class:`NoWriter` stands in for TensorBoard where nothing
may be written. Apart from :mod:`landgan.train.loop` because they are the loop's outputs,
not its control flow.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm


class RunLog:
    """Appends lines to ``log.txt`` and echoes them without breaking the progress bar.

    Disabled (``enabled=False``) in every process but rank 0.
    """

    def __init__(self, run_dir: Path, echo: bool = True, enabled: bool = True):
        self.path, self.echo, self.enabled = run_dir / "log.txt", echo, enabled

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(msg + "\n")
        if self.echo:
            tqdm.write(msg)


class Meter:
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
        self.bar.set_postfix(
            {k.split("/")[-1]: f"{vals[k]:.3f}" for k in ("loss/d", "loss/g") if k in vals}
            | {"ips": f"{ips:.0f}"}
        )
        with open(self.path, "a") as f:
            f.write(f"step {step} " + " ".join(f"{k}={v:.4g}" for k, v in vals.items()) + "\n")


class NoWriter:
    """Stands in for TensorBoard's SummaryWriter in processes that must not write."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def add_images(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass
