"""benchmarks/time_to_quality.py: the CPU budget it bills each recipe."""

from __future__ import annotations

import sys
import time

import pytest

from conftest import load_benchmark


def test_time_to_quality_bills_side_by_side_processes_separately(monkeypatch):
    """--parallel runs recipes at once; each must be billed its own CPU time, not the sum."""
    ttq = load_benchmark("time_to_quality", monkeypatch)
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
    used = ttq.run_chunks(
        {
            "busy": [sys.executable, "-c", busy],
            "idle": [sys.executable, "-c", "import time; time.sleep(0.6)"],
        },
        1,
    )
    assert used["busy"] >= 0.55
    assert used["idle"] < 0.3


def test_a_failed_training_stops_the_run_and_its_side_by_side_partner(monkeypatch):
    ttq = load_benchmark("time_to_quality", monkeypatch)
    t = time.monotonic()
    with pytest.raises(SystemExit, match="training broken failed"):
        ttq.run_chunks(
            {
                "long": [sys.executable, "-c", "import time; time.sleep(60)"],
                "broken": [sys.executable, "-c", "raise SystemExit(3)"],
            },
            1,
        )
    assert time.monotonic() - t < 30  # the partner was killed, not waited for
