"""What the web UI computes, without Gradio: loaded generators, images, interpolation GIFs.

Kept apart from the Gradio layout so it can be tested and benchmarked directly. All
inputs arrive already validated (see :mod:`landgan.ui.validate`) except checkpoint
names, which :meth:`Engine.model` resolves itself so nothing outside the runs folder
is ever opened.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from landgan.sampling import load_generator, nearest_seen, sample_images, sample_latents
from landgan.device import resolve_device
from landgan.images import to_uint8
from landgan.ui.validate import list_ui_checkpoints, percentages, resolve_ui_checkpoint

GIF_MIN_SIDE = 256  # GIF frames are enlarged (nearest neighbour) to at least this many px
GIF_FRAME_MS = 80  # 12.5 frames/s; a multiple of 10 ms, as GIF stores centiseconds
OUTPUTS_KEPT = 64  # newest requests' files kept in the scratch folder (Gradio copies them)
_requests = itertools.count()  # numbers output folders; next() on it is atomic under the GIL


@dataclass
class Loaded:
    """One generator ready to sample, with what the UI shows about it."""

    G: torch.nn.Module
    cfg: object  # landgan.config.TrainConfig
    step: int
    names: list[str]  # condition names, [] for an unconditional model
    bank: torch.Tensor | None  # conditions seen in training, for the "far from data" warning

    def typical(self) -> list[int]:
        """Starting slider percentages: the mean training condition, or an equal split."""
        if not self.names:
            return []
        if self.bank is not None and len(self.bank):
            return percentages(self.bank.float().mean(0).tolist())
        return percentages([1.0] * len(self.names))

    def extremes(self) -> tuple[str, str]:
        """Two contrasting seen conditions as text (most of the first name vs of the last)."""
        if self.bank is not None and len(self.bank):
            rows = self.bank.float()
            a, b = rows[int(rows[:, 0].argmax())], rows[int(rows[:, -1].argmax())]
        else:
            a, b = torch.eye(len(self.names))[0], torch.eye(len(self.names))[-1]
        fmt = lambda v: ",".join(f"{n}={x:.2f}" for n, x in zip(self.names, v.tolist()) if x >= 0.005)
        return fmt(a), fmt(b)


class Engine:
    """Generators from one runs folder, loaded on first use and kept (LRU, ``cache_size``)."""

    def __init__(self, runs_root: str | Path, device: str = "cpu", cache_size: int = 4,
                 scratch: str | Path | None = None):
        self.runs_root = Path(runs_root)
        list_ui_checkpoints(self.runs_root)  # a missing folder fails here, at start
        self.device = resolve_device(device)
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self.scratch = Path(scratch) if scratch else None

    def checkpoints(self) -> list[str]:
        """Checkpoint names under the runs folder, newest first (rescanned on every call)."""
        return list_ui_checkpoints(self.runs_root)

    def model(self, name: str) -> Loaded:
        """The generator behind ``name``; reloaded if the file changed since it was cached."""
        path = resolve_ui_checkpoint(self.runs_root, name)
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:  # one load at a time: loading twice in parallel only wastes memory
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            G, cfg, state = load_generator(path, self.device, with_state=True)
            names = cfg.condition_names
            bank = state.get("condition_bank")
            loaded = Loaded(G, cfg, int(state["step"]), names, bank)
            del state  # D, optimisers and the raw G are not needed: let them go
            self._cache[key] = loaded
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return loaded

    def generate(self, name: str, n: int, seed: int, truncation: float | None,
                 condition: torch.Tensor | None) -> tuple[list[np.ndarray], str | None]:
        """``n`` images (uint8 HWC) and a warning when the condition is far from training data."""
        m = self.model(name)
        warning = None
        if m.names:
            warning = nearest_seen(condition, m.bank, m.names)
        with torch.inference_mode():
            images = sample_images(m.G, m.cfg, n, seed, truncation,
                                   condition=condition if m.names else None)
        return list(images), warning

    def interpolate(self, name: str, seeds: tuple[int, int], conditions: tuple, frames: int,
                    truncation: float | None) -> np.ndarray:
        """``frames`` images walking from (seed A, condition A) to (seed B, condition B).

        Latents follow the great circle between the two (slerp keeps their norm typical of
        N(0, I), so middle frames are not washed out); conditions move linearly, which keeps
        their sum at 1.
        """
        m = self.model(name)
        za, zb = (sample_latents(1, m.cfg.z_dim, s, truncation)[0] for s in seeds)
        t = torch.linspace(0, 1, frames)
        z = slerp(za, zb, t)
        with torch.inference_mode():
            if m.names:
                ca, cb = conditions
                c = ca[None] * (1 - t[:, None]) + cb[None] * t[:, None]
                out = m.G(z.to(self.device), c.to(self.device))
            else:
                out = m.G(z.to(self.device))
        return to_uint8(out)

    def _out_dir(self) -> Path:
        """A fresh folder for one request's files; only the newest OUTPUTS_KEPT stay."""
        if self.scratch is None:
            raise RuntimeError("Engine has no scratch folder for output files")
        self.scratch.mkdir(parents=True, exist_ok=True)
        # mkdtemp: unique even when another process shares the scratch folder
        d = Path(tempfile.mkdtemp(prefix=f"{next(_requests):09d}-", dir=self.scratch))
        for old in sorted(self.scratch.iterdir(), key=lambda p: (_age(p), p.name))[:-OUTPUTS_KEPT]:
            shutil.rmtree(old, ignore_errors=True)
        return d

    def write_pngs(self, images: list[np.ndarray], about: dict) -> list[Path]:
        """PNG files of ``images`` with ``about`` (checkpoint, seed, ...) in their metadata.

        Every file is unique to its request (its metadata says which): Gradio names its
        cached copy by content and rewrites it in place, so two requests for the same
        image could otherwise collide while one of them is being downloaded.
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
        return paths

    def write_gif(self, frames: np.ndarray) -> Path:
        """An animated GIF that plays forward and back (unique per request, see write_pngs)."""
        d = self._out_dir()
        scale = max(1, -(-GIF_MIN_SIDE // frames.shape[1]))
        pics = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
                for f in frames]
        loop = pics + pics[-2:0:-1]  # ping-pong, so the loop has no jump
        path = d / "landgan-interpolation.gif"
        loop[0].save(path, format="GIF", save_all=True, append_images=loop[1:], loop=0,
                     duration=GIF_FRAME_MS, comment=f"landgan {os.getpid()}-{d.name}")
        return path


def _age(p: Path) -> float:
    """Modification time, or 0 for something that vanished meanwhile (pruned elsewhere)."""
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors ``a`` and ``b`` at each ``t`` -> (len(t), D)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if float(omega) < 1e-4:  # (nearly) the same direction: plain lerp is exact enough
        return a[None] * (1 - t[:, None]) + b[None] * t[:, None]
    s = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a[None] + torch.sin(t * omega)[:, None] * b[None]) / s
