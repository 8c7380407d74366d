"""The Generate and Interpolate tabs (layout and event wiring), and how events report errors.

``h`` is :class:`landgan.ui.handlers.Handlers`. Gradio comes in as the argument ``gr``: this
module is imported before Gradio's analytics are switched off (see :mod:`landgan.ui.app`).
"""

from __future__ import annotations

import functools

from landgan.errors import UserError
from landgan.ui.validate import (
    BEST_OF,
    MAX_BEST_OF,
    MAX_FRAMES,
    MAX_IMAGES,
    MAX_SEED,
    MAX_TRUNCATION,
)

MAX_SLIDERS = 12  # condition sliders laid out up front; a model with more is refused
SEEDS, COMPOSITIONS = "between two seeds", "between two compositions"
MESSAGE_CHARS = 300  # the longest error message the page is sent


def _friendly(fn):
    """Show a UserError as a one-line ``gr.Error`` toast (cut to MESSAGE_CHARS), not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return fn(*args)
        except UserError as e:
            import gradio as gr

            msg = str(e) if len(str(e)) <= MESSAGE_CHARS else str(e)[: MESSAGE_CHARS - 3] + "..."
            raise gr.Error(msg, print_exception=False) from None

    return wrapper


def _count_inputs(block_fn, inputs) -> None:
    """Stands in for Gradio's check of an event's input count, which quotes every value.

    Gradio's own message holds the whole request, goes to the log as a traceback and
    reaches the page as an empty "None"; this one is a line. Extra inputs Gradio drops.
    """
    if len(inputs) < len(block_fn.inputs):
        import gradio as gr

        raise gr.Error(
            f"{block_fn.name} takes {len(block_fn.inputs)} inputs, got {len(inputs)}",
            print_exception=False,
        )


def generate_tab(gr, h, ckpt, init: dict):
    """Sliders, seed, truncation, count, Generate button and gallery; returns the inputs."""
    names, start = init["names"], init["start"]
    with gr.Row():
        with gr.Column(scale=1):
            # Fixed slots, shown and relabelled per checkpoint (models differ in conditions).
            # No reset button: resetting one slider would not fire "release" to rebalance.
            sliders = [
                gr.Slider(
                    0,
                    100,
                    step=1,
                    visible=i < len(names),
                    elem_id=f"cond{i}",
                    buttons=[],
                    label=names[i] if i < len(names) else "",
                    value=start[i] if i < len(names) else 0,
                )
                for i in range(MAX_SLIDERS)
            ]
            with gr.Row(equal_height=True):
                seed = gr.Number(
                    0,
                    label="Seed",
                    precision=0,
                    minimum=0,
                    maximum=MAX_SEED,
                    elem_id="seed",
                    scale=3,
                )
                rnd = gr.Button("Random", elem_id="random", scale=1)
            trunc = gr.Slider(
                0,
                MAX_TRUNCATION,
                value=0,
                step=0.1,
                label="Truncation (0 = off)",
                elem_id="truncation",
            )
            n = gr.Slider(1, MAX_IMAGES, value=4, step=1, label="Images", elem_id="count")
            best = gr.Slider(
                1,
                MAX_BEST_OF,
                value=BEST_OF,
                step=1,
                elem_id="best-of",
                visible=init["composes"],
                label="Candidates per image (the labeller keeps the one nearest the request)",
            )
            go = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Column(scale=2):
            gallery = gr.Gallery(
                label="Generated (PNG; open one to download it)",
                columns=4,
                object_fit="contain",
                elem_id="gallery",
                buttons=["download", "download_all", "fullscreen"],
            )
            reading = gr.Markdown("", elem_id="reading")
    # The browser draws the random seed: no round trip for something this trivial.
    rnd.click(None, None, seed, js=f"() => Math.floor(Math.random() * {MAX_SEED + 1})")
    for i, s in enumerate(sliders):
        s.release(
            _friendly(functools.partial(h.rebalance, i)),
            [ckpt, *sliders],
            sliders,
            concurrency_limit=None,
            concurrency_id="sliders",
            show_progress="hidden",
            api_name=f"rebalance_{i}",
            api_visibility="undocumented",
            preprocess=False,
        )
    go.click(
        _friendly(h.generate),
        [ckpt, seed, trunc, n, best, *sliders],
        [gallery, reading],
        concurrency_id="generate",
        api_name="generate",
        preprocess=False,
    )
    return sliders, best, trunc


def interpolate_tab(gr, h, ckpt, sliders, trunc, init: dict):
    """Two seeds or two compositions -> an animated GIF to watch and download."""
    on = bool(init["names"])
    with gr.Row():
        with gr.Column(scale=1):
            mode = gr.Radio(
                [SEEDS, COMPOSITIONS],
                value=SEEDS,
                label="Interpolate",
                elem_id="mode",
                visible=on,
                info="between seeds, the composition is the Generate tab's sliders",
            )
            with gr.Row():
                seed_a = gr.Number(0, label="Seed A", precision=0, minimum=0, maximum=MAX_SEED)
                seed_b = gr.Number(1, label="Seed B", precision=0, minimum=0, maximum=MAX_SEED)
            spec_a = gr.Textbox(
                init["a"], label="Composition A (name=value,...)", visible=on, elem_id="spec_a"
            )
            spec_b = gr.Textbox(init["b"], label="Composition B", visible=on, elem_id="spec_b")
            frames = gr.Slider(2, MAX_FRAMES, value=16, step=1, label="Frames")
            make = gr.Button("Make GIF", variant="primary", elem_id="make_gif")
        with gr.Column(scale=2):
            gif = gr.Image(label="Interpolation", type="filepath", elem_id="gif", interactive=False)
            gif_file = gr.File(label="Download the GIF", elem_id="gif_file", interactive=False)
    make.click(
        _friendly(h.interpolate),
        [ckpt, mode, seed_a, seed_b, spec_a, spec_b, frames, trunc, *sliders],
        [gif, gif_file],
        concurrency_id="generate",
        api_name="interpolate",
        preprocess=False,
    )
    return mode, spec_a, spec_b
