"""`landgan ui` against hostile input (issue 14, items 6 and 7), as a running server.

These tests start ``landgan ui`` as a real process and speak Gradio's queue protocol
to it with httpx, as an attacker would: no browser, no gradio_client niceties.
test_hostile_generate.py has `landgan generate`'s part of the issue, and
test_hostile_ui_engine.py the engine's limits checked without a server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import end_process, start_process
from ui_runs import BROKEN, COND, PLAIN, broken_runs, tiny_runs

httpx = pytest.importorskip("httpx")
pytest.importorskip("gradio", reason="the UI needs gradio: pip install -e '.[ui]'")
from landgan.ui.app import MESSAGE_CHARS  # noqa: E402 -- needs gradio's presence
from landgan.ui.outputs import FILES_KEPT  # noqa: E402
from landgan.ui.server import LOG_LINE_CHARS  # noqa: E402

SLIDERS = [20] * 5 + [0] * 7
MB4 = "x" * (4 * 2**20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tiny_runs(tmp_path_factory)


# ---- the UI as a running server ----------------------------------------------------------


class UI:
    """``landgan ui`` in a subprocess, its own TMPDIR, its log in a file."""

    def __init__(self, runs: Path, tmp: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.tmp, self.log = tmp / "tmp", tmp / "ui.log"
        self.tmp.mkdir(parents=True)
        env = dict(os.environ, OMP_NUM_THREADS="1", TMPDIR=str(self.tmp))
        with self.log.open("w") as log:  # the child writes through its own copy
            # start_process: Ctrl-C must reach the server even from a background test run
            self.proc = start_process(
                [
                    sys.executable,
                    "-m",
                    "landgan",
                    "ui",
                    "--runs",
                    str(runs),
                    "--port",
                    str(port),
                    "--no-shipped",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while "(Ctrl-C stops)" not in self.log.read_text():  # its "serving ..." line
                log = self.log.read_text()
                assert self.proc.poll() is None and time.monotonic() < deadline, log
                time.sleep(0.3)
            deps = httpx.get(self.url + "/config", timeout=30).json()["dependencies"]
            self.fn = {d.get("api_name"): d["id"] for d in deps}
        except BaseException:  # a server that never came up must not outlive the test
            end_process(self.proc, signal.SIGKILL)
            raise

    def call(self, api: str, data) -> tuple[bool, str]:
        """(success, error message or output) of one event through Gradio's queue."""
        session = uuid.uuid4().hex[:12]
        r = httpx.post(
            self.url + "/gradio_api/queue/join",
            timeout=60,
            json={"data": data, "fn_index": self.fn[api], "session_hash": session},
        )
        if r.status_code != 200:
            return False, f"{r.status_code} {r.json()['detail']}"
        with httpx.stream(
            "GET", f"{self.url}/gradio_api/queue/data?session_hash={session}", timeout=120
        ) as s:
            for line in s.iter_lines():
                if '"process_completed"' in line:
                    msg = json.loads(line.removeprefix("data:"))
                    return msg["success"], (
                        msg["output"].get("error")
                        if not msg["success"]
                        else json.dumps(msg["output"])
                    )
        raise AssertionError("no result")

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return (
            int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS")).split()[1]) / 1024
        )

    def scratch(self) -> list[Path]:
        return list(self.tmp.glob("landgan-ui-*"))

    def stop(self, sig=signal.SIGTERM) -> int:
        """Its exit status after ``sig``; killed after 60 s if ``sig`` does not stop it."""
        return end_process(self.proc, sig, 60)


@pytest.fixture(scope="module")
def ui(runs, tmp_path_factory):
    """One server over a runs folder whose newest checkpoint is broken."""
    tmp = tmp_path_factory.mktemp("hostile-ui")
    server = UI(broken_runs(runs, tmp / "runs"), tmp)
    yield server
    server.stop()


@pytest.mark.slow
def test_ui_starts_despite_a_broken_newest_checkpoint(ui):
    config = httpx.get(ui.url + "/config", timeout=30).json()
    props = {c["props"].get("elem_id"): c["props"] for c in config["components"]}
    assert [c[1] for c in props["ckpt"]["choices"]] == [PLAIN, COND]
    assert props["ckpt"]["value"] == PLAIN
    assert BROKEN in props["unavailable"]["value"] and props["unavailable"]["visible"]
    assert f"landgan ui: skipped {BROKEN}: " in ui.log.read_text()
    ok, msg = ui.call("generate", [BROKEN, 0, 0, 2, 1, *SLIDERS])
    assert not ok and msg.startswith(f"{BROKEN} is unavailable:")
    ok, out = ui.call("generate", [PLAIN, 0, 0, 2, 1, *SLIDERS])
    assert ok and len(json.loads(out)["data"][0]) == 2  # the gallery's two images


BIG = "x" * 60_000  # under the request limit, so it reaches the handlers


