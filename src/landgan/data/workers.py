"""An ordered map over worker processes that the parent can always stop.

``prepare`` used ``multiprocessing.Pool`` until a rare hang showed why it cannot: Pool's
workers share queues guarded by cross-process locks, and a process-group SIGTERM (what
a service manager sends) could stop a worker while it held one, after which
``Pool.terminate()`` waited for that lock forever (docs/reliability.md). Here every
worker has a pipe of its own, so no lock is shared; workers ignore SIGTERM and SIGINT,
and the parent, whenever it stops (the last result, an error, SystemExit from its
SIGTERM handler, Ctrl-C, the consumer closing the generator), kills them with SIGKILL,
which needs no cooperation from them. A worker whose parent died sees its pipe close
and exits.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from landgan.errors import UserError

# Tasks in flight per worker. Results are read in task order, so a slow task holds up the
# others' results; a few queued tasks keep the other workers busy meanwhile (2 was 20-30 %
# slower than Pool, 8 about as fast: benchmarks/prepare_speed.py). Memory: DEPTH results
# (images at the target size) per worker at most.
DEPTH = 8


def _serve(conn, inherited: list, make: Callable, args: tuple) -> None:
    """Worker loop: build ``make(*args)``, then answer tasks from ``conn`` until told to stop."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent ends us; see the module docstring
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for c in inherited:  # fork copies every pipe end the parent holds; keep only ours
        c.close()
    fn = make(*args)
    try:
        while (task := conn.recv()) is not None:
            conn.send(fn(task))
    except (EOFError, BrokenPipeError):  # the parent is gone: nothing left to do
        pass
    finally:
        if hasattr(fn, "close"):
            fn.close()


def _died(proc, index: int) -> UserError:
    proc.join(1)
    return UserError(
        f"decoding worker {index} stopped unexpectedly (exit code {proc.exitcode}; "
        "negative: killed by that signal, -9 often means out of memory); "
        "rerun with --workers 1 to decode in one process"
    )


def ordered_map(make: Callable, args: tuple, tasks: Sequence, workers: int) -> Iterator[Any]:
    """Yield ``fn(task)`` for every task, in order, where ``fn = make(*args)`` per worker.

    Task ``i`` goes to worker ``i % workers``, which answers its tasks in the order it
    got them, so reading the workers round-robin gives the results in order without a
    reorder buffer. ``make`` and ``args`` must pickle where processes are spawned.
    Raises :class:`UserError` if a worker dies (say, killed for memory).
    """
    ctx = mp.get_context()
    procs, conns = [], []
    try:
        for _ in range(workers):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_serve, args=(theirs, conns + [mine], make, args), daemon=True
            )
            proc.start()
            theirs.close()
            procs.append(proc)
            conns.append(mine)
        ahead = workers * DEPTH
        for i in range(min(ahead, len(tasks))):
            conns[i % workers].send(tasks[i])
        for i in range(len(tasks)):
            w = i % workers
            try:
                result = conns[w].recv()
                if i + ahead < len(tasks):
                    conns[w].send(tasks[i + ahead])
            except (EOFError, BrokenPipeError, ConnectionResetError):
                raise _died(procs[w], w) from None
            yield result
    finally:
        for proc in procs:
            proc.kill()  # SIGKILL: workers hold no lock and no file anyone else needs
        for proc in procs:
            proc.join()
        for c in conns:
            c.close()
