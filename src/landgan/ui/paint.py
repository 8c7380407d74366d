"""The Paint tab: paint where sky, mountain, snow, water and vegetation go, then generate.

A layout model (:mod:`landgan.models.layout`) is drawn to a map of ``grid`` x ``grid``
cells. Here the user paints that map with five brushes, one per element in its
:data:`~landgan.sketch.PALETTE` colour, starting from one of
:data:`~landgan.sketch.STARTING_SKETCHES`; :func:`~landgan.sketch.sketch_cells` reads the
painting as the map, and beside the images the photo labeller's per-cell reading of them
shows how well they follow it. Other models get one line saying why they cannot be painted.

Gradio's ImageEditor sends a painting in two ways, both handled by :meth:`Painter.pixels`:
after an edit, as PNG blobs posted to the component ahead of the event and named by an id
in it; otherwise as files uploaded to Gradio's cache.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np

from landgan.errors import UserError
from landgan.sketch import PALETTE, STARTING_SKETCHES, sketch_cells
from landgan.ui.cells import map_picture, reading_markdown
from landgan.ui.engine import READ_AT_MOST
from landgan.ui.tabs import _friendly
from landgan.ui.validate import (
    BEST_OF,
    MAX_BEST_OF,
    MAX_IMAGES,
    MAX_SEED,
    _inside,
    validate_best_of,
    validate_count,
    validate_seed,
    validate_sketch,
    validate_truncation,
)

SKETCH_SIDE = 256  # canvas px: 64 px a cell of a 4x4 map, and its PNG stays a few kB
BRUSH_PX = 18  # brush radius in canvas px: a cell is crossed in two strokes
FIRST_SKETCH = "forest below mountains"  # the canvas at start: every element but water
BLOBS_KEPT = 64  # paintings posted but not yet generated from, over all sessions (each
# edit posts one; Gradio drops one only when an event reads it, so they are bounded here)
# The editor's colour swatches have no border, and the snow brush is white on white.
PAGE_CSS = "#sketch button.color { outline: 1px solid #8888; }"
CANNOT_PAINT = (
    "Paint needs a layout model, one trained on maps (`landgan label --layout`, "
    "then `train --conditional --cond-bn`); this one is not: use the Generate tab."
)


def hex_colour(rgb: tuple[int, int, int]) -> str:
    """``#RRGGBB``, as Gradio's brush takes a colour."""
    return "#" + "".join(f"{v:02X}" for v in rgb)


def legend_html() -> str:
    """The brushes' colours, each beside the element it paints (the editor shows bare swatches)."""
    swatch = (
        '<span style="display:inline-block;width:1.1em;height:1.1em;border:1px solid '
        '#888;vertical-align:middle;margin:0 0.3em 0 0.9em;background:{}"></span>{}'
    )
    return (
        '<div id="palette-legend">Brushes: '
        + "".join(swatch.format(hex_colour(c), e) for e, c in PALETTE.items())
        + "</div>"
    )


class Painter:
    """The Paint tab's handlers: start from a sketch, generate to it, read the images."""

    def __init__(self, h, cache: Path):
        self.h, self.engine = h, h.engine
        self.cache = Path(cache).resolve()  # Gradio's cache: the only place files are read from
        self.editor = None  # the gr.ImageEditor (see :func:`bound_blobs`), once built
        self.on_checkpoint = []  # components :meth:`checkpoint` updates, in order

    def layout(self, ckpt) -> tuple[list[str], int]:
        """(elements, grid) of a model that can be painted; else CANNOT_PAINT as a UserError."""
        paints = self.engine.paints(ckpt)
        if paints is None:
            raise UserError(CANNOT_PAINT.replace("`", "'"))
        return paints

    def checkpoint(self, ckpt) -> list:
        """Updates when another model is chosen: the canvas for a layout model, else the line."""
        import gradio as gr

        on = self.engine.paints(ckpt) is not None
        return [gr.update(visible=not on), gr.update(visible=on)]

    def start(self, name: str = FIRST_SKETCH) -> dict:
        """The canvas showing starting sketch ``name``, unpainted: its file is written where
        the page's other files are, within the scratch folder's bounds."""
        sketch = STARTING_SKETCHES[name](SKETCH_SIDE)
        (path,) = self.engine.write_pngs([], {}, {"sketch.png": sketch})
        return {"background": str(path), "layers": [], "composite": None}

    def pixels(self, value) -> np.ndarray:
        """The painting an event received (RGBA uint8), from the posted blobs or the cache."""
        if not isinstance(value, dict):
            raise UserError("paint a sketch first, or pick a starting one")
        if isinstance(value.get("id"), str):
            blobs = self.editor.take(value["id"])
            data = blobs and (blobs.composite or blobs.background)
            if not data:
                raise UserError(
                    "the painting did not reach the server; paint a stroke and press Generate again"
                )
            return validate_sketch(bytes(data))
        image = value.get("composite") or value.get("background")
        path = image.get("path") if isinstance(image, dict) else None
        if not isinstance(path, str) or not path:
            raise UserError("paint a sketch first, or pick a starting one")
        if not _inside(Path(path), self.cache):  # Gradio checks this too; the page is not trusted
            raise UserError("the sketch must come from this page's canvas")
        return validate_sketch(Path(path).resolve())

    def generate(self, ckpt, sketch, seed, truncation, n, best_of):
        """The Paint tab's Generate button: the gallery, the sketch and the reading as
        per-cell pictures, and the reading as a table."""
        elements, grid = self.layout(ckpt)
        seed, truncation = validate_seed(seed), validate_truncation(truncation)
        n, best_of = validate_count(n), validate_best_of(best_of)
        cells = sketch_cells(self.pixels(sketch), elements, grid)  # unpainted (clear) is sky
        images, _ = self.engine.generate(ckpt, n, seed, truncation, None, best_of, layout=cells)
        # Recorded in each PNG: the map it was drawn to, cell by cell, as well as the seed.
        about = {
            "checkpoint": ckpt,
            "seed": seed,
            "n": n,
            "truncation": truncation,
            "layout": [round(float(v), 4) for v in cells],
            "best_of": best_of,
        }
        read = self.engine.read_cells(ckpt, images)
        pictures = {
            "sketch-cells.png": map_picture(cells, elements, grid, PALETTE),
            "read-cells.png": map_picture(read, elements, grid, PALETTE),
        }
        *paths, asked, seen = self.engine.write_pngs(images, about, pictures)
        return (
            [(str(p), f"seed {seed}, image {i + 1}") for i, p in enumerate(paths)],
            str(asked),
            str(seen),
            reading_markdown(cells, read, elements, grid, min(n, READ_AT_MOST), best_of),
        )


