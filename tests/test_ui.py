"""The web UI without a browser: the engine, the handlers, the CLI verb, import hygiene.

Its input checks are tested in test_ui_validate.py; the runs folders served here are built
by ui_runs.py, which every UI test module imports them from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landgan.cli import main
from landgan.errors import UserError
from landgan.metrics.photo_labeller import label_photos
from landgan.ui.validate import validate_composition
from ui_runs import COND, PLAIN, tiny_runs


def gif_length(gif: Image.Image) -> int:
    """Frames a GIF shows, counted in the UI's frame time (Pillow merges repeated frames)."""
    from landgan.ui.outputs import GIF_FRAME_MS

    total = 0
    for i in range(gif.n_frames):
        gif.seek(i)
        total += gif.info["duration"]
    return round(total / GIF_FRAME_MS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tiny_runs(tmp_path_factory)


# ---- the engine on real (tiny) checkpoints -----------------------------------------------


def test_engine_generates_and_interpolates(runs, tmp_path):
    from landgan.ui.engine import Engine
    from landgan.ui.outputs import OUTPUTS_KEPT

    eng = Engine(runs, scratch=tmp_path / "out")
    assert eng.checkpoints() == [PLAIN, COND]
    m = eng.model(COND)
    assert m.names == ["sky", "mountain", "snow", "water", "vegetation"] and eng.model(COND) is m
    assert sum(m.typical()) == 100
    sky = validate_composition([100, 0, 0, 0, 0], m.names)
    lake = validate_composition([40, 0, 0, 60, 0], m.names)
    a, _ = eng.generate(COND, 4, 3, None, sky)
    b, _ = eng.generate(COND, 4, 3, None, sky)
    c, _ = eng.generate(COND, 4, 3, None, lake)
    assert len(a) == 4 and a[0].shape == (64, 64, 3) and a[0].dtype == np.uint8
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    frames = eng.interpolate(COND, (1, 2), (sky, lake), 5, None)
    assert frames.shape == (5, 64, 64, 3)
    first = eng.interpolate(COND, (1, 9), (sky, sky), 3, None)[0]  # same start, other batch size
    assert np.abs(frames[0].astype(int) - first).max() <= 1
    gif = Image.open(eng.write_gif(frames))
    assert gif.format == "GIF" and gif_length(gif) == 8 and gif.size == (256, 256)  # ping-pong
    plain, _ = eng.generate(PLAIN, 2, 0, 1.0, None)
    assert plain[0].shape == (32, 32, 3)
    read = eng.read(COND, a)  # the photo labeller's mean reading, in the model's order
    assert len(read) == 5 and abs(sum(read) - 1) < 1e-4
    assert np.allclose(read, label_photos(np.stack(a)).mean(0), atol=1e-6)
    assert eng.read(PLAIN, plain) is None
    pngs = [eng.write_pngs(plain, {"seed": 0}) for _ in range(2)]
    assert [p.name for p in pngs[0]] == ["landgan-seed0-1.png", "landgan-seed0-2.png"]
    with Image.open(pngs[0][1]) as a, Image.open(pngs[1][1]) as b:
        assert (
            np.array_equal(np.asarray(a), plain[1]) and json.loads(a.text["Comment"])["index"] == 1
        )
        assert a.text["Comment"] != b.text["Comment"]  # same pixels, yet distinct files
    for _ in range(OUTPUTS_KEPT + 3):  # the scratch folder does not grow without bound
        eng.write_pngs(plain, {})
    assert len(list((tmp_path / "out").iterdir())) == OUTPUTS_KEPT


def test_handlers_turn_bad_input_into_messages(runs, tmp_path):
    gr = pytest.importorskip("gradio")
    from landgan.ui.app import Handlers, _friendly
    from landgan.ui.tabs import MAX_SLIDERS, SEEDS, COMPOSITIONS
    from landgan.ui.engine import Engine

    h = Handlers(Engine(runs, scratch=tmp_path))
    sliders = [20, 20, 20, 20, 20] + [0] * (MAX_SLIDERS - 5)
    with pytest.warns(UserWarning, match="far from anything in the training data"):
        gallery, reading = h.generate(COND, 5, 0, 3, 1, *sliders)  # gr.Warning, outside a request
    assert [cap for _, cap in gallery] == ["seed 5, image 1", "seed 5, image 2", "seed 5, image 3"]
    # under the images: what was asked next to what the photo labeller reads in them
    assert "| asked | 20 % | 20 % | 20 % | 20 % | 20 % |" in reading
    assert "read by the labeller (mean of 3 images)" in reading
    assert h.generate(PLAIN, 0, 0, 1, 1, *sliders)[1] == ""  # unconditional: no table
    with Image.open(gallery[2][0]) as im:  # what the download gives: a PNG that says what it is
        about, pixels = json.loads(im.text["Comment"]), np.asarray(im)
    assert im.size == (64, 64) and about["checkpoint"] == COND and about["index"] == 2
    run, file = about["checkpoint"].split("/")  # ... and landgan generate remakes it exactly
    assert (
        main(
            [
                "generate",
                str(runs / run / "checkpoints" / file),
                "--seed",
                str(about["seed"]),
                "--n",
                str(about["n"]),
                "--composition",
                about["composition"],
                "--out",
                str(tmp_path / "again"),
            ]
        )
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again" / "seed0005_00002.png")), pixels)
    with pytest.warns(UserWarning):  # each image the best of 4: said under them, and remade
        gallery, reading = h.generate(COND, 5, 0, 3, 4, *sliders)
    assert "Each image is the best of 4 candidates by this same labeller" in reading
    with Image.open(gallery[1][0]) as im:
        about, pixels = json.loads(im.text["Comment"]), np.asarray(im)
    assert (
        about["best_of"] == 4
        and main(
            [
                "generate",
                str(runs / run / "checkpoints" / file),
                "--seed",
                "5",
                "--n",
                "3",
                "--composition",
                about["composition"],
                "--best-of",
                "4",
                "--out",
                str(tmp_path / "b4"),
            ]
        )
        == 0
    )
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b4" / "seed0005_00001.png")), pixels)
    assert h.rebalance(1, COND, *sliders)[:5] == [20, 20, 20, 20, 20]
    assert h.rebalance(0, COND, 60, 10, 10, 10, 10, *sliders[5:])[:5] == [60, 10, 10, 10, 10]
    assert h.rebalance(0, COND, 60, 20, 20, 20, 20, *sliders[5:])[:5] == [60, 10, 10, 10, 10]
    gif, download = h.interpolate(COND, COMPOSITIONS, 1, 2, "sky=1", "water=1", 3, 0, *sliders)
    with Image.open(gif) as im:
        assert gif == download and gif_length(im) == 4
    later = runs / "00002-later" / "checkpoints"  # written after the page loaded: Rescan finds it
    later.mkdir(parents=True)
    shutil.copy(runs / PLAIN.replace("/", "/checkpoints/"), later / "step_0000009.pt")
    new = "00002-later/step_0000009.pt"
    choices, notice = h.refresh(COND)
    assert choices == {"__type__": "update", "choices": [new, PLAIN, COND], "value": COND}
    assert notice["visible"] is False  # nothing failed to load
    assert h.refresh("00009-gone/step_0000001.pt")[0]["value"] == new  # vanished: the newest
    shutil.rmtree(later.parent)
    plain = h.checkpoint(PLAIN)  # unconditional: every slider hidden, candidates too
    assert all(u["visible"] is False for u in plain[1 : 2 + MAX_SLIDERS])
    assert h.checkpoint(COND)[1 + MAX_SLIDERS]["visible"] is True
    h.interpolate(PLAIN, SEEDS, 1, 2, "", "", 2, 0, *sliders)
    safe = _friendly(h.generate)
    for args, msg in [
        ((COND, -1, 0, 4, 1), "seed must be between 0 and 2147483647"),
        ((COND, 0, 9, 4, 1), "truncation must be between"),
        ((COND, 0, 0, 65, 1), "number of images must be between 1 and 64"),
        ((COND, 0, 0, 4, 9), "candidates per image must be between 1 and 8"),
        (("../" + COND, 0, 0, 4, 1), "invalid checkpoint name"),
        (("/etc/passwd", 0, 0, 4, 1), "invalid checkpoint name"),
    ]:
        with pytest.raises(gr.Error, match=msg):
            safe(*args, *sliders)
    with pytest.raises(gr.Error, match="all zero"):
        safe(COND, 0, 0, 4, 1, *[0] * MAX_SLIDERS)
    with pytest.raises(gr.Error, match="unconditional"):
        _friendly(h.interpolate)(PLAIN, COMPOSITIONS, 1, 2, "a=1", "b=1", 2, 0, *sliders)


# ---- CLI and import hygiene ----------------------------------------------------------------


def test_cli_ui_verb(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("landgan.shipped.SHIPPED", {})  # a checkout without shipped models
    assert main(["ui", "--runs", str(tmp_path / "none")]) == 2
    assert "landgan: error: runs folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["ui", "--runs", str(tmp_path / "empty")]) == 2
    assert "no checkpoints under" in capsys.readouterr().err
    assert main(["ui", "--runs", str(tmp_path), "--port", "99999"]) == 2
    assert "port must be between 1 and 65535" in capsys.readouterr().err
    assert main(["ui", "--runs", str(tmp_path), "--device", "gpu7"]) == 2
    assert "unknown device 'gpu7'" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr("landgan.ui.serve", lambda *a, **kw: seen.update(args=a, kw=kw))
    assert main(["ui", "--runs", "r"]) == 0
    assert seen["args"] == ("r", "127.0.0.1", 7860)  # this machine only, unless asked


def test_with_a_shipped_model_the_ui_needs_no_runs_folder(runs, tmp_path, monkeypatch):
    from landgan.ui.app import build_app

    model = tmp_path / "m.safetensors"
    assert (
        main(
            [
                "export",
                str(sorted(runs.iterdir())[0]),
                "--format",
                "safetensors",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    monkeypatch.setattr("landgan.shipped.SHIPPED", {"landscapes": model})
    demo = build_app(tmp_path / "none")
    assert list(demo.landgan_engine.shipped) == ["landscapes"]
    monkeypatch.setattr("landgan.shipped.SHIPPED", {})
    with pytest.raises(UserError, match="not found"):
        build_app(tmp_path / "none")


def test_importing_landgan_ui_does_not_import_gradio():
    code = (
        "import sys, landgan.ui, landgan.ui.app, landgan.cli; "
        "assert 'gradio' not in sys.modules, 'gradio imported'"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
