"""benchmarks/time_to_quality.py: the CPU budget it bills each recipe."""

from __future__ import annotations

import importlib.util

from conftest import REPO


def test_time_to_quality_bills_side_by_side_processes_separately(monkeypatch):
    """--parallel runs recipes at once; each must be billed its own CPU time, not the sum."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("ttq", REPO / "benchmarks" / "time_to_quality.py")
    ttq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ttq)
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
    used = ttq.run_chunks({"busy": [ttq.sys.executable, "-c", busy],
                           "idle": [ttq.sys.executable, "-c", "import time; time.sleep(0.6)"]}, 1)
    assert used["busy"] >= 0.55
    assert used["idle"] < 0.3
