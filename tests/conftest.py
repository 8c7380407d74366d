"""Shared fixtures: tiny datasets, the location of the optional real photos, and the
processes tests start (their signals, their cleanup, and a check that none outlives the run)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from landgan.config import TrainConfig
from landgan.data.dataset import save_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def load_benchmark(name: str, monkeypatch):
    """The module ``benchmarks/NAME.py``, imported as a script would see its folder (some
    import their neighbours, e.g. gpu_fastgan imports time_to_quality)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shared_data(sub: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(
            f"{p} not found: real photos live in ../shared/data beside the checkout "
            "(absent in a fresh clone of the project alone)"
        )
    return p


def process_exists(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has; Linux /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# ---- processes a test starts ------------------------------------------------------------

# Run in the child before the command itself: a test run launched in the background
# (`pytest &`, nohup, a CI runner's non-interactive shell) starts with SIGINT ignored,
# children inherit that, and a Python child that starts with SIGINT ignored never raises
# KeyboardInterrupt, so a test's Ctrl-C would do nothing. exec keeps the pid.
_DEFAULT_SIGNALS = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])"
)
LEFTOVER_GRACE_S = 10.0  # how long processes still exiting at the end of the run are given
# Helpers of the interpreter itself, which end with it (multiprocessing's trackers).
_INTERPRETER_HELPERS = (
    "multiprocessing.resource_tracker",
    "multiprocessing.forkserver",
    "multiprocessing.semaphore_tracker",
)


def start_process(cmd: list, **kw) -> subprocess.Popen:
    """``subprocess.Popen(cmd, **kw)`` with SIGINT and SIGTERM at their defaults in the child,
    whatever this process inherited; stop it with :func:`end_process`.

    A short Python trampoline resets them and execs ``cmd``, rather than ``preexec_fn``,
    which runs Python in a forked copy of a process with threads (torch's, Gradio's) and
    may deadlock there.
    """
    proc = subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGNALS, *map(str, cmd)], **kw)
    proc.leads_group = bool(kw.get("start_new_session"))
    return proc


def end_process(proc: subprocess.Popen, sig: int | None = None, timeout: float = 60) -> int:
    """Send ``sig`` (if any), wait up to ``timeout`` s, then SIGKILL what is left; the exit status.

    A process started in a session of its own is killed with its whole group, so workers
    it left behind go too. The status is the one ``sig`` caused, or -9 if it had to be
    killed: a test asserting the former then fails, with nothing left running.
    """
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if getattr(proc, "leads_group", False):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # the group is gone already
            pass
        deadline = time.monotonic() + 10  # SIGKILL is not instant: wait for the group to go
        while any(g == proc.pid for _, g in _live().values()) and time.monotonic() < deadline:
            time.sleep(0.02)
    return proc.returncode


def _live() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, process group)} of every process that has not exited (/proc)."""
    found = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            state, ppid, pgrp = (d / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        if state != "Z":  # a zombie has exited; only its parent's wait is missing
            found[int(d.name)] = int(ppid), int(pgrp)
    return found


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` (children, their children...): {pid: command line}."""
    parents = {p: parent for p, (parent, _) in _live().items()}
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child in [c for c, p in parents.items() if p == parent]:
            try:
                found[child] = (
                    Path(f"/proc/{child}/cmdline")
                    .read_bytes()
                    .replace(b"\0", b" ")
                    .decode(errors="replace")
                    .strip()
                )
            except OSError:
                continue
            todo.append(child)
    return found


def leftover_processes(pid: int, grace: float) -> dict[int, str]:
    """The descendants of ``pid`` still running after up to ``grace`` seconds, except the
    interpreter's own helpers."""
    deadline = time.monotonic() + grace
    while True:
        left = {
            p: cmd
            for p, cmd in descendants(pid).items()
            if not any(h in cmd for h in _INTERPRETER_HELPERS)
        }
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


_LEFTOVERS = pytest.StashKey[dict]()  # what pytest_sessionfinish found, for the summary


@pytest.hookimpl(trylast=True)  # after pytest's own sessionfinish has torn fixtures down
def pytest_sessionfinish(session):
    """Fail the run if a process a test started is still running, naming it, then kill it
    so that nothing outlives pytest."""
    left = leftover_processes(os.getpid(), LEFTOVER_GRACE_S)
    if not left:
        return
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    session.config.stash[_LEFTOVERS] = left
    if session.exitstatus == pytest.ExitCode.OK:  # an interrupted or failed run says so already
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    """The leftover processes, in red at the end of the report."""
    left = config.stash.get(_LEFTOVERS, None)
    if left:
        terminalreporter.section("processes left running", red=True)
        for p, cmd in left.items():
            terminalreporter.write_line(f"pid {p}: {cmd[:300]} (killed now)", red=True)
        terminalreporter.write_line(
            f"{len(left)} process(es) started by tests were still "
            f"running {LEFTOVER_GRACE_S:g} s after the last test; "
            "every test must stop what it starts, pass or fail",
            red=True,
        )


def blobs(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Simple structured images: a bright disc on a dark background, random colours."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        r = size * rng.uniform(0.15, 0.3)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        out[i] = rng.integers(0, 60, 3)
        out[i][disc] = rng.integers(150, 255, 3)
    return out


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """A prepared 32 px dataset of 128 images."""
    return save_dataset(tmp_path / "tiny", blobs(128, 32), {"source": "test"})


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests use small tensors, for which a second OpenMP thread costs more than it gives
    (and on a busy machine it spin-waits); one thread keeps the suite fast and steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def dcgan4_config(**kw) -> TrainConfig:
    """A training config for the report's dcgan4 with its own recipe (the model these
    tests' small 32 px runs use; the package's default model, fastgan, starts at 64 px)."""
    return TrainConfig.for_model(**{"model": "dcgan4", **kw})


def tiny_layout_run(root: Path, cond_bn: bool = True) -> tuple[Path, Path]:
    """(dataset, run folder) of a tiny fastgan layout model: 2 steps on the ``label
    --layout`` maps of 24 blob images, the map read where it lies (``cond_bn``) or by G's
    first layer only."""
    from landgan.cli import main
    from landgan.train.loop import train  # TensorBoard: only the tests that train pay for it

    ds = save_dataset(root / "ds", blobs(24, 64), {"source": "test"})
    assert main(["label", str(ds), "--layout"]) == 0
    cfg = TrainConfig.for_model(
        model="fastgan",
        data=str(ds),
        out=str(root / "runs"),
        resolution=64,
        batch_size=8,
        g_width=8,
        d_width=8,
        steps=2,
        conditional=True,
        cond_bn=cond_bn,
        sample_every=0,
    )
    return ds, train(cfg, progress=False)


def free_port() -> int:
    """A localhost port nothing listens on right now (for a test's UI server)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Gradio's queue calls pandas APIs that pandas 3 deprecates: not ours to fix
GRADIO_WARNINGS = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def browser_or_skip():
    """(Playwright's sync API, the Chromium binary) for a browser test module, which is
    skipped with the reason when Gradio, Playwright or Debian's Chromium is missing
    (``$LANDGAN_CHROMIUM`` names another binary; Playwright's own download is never used)."""
    import shutil

    pytest.importorskip("gradio", reason="the UI needs gradio: pip install -e '.[ui]'")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    chromium = os.environ.get("LANDGAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        pytest.skip(
            f"no Chromium at {chromium} (apt-get install chromium, or set $LANDGAN_CHROMIUM)",
            allow_module_level=True,
        )
    return sync_api, chromium