@pytest.mark.parametrize(
    "case,api,data,expected",
    [
        (
            "seed as a string",
            "generate",
            [COND, "1", 0, 2, 1, *SLIDERS],
            "seed must be a number, got '1'",
        ),
        (
            "seed as a list",
            "generate",
            [COND, [1, 2], 0, 2, 1, *SLIDERS],
            "seed must be a number, got \\[1, 2\\]",
        ),
        (
            "seed as an object",
            "generate",
            [COND, {"a": 1}, 0, 2, 1, *SLIDERS],
            "seed must be a number",
        ),
        (
            "seed of 400 digits",
            "generate",
            [COND, 10**400, 0, 2, 1, *SLIDERS],
            "seed must be finite",
        ),
        (
            "count missing (null)",
            "generate",
            [COND, 0, 0, None, 1, *SLIDERS],
            "number of images must be a number, got None",
        ),
        (
            "60 KB seed",
            "generate",
            [COND, BIG, 0, 2, 1, *SLIDERS],
            "seed must be a number, got 'xxx.*\\.\\.\\.$",
        ),
        (
            "60 KB checkpoint name",
            "generate",
            [BIG, 0, 0, 2, 1, *SLIDERS],
            "invalid checkpoint name 'xxx",
        ),
        ("checkpoint as a number", "generate", [7, 0, 0, 2, 1, *SLIDERS], "choose a checkpoint"),
        ("too few inputs", "generate", [COND, BIG], "generate takes 17 inputs, got 2"),
        (
            "slider sky=1e308",
            "generate",
            [COND, 0, 0, 2, 1, 1e308, 0, 0, 0, 0, *[0] * 7],
            "proportions must be between 0 and 100 % \\(sky\\)",
        ),
        (
            "slider as a string",
            "generate",
            [COND, 0, 0, 2, 1, "sky", *SLIDERS[1:]],
            "proportion of sky must be a number",
        ),
        (
            "typed sky=1e308,water=1e308",
            "interpolate",
            [
                COND,
                "between two compositions",
                0,
                1,
                "sky=1e308,water=1e308",
                "water=1",
                3,
                0,
                *SLIDERS,
            ],
            "too large to add up",
        ),
        (
            "60 KB typed composition",
            "interpolate",
            [COND, "between two compositions", 0, 1, BIG, "water=1", 3, 0, *SLIDERS],
            "composition too long \\(60000 characters\\)",
        ),
        (
            "60 KB mode",
            "interpolate",
            [COND, BIG, 0, 1, "sky=1", "water=1", 3, 0, *SLIDERS],
            "interpolate 'between two seeds' or",
        ),
        (
            "slider release with a string",
            "rebalance_0",
            [COND, "a", *SLIDERS[1:]],
            "proportion must be a number, got 'a'",
        ),
        ("checkpoint switch to ../", "checkpoint", ["../" + COND], "invalid checkpoint name"),
    ],
)
def test_api_gives_the_documented_message(ui, case, api, data, expected):
    ok, msg = ui.call(api, data)
    assert not ok and msg and msg != "None", case
    assert len(msg) <= MESSAGE_CHARS and re.search(expected, msg), (case, msg)


def test_typed_sky_1e308_alone_is_just_all_sky(ui):
    ok, out = ui.call(
        "interpolate",
        [COND, "between two compositions", 0, 1, "sky=1e308", "water=1", 3, 0, *SLIDERS],
    )
    assert ok and ".gif" in out


def test_oversized_requests_are_refused_before_parsing(ui):
    assert ui.call("generate", [COND, 0, 0, 2, 1, *SLIDERS])[0]  # warm: lazily built things exist
    for _ in range(3):
        ui.call("generate", [MB4[:60_000], 0, 0, 2, 1, *SLIDERS])
    before = ui.rss_mib()
    refused = "413 request too large: the landgan UI accepts at most 65536 bytes"
    for _ in range(20):  # 4 MB strings, as the probe sent them
        assert ui.call("generate", [MB4, 0, 0, 2, 1, *SLIDERS]) == (False, refused)
    chunked = httpx.post(
        ui.url + "/gradio_api/queue/join",
        timeout=60,  # no Content-Length
        content=(MB4[i : i + 2**16].encode() for i in range(0, len(MB4), 2**16)),
    )
    assert chunked.status_code == 413 and "request too large" in chunked.json()["detail"]
    r = httpx.get(ui.url + "/gradio_api/queue/data?session_hash=" + "s" * 60_000, timeout=60)
    assert r.status_code == 414 and "URL too long" in r.json()["detail"]
    time.sleep(1)
    grown = ui.rss_mib() - before
    print(f"\nUI RSS {before:.0f} MiB before, +{grown:.1f} MiB after 20 x 4 MB requests")
    assert grown < 50
    assert ui.call("generate", [COND, 1, 0, 2, 1, *SLIDERS])[0]  # still serving
    lines = ui.log.read_text().splitlines()
    assert max(map(len, lines)) <= LOG_LINE_CHARS + len(" [cut]")
    assert "x" * 100 not in ui.log.read_text()


def test_served_files_are_not_copied_and_stay_bounded(ui):
    for seed in range(4):
        assert ui.call("generate", [PLAIN, seed, 0, 8, 1, *SLIDERS])[0]
    (root,) = ui.scratch()
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files and all(p.is_relative_to(root / "out") for p in files)  # Gradio made no copies
    assert len(files) <= FILES_KEPT


@pytest.mark.slow
def test_sigterm_and_ctrl_c_remove_the_temporary_folder(runs, tmp_path):
    for sig, status in ((signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130)):
        server = UI(runs, tmp_path / sig.name)
        try:
            for seed in range(3):
                assert server.call("generate", [PLAIN, seed, 0, 4, 1, *SLIDERS])[0]
            (root,) = server.scratch()
            assert len(list(root.rglob("*.png"))) == 12
        finally:
            assert server.stop(sig) == status
        assert server.scratch() == [], sig.name
