"""What the UI's server process needs beyond the page: request limits, its temporary folder, signals.

* :class:`RequestLimit` refuses oversized requests at the ASGI layer, before Gradio reads,
  parses, keeps or logs them (a rejected 4 MB value used to stay in memory for good).
* :func:`make_scratch` gives each server one temporary folder for everything it serves;
  it goes when the server stops, and a folder left by a killed server goes at the next start.
* :func:`stop_on_signals` turns SIGTERM and SIGHUP into a normal exit, so cleanup runs.
* :class:`ShortLines` cuts every line the server prints, so no log echoes a huge value.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

MAX_REQUEST_BYTES = 64 * 1024  # a Generate request is under 1 KB; typed compositions 2,000 chars
MAX_URL_BYTES = 8 * 1024  # path and query string together
DRAIN_BYTES = 16 * 2**20  # read (and drop) this much of a refused body, so the client sees why
SCRATCH_PREFIX = "landgan-ui-"  # then "<pid>-<random>"
LOG_LINE_CHARS = 1000  # longest line the server prints; longer ones are cut


class RequestLimit:
    """ASGI middleware: 413 for bodies over ``max_body`` bytes, 414 for URLs over ``max_url``.

    A declared Content-Length is checked before any byte of the body is read; a chunked
    body is counted as it arrives and refused once over the limit. Refused bodies are read
    and dropped (up to DRAIN_BYTES) so that the client gets the answer instead of a reset.
    """

    def __init__(self, app, max_body: int = MAX_REQUEST_BYTES, max_url: int = MAX_URL_BYTES):
        self.app, self.max_body, self.max_url = app, max_body, max_url

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        url = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if url > self.max_url:
            return await _refuse(
                send, 414, f"URL too long: the landgan UI accepts at most {self.max_url} bytes"
            )
        too_large = f"request too large: the landgan UI accepts at most {self.max_body} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_body:
                await _drain(receive)
                return await _refuse(send, 413, too_large)
            return await self.app(scope, receive, send)
        return await self._counted(scope, receive, send, too_large)

    async def _counted(self, scope, receive, send, too_large: str):
        """Pass a body of unknown length through, refusing it once it passes the limit."""
        # Starlette comes with Gradio; landgan.ui must import without either
        from starlette.exceptions import HTTPException

        seen, started = 0, False

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                if message.get("more_body"):
                    await _drain(receive)
                raise HTTPException(413, too_large)  # FastAPI answers it as it stands
            return message

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except HTTPException as e:  # a route that reads the body itself let it through
            if started or e.status_code != 413:
                raise
            await _refuse(send, 413, too_large)


async def _drain(receive) -> None:
    """Read and drop the rest of a refused body, up to DRAIN_BYTES, so the client can read the reply."""
    read = 0
    while read < DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def _refuse(send, status: int, message: str) -> None:
    """Answer with ``status`` and ``{"detail": message}``, closing the connection."""
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def make_scratch() -> Path:
    """A new temporary folder for this server's files, removed at exit (see module docstring)."""
    remove_stale_scratch()
    root = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    atexit.register(shutil.rmtree, root, True)
    return root


def remove_stale_scratch(parent: str | Path | None = None) -> list[Path]:
    """Remove the folders of UI servers that no longer run (killed with SIGKILL); return them."""
    removed = []
    for d in Path(parent or tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*-*"):
        pid = d.name[len(SCRATCH_PREFIX) :].split("-")[0]
        try:
            mine = d.is_dir() and not d.is_symlink() and d.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextlib.contextmanager
def stop_on_signals(signals=("SIGTERM", "SIGHUP")):
    """Within the block, SIGTERM and SIGHUP exit like ``sys.exit(128 + signal)``.

    Python's default for them ends the process at once, skipping ``finally`` and atexit,
    which left the temporary folder behind. Signal handlers can only be set from the main
    thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    found = [getattr(signal, name) for name in signals if hasattr(signal, name)]
    previous = {s: signal.signal(s, stop) for s in found}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class ShortLines:
    """A text stream that passes lines through, cutting each to ``limit`` characters.

    Gradio prints the traceback of an unexpected error, whose message may quote a whole
    request; behind this the server's log never holds a line longer than ``limit``.
    """

    def __init__(self, stream, limit: int = LOG_LINE_CHARS):
        self._stream, self._limit, self._col = stream, limit, 0
        self._lock = threading.Lock()  # Gradio and uvicorn write from several threads

    def write(self, text: str) -> int:
        out = []
        with self._lock:
            for i, part in enumerate(text.split("\n")):
                if i:
                    out.append("\n")
                    self._col = 0
                room = max(0, self._limit - self._col)
                out.append(part[:room])
                if len(part) > room and self._col <= self._limit:
                    out.append(" [cut]")
                    self._col = self._limit + 1  # marked once per line
                else:
                    self._col += len(part)
            self._stream.write("".join(out))
        return len(text)

    def __getattr__(self, name):  # flush, fileno, isatty, encoding: the stream's own
        return getattr(self._stream, name)

    @classmethod
    @contextlib.contextmanager
    def installed(cls, limit: int = LOG_LINE_CHARS, enabled: bool = True):
        """Within the block, ``sys.stdout`` and ``sys.stderr`` cut their lines (if ``enabled``)."""
        if not enabled:
            yield
            return
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = cls(saved[0], limit), cls(saved[1], limit)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved
