"""Processes the tests start: Ctrl-C reaches them however pytest was launched, and none
outlives the run (issue: a background `pytest &` left a UI server running).

A shell runs `cmd &` with SIGINT ignored (POSIX, for any shell without job control:
`pytest &` in a script, nohup, a CI runner's subshell), and a Python process that starts
with SIGINT ignored never raises KeyboardInterrupt. These tests launch exactly such a
background job and check what the tests' own way of starting processes does inside it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from conftest import descendants, end_process, start_process
from ui_runs import tiny_runs

TESTS = Path(__file__).resolve().parent
posix_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")

# Run as a background job: reports the SIGINT it inherited, then what SIGINT does to a
# sleeper started plainly and to one started by conftest.start_process.
_SLEEPERS = """
import json, signal, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from conftest import end_process, start_process
sleep = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]
out = {"inherited_ignored": signal.getsignal(signal.SIGINT) is signal.SIG_IGN}
for how, start in (("plain", subprocess.Popen), ("start_process", start_process)):
    proc = start(sleep, stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # up: its interpreter has set its handlers
    out[how] = end_process(proc, signal.SIGINT, timeout=5)  # -9: SIGINT did not stop it
print(json.dumps(out))
"""

# Run as a background job: `landgan ui` started as tests/test_hostile_ui.py starts it,
# stopped with Ctrl-C.
_UI = """
import json, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_hostile_ui import UI
server = UI(Path(sys.argv[2]), Path(sys.argv[3]))
status = server.stop(signal.SIGINT)
print(json.dumps({"inherited_ignored": signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
                  "status": status, "scratch": [str(p) for p in server.scratch()]}))
"""


def run_in_background(script: str, *args, timeout: float = 300) -> dict:
    """Run ``script`` as `sh -c 'python script ARGS & wait $!'` does; its JSON report.

    The shell gets its own process group, killed at the end whatever happened, so nothing
    the script started survives a failure here.
    """
    cmd = ["sh", "-c", '"$@" & wait $!', "sh", sys.executable, "-c", script, TESTS, *args]
    proc = start_process(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        end_process(proc, signal.SIGKILL, 0)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
@posix_only
def test_ctrl_c_reaches_processes_started_from_a_background_job():
    report = run_in_background(_SLEEPERS)
    assert report["inherited_ignored"]  # the launch really was a background job's
    assert report["plain"] == -signal.SIGKILL  # the bug: a plain Popen child ignored Ctrl-C
    assert report["start_process"] == -signal.SIGINT  # ended by Ctrl-C (KeyboardInterrupt)


@posix_only
@pytest.mark.slow
def test_ctrl_c_stops_the_ui_server_of_a_background_test_run(tmp_path_factory, tmp_path):
    pytest.importorskip("httpx")
    pytest.importorskip("gradio", reason="the UI needs gradio: pip install -e '.[ui]'")
    report = run_in_background(_UI, tiny_runs(tmp_path_factory), tmp_path)
    assert report["inherited_ignored"]
    assert report["status"] == 130, report  # landgan's status for Ctrl-C, not -9 after 60 s
    assert report["scratch"] == []


def _marked(marker: str) -> list[int]:
    """Pids of live processes whose command line holds ``marker``."""
    found = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (d / "cmdline").read_bytes() and os.getpid() != int(d.name):
                found.append(int(d.name))
        except OSError:
            continue
    return found


@posix_only
def test_descendants_finds_grandchildren():
    marker = f"landgan-grandchild-{uuid.uuid4().hex}"
    inner = f"import time; time.sleep(60)  # {marker}"
    outer = (
        f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {inner!r}]);"
        "print(p.pid, flush=True); p.wait()"
    )
    proc = start_process(
        [sys.executable, "-c", outer], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        grandchild = int(proc.stdout.readline())
        found = descendants(os.getpid())
        assert proc.pid in found and grandchild in found and marker in found[grandchild]
    finally:
        end_process(proc, signal.SIGKILL, 0)  # the group: the grandchild too
    assert _marked(marker) == []


@pytest.mark.slow
@posix_only
def test_a_process_left_running_fails_the_run_and_is_killed(tmp_path):
    marker = f"landgan-leftover-{uuid.uuid4().hex}"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("landgan_tests_conftest",
                                                      {str(TESTS / "conftest.py")!r})
        shared = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shared)
        shared.LEFTOVER_GRACE_S = 0.5
        pytest_sessionfinish = shared.pytest_sessionfinish
        pytest_terminal_summary = shared.pytest_terminal_summary
    """)
    )
    (tmp_path / "test_leak.py").write_text(
        textwrap.dedent(f"""
        import subprocess, sys

        def test_passes_but_leaves_a_process():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)  # {marker}"])
    """)
    )
    proc = start_process(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            tmp_path / "pytest.ini",
            tmp_path / "test_leak.py",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=180)
        left = _marked(marker)  # before end_process, whose group kill would hide a survivor
    finally:
        end_process(proc, signal.SIGKILL, 0)
    assert "1 passed" in out and proc.returncode == 1, out  # the test passed; the run did not
    assert "processes left running" in out and marker in out, out
    assert left == []  # killed by the check, not left behind
