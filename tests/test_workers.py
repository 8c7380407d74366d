"""The ordered worker map behind ``prepare``: order, failure, and that workers always stop."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from landgan.data.workers import ordered_map
from landgan.errors import UserError

from conftest import process_exists


class _Slow:
    """Squares its task after a random pause, so workers finish out of order."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed + os.getpid())

    def __call__(self, task: int) -> tuple[int, int]:
        time.sleep(self.rng.random() * 0.005)
        return task * task, os.getpid()


class _DiesOn:
    """Ends its process, as the kernel's OOM killer would, on one task."""

    def __init__(self, fatal: int):
        self.fatal = fatal

    def __call__(self, task: int) -> int:
        if task == self.fatal:
            os._exit(3)
        return task


@pytest.mark.parametrize("workers", [1, 3])
def test_results_arrive_in_task_order(workers):
    tasks = list(range(50))
    results = list(ordered_map(_Slow, (0,), tasks, workers))
    assert [r for r, _ in results] == [t * t for t in tasks]
    assert len({pid for _, pid in results}) == workers
    assert os.getpid() not in {pid for _, pid in results}


def test_fewer_tasks_than_workers():
    assert [r for r, _ in ordered_map(_Slow, (0,), [4, 5], 4)] == [16, 25]
    assert list(ordered_map(_Slow, (0,), [], 2)) == []


def test_a_dead_worker_is_an_error_not_a_hang():
    with pytest.raises(UserError, match=r"worker \d stopped unexpectedly \(exit code 3"):
        list(ordered_map(_DiesOn, (7,), list(range(20)), 2))


def test_closing_early_kills_every_worker():
    gen = ordered_map(_Slow, (0,), list(range(1000)), 2)
    pids = {next(gen)[1], next(gen)[1]}
    gen.close()  # what prepare's closing() does on a write error or SIGTERM
    assert len(pids) == 2 and not any(process_exists(pid) for pid in pids)


def test_workers_ignore_sigterm_the_parent_ends_them():
    """A group SIGTERM must not stop a worker mid-message; the parent kills them instead."""
    gen = ordered_map(_Slow, (0,), list(range(200)), 2)
    first = [next(gen), next(gen)]
    for _, pid in first:
        os.kill(pid, signal.SIGTERM)
    rest = list(gen)
    assert [r for r, _ in first + rest] == [t * t for t in range(200)]
    assert not any(process_exists(pid) for _, pid in first)
