"""The web UI's Paint tab and layout walks without a browser: shipped models offered first,
generating to a painted sketch, the labeller's per-cell reading, and smooth layout walks."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import dcgan4_config, tiny_layout_run
from landgan.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from landgan.cli import main
from landgan.errors import UserError
from landgan.images import to_uint8
from landgan.sampling import maps_in_turn, sample_latents
from landgan.sketch import PALETTE, STARTING_SKETCHES, sketch_cells
from landgan.train.loop import train
from landgan.ui.cells import agreement, map_picture, map_reader, reading_markdown
from landgan.ui.engine import Engine

LAYOUT = "00000-fastgan-ds-64/step_0000002.pt"  # names the fixture's runs get
STRONG = "00001-strong/step_0000002.pt"
PLAIN = "00002-dcgan4-synthetic-32/step_0000001.pt"
ELEMENTS = list(PALETTE)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A runs folder with a tiny layout model (fastgan --cond-bn, 2 steps on labelled blobs),
    a copy of it whose map modulation is random and strong (so that where the map changes,
    the picture does: what a walk test needs), and an unconditional dcgan4."""
    tmp = tmp_path_factory.mktemp("paint")
    _, run = tiny_layout_run(tmp)
    state = load_checkpoint(list_checkpoints(run)[-1])
    g = torch.Generator().manual_seed(0)
    for net in ("G", "G_ema"):
        for key, w in state["models"][net].items():
            if key.startswith("cond_bn.") and key.endswith("conv.weight"):
                w.copy_(torch.randn(w.shape, generator=g) * 0.5)
    save_checkpoint(tmp / "runs" / STRONG.replace("/", "/checkpoints/"), state)
    (tmp / "runs" / "00002-dcgan4-synthetic-32").mkdir()  # numbered after the copy
    train(
        dcgan4_config(
            out=str(tmp / "plain"),
            batch_size=8,
            g_width=8,
            d_width=8,
            sample_every=0,
            data="synthetic",
            synthetic_count=16,
            resolution=32,
            steps=1,
        ),
        progress=False,
    )
    (plain,) = (tmp / "plain").iterdir()
    shutil.rmtree(tmp / "runs" / "00002-dcgan4-synthetic-32")
    shutil.copytree(plain, tmp / "runs" / "00002-dcgan4-synthetic-32")
    return tmp / "runs"


