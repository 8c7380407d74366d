"""What the web UI computes, without Gradio: loaded generators, images, interpolation GIFs.

Kept apart from the Gradio layout so it can be tested and benchmarked directly; writing
the results as files for the browser is :mod:`landgan.ui.outputs`. All
inputs arrive already validated (see :mod:`landgan.ui.validate`) except model names,
which :meth:`Engine.model` resolves itself: a name is either exactly one of the shipped
models the engine was given, or a checkpoint inside the runs folder, so nothing else is
ever opened.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from landgan.device import resolve_device
from landgan.errors import UserError
from landgan.metrics.photo_labeller import reader_for
from landgan.composer import layout_request
from landgan.sampling import (
    load_generator,
    maps_in_turn,
    nearest_seen,
    sample_images,
    sample_latents,
)
from landgan.images import to_uint8
from landgan.ui.cells import map_reader
from landgan.ui.outputs import OutputFiles
from landgan.ui.validate import list_ui_checkpoints, percentages, resolve_ui_checkpoint

READ_AT_MOST = 16  # generated images the labeller reads per request: about 1 s on 2 cores
REASON_CHARS = 200  # why a checkpoint is unavailable, as shown on the page


@dataclass
class Loaded:
    """One generator ready to sample, with what the UI shows about it."""

    G: torch.nn.Module
    cfg: object  # landgan.config.TrainConfig
    step: int
    names: list[str]  # condition names, [] for an unconditional model
    bank: torch.Tensor | None  # conditions seen in training, for the "far from data" warning
    grid: int | None = None  # cells per side for a layout model (it can be painted), else None

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
        fmt = lambda v: ",".join(
            f"{n}={x:.2f}" for n, x in zip(self.names, v.tolist()) if x >= 0.005
        )
        return fmt(a), fmt(b)


class Engine(OutputFiles):
    """Generators from one runs folder, loaded on first use and kept (LRU, ``cache_size``).

    ``shipped`` (name -> file, :data:`landgan.shipped.SHIPPED` in the app) are offered
    before the runs folder's checkpoints; with any, the runs folder may be missing.
    """

    def __init__(
        self,
        runs_root: str | Path,
        device: str = "cpu",
        cache_size: int = 4,
        scratch: str | Path | None = None,
        shipped: dict[str, Path] | None = None,
    ):
        self.runs_root = Path(runs_root)
        self.shipped = {str(k): Path(v) for k, v in (shipped or {}).items()}
        if not self.shipped:
            list_ui_checkpoints(self.runs_root)  # nothing else to show: a missing folder fails now
        self.device = resolve_device(device)
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self.scratch = Path(scratch) if scratch else None
        self._failed: dict[str, tuple[tuple, str]] = {}  # name -> (file key, why it did not load)

    def checkpoints(self) -> list[str]:
        """Checkpoint names under the runs folder, newest first (rescanned on every call).

        With shipped models a missing runs folder is simply empty.
        """
        if self.shipped and not self.runs_root.is_dir():
            return []
        return list_ui_checkpoints(self.runs_root)

    def _path(self, name) -> Path:
        """The file behind a model name: a shipped model's own file, matched exactly (run
        checkpoints are RUN/FILE.pt, so the two never collide), else one in the runs folder."""
        if isinstance(name, str) and name in self.shipped:
            return self.shipped[name]
        return resolve_ui_checkpoint(self.runs_root, name)

    def model(self, name: str) -> Loaded:
        """The generator behind ``name``; reloaded if the file changed since it was cached.

        A file that does not load (truncated, not a checkpoint, a model that cannot be
        built) is a UserError with the reason, and is remembered as unavailable until the
        file changes.
        """
        path = self._path(name)
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:  # one load at a time: loading twice in parallel only wastes memory
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            try:
                loaded = _load(path, self.device)
            except Exception as e:  # noqa: BLE001 -- an untrusted file may fail in any way
                why = (str(e).strip().splitlines() or [type(e).__name__])[0]
                why = why if len(why) <= REASON_CHARS else why[: REASON_CHARS - 3] + "..."
                self._failed[name] = (key, why)
                raise UserError(f"{name} is unavailable: {why}") from None
            self._failed.pop(name, None)
            self._cache[key] = loaded
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return loaded

    def unavailable(self, names: list[str] | None = None) -> dict[str, str]:
        """Why each of ``names`` (default: all listed) failed to load, for those unchanged since."""
        out = {}
        for name in self.checkpoints() if names is None else names:
            if name in self._failed:
                key, why = self._failed[name]
                try:
                    st = Path(key[0]).stat()
                except OSError:
                    continue
                if (st.st_mtime_ns, st.st_size) == key[1:]:
                    out[name] = why
        return out

    def generate(
        self,
        name: str,
        n: int,
        seed: int,
        truncation: float | None,
        condition: torch.Tensor | None,
        best_of: int = 1,
        layout: torch.Tensor | None = None,
    ) -> tuple[list[np.ndarray], str | None]:
        """``n`` images (uint8 HWC) and a warning when the condition is far from training data.

        ``best_of`` > 1: for a composition model, each image is the one of that many
        candidates the labeller reads nearest the request (``generate --best-of``); other
        models ignore it. ``layout``, a painted map (grid * grid * K,) in the model's
        condition order (:func:`landgan.sketch.sketch_cells`), is drawn instead of a
        composition: a layout model only, and then candidates are judged cell by cell.
        """
        m = self.model(name)
        if layout is not None:
            return self._paint(m, n, seed, truncation, layout, best_of), None
        warning = None
        if m.names:
            warning = nearest_seen(condition, m.bank, m.names)
        read = reader_for(m.names) if best_of > 1 else None
        with torch.inference_mode():
            images = sample_images(
                m.G,
                m.cfg,
                n,
                seed,
                truncation,
                condition=condition if m.names else None,
                best_of=best_of if read else 1,
                read=read,
            )
        return list(images), warning

    def _paint(
        self,
        m: Loaded,
        n: int,
        seed: int,
        truncation: float | None,
        layout: torch.Tensor,
        best_of: int,
    ) -> list[np.ndarray]:
        """Images drawn to the painted map ``layout`` (see :meth:`generate`)."""
        if not m.grid:
            raise UserError(
                "painting needs a layout model; this one is asked for proportions "
                "only (use the Generate tab)"
            )
        cond = layout_request(m.G, layout.float().flatten().to(self.device))
        read = map_reader(m.names, m.grid) if best_of > 1 else None
        with torch.inference_mode():
            images = sample_images(
                m.G,
                m.cfg,
                n,
                seed,
                truncation,
                condition=cond,
                best_of=best_of if read else 1,
                read=read,
            )
        return list(images)

    def read_cells(self, name: str, images: list[np.ndarray]) -> np.ndarray | None:
        """The labeller's per-cell reading of ``images`` (their mean, grid * grid * K in
        the model's condition order), or None for a model that cannot be painted."""
        m = self.model(name)
        read = map_reader(m.names, m.grid) if m.grid else None
        if not images or read is None:
            return None
        return read(np.stack(images[:READ_AT_MOST])).mean(0)

    def paints(self, name: str) -> tuple[list[str], int] | None:
        """(elements, cells per side) of a layout model, which the Paint tab can draw to."""
        m = self.model(name)
        return (m.names, m.grid) if m.grid and reader_for(m.names) is not None else None

    def composes(self, name: str) -> bool:
        """Whether the model is conditioned on the composition elements (the labeller's)."""
        return reader_for(self.model(name).names) is not None

    def read(self, name: str, images: list[np.ndarray]) -> list[float] | None:
        """The ``photo`` labeller's reading of ``images`` (mean fractions, in the model's
        condition order), or None for a model not conditioned on the composition elements.

        It is the estimator ``landgan label`` uses by default, so the page can show how
        close a generated picture comes to what was asked, as the data's labels would say.
        """
        read = reader_for(self.model(name).names)
        if not images or read is None:
            return None
        return [float(v) for v in read(np.stack(images[:READ_AT_MOST])).mean(0)]

    def interpolate(
        self,
        name: str,
        seeds: tuple[int, int],
        conditions: tuple,
        frames: int,
        truncation: float | None,
    ) -> np.ndarray:
        """``frames`` images walking from (seed A, condition A) to (seed B, condition B).

        Latents follow the great circle between the two (slerp keeps their norm typical of
        N(0, I), so middle frames are not washed out); conditions move linearly, which keeps
        their sum at 1. A layout model picks its map from the latent's signs, which would
        swap the whole picture mid-walk; so its two end maps are drawn once and the map
        itself moves linearly (every cell still sums to 1), and the ends are exactly the
        pictures Generate makes for those seeds and requests.
        """
        m = self.model(name)
        za, zb = (
            maps_in_turn(
                m.G,
                sample_latents(1, m.cfg.z_dim, s, truncation),
                s,
                0,
                None if c is None else c[None],
            )[0]
            for s, c in zip(seeds, conditions)
        )
        t = torch.linspace(0, 1, frames)[:, None]
        z = slerp(za, zb, t[:, 0]).to(self.device)
        with torch.inference_mode():
            if not m.names:
                return to_uint8(m.G(z))
            ca, cb = (c.float()[None].to(self.device) for c in conditions)
            if m.grid:  # the two end maps, drawn as Generate draws them
                ca = m.G.layouts(za[None].to(self.device), ca)
                cb = m.G.layouts(zb[None].to(self.device), cb)
            t = t.to(self.device)
            return to_uint8(m.G(z, ca * (1 - t) + cb * t))


