"""Load on the web UI: several clients pressing Generate for a fixed time.

Starts ``landgan ui`` on 127.0.0.1 in a subprocess (or uses ``--url`` of one already
running on this machine), then runs ``--clients`` threads, each a ``gradio_client``
calling the ``/generate`` endpoint in a loop for ``--seconds``. Prints requests/s,
p50/p95 latency, errors by message, and the server's resident memory at start and end
(and its peak), which shows whether load costs memory or only waiting time.

    python benchmarks/ui_load.py --runs runs --clients 4 --seconds 30
    python benchmarks/ui_load.py --runs runs --clients 32 --max-queue 16   # overload
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

SERVER = (
    "import sys; from landgan.ui import serve; "
    "serve(sys.argv[1], '127.0.0.1', int(sys.argv[2]), max_queue=int(sys.argv[3]), "
    "concurrency=int(sys.argv[4]), quiet=True)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int | None, field: str = "VmRSS") -> float | None:
    """Resident memory of ``pid`` in MiB from /proc (Linux), or None."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def start_server(args) -> tuple[subprocess.Popen, str]:
    """``landgan ui`` in a subprocess on a free localhost port; waits until it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVER,
            args.runs,
            str(port),
            str(args.max_queue),
            str(args.concurrency),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the UI server exited with status {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("the UI server did not answer within 180 s")


def client_loop(url, args, deadline, latencies, errors, lock) -> None:
    """One client: Generate, wait for the images, repeat until ``deadline``."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    sliders = [10] * 12  # equal shares; the app reads only as many as the model has conditions
    i = 0
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            client.predict(args.ckpt, i % 1000, 0, args.n, 1, *sliders, api_name="/generate")
            with lock:
                latencies.append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 -- every failure is counted, by its first line
            with lock:
                errors[(str(e).strip().splitlines() or [type(e).__name__])[0][:80]] += 1
            time.sleep(0.05)  # a refused request returns at once: do not spin
        i += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", default="runs", help="runs folder for the server this starts")
    ap.add_argument("--url", help="use this running UI instead (must be on 127.0.0.1/localhost)")
    ap.add_argument("--pid", type=int, help="with --url: the server's process id, for its memory")
    ap.add_argument("--ckpt", help="checkpoint name RUN/FILE.pt (default: the newest)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--n", type=int, default=4, help="images per request")
    ap.add_argument("--max-queue", type=int, default=16, help="server's queue bound")
    ap.add_argument("--concurrency", type=int, default=1, help="server's concurrent generations")
    args = ap.parse_args()

    proc, pid = None, args.pid
    if args.url:
        if urlparse(args.url).hostname not in ("127.0.0.1", "localhost"):
            sys.exit("--url must point at 127.0.0.1 or localhost")
        url = args.url
    else:
        proc, url = start_server(args)
        pid = proc.pid
    if args.ckpt is None:
        if args.url:
            sys.exit("with --url, give --ckpt RUN/FILE.pt")
        from landgan.ui.validate import list_ui_checkpoints

        args.ckpt = list_ui_checkpoints(args.runs)[0]
    try:
        run(args, url, pid)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


def run(args, url: str, pid: int | None) -> None:
    """Warm up once, then load the server and print the figures."""
    from gradio_client import Client

    Client(url, verbose=False).predict(args.ckpt, 0, 0, args.n, 1, *[10] * 12, api_name="/generate")
    rss_start = rss_mib(pid)
    latencies, errors, lock = [], collections.Counter(), threading.Lock()
    deadline = time.monotonic() + args.seconds
    t0 = time.perf_counter()
    threads = [
        threading.Thread(target=client_loop, args=(url, args, deadline, latencies, errors, lock))
        for _ in range(args.clients)
    ]
    for t in threads:
        t.start()
    trace = []  # (seconds, RSS MiB) every tenth of the run: does memory settle or keep growing?
    while any(t.is_alive() for t in threads):
        trace.append((time.perf_counter() - t0, rss_mib(pid)))
        time.sleep(args.seconds / 10)
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    fmt = lambda v: "n/a" if v is None else f"{v:.0f} MiB"
    print(
        f"url {url}  checkpoint {args.ckpt}  clients {args.clients}  images/request {args.n}  "
        f"queue bound {args.max_queue}  concurrency {args.concurrency}  cpu cores {os.cpu_count()}"
    )
    print(
        f"{len(lat)} requests ok in {wall:.1f} s: {len(lat) / wall:.2f} requests/s, "
        f"{len(lat) * args.n / wall:.1f} images/s"
    )
    if len(lat):
        print(
            f"latency p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, "
            f"max {lat.max():.0f} ms"
        )
    print(
        f"errors {sum(errors.values())}"
        + "".join(f"\n  {c} x {m}" for m, c in errors.most_common())
    )
    print(
        f"server RSS start {fmt(rss_start)}, end {fmt(rss_mib(pid))}, "
        f"peak {fmt(rss_mib(pid, 'VmHWM'))}"
    )
    if pid is not None:
        print("server RSS over the run: " + ", ".join(f"{t:.0f}s {m:.0f}" for t, m in trace if m))


if __name__ == "__main__":
    main()
