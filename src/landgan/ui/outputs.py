"""The files the web UI writes for the browser: PNGs, interpolation GIFs, and their bounds.

Browsers fetch and download what the page shows from the engine's scratch folder, one
fresh folder per request, so it cannot be emptied at once; instead the oldest requests'
folders are pruned to stay within :data:`OUTPUTS_KEPT`, :data:`FILES_KEPT` and
:data:`BYTES_KEPT`. Apart from :mod:`landgan.ui.engine` because writing and bounding files
is independent of generating the pictures; :class:`~landgan.ui.engine.Engine` takes these
methods from :class:`OutputFiles`.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

GIF_MIN_SIDE = 256  # GIF frames are enlarged (nearest neighbour) to at least this many px
GIF_FRAME_MS = 80  # 12.5 frames/s; a multiple of 10 ms, as GIF stores centiseconds
# The scratch folder keeps the newest requests' files, within all three bounds (the newest
# request always stays): browsers fetch and download from it, so it cannot be emptied at once.
OUTPUTS_KEPT, FILES_KEPT, BYTES_KEPT = 64, 512, 256 * 2**20
_requests = itertools.count()  # numbers output folders; next() on it is atomic under the GIL


class OutputFiles:
    """Writes one request's files under ``self.scratch`` and keeps that folder bounded.

    A mixin: the class using it sets ``scratch`` (a folder, or None until the app gives one).
    """

    scratch: Path | None

    def _out_dir(self) -> Path:
        """A fresh folder for one request's files (call :meth:`prune` once they are written)."""
        if self.scratch is None:
            raise RuntimeError("Engine has no scratch folder for output files")
        self.scratch.mkdir(parents=True, exist_ok=True)
        # mkdtemp: unique even when another process shares the scratch folder
        return Path(tempfile.mkdtemp(prefix=f"{next(_requests):09d}-", dir=self.scratch))

    def prune(self) -> None:
        """Drop the oldest request folders until OUTPUTS_KEPT, FILES_KEPT and BYTES_KEPT hold."""
        folders = sorted(self.scratch.iterdir(), key=lambda p: (_age(p), p.name), reverse=True)
        files = size = 0
        for i, folder in enumerate(folders):
            sizes = _sizes(folder)
            files, size = files + len(sizes), size + sum(sizes)
            if i > 0 and (i >= OUTPUTS_KEPT or files > FILES_KEPT or size > BYTES_KEPT):
                shutil.rmtree(folder, ignore_errors=True)

    def write_pngs(
        self, images: list[np.ndarray], about: dict, extra: dict[str, np.ndarray] | None = None
    ) -> list[Path]:
        """PNG files of ``images`` with ``about`` (checkpoint, seed, ...) in their metadata,
        then those of ``extra`` (file name -> picture the page shows beside them).

        Every file is unique to its request (its metadata says which): Gradio names its
        cached copy by content and rewrites it in place, so two requests for the same
        image could otherwise collide while one of them is being downloaded. Whatever the
        page shows is written here, under the scratch folder's bounds, never left to
        Gradio to copy into its cache.
        """
        d = self._out_dir()
        request = f"{os.getpid()}-{d.name}"
        paths = []
        for i, img in enumerate(images):
            info = PngInfo()
            info.add_text("Software", "landgan")
            info.add_text("Comment", json.dumps({**about, "index": i, "request": request}))
            path = d / f"landgan-seed{about.get('seed', 0)}-{i + 1}.png"
            Image.fromarray(img).save(path, pnginfo=info)
            paths.append(path)
        for name, img in (extra or {}).items():
            Image.fromarray(img).save(d / name)
            paths.append(d / name)
        self.prune()
        return paths

    def write_gif(self, frames: np.ndarray) -> Path:
        """An animated GIF that plays forward and back (unique per request, see write_pngs)."""
        d = self._out_dir()
        scale = max(1, -(-GIF_MIN_SIDE // frames.shape[1]))
        pics = [
            Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
            for f in frames
        ]
        loop = pics + pics[-2:0:-1]  # ping-pong, so the loop has no jump
        path = d / "landgan-interpolation.gif"
        loop[0].save(
            path,
            format="GIF",
            save_all=True,
            append_images=loop[1:],
            loop=0,
            duration=GIF_FRAME_MS,
            comment=f"landgan {os.getpid()}-{d.name}",
        )
        self.prune()
        return path


def _sizes(folder: Path) -> list[int]:
    """Sizes of the files in one request folder ([] if it vanished meanwhile)."""
    try:
        return [p.stat().st_size for p in folder.iterdir()]
    except OSError:
        return []


def _age(p: Path) -> float:
    """Modification time, or 0 for something that vanished meanwhile (pruned elsewhere)."""
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0