def reading_table(
    names: list[str], asked: list[float], read: list[float], n: int, best_of: int = 1
) -> str:
    """Markdown: the requested composition next to the labeller's reading of ``n`` images."""
    row = lambda vals: " | ".join(f"{100 * v:.0f} %" for v in vals)
    gap = sum(abs(a - r) for a, r in zip(asked, read)) / len(names)
    chosen = (
        (
            f" Each image is the best of {best_of} candidates by this same labeller, so it "
            "reads them closer than people would."
        )
        if best_of > 1
        else ""
    )
    return (
        f"| | {' | '.join(names)} |\n|---{'|---' * len(names)}|\n| asked | {row(asked)} |\n"
        f"| read by the labeller (mean of {n} image{'s' * (n > 1)}) | {row(read)} |\n\n"
        f"Mean difference per element: {100 * gap:.0f} points (`landgan label`'s photo "
        f"estimator; it is itself about 6 points off people's judgements).{chosen}"
    )


def _load(path: Path, device) -> Loaded:
    """Load the generator of checkpoint ``path`` and what the page shows about it."""
    G, cfg, state = load_generator(path, device, with_state=True)
    # D, optimisers and the raw G in ``state`` are not kept: they go with it
    return Loaded(
        G,
        cfg,
        int(state.get("step", 0)),
        cfg.condition_names,
        state.get("condition_bank"),
        state.get("layout_grid"),
    )


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors ``a`` and ``b`` at each ``t`` -> (len(t), D)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if float(omega) < 1e-4:  # (nearly) the same direction: plain lerp is exact enough
        return a[None] * (1 - t[:, None]) + b[None] * t[:, None]
    s = torch.sin(omega)
    return (
        torch.sin((1 - t) * omega)[:, None] * a[None] + torch.sin(t * omega)[:, None] * b[None]
    ) / s
