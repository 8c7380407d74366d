"""Processes the tests start: Ctrl-C reaches them however pytest was launched, and none
outlives the run (issue: a background `pytest &` left a UI server running).

A shell runs `cmd &` with SIGINT ignored (POSIX, for any shell without job control:
`pytest &` in a script, nohup, a CI runner's subshell), and a Python process that starts
with SIGINT ignored never raises KeyboardInterrupt. These tests launch exactly such a
background job and check what the tests' own way of starting processes does inside it.
"""

from __future__ import annotations

import argparse
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
from landgan import cli
from landgan.cli import main
from landgan.config import FLAG_RULES, USED_BY_ALL, TrainConfig, unused_flags

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
    proc = start_process(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        end_process(proc, signal.SIGKILL, 0)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


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
    from test_ui import tiny_runs

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
    outer = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {inner!r}]);"
             "print(p.pid, flush=True); p.wait()")
    proc = start_process([sys.executable, "-c", outer], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        grandchild = int(proc.stdout.readline())
        found = descendants(os.getpid())
        assert proc.pid in found and grandchild in found and marker in found[grandchild]
    finally:
        end_process(proc, signal.SIGKILL, 0)  # the group: the grandchild too
    assert _marked(marker) == []


@posix_only
def test_a_process_left_running_fails_the_run_and_is_killed(tmp_path):
    marker = f"landgan-leftover-{uuid.uuid4().hex}"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("landgan_tests_conftest",
                                                      {str(TESTS / "conftest.py")!r})
        shared = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shared)
        shared.LEFTOVER_GRACE_S = 0.5
        pytest_sessionfinish = shared.pytest_sessionfinish
        pytest_terminal_summary = shared.pytest_terminal_summary
    """))
    (tmp_path / "test_leak.py").write_text(textwrap.dedent(f"""
        import subprocess, sys

        def test_passes_but_leaves_a_process():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)  # {marker}"])
    """))
    proc = start_process([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-c", tmp_path / "pytest.ini", tmp_path / "test_leak.py"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=180)
        left = _marked(marker)  # before end_process, whose group kill would hide a survivor
    finally:
        end_process(proc, signal.SIGKILL, 0)
    assert "1 passed" in out and proc.returncode == 1, out  # the test passed; the run did not
    assert "processes left running" in out and marker in out, out
    assert left == []  # killed by the check, not left behind


# ---- evaluate: counts whose features cannot fit, result rows of the wrong kind -------------

def test_evaluate_refuses_counts_whose_features_cannot_fit(tmp_path, monkeypatch, capsys):
    from landgan import evaluate as evaluate_mod

    missing = str(tmp_path / "none.pt")  # refused before the checkpoint is even looked for
    monkeypatch.setattr(evaluate_mod, "_is_run", lambda p: True)
    assert main(["evaluate", missing, "--n", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n 1,000,000,000 images need 15,258.8 GiB" in err
    assert "at most" in err and "images fit" in err and "Traceback" not in err

    monkeypatch.setattr(evaluate_mod, "available_memory", lambda: 4 * 2**30)  # a 4 GiB machine
    limit = 2 * 2**30 // (2048 * 8)
    assert evaluate_mod.feature_image_limit()[0] == limit
    assert main(["evaluate", missing, "--n", str(limit // 2), "--n-real", str(limit)]) == 2
    err = capsys.readouterr().err
    assert f"plus --n-real {limit:,} images" in err and "half of the 4.0 GiB" in err
    monkeypatch.setattr(evaluate_mod, "available_memory", lambda: None)  # unknown: the cap
    assert evaluate_mod.feature_image_limit() == (evaluate_mod.MAX_FEATURE_IMAGES,
                                                  "landgan's fixed cap")
    assert main(["evaluate", "--real", missing, "--n-real", "0"]) == 2
    assert "--n-real must be at least 1, got 0" in capsys.readouterr().err


def test_a_huge_n_does_not_block_reading_result_files(tmp_path, capsys):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"dataset": "d", "model": "m", "resolution": 64, "fid": 9.5}]))
    assert main(["evaluate", str(rows), "--n", "1000000000"]) == 0  # nothing is sampled
    assert "9.50" in capsys.readouterr().out


@pytest.mark.parametrize("row,message", [
    ({"fid": "12.5"}, "row 2: fid must be a number or null, got '12.5'"),
    ({"resolution": 64.0}, "row 2: resolution must be a whole number or null, got 64.0"),
    ({"kid_mean": True}, "row 2: kid_mean must be a number or null, got True"),
    ({"n_fake": [1]}, "row 2: n_fake must be a whole number or null, got [1]"),
    ({"model": 7}, "row 2: model must be a string or null, got 7"),
    ({"precision": "x" * 500}, "row 2: precision must be a number or null, got 'xxx"),
])
def test_result_rows_of_the_wrong_kind_are_one_line(tmp_path, capsys, row, message):
    path = tmp_path / "rows.json"
    good = {"dataset": "d", "model": "m", "resolution": 64, "fid": 9.5, "kid_mean": 0.01,
            "kid_std": 0.001, "n_real": 10, "n_fake": 10}
    path.write_text(json.dumps([good, {**good, **row}]))
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: {message}" in err and len(err) < 200, err


# ---- train: flags that would do nothing -------------------------------------------------------

def _train_parser():
    parser = cli._build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices["train"]


def test_every_train_flag_is_used_by_every_model_or_has_a_rule():
    flags = {a.dest for a in _train_parser()._actions if a.dest != "help"}
    ruled = {r.field for r in FLAG_RULES}
    unruled = sorted(flags - USED_BY_ALL - ruled)
    assert not unruled, (f"train flags with no rule for where they do nothing: {unruled}; add "
                         "them to config.USED_BY_ALL or config.FLAG_RULES")
    assert not (USED_BY_ALL | ruled) - flags  # no rule for a flag that is gone
    assert not USED_BY_ALL & ruled


# field -> (a value that asks for something, a config in which it does nothing)
IDLE = {
    "conditional": (True, {"model": "vae"}), "cond_bn": (True, {}), "cond_aux": (0.5, {}),
    "mode_seeking": (1.0, {}), "stage1": ("run", {}), "loss": ("bce", {"model": "autoencoder"}),
    "lr_d": (1e-3, {"model": "vae"}), "d_steps": (5, {"model": "vae"}),
    "clip": (0.01, {"model": "vae"}), "gp": (10.0, {"model": "vae"}),
    "r1": (1.0, {"model": "vae"}), "balance": ("adaptive", {"model": "vae"}),
    "diffaug": ("color", {"model": "vae"}), "r1_every": (8, {}), "amp": ("bf16", {"model": "vae"}),
    "compile": (True, {"model": "vae"}), "beta1": (0.9, {"optimizer": "rmsprop"}),
    "beta2": (0.99, {"optimizer": "rmsprop"}), "synthetic_count": (64, {"data": "some/folder"}),
    "eval_n": (100, {}), "eval_metric": ("fid", {}), "ema_rampup": (0.1, {"ema_kimg": 0.0}),
    "keep": (3, {"ckpt_every": 0}),
}


@pytest.mark.parametrize("rule", FLAG_RULES, ids=lambda r: r.field)
def test_each_rule_names_its_flag_where_it_does_nothing(rule):
    value, where = IDLE[rule.field]
    flag = "--" + rule.field.replace("_", "-")
    idle = TrainConfig.for_model(**where, **{rule.field: value})
    refusals, warnings = unused_flags(idle, {rule.field: value})
    lines = refusals if rule.refuse else warnings
    assert len(refusals + warnings) == 1 and lines[0].startswith(f"{flag} does nothing ")
    assert unused_flags(idle, {}) == ([], [])  # set by a model or preset, not by the user
    for neutral in rule.neutral:  # asking for nothing is never flagged
        assert unused_flags(idle, {rule.field: neutral}) == ([], [])


def test_a_used_flag_is_neither_refused_nor_warned_about():
    cfg = TrainConfig.for_model(model="dcgan4", conditional=True, cond_aux=0.5, r1=1.0,
                                r1_every=8, eval_every=10, eval_n=100, mode_seeking=1.0)
    given = {"conditional": True, "cond_aux": 0.5, "r1": 1.0, "r1_every": 8, "eval_every": 10,
             "eval_n": 100, "mode_seeking": 1.0, "loss": "hinge", "clip": 0.01}
    assert unused_flags(cfg, given) == ([], [])


def test_train_refuses_or_warns_once_before_any_work(tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    assert main(["train", "--cond-bn", "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == ("landgan: error: --cond-bn does nothing without --conditional: there is no "
                   "condition to modulate G's BatchNorms; leave it out\n")
    assert main(["train", "--model", "dcgan4", "--stage1", "x.pt", "--out", str(out)]) == 2
    assert "--stage1 does nothing for model dcgan4" in capsys.readouterr().err
    assert not out.exists()

    started = []
    monkeypatch.setattr("landgan.train.loop.train",
                        lambda cfg, progress: started.append(cfg) or out)
    assert main(["train", "--r1-every", "8", "--eval-n", "50", "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["landgan: warning: --r1-every does nothing while --r1 is 0 (off); it is ignored",
                   "landgan: warning: --eval-n does nothing while --eval-every is 0 (nothing is "
                   "evaluated during training); it is ignored"]
    assert started[0].r1_every == 8  # warned, then trained as asked
