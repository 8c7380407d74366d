"""``landgan ui``: a local web page to pick a checkpoint and generate landscapes.

``serve`` and ``build_app`` need Gradio (``pip install -e '.[ui]'``); importing this
package does not: Gradio is imported only when an app is built.
"""

from __future__ import annotations


def build_app(runs="runs", device: str = "cpu"):
    """The Gradio Blocks app over the checkpoints in ``runs``; see :func:`landgan.ui.app.build_app`."""
    from landgan.ui.app import build_app as _build

    return _build(runs, device)


def serve(runs="runs", host: str = "127.0.0.1", port: int = 7860, **kw):
    """Serve the UI on ``host:port``; see :func:`landgan.ui.app.serve`."""
    import importlib.util

    from landgan.errors import UserError

    # Look for Gradio without importing it: the import must come after its analytics are off.
    if importlib.util.find_spec("gradio") is None:
        raise UserError("landgan ui needs Gradio: pip install -e '.[ui]'")
    from landgan.ui.app import serve as _serve

    return _serve(runs, host, port, **kw)