def bound_blobs(editor) -> None:
    """Bound the paintings ``editor`` (a gr.ImageEditor) keeps, and give it ``take``.

    Gradio keeps every edit's posted blobs until an event reads them, so a page (or a
    script) that edits without generating would grow the server's memory for good; here
    the oldest go past BLOBS_KEPT. Done on the instance: a subclass of a Gradio component
    would make Gradio write a type stub (.pyi) beside this file.
    """
    lock, accept = threading.Lock(), editor.accept_blobs

    def accept_blobs(data):
        with lock:
            accept(data)
            while len(editor.blob_storage) > BLOBS_KEPT:  # the oldest first
                editor.blob_storage.pop(next(iter(editor.blob_storage)))

    def take(blob_id: str):
        """The blobs posted under ``blob_id``, removed (None if unknown or dropped)."""
        with lock:
            return editor.blob_storage.pop(blob_id, None)

    accept_blobs._is_server_fn = True  # what Gradio's component server looks up by name
    editor.accept_blobs, editor.take = accept_blobs, take


def paint_tab(gr, h, ckpt, trunc, first: str, cache: Path) -> Painter:
    """The Paint tab's layout and events; ``first`` is the model the page starts on."""
    painter = Painter(h, cache)
    on = h.engine.paints(first) is not None
    note = gr.Markdown(CANNOT_PAINT, visible=not on, elem_id="paint-note")
    with gr.Row(visible=on) as body:
        with gr.Column(scale=1):
            gr.HTML(legend_html())
            colours = [hex_colour(c) for c in PALETTE.values()]
            # Empty until the page loads: then :meth:`Painter.start` fills it (see app.py).
            painter.editor = editor = gr.ImageEditor(
                None,
                label="Sketch",
                elem_id="sketch",
                type="numpy",
                image_mode="RGBA",
                format="png",
                sources=(),
                transforms=(),
                layers=False,
                canvas_size=(SKETCH_SIDE, SKETCH_SIDE),
                fixed_canvas=True,
                buttons=[],  # eraser=False breaks Gradio 6.31's editor
                brush=gr.Brush(
                    colors=colours,
                    default_color=hex_colour(PALETTE["water"]),
                    color_mode="fixed",
                    default_size=BRUSH_PX,
                ),
            )
            with gr.Row():
                starts = {
                    name: gr.Button(name, size="sm", elem_id=f"start-{name.replace(' ', '-')}")
                    for name in STARTING_SKETCHES
                }
            with gr.Row(equal_height=True):
                seed = gr.Number(
                    0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, elem_id="paint-seed"
                )
                n = gr.Slider(1, MAX_IMAGES, value=4, step=1, label="Images", elem_id="paint-count")
            best = gr.Slider(
                1,
                MAX_BEST_OF,
                value=BEST_OF,
                step=1,
                elem_id="paint-best-of",
                label="Candidates per image (the labeller keeps the one whose "
                "cells are nearest the sketch)",
            )
            go = gr.Button("Generate", variant="primary", elem_id="paint-generate")
        with gr.Column(scale=2):
            gallery = gr.Gallery(
                label="Generated (PNG; open one to download it)",
                columns=4,
                height="auto",
                object_fit="contain",
                elem_id="paint-gallery",
                buttons=["download", "download_all", "fullscreen"],
            )
            with gr.Row():
                picture = dict(type="filepath", interactive=False, buttons=[], height=180)
                asked = gr.Image(label="The sketch, cell by cell", elem_id="paint-asked", **picture)
                read = gr.Image(
                    label="What the labeller reads in the images", elem_id="paint-read", **picture
                )
            reading = gr.Markdown("", elem_id="paint-reading")
    bound_blobs(editor)
    for name, button in starts.items():
        button.click(
            functools.partial(painter.start, name),
            None,
            editor,
            concurrency_limit=None,
            show_progress="hidden",
            api_visibility="undocumented",
            preprocess=False,
        )
    go.click(
        _friendly(painter.generate),
        [ckpt, editor, seed, trunc, n, best],
        [gallery, asked, read, reading],
        concurrency_id="generate",
        api_name="paint",
        preprocess=False,
    )
    painter.on_checkpoint = [note, body]
    return painter
