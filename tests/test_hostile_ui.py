"""`landgan generate` and `landgan ui` against hostile input (issue 14, items 2, 6 and 7).

The UI tests start ``landgan ui`` as a real process and speak Gradio's queue protocol
to it with httpx, as an attacker would: no browser, no gradio_client niceties.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from landgan import generate as generate_mod
from landgan import sampling
from landgan.cli import main
from landgan.errors import UserError
from landgan.images import to_uint8
from landgan.sampling import iter_latents, load_generator, sample_latents
from conftest import end_process, start_process
from test_ui import COND, PLAIN, tiny_runs

httpx = pytest.importorskip("httpx")
pytest.importorskip("gradio", reason="the UI needs gradio: pip install -e '.[ui]'")
from landgan.ui.app import MESSAGE_CHARS, Handlers  # noqa: E402 -- needs gradio's presence
from landgan.ui.engine import FILES_KEPT, Engine  # noqa: E402
from landgan.ui.server import LOG_LINE_CHARS, ShortLines, remove_stale_scratch  # noqa: E402

BROKEN = "00002-broken/step_0000005.pt"  # the newest run of ui_runs: not a checkpoint
SLIDERS = [20] * 5 + [0] * 7
MB4 = "x" * (4 * 2**20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tiny_runs(tmp_path_factory)


def ckpt_file(runs: Path, name: str) -> Path:
    run, file = name.split("/")
    return runs / run / "checkpoints" / file


# ---- generate: a folder streams, a grid is bounded ----------------------------------------

def test_latents_are_the_same_however_they_are_chunked():
    block = sampling.latent_block_size(4)
    n = 2 * block + 5  # three blocks, the last one short
    for t in (None, 0.7):
        whole = sample_latents(n, 4, seed=9, truncation=t)
        assert torch.equal(whole, torch.cat(list(iter_latents(n, 4, 9, t, chunk=333))))
        assert not torch.equal(whole[:block], whole[block:2 * block])  # blocks differ
    # up to one block it is the single draw it always was: old seeds keep their images
    g = torch.Generator().manual_seed(9)
    assert torch.equal(sample_latents(50, 8, 9), torch.empty(50, 8).normal_(generator=g))
    assert sampling.latent_block_size(100) == 10_000 and sampling.latent_block_size(2**16) == 64


def test_generate_writes_a_folder_as_it_goes(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(sampling, "LATENT_BLOCK", 48)  # cross latent blocks with few images
    monkeypatch.setattr(generate_mod, "WRITE_BATCH", 16)
    out, seen = tmp_path / "many", []
    G, cfg = load_generator(ckpt_file(runs, PLAIN))

    def spy(*args, **kw):  # every forward pass: its batch, and the files already on disk
        G.register_forward_pre_hook(lambda m, inp: seen.append(
            (len(inp[0]), len(list(out.glob("*.png"))) if out.exists() else 0)))
        return G, cfg, {}
    monkeypatch.setattr(generate_mod, "load_generator", spy)
    assert main(["generate", "x.pt", "--n", "100", "--seed", "3", "--out", str(out)]) == 0
    assert max(b for b, _ in seen) <= 16 and sum(b for b, _ in seen) == 100
    assert seen[-1][1] >= 100 - 16  # written batch by batch, not all at the end
    files = sorted(out.glob("*.png"))
    assert len(files) == 100 and not list(out.glob(".*"))
    with torch.no_grad():  # one forward pass over all 100 latents: nothing chunked
        whole = to_uint8(G(sample_latents(100, cfg.z_dim, 3)))
    assert all(np.array_equal(np.asarray(Image.open(f)), img) for f, img in zip(files, whole))


def test_generate_refuses_a_grid_too_large_to_hold(runs, tmp_path, monkeypatch, capsys):
    grid = tmp_path / "g.png"
    # refused before anything is loaded: the checkpoint does not even exist
    assert main(["generate", str(tmp_path / "none.pt"), "--n", "1000000", "--out", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "a .png grid holds at most 4096 images, got --n 1000000" in err and err.count("\n") == 1
    monkeypatch.setattr(generate_mod, "MAX_GRID_PIXELS", 1000)  # 4 x 34^2 px is over
    assert main(["generate", str(ckpt_file(runs, PLAIN)), "--n", "4", "--out", str(grid)]) == 2
    assert "a grid of 4 images at 32 px is over 1,000 pixels" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_generate_full_disk_is_one_line_and_no_torn_file(runs, tmp_path, monkeypatch, capsys):
    real_save, calls = Image.Image.save, []

    def full_disk(self, fp, *a, **kw):
        calls.append(fp)
        if len(calls) == 5:
            Path(fp).write_bytes(b"half a png")  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *a, **kw)
    monkeypatch.setattr(Image.Image, "save", full_disk)
    out = tmp_path / "out"
    assert main(["generate", str(ckpt_file(runs, PLAIN)), "--n", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device; 4 of 10 images were written" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == [f"seed0000_{i:05d}.png" for i in range(4)]


# ---- the UI's engine: unavailable checkpoints, a bounded scratch folder -------------------

def broken_runs(runs: Path, dest: Path) -> Path:
    """A copy of ``runs`` whose newest run holds a checkpoint that is not one."""
    shutil.copytree(runs, dest, ignore=shutil.ignore_patterns("00002-later"))
    bad = ckpt_file(dest, BROKEN)
    bad.parent.mkdir(parents=True)
    bad.write_bytes(ckpt_file(runs, PLAIN).read_bytes()[:300])  # truncated mid-write
    return dest


def test_an_unreadable_checkpoint_is_listed_not_fatal(runs, tmp_path):
    root = broken_runs(runs, tmp_path / "runs")
    h = Handlers(Engine(root, scratch=tmp_path / "out"))
    first, init = h.first_usable()
    assert first == PLAIN and init["names"] == []  # the newest that loads
    names, notice = h.choices()
    assert names == [PLAIN, COND] and BROKEN in notice and "not a readable" in notice
    with pytest.raises(UserError, match=f"{BROKEN} is unavailable: .*not a readable"):
        h.engine.model(BROKEN)
    shutil.copy(ckpt_file(runs, PLAIN), ckpt_file(root, BROKEN))  # repaired: offered again
    assert h.choices() == ([BROKEN, PLAIN, COND], "")
    for name in (PLAIN, COND):
        ckpt_file(root, name).write_bytes(b"\0" * 10)
    ckpt_file(root, BROKEN).write_text("not torch")
    with pytest.raises(UserError, match="none of the 3 checkpoints under .* can be loaded"):
        Handlers(Engine(root, scratch=tmp_path / "out")).first_usable()


def test_an_unreadable_runs_folder_is_one_line(tmp_path, monkeypatch):
    from landgan.ui.validate import list_ui_checkpoints

    def denied(self):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(Path, "iterdir", denied)  # chmod 000 does not stop root, who runs CI
    with pytest.raises(UserError, match="cannot read the runs folder .*: Permission denied"):
        list_ui_checkpoints(tmp_path)


def test_scratch_folder_stays_bounded(runs, tmp_path, monkeypatch):
    eng = Engine(runs, scratch=tmp_path / "out")
    images, _ = eng.generate(PLAIN, 16, 0, None, None)
    for _ in range(FILES_KEPT // 16 + 10):  # 10 requests' worth over the file bound
        newest = eng.write_pngs(images, {})
    files = list((tmp_path / "out").rglob("*.png"))
    assert len(files) == FILES_KEPT and all(p.exists() for p in newest)
    size = sum(p.stat().st_size for p in newest)  # one request's (they are all alike)
    monkeypatch.setattr("landgan.ui.engine.BYTES_KEPT", int(3.5 * size))
    eng.write_pngs(images, {})
    assert len(list((tmp_path / "out").iterdir())) == 3  # the size bound holds too


def test_short_lines_cuts_every_line():
    class Sink:
        text = ""

        def write(self, s):
            self.text += s
    sink = Sink()
    out = ShortLines(sink, limit=50)
    out.write("ok\n" + "y" * 30)
    out.write("y" * 10**6 + "\nshort\n")  # one line over two writes
    assert sink.text.split("\n") == ["ok", "y" * 50 + " [cut]", "short", ""]


def test_stale_scratch_of_a_killed_server_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"landgan-ui-{dead.pid}-abc" / "out").mkdir(parents=True)
    (tmp_path / f"landgan-ui-{os.getpid()}-def").mkdir()  # alive: kept
    (tmp_path / "landgan-ui-notapid-x").mkdir()  # not ours to judge: kept
    assert remove_stale_scratch(tmp_path) == [tmp_path / f"landgan-ui-{dead.pid}-abc"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"landgan-ui-{os.getpid()}-def", "landgan-ui-notapid-x"]


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
                [sys.executable, "-m", "landgan", "ui", "--runs", str(runs), "--port", str(port),
                 "--no-shipped"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
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
        r = httpx.post(self.url + "/gradio_api/queue/join", timeout=60,
                       json={"data": data, "fn_index": self.fn[api], "session_hash": session})
        if r.status_code != 200:
            return False, f"{r.status_code} {r.json()['detail']}"
        with httpx.stream("GET", f"{self.url}/gradio_api/queue/data?session_hash={session}",
                          timeout=120) as s:
            for line in s.iter_lines():
                if '"process_completed"' in line:
                    msg = json.loads(line.removeprefix("data:"))
                    return msg["success"], (msg["output"].get("error") if not msg["success"]
                                            else json.dumps(msg["output"]))
        raise AssertionError("no result")

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS")).split()[1]) / 1024

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


@pytest.mark.parametrize("case,api,data,expected", [
    ("seed as a string", "generate", [COND, "1", 0, 2, 1, *SLIDERS], "seed must be a number, got '1'"),
    ("seed as a list", "generate", [COND, [1, 2], 0, 2, 1, *SLIDERS], "seed must be a number, got \\[1, 2\\]"),
    ("seed as an object", "generate", [COND, {"a": 1}, 0, 2, 1, *SLIDERS], "seed must be a number"),
    ("seed of 400 digits", "generate", [COND, 10**400, 0, 2, 1, *SLIDERS], "seed must be finite"),
    ("count missing (null)", "generate", [COND, 0, 0, None, 1, *SLIDERS], "number of images must be a number, got None"),
    ("60 KB seed", "generate", [COND, BIG, 0, 2, 1, *SLIDERS], "seed must be a number, got 'xxx.*\\.\\.\\.$"),
    ("60 KB checkpoint name", "generate", [BIG, 0, 0, 2, 1, *SLIDERS], "invalid checkpoint name 'xxx"),
    ("checkpoint as a number", "generate", [7, 0, 0, 2, 1, *SLIDERS], "choose a checkpoint"),
    ("too few inputs", "generate", [COND, BIG], "generate takes 17 inputs, got 2"),
    ("slider sky=1e308", "generate", [COND, 0, 0, 2, 1, 1e308, 0, 0, 0, 0, *[0] * 7], "proportions must be between 0 and 100 % \\(sky\\)"),
    ("slider as a string", "generate", [COND, 0, 0, 2, 1, "sky", *SLIDERS[1:]], "proportion of sky must be a number"),
    ("typed sky=1e308,water=1e308", "interpolate", [COND, "between two compositions", 0, 1, "sky=1e308,water=1e308", "water=1", 3, 0, *SLIDERS], "too large to add up"),
    ("60 KB typed composition", "interpolate", [COND, "between two compositions", 0, 1, BIG, "water=1", 3, 0, *SLIDERS], "composition too long \\(60000 characters\\)"),
    ("60 KB mode", "interpolate", [COND, BIG, 0, 1, "sky=1", "water=1", 3, 0, *SLIDERS], "interpolate 'between two seeds' or"),
    ("slider release with a string", "rebalance_0", [COND, "a", *SLIDERS[1:]], "proportion must be a number, got 'a'"),
    ("checkpoint switch to ../", "checkpoint", ["../" + COND], "invalid checkpoint name"),
])
def test_api_gives_the_documented_message(ui, case, api, data, expected):
    ok, msg = ui.call(api, data)
    assert not ok and msg and msg != "None", case
    assert len(msg) <= MESSAGE_CHARS and re.search(expected, msg), (case, msg)


def test_typed_sky_1e308_alone_is_just_all_sky(ui):
    ok, out = ui.call("interpolate", [COND, "between two compositions", 0, 1, "sky=1e308",
                                      "water=1", 3, 0, *SLIDERS])
    assert ok and ".gif" in out


def test_oversized_requests_are_refused_before_parsing(ui):
    assert ui.call("generate", [COND, 0, 0, 2, 1, *SLIDERS])[0]  # warm: lazily built things exist
    for _ in range(3):
        ui.call("generate", [MB4[:60_000], 0, 0, 2, 1, *SLIDERS])
    before = ui.rss_mib()
    refused = "413 request too large: the landgan UI accepts at most 65536 bytes"
    for _ in range(20):  # 4 MB strings, as the probe sent them
        assert ui.call("generate", [MB4, 0, 0, 2, 1, *SLIDERS]) == (False, refused)
    chunked = httpx.post(ui.url + "/gradio_api/queue/join", timeout=60,  # no Content-Length
                         content=(MB4[i:i + 2**16].encode() for i in range(0, len(MB4), 2**16)))
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
