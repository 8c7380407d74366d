"""The Gradio app: layout, event wiring, and the offline, localhost-only launch.

Gradio is imported inside the functions, after :func:`offline_env` has switched off its
analytics, so ``import landgan.ui`` stays cheap and landgan never needs Gradio elsewhere.

Every event runs with ``preprocess=False``: Gradio's own input checks echo whole values
into messages and tracebacks and fail with an empty "None" on wrong types, so the raw
JSON goes straight to :mod:`landgan.ui.validate`, whose messages are the documented ones.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from landgan import shipped
from landgan.errors import UserError
from landgan.ui.engine import Engine
from landgan.ui.handlers import Handlers
from landgan.ui.paint import PAGE_CSS, paint_tab
from landgan.ui.server import RequestLimit, ShortLines, make_scratch, stop_on_signals
from landgan.ui.tabs import _count_inputs, _friendly, generate_tab, interpolate_tab
from landgan.ui.tabs import MESSAGE_CHARS  # noqa: F401 -- where callers have long found it
from landgan.ui.validate import validate_port

SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Helvetica", "Arial", "sans-serif"]
SESSIONS_KEPT = 64  # Gradio keeps each browser session's last inputs; the oldest are dropped


def offline_env() -> None:
    """Switch off Gradio's analytics and version check, and Hugging Face Hub telemetry.

    Gradio reads these when it is imported and when an app is built, so this runs first.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # also skips Gradio's version check
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def build_app(runs: str | Path = "runs", device: str = "cpu", shipped: bool = True):
    """The Gradio Blocks app over the shipped models and the checkpoints in ``runs`` (not
    launched, no queue yet); ``runs`` may be missing when a shipped model is installed."""
    engine = Engine(runs, device, shipped=installed_models() if shipped else {})
    if not engine.shipped and not engine.checkpoints():
        raise UserError(
            f"no checkpoints under {runs} (expected {runs}/RUN/checkpoints/*.pt); "
            "train one with landgan train"
        )
    h = Handlers(engine)
    first, init = h.first_usable()  # loads the default generator: the first click is fast
    names, notice = h.choices()
    scratch = make_scratch()
    # Gradio's cache is this folder too: files under it are served without a copy, and
    # everything Gradio caches goes with it when the server stops.
    os.environ["GRADIO_TEMP_DIR"] = str(scratch)
    engine.scratch = scratch / "out"
    offline_env()
    import gradio as gr

    # Old gallery PNGs and GIFs leave Gradio's cache after 30 min: disk stays bounded.
    with gr.Blocks(title="landgan", analytics_enabled=False, delete_cache=(600, 1800)) as demo:
        gr.Markdown("## landgan: generate landscapes")
        with gr.Row(equal_height=True):
            # the label names no folder: the page shows no paths of the serving machine
            ckpt = gr.Dropdown(
                h.labelled(names),
                value=first,
                elem_id="ckpt",
                scale=5,
                label="Model (shipped, or a checkpoint RUN/FILE.pt of the runs folder)",
            )
            refresh = gr.Button("Rescan runs", elem_id="refresh", scale=1)
        unavailable = gr.Markdown(notice, visible=bool(notice), elem_id="unavailable")
        info = gr.Markdown(init["info"], elem_id="info")
        with gr.Tabs():
            with gr.Tab("Generate"):
                sliders, best, trunc = generate_tab(gr, h, ckpt, init)
            with gr.Tab("Interpolate"):
                mode, spec_a, spec_b = interpolate_tab(gr, h, ckpt, sliders, trunc, init)
            with gr.Tab("Paint"):
                painter = paint_tab(gr, h, ckpt, trunc, first, scratch)

        def chosen(name):
            """Every update the page needs when another model is chosen."""
            return [*h.checkpoint(name), *painter.checkpoint(name)]

        ckpt.change(
            _friendly(chosen),
            ckpt,
            [info, *sliders, best, mode, spec_a, spec_b, *painter.on_checkpoint],
            concurrency_id="generate",
            api_name="checkpoint",
            api_visibility="undocumented",
            preprocess=False,
        )
        refresh.click(
            _friendly(h.refresh),
            ckpt,
            [ckpt, unavailable],
            concurrency_limit=None,
            api_visibility="undocumented",
            preprocess=False,
        )
        demo.load(
            painter.start,
            None,
            painter.editor,
            concurrency_limit=None,
            show_progress="hidden",
            api_visibility="undocumented",
            preprocess=False,
        )
    demo.validate_inputs = _count_inputs
    demo.landgan_scratch = scratch  # removed by serve() when it stops, else at exit
    demo.landgan_engine = engine  # for tests and benchmarks: the generators behind the app
    return demo