@pytest.fixture(scope="module")
def shipped(runs, tmp_path_factory) -> dict[str, Path]:
    """The layout model as a model file outside the runs folder, as a shipped one is."""
    out = tmp_path_factory.mktemp("pkg") / "landscapes.safetensors"
    assert (
        main(
            [
                "export",
                str(runs / LAYOUT.replace("/", "/checkpoints/")),
                "--format",
                "safetensors",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return {"landscapes": out}


def water_half(side: str, size: int = 64) -> np.ndarray:
    """The "forest below mountains" sketch with water painted over one half."""
    img = STARTING_SKETCHES["forest below mountains"](size).copy()
    half = slice(0, size // 2) if side == "left" else slice(size // 2, size)
    img[:, half] = PALETTE["water"]
    return img


def steps(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change between consecutive frames, in levels of 0..255."""
    f = frames.astype(np.float64)
    return np.abs(np.diff(f, axis=0)).mean((1, 2, 3))


# ---- shipped models first --------------------------------------------------------------


def test_shipped_models_come_first_and_need_no_runs_folder(runs, shipped, tmp_path):
    from landgan.ui.app import Handlers

    h = Handlers(Engine(runs, scratch=tmp_path / "out", shipped=shipped))
    names, notice = h.choices()
    assert names[0] == "landscapes" and set(names[1:]) == {LAYOUT, STRONG, PLAIN} and not notice
    assert h.labelled(names)[:2] == [("landscapes (shipped)", "landscapes"), names[1]]
    first, init = h.first_usable()  # the page starts on it, sliders ready
    assert first == "landscapes" and init["names"] == ELEMENTS and sum(init["start"]) == 100
    assert "4x4 layout model" in init["info"]
    alone = Engine(tmp_path / "none", scratch=tmp_path / "out", shipped=shipped)
    assert alone.checkpoints() == [] and alone.model("landscapes").grid == 4
    with pytest.raises(UserError, match="runs folder not found"):  # nothing at all to show
        Engine(tmp_path / "none", scratch=tmp_path / "out")
    # Only the exact name reaches the shipped file; typed paths stay inside the runs folder.
    for typed in (
        str(shipped["landscapes"]),
        "landscapes/x.pt",
        "../landscapes",
        "Landscapes",
        "landscapes.safetensors",
        "./landscapes",
    ):
        with pytest.raises(UserError, match="checkpoint"):
            alone.model(typed)


def test_app_starts_on_the_shipped_model_without_a_runs_folder(shipped, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    from landgan.ui import app

    monkeypatch.setattr(app, "installed_models", lambda: shipped)
    demo = app.build_app(tmp_path / "none")
    try:
        (dropdown,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "ckpt"]
        assert dropdown.value == "landscapes"
        assert dropdown.choices == [("landscapes (shipped)", "landscapes")]
        assert str(tmp_path) not in str(demo.config)  # no machine paths on the page
    finally:
        shutil.rmtree(demo.landgan_scratch, ignore_errors=True)


# ---- generating to a sketch ----------------------------------------------------------------


def test_generating_to_a_sketch_draws_its_map(runs, tmp_path):
    eng = Engine(runs, scratch=tmp_path / "out")
    m = eng.model(STRONG)
    assert eng.paints(STRONG) == (ELEMENTS, 4) and eng.paints(PLAIN) is None
    left, right = (sketch_cells(water_half(s), ELEMENTS, 4) for s in ("left", "right"))
    assert float(left.view(4, 4, 5)[:, :2, 3].mean()) == 1.0  # water in the left two columns
    images, warning = eng.generate(STRONG, 3, 7, None, None, layout=left)
    assert warning is None and len(images) == 3 and images[0].shape == (64, 64, 3)
    z = sample_latents(3, m.cfg.z_dim, 7)
    with torch.inference_mode():  # the sketch itself is the map, for every image
        direct = to_uint8(m.G.G(z, left[None].expand(3, -1)))
    assert np.array_equal(np.stack(images), direct)
    other, _ = eng.generate(STRONG, 3, 7, None, None, layout=right)
    assert not np.array_equal(np.stack(images), np.stack(other))
    best, _ = eng.generate(STRONG, 2, 7, None, None, best_of=2, layout=left)
    assert len(best) == 2
    with pytest.raises(UserError, match="layout model"):
        eng.generate(PLAIN, 1, 0, None, None, layout=left)
    with pytest.raises(UserError, match="cells"):
        eng.generate(STRONG, 1, 0, None, None, layout=left[:40])


def test_reading_pools_the_labellers_map_to_the_models_cells(monkeypatch):
    maps = np.random.default_rng(0).dirichlet(np.ones(5), (2, 8, 8)).transpose(0, 3, 1, 2)
    monkeypatch.setattr("landgan.ui.cells.composition_maps", lambda images: maps.astype(np.float32))
    order = ["water", "sky", "mountain", "vegetation", "snow"]  # a model's own element order
    got = map_reader(order, 4)(np.zeros((2, 64, 64, 3), np.uint8)).reshape(2, 4, 4, 5)
    # cell (1, 2) covers the labeller's locations rows 2-3, columns 4-5; water is its index 3
    assert np.allclose(got[1, 1, 2, 0], maps[1, 3, 2:4, 4:6].mean())
    assert np.allclose(got[0, 3, 0, 1], maps[0, 0, 6:8, 0:2].mean())
    assert np.allclose(got.sum(3), 1, atol=1e-5)
    assert map_reader(["sky", "water"], 4) is None  # not the labeller's elements


def test_maps_are_drawn_and_compared_cell_by_cell():
    cells = np.zeros((4, 4, 5))
    cells[..., 0] = 1  # all sky ...
    cells[0, 0] = [0.4, 0, 0, 0.6, 0]  # ... but the top-left cell is 60 % water
    pic = map_picture(cells.ravel(), ELEMENTS, 4, PALETTE, side=160)
    assert pic.shape == (160, 160, 3)
    row = pic[20, :40]  # across the top-left cell: sky first (model order), then water
    assert (row == PALETTE["sky"]).all(1).sum() == 16
    assert (row == PALETTE["water"]).all(1).sum() == 24
    assert (pic[40] == 255).all()  # a line between cells
    read = cells.copy()
    read[0, 0] = [0, 0, 0, 0, 1]
    assert agreement(cells.ravel(), read.ravel(), ELEMENTS, 4)[0] == 15
    text = reading_markdown(cells.ravel(), read.ravel(), ELEMENTS, 4, n=3)
    assert "**15 of 16**" in text and "| water | 0 0 0 0 | 0 0 0 0 |" in text
    assert "| vegetation | 100 0 0 0 |" in text


# ---- the Paint tab's handler ---------------------------------------------------------------


def png(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def test_paint_handler_reads_the_canvas_and_refuses_anything_else(runs, tmp_path):
    gr = pytest.importorskip("gradio")
    from landgan.ui.app import Handlers
    from landgan.ui.paint import BLOBS_KEPT, Painter, bound_blobs

    cache = tmp_path / "cache"
    cache.mkdir()
    painter = Painter(Handlers(Engine(runs, scratch=tmp_path / "out")), cache)
    painter.editor = gr.ImageEditor(render=False)
    bound_blobs(painter.editor)
    start = painter.start("snowy peaks")  # a starting sketch: a file among the outputs
    assert Path(start["background"]).is_relative_to(tmp_path / "out") and not start["layers"]
    peaks = np.asarray(Image.open(start["background"]))
    assert np.array_equal(peaks, STARTING_SKETCHES["snowy peaks"](256))
    sketch = water_half("left", 256)
    (cache / "composite.png").write_bytes(png(sketch))
    gallery, asked, read, text = painter.generate(
        STRONG, {"composite": {"path": str(cache / "composite.png")}}, 3, 0, 2, 1
    )
    # what the page shows is written with the images, within the scratch folder's bounds
    assert Path(asked).parent == Path(gallery[0][0]).parent == Path(read).parent
    asked, read = np.asarray(Image.open(asked)), np.asarray(Image.open(read))
    assert len(gallery) == 2 and asked.shape == read.shape == (160, 160, 3)
    assert (asked[20, 5] == PALETTE["water"]).all() and (asked[20, 155] == PALETTE["sky"]).all()
    assert "of 16** cells (mean of 2 images" in text
    for i in range(BLOBS_KEPT + 5):  # an edit posts its blobs; the oldest go past the bound
        blob = SimpleNamespace(
            data={"type": "composite", "index": None, "id": f"e{i}"},
            files=[("composite.png", png(water_half("right", 64)))],
        )
        painter.editor.accept_blobs(blob)
    kept = painter.editor.blob_storage
    assert len(kept) == BLOBS_KEPT and "e0" not in kept and f"e{BLOBS_KEPT + 4}" in kept
    by_blob = painter.generate(STRONG, {"id": f"e{BLOBS_KEPT + 4}"}, 3, 0, 2, 1)
    asked = np.asarray(Image.open(by_blob[1]))
    assert (asked[20, 155] == PALETTE["water"]).all()  # the posted painting was used
    cleared = np.zeros((64, 64, 4), np.uint8)  # "Clear canvas", then water on the right
    cleared[:, 32:] = (*PALETTE["water"], 255)
    (cache / "cleared.png").write_bytes(png(cleared))
    asked = painter.generate(
        STRONG, {"composite": {"path": str(cache / "cleared.png")}}, 3, 0, 1, 1
    )[1]
    assert (np.asarray(Image.open(asked))[20, 5] == PALETTE["sky"]).all()  # unpainted is sky
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(png(sketch))
    (cache / "photo.jpg").write_bytes(png(sketch, "JPEG"))
    (cache / "odd.png").write_bytes(png(np.full((64, 64, 3), (255, 0, 255), np.uint8)))
    (cache / "huge.png").write_bytes(png(np.zeros((1, 4000, 3), np.uint8)))
    (cache / "junk.png").write_bytes(b"\x89PNG not really")
    for value, msg in [
        (None, "paint a sketch first"),
        ({"id": "e0"}, "did not reach the server"),
        ({"composite": {"path": str(outside)}}, "must come from this page"),
        ({"composite": {"path": str(cache / "photo.jpg")}}, "PNG or WebP"),
        ({"composite": {"path": str(cache / "odd.png")}}, "far from the palette"),
        ({"composite": {"path": str(cache / "huge.png")}}, "at most 2048 px"),
        ({"composite": {"path": str(cache / "junk.png")}}, "not a readable image"),
        ({"composite": {"path": 7}}, "paint a sketch first"),
    ]:
        with pytest.raises(UserError, match=msg):
            painter.generate(STRONG, value, 3, 0, 1, 1)
    with pytest.raises(UserError, match="Paint needs a layout model") as e:
        painter.generate(PLAIN, {"composite": {"path": str(cache / "composite.png")}}, 3, 0, 1, 1)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="number of images"):
        painter.generate(STRONG, {"composite": {"path": str(cache / "composite.png")}}, 3, 0, 0, 1)


# ---- smooth walks --------------------------------------------------------------------------


def test_layout_walks_move_the_map_smoothly(runs, tmp_path):
    """The walk is continuous: with twice the frames, the largest step between frames
    halves. The old walk, where each frame picked its map by its latent's signs, jumps
    where a sign flips, and that step stays the same however many frames there are."""
    eng = Engine(runs, scratch=tmp_path / "out")
    m = eng.model(STRONG)
    sea = torch.tensor([0.3, 0.1, 0, 0.6, 0])
    za, zb = (
        maps_in_turn(m.G, sample_latents(1, m.cfg.z_dim, s), s, 0, sea[None])[0] for s in (1, 2)
    )
    assert ((za[:3] > 0) != (zb[:3] > 0)).any()  # the maps the two seeds pick differ
    ratio = (
        steps(eng.interpolate(STRONG, (1, 2), (sea, sea), 31, None)).max()
        / steps(eng.interpolate(STRONG, (1, 2), (sea, sea), 16, None)).max()
    )
    assert ratio < 0.7, ratio
    from landgan.ui.engine import slerp

    def old_walk(frames):
        with torch.inference_mode():
            z = slerp(za, zb, torch.linspace(0, 1, frames))
            return to_uint8(m.G(z, sea[None].expand(frames, -1)))

    assert steps(old_walk(31)).max() / steps(old_walk(16)).max() > 0.7  # the test can fail
    snow = torch.tensor([0.5, 0, 0.5, 0, 0])
    for seeds, conds in [((1, 2), (sea, sea)), ((3, 3), (sea, snow))]:
        frames = eng.interpolate(STRONG, seeds, conds, 5, None)
        for end, seed, cond in [(0, seeds[0], conds[0]), (-1, seeds[1], conds[1])]:
            plain = eng.generate(STRONG, 1, seed, None, cond)[0][0]
            assert np.abs(frames[end].astype(int) - plain).max() <= 1  # the ends are Generate's
