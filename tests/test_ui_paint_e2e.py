"""The Paint tab end to end: a real server on localhost, painted in headless Chromium.

Paints water over the left half of a sketch with the mouse, generates, and checks that
the photo labeller reads more water on the left of the pictures than on the right; then
the same for the right half. This needs a trained layout model: the shipped
``landscapes`` one (the test is skipped while it is not installed), or, with
``LANDGAN_UI_PAINT_RUNS=FOLDER``, the newest checkpoint of that runs folder. Screenshots
go to ``$LANDGAN_UI_SCREENSHOTS`` (a folder) when set, else to the test's tmp folder.

Needs Playwright (pip) and a Chromium binary (Debian's ``chromium`` package, or
``$LANDGAN_CHROMIUM``); Playwright's own browser download is never used.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landgan.sketch import PALETTE
from landgan.ui.paint import BRUSH_PX, SKETCH_SIDE
from conftest import GRADIO_WARNINGS, browser_or_skip, free_port

sync_api, CHROMIUM = browser_or_skip()
pytestmark = GRADIO_WARNINGS
WATER = PALETTE["water"]
IMAGES = 8  # per Generate: the reading is their mean, so one odd picture does not decide it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(url, the model's label in the menu) of a UI serving a trained layout model on a
    free localhost port."""
    from landgan.ui import serve
    from landgan.ui.app import installed_models

    runs = os.environ.get("LANDGAN_UI_PAINT_RUNS")
    if not runs and "landscapes" not in installed_models():
        pytest.skip(
            "the shipped layout model 'landscapes' is not installed "
            "(src/landgan/pretrained/landscapes.safetensors); or set "
            "LANDGAN_UI_PAINT_RUNS to a runs folder with a trained layout model"
        )
    # Without a runs folder of its own, the page offers the shipped models alone.
    demo = serve(
        runs or tmp_path_factory.mktemp("ui") / "no-runs", port=free_port(), block=False, quiet=True
    )
    yield demo.local_url, demo.landgan_engine.checkpoints()[0] if runs else "landscapes (shipped)"
    demo.close()


def fetch(page, url: str) -> np.ndarray:
    r = page.request.get(url)
    assert r.ok, url
    return np.asarray(Image.open(io.BytesIO(r.body())).convert("RGB"))


def paint_water(page, side: str) -> None:
    """Pick the water brush and drag it, row by row, over the ``side`` half of the sketch."""
    page.locator('#sketch button[aria-label="Brush"]').click()
    page.locator('#sketch button[aria-label="Color"]').click()
    swatches = page.locator("#sketch button.color")
    colours = swatches.evaluate_all("bs => bs.map(b => getComputedStyle(b).backgroundColor)")
    swatches.nth(colours.index(f"rgb{WATER}")).click()
    box = page.locator("#sketch canvas").first.bounding_box()
    # The sketch is centred in the canvas at the zoom the toolbar shows. A stroke must start
    # on it (one that starts beside it paints nothing); the strokes run top to bottom, a
    # brush radius apart, the last a radius short of the middle line. One mouse step per
    # stroke (the editor draws the line between): each step costs headless Chromium ~0.4 s.
    zoom = int(page.locator("#sketch").get_by_text(re.compile(r"^\d+%$")).inner_text()[:-1]) / 100
    half, radius = SKETCH_SIDE * zoom / 2, BRUSH_PX * zoom
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    offsets = np.arange(radius, half, radius)  # from the middle line outwards
    for x in cx - offsets if side == "left" else cx + offsets:
        page.mouse.move(x, cy - half + 2)
        page.mouse.down()
        page.mouse.move(x, cy + half - 2)
        page.mouse.up()
    page.wait_for_timeout(500)  # the editor posts the painting a moment after the stroke


def generate(page, previous: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Click Generate and wait for a new sketch picture (every request writes new files):
    (water read per cell (4, 4), the sketch as the page shows it cell by cell, its URL)."""
    page.locator("#paint-generate").click()
    page.wait_for_function(
        "([prev]) => { const im = document.querySelector('#paint-asked img');"
        " const r = document.querySelector('#paint-reading');"
        " return im && im.complete && im.src !== prev && r.innerText.includes('cells (mean of'); }",
        arg=[previous or ""],
        timeout=120_000,
    )
    src = page.locator("#paint-asked img").get_attribute("src")
    row = page.locator("#paint-reading tr", has_text="water").inner_text().split("\t")
    water = np.array([[int(v) for v in cell.split()] for cell in row[1:]])
    return water, fetch(page, src), src


def screenshot(page, tmp_path, name: str) -> Path:
    folder = Path(os.environ.get("LANDGAN_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)  # the gallery fades in
    page.screenshot(path=str(folder / name), full_page=True)
    return folder / name


@pytest.mark.slow
def test_painted_water_goes_where_it_was_painted(server, tmp_path):
    url, name = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(url)
            if page.locator("#ckpt input").input_value() != name:  # the shipped one comes first
                page.locator("#ckpt input").click()
                page.get_by_role("option", name=name, exact=True).click()
                page.get_by_text("4x4 layout model").wait_for()
            page.get_by_role("tab", name="Paint").click()
            page.locator("#paint-count input[type=number]").fill(str(IMAGES))
            page.locator("#paint-count input[type=number]").press("Enter")
            previous, read = None, {}
            for side in ("left", "right"):
                page.locator("#start-forest-below-mountains").click()  # no water anywhere
                page.wait_for_timeout(1000)
                paint_water(page, side)
                water, asked, previous = generate(page, previous)
                # the server got the painting: the sketch's cells are water on that side only
                h, w, _ = asked.shape
                left, right = asked[h // 8, w // 8], asked[h // 8, w - w // 8]
                assert tuple(left if side == "left" else right) == WATER, (side, left, right)
                assert tuple(right if side == "left" else left) != WATER, (side, left, right)
                read[side] = water[:, :2].mean(), water[:, 2:].mean()
                screenshot(page, tmp_path, f"paint-water-{side}.png")
                assert "Traceback" not in page.content()
        finally:
            browser.close()
    print(
        f"\nwater read (left cells %, right cells %): painted left {read['left']}, "
        f"painted right {read['right']}"
    )
    assert read["left"][0] > read["left"][1], read
    assert read["right"][1] > read["right"][0], read