def installed_models() -> dict[str, Path]:
    """The shipped models whose files are installed (a source checkout may lack them)."""
    return {name: path for name, path in shipped.SHIPPED.items() if Path(path).is_file()}


def serve(
    runs: str | Path = "runs",
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    concurrency: int = 1,
    max_queue: int = 16,
    block: bool = True,
    quiet: bool = False,
    shipped: bool = True,
):
    """Build the app and serve it on ``host:port`` (no share link, no analytics).

    Requests wait in a queue of at most ``max_queue`` events, ``concurrency`` of them
    generating at a time; beyond that the browser is told the queue is full, so load
    costs waiting time, not memory. With ``block=False`` it returns the running app
    (call ``.close()`` on it; its temporary folder goes at exit). ``shipped=False`` offers
    the runs folder's checkpoints alone. Blocking, it stops on
    Ctrl-C, SIGTERM or SIGHUP and removes its temporary folder, and cuts every line the
    process prints to :data:`~landgan.ui.server.LOG_LINE_CHARS` characters.
    """
    port = validate_port(port)
    with stop_on_signals(), ShortLines.installed(enabled=block):
        demo = build_app(runs, device, shipped)
        try:
            _launch(demo, runs, host, port, concurrency, max_queue)
        except BaseException:
            shutil.rmtree(demo.landgan_scratch, ignore_errors=True)
            raise
        if not quiet:  # our own line: Gradio's would suggest share=True, never used here
            engine = demo.landgan_engine
            what = ", ".join(
                [*engine.shipped, f"the checkpoints under {runs}"]
                if engine.runs_root.is_dir()
                else engine.shipped
            )
            print(f"landgan ui: serving {what} at {demo.local_url} (Ctrl-C stops)")
            if host not in ("127.0.0.1", "localhost", "::1"):
                print(f"landgan ui: warning: listening on {host}, so other machines can use it too")
            if not engine.runs_root.is_dir():  # fine, but a mistyped --runs should not go unseen
                print(
                    f"landgan ui: no runs folder {runs}: only the shipped models are offered",
                    file=sys.stderr,
                )
            for name, why in engine.unavailable([*engine.shipped, *engine.checkpoints()]).items():
                print(f"landgan ui: skipped {name}: {why}", file=sys.stderr)
        if block:
            try:
                while demo.is_running:
                    time.sleep(0.2)
            finally:  # Ctrl-C or a signal: stop serving, clean up, then let the CLI report it
                demo.close()
                shutil.rmtree(demo.landgan_scratch, ignore_errors=True)
    return demo


def _launch(demo, runs, host: str, port: int, concurrency: int, max_queue: int) -> None:
    """Queue and launch ``demo`` without blocking; a port in use is a UserError."""
    import gradio as gr
    from starlette.middleware import Middleware  # Gradio's dependency, so imported with it

    demo.queue(max_size=max_queue, default_concurrency_limit=concurrency, api_open=False)
    theme = gr.themes.Base(font=SYSTEM_FONTS, font_mono=["ui-monospace", "monospace"])
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            share=False,
            ssr_mode=False,
            prevent_thread_lock=True,
            quiet=True,
            show_error=False,
            theme=theme,
            footer_links=[],
            max_file_size="1mb",
            pwa=False,
            mcp_server=False,
            enable_monitoring=False,
            run_history=False,
            state_session_capacity=SESSIONS_KEPT,
            app_kwargs={"middleware": [Middleware(RequestLimit)]},
            css=PAGE_CSS,
            blocked_paths=[
                str(Path(runs).resolve()),
                *map(str, demo.landgan_engine.shipped.values()),
            ],
        )
    except OSError as e:
        why = "the port is in use" if "empty port" in str(e) else str(e).splitlines()[0]
        raise UserError(f"cannot serve on {host}:{port}: {why}; choose another --port") from None
