"""The web UI end to end: a real server on localhost, driven by headless Chromium.

Needs Playwright (pip) and a Chromium binary (Debian's ``chromium`` package, or
``$LANDGAN_CHROMIUM``); Playwright's own browser download is never used. With
``LANDGAN_UI_RUNS=FOLDER`` the test drives that runs folder's newest checkpoint instead
of a tiny one, and ``LANDGAN_UI_SCREENSHOT=PATH`` keeps the screenshot (docs/ui.png is
made this way, see docs/ui.md).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from conftest import GRADIO_WARNINGS, browser_or_skip, free_port
from test_ui import gif_length
from ui_runs import COND, tiny_runs

sync_api, CHROMIUM = browser_or_skip()
LOCAL = {"127.0.0.1", "localhost"}
pytestmark = GRADIO_WARNINGS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(url, runs folder, checkpoint name) of a UI serving on a free localhost port."""
    from landgan.ui import serve

    runs = os.environ.get("LANDGAN_UI_RUNS")
    runs = Path(runs) if runs else tiny_runs(tmp_path_factory)
    demo = serve(runs, port=free_port(), block=False, quiet=True, shipped=False)
    ckpt = COND if "LANDGAN_UI_RUNS" not in os.environ else demo.landgan_engine.checkpoints()[0]
    yield demo.local_url, runs, ckpt
    demo.close()


def slider_values(page, k: int) -> list[int]:
    return [
        int(float(page.locator(f"#cond{i} input[type=number]").input_value())) for i in range(k)
    ]


def move_slider(page, i: int, fraction: float) -> None:
    """Click the range track of condition slider ``i`` at ``fraction`` of its width, as a user does."""
    box = page.locator(f"#cond{i} input[type=range]").bounding_box()
    page.mouse.click(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2)


