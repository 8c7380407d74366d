"""``landgan ui``: a local web page to pick a checkpoint and generate landscapes.

``serve`` and ``build_app`` need Gradio (``pip install -e '.[ui]'``); importing this
package does not: :mod:`landgan.ui.app` imports Gradio only when an app is built,
after switching its analytics off.
"""

from __future__ import annotations

import importlib.util

from landgan.errors import UserError
from landgan.ui import app


def build_app(runs="runs", device: str = "cpu"):
    """The Gradio Blocks app over the checkpoints in ``runs``; see :func:`landgan.ui.app.build_app`."""
    return app.build_app(runs, device)


def serve(runs="runs", host: str = "127.0.0.1", port: int = 7860, **kw):
    """Serve the UI on ``host:port``; see :func:`landgan.ui.app.serve`."""
    # Look for Gradio without importing it: the import must come after its analytics are off.
    if importlib.util.find_spec("gradio") is None:
        raise UserError("landgan ui needs Gradio: pip install -e '.[ui]'")
    return app.serve(runs, host, port, **kw)