def wait_rebalanced(page, k: int, first_at_least: int = 0, first_at_most: int = 100) -> list[int]:
    """Wait until the server has rescaled the sliders: they sum to 100 with slider 0 in range."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        vals = slider_values(page, k)
        if sum(vals) == 100 and first_at_least <= vals[0] <= first_at_most:
            return vals
        page.wait_for_timeout(100)
    raise AssertionError(f"sliders never rebalanced: {slider_values(page, k)}")


def generate(page, previous: str | None = None) -> tuple[str, float]:
    """Click Generate; wait for 4 images (a new first one if ``previous``); its URL and seconds."""
    start = time.perf_counter()
    page.locator("#generate").click()
    page.wait_for_function(
        "([prev]) => { const im = document.querySelectorAll('#gallery img');"
        " return im.length === 4 && im[0].complete && im[0].src !== prev; }",
        arg=[previous or ""],
        timeout=30_000,
    )
    return page.locator("#gallery img").first.get_attribute("src"), time.perf_counter() - start


def fetch_image(page, url: str) -> Image.Image:
    r = page.request.get(url)
    assert r.ok, url
    return Image.open(io.BytesIO(r.body()))


@pytest.mark.slow
def test_browser_session(server, tmp_path):
    url, runs, ckpt = server
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 960}, accept_downloads=True)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            page.locator("#ckpt input").click()
            page.get_by_role("option", name=ckpt, exact=True).click()
            page.get_by_text("conditioned on sky, mountain, snow, water, vegetation").wait_for()
            k = 5
            move_slider(page, 0, 0.7)  # start: the mean sky of the labelled photos
            high = wait_rebalanced(page, k, first_at_least=60)
            src, seconds = generate(page)
            # under the images: the request next to the photo labeller's reading of them
            page.locator("#reading").get_by_text("read by the labeller").wait_for()
            shown = page.locator("#reading").inner_text()
            assert "asked" in shown and all(f"{v} %" in shown for v in high), shown
            first = fetch_image(page, src)
            assert first.format == "PNG" and first.size == (64, 64)
            print(f"\nGenerate, 4 images at 64 px, click to shown: {seconds:.2f} s")
            _screenshot(page, tmp_path)

            move_slider(page, 0, 0.1)  # little sky: the same seed must now give another image
            low = wait_rebalanced(page, k, first_at_most=30)
            assert low[1:] != high[1:]
            src2, _ = generate(page, previous=src)
            second = fetch_image(page, src2)
            assert second.size == (64, 64)
            assert not np.array_equal(np.asarray(first), np.asarray(second))
            best = page.locator("#best-of input[type=number]")  # composition models only
            best.fill("4")
            best.press("Enter")
            generate(page, previous=src2)
            page.locator("#reading").get_by_text("the best of 4 candidates").wait_for()

            page.locator("#gallery img").first.click()  # preview, then its download button
            with page.expect_download() as dl:
                page.locator('#gallery button[aria-label="Download"]').first.click()
            saved = tmp_path / dl.value.suggested_filename
            dl.value.save_as(saved)
            with Image.open(saved) as im:
                assert saved.suffix == ".png" and im.size == (64, 64)
            page.locator('#gallery button[aria-label="Close"]').first.click()
            page.locator("#random").click()  # drawn in the browser: 0 again has odds 2^-31
            page.wait_for_function("() => document.querySelector('#seed input').value !== '0'")
            assert 0 < int(page.locator("#seed input").input_value()) < 2**31
            _interpolate(page)
            _bad_input_shows_a_message(page)
            run, file = ckpt.split("/")  # the file route must not hand out checkpoints
            real = runs.resolve() / run / "checkpoints" / file
            assert real.is_file() and page.request.get(f"{url}gradio_api/file={real}").status >= 400
        finally:
            browser.close()
    remote = [
        u
        for u in requests
        if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname not in LOCAL
    ]
    assert requests and not remote, f"the page reached outside localhost: {remote[:5]}"


def _screenshot(page, tmp_path) -> None:
    out = Path(os.environ.get("LANDGAN_UI_SCREENSHOT") or tmp_path / "ui.png")
    page.evaluate("window.scrollTo(0, 0)")  # clicking the sliders may have scrolled the page
    page.wait_for_timeout(300)  # let the gallery's fade-in finish
    page.screenshot(path=str(out))
    with Image.open(out) as im:
        assert im.size == (1280, 960)


def _interpolate(page) -> None:
    page.get_by_role("tab", name="Interpolate").click()
    page.get_by_label("between two compositions").check()
    page.locator("#make_gif").click()
    page.locator("#gif img").wait_for(timeout=30_000)
    gif = fetch_image(page, page.locator("#gif img").get_attribute("src"))
    assert gif.format == "GIF" and gif_length(gif) == 30  # 16 frames there and back
    link = page.locator("#gif_file a[download]")
    assert link.get_attribute("download").endswith(".gif")
    page.get_by_role("tab", name="Generate").click()


def _bad_input_shows_a_message(page) -> None:
    page.locator("#seed input").fill("-5")
    page.locator("#generate").click()
    toast = page.locator(".toast-body", has_text="Error").last
    toast.wait_for(timeout=20_000)
    assert "minimum" in toast.inner_text() or "seed must be" in toast.inner_text()
    assert "Traceback" not in page.content()


def test_api_refuses_bad_input_and_keeps_serving(server):
    from gradio_client import Client

    from landgan.errors import UserError
    from landgan.ui import serve

    url, runs, ckpt = server
    with pytest.raises(UserError, match="the port is in use; choose another --port"):
        serve(runs, port=urlparse(url).port, block=False, quiet=True, shipped=False)
    client = Client(url, verbose=False)
    sliders = [20] * 5 + [0] * 7
    for args, msg in [
        ((ckpt, 0, 0, 65, 1), "number of images must be between 1 and 64, got 65"),
        ((ckpt, 0, 0, 0, 1), "number of images must be between 1 and 64, got 0"),
        (("../" + ckpt, 0, 0, 4, 1), "invalid checkpoint name"),
        ((ckpt, 0, 0, 4, 1, *[0] * 12), "all zero"),
    ]:
        full = args if len(args) > 5 else (*args, *sliders)
        with pytest.raises(Exception, match=msg):
            client.predict(*full, api_name="/generate")
    out, reading = client.predict(ckpt, 1, 0, 2, 1, *sliders, api_name="/generate")
    with Image.open(out[0]["image"]) as im:
        assert len(out) == 2 and im.size == (64, 64)
    assert "| asked | 20 % | 20 % | 20 % | 20 % | 20 % |" in reading
