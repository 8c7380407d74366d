"""The composer: model files, shipped names, sketches, the set of maps, drawn conditions."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from landgan.cli import main
from landgan.config import TrainConfig
from landgan.data.dataset import save_dataset
from landgan.data.synthetic import ELEMENTS
from landgan.errors import UserError
from landgan.modelfile import load_model_file
from landgan.models.layout import LayoutGenerator, cover_bank, layout_names
from landgan.composer import draw_conditions, layout_request, stored_conditions
from landgan.sampling import load_generator, sample_images
from landgan.shipped import SHIPPED, resolve_model
from landgan.sketch import PALETTE, STARTING_SKETCHES, sketch_cells
from landgan.train.evaluator import TrainingEvaluator

from conftest import blobs, tiny_layout_run

ELEMS = list(ELEMENTS)


def _painted(h: int, w: int, left: str, right: str) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:, : w // 2] = PALETTE[left]
    img[:, w // 2 :] = PALETTE[right]
    return img


def test_sketch_of_any_size_pools_to_cells_where_it_was_painted():
    cells = sketch_cells(_painted(37, 50, "water", "sky"), ELEMS, 4).view(4, 4, 5)
    water, sky = ELEMS.index("water"), ELEMS.index("sky")
    assert torch.allclose(cells.sum(2), torch.ones(4, 4))
    assert torch.equal(cells[:, :2, water], torch.ones(4, 2))  # the left half is water
    assert torch.equal(cells[:, 2:, sky], torch.ones(4, 2))
    # nearest colour wins: a slightly-off green is vegetation
    off = np.full((8, 8, 3), (40, 140, 45), np.uint8)
    assert sketch_cells(off, ELEMS, 4).view(16, 5)[:, ELEMS.index("vegetation")].min() == 1


def test_sketch_transparent_pixels_are_sky_and_far_colours_name_the_palette():
    rgba = np.zeros((16, 16, 4), np.uint8)  # nothing painted
    assert sketch_cells(rgba, ELEMS, 4).view(16, 5)[:, 0].min() == 1
    photo = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with pytest.raises(UserError, match="paint with: sky #87CEFA"):
        sketch_cells(photo, ELEMS, 4)
    with pytest.raises(UserError, match="at least 4x4"):
        sketch_cells(np.zeros((2, 9, 3), np.uint8), ELEMS, 4)


def test_starting_sketches_draw_back_to_themselves():
    from landgan.ui.cells import map_picture  # the UI's, with the labeller behind it

    for make in STARTING_SKETCHES.values():
        img = make(64)
        cells = sketch_cells(img, ELEMS, 4)
        # drawn back as the Paint tab draws a map: a pure cell is its brush colour
        back = map_picture(cells, ELEMS, 4, PALETTE, 64)
        pure = cells.view(16, 5).max(1).values == 1
        assert back.shape == (64, 64, 3) and pure.any()


def test_cover_bank_keeps_real_maps_and_how_often_each_kind_occurs():
    g = torch.Generator().manual_seed(0)
    kinds = torch.eye(3).repeat_interleave(torch.tensor([60, 30, 10]), 0)  # 3 layouts, 6:3:1
    maps = kinds + 0.01 * torch.rand(100, 3, generator=g)
    bank, weights = cover_bank(maps, size=3)
    assert all(any(torch.equal(b, m) for m in maps) for b in bank)  # medoids, not averages
    order = bank.argmax(1).argsort()
    assert torch.allclose(weights[order], torch.tensor([0.6, 0.3, 0.1]))
    small, w = cover_bank(maps[:2], size=3)
    assert len(small) == 2 and torch.allclose(w, torch.tensor([0.5, 0.5]))


class _Echo(torch.nn.Module):
    z_dim, resolution = 4, 8

    def forward(self, z, c):
        return c


def test_a_layout_generator_draws_a_given_map_as_it_is_and_draws_maps_by_weight():
    bank = torch.softmax(torch.randn(6, 80, generator=torch.Generator().manual_seed(1)), 1)
    G = LayoutGenerator(_Echo(), bank, 5, weights=torch.tensor([0, 0, 0, 0, 1.0, 3.0]))
    m = bank[2:3].repeat(4, 1)
    assert torch.equal(G(torch.randn(4, 4), m), m)
    state = {"layout_bank": bank, "layout_weights": G.weights}
    drawn = draw_conditions(state, 400, seed=3)
    assert torch.equal(drawn, draw_conditions(state, 400, seed=3))
    share = (drawn == bank[5]).all(1).float().mean()
    assert 0.65 < share < 0.85 and ((drawn == bank[4]).all(1) | (drawn == bank[5]).all(1)).all()


@pytest.fixture(scope="module")
def composer(tmp_path_factory):
    """A tiny --cond-bn layout model trained on 24 labelled blob images, and its dataset."""
    return tiny_layout_run(tmp_path_factory.mktemp("composer"))


def test_a_run_keeps_its_set_of_maps_whatever_the_bank_cap(composer):
    ds, run = composer
    _, _, state = load_generator(run, with_state=True)
    from landgan.data.dataset import condition_matrix, open_dataset

    conds = torch.from_numpy(condition_matrix(open_dataset(ds))[0])
    want = stored_conditions(conds, layout_names(ELEMS, 4))
    assert torch.equal(state["layout_bank"], want["layout_bank"])
    assert abs(float(state["layout_weights"].sum()) - 1) < 1e-6


def test_the_training_evaluator_scores_what_evaluate_draws(composer):
    ds, run = composer
    _, cfg, state = load_generator(run, with_state=True)
    tcfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    ev = TrainingEvaluator.__new__(TrainingEvaluator)  # only its conditions: no Inception
    from landgan.data.dataset import condition_matrix, open_dataset

    conds = torch.from_numpy(condition_matrix(open_dataset(ds))[0])
    ev.conds = draw_conditions(stored_conditions(conds, tcfg.condition_names), 50, 4)
    # the same maps, drawn with the same weights, from what the checkpoint keeps
    assert {tuple(r.tolist()) for r in ev.conds} <= {
        tuple(r.tolist()) for r in state["layout_bank"]
    }


def test_model_file_round_trip_gives_the_same_pictures(composer, tmp_path):
    _, run = composer
    out = tmp_path / "c.safetensors"
    assert main(["export", str(run), "--format", "safetensors", "--out", str(out)]) == 0
    raw = out.read_bytes()
    assert b"__reduce__" not in raw and raw[8:9] == b"{"  # safetensors: a JSON header, no pickle
    state = load_model_file(out)
    assert state["made_by"]["trained_with"].startswith("landgan train")
    assert state["made_by"]["commit"] and "export" in state["made_by"]["exported_with"]
    sea = torch.tensor([0.3, 0.1, 0, 0.6, 0])
    a, b = (sample_images(*load_generator(t), 4, 5, condition=sea) for t in (run, out))
    assert np.array_equal(a, b)
    half = tmp_path / "h.safetensors"
    assert main(["export", str(run), "--format", "safetensors", "--half", "--out", str(half)]) == 0
    assert half.stat().st_size < 0.7 * out.stat().st_size
    assert main(["export", str(run), "--format", "safetensors", "--out", str(out)]) == 2  # exists


def test_generate_from_a_model_file_without_a_request_draws_varied_conditions(composer, tmp_path):
    _, run = composer
    f = tmp_path / "c.safetensors"
    assert main(["export", str(run), "--format", "safetensors", "--out", str(f)]) == 0
    G, cfg, state = load_generator(f, with_state=True)
    a = sample_images(G, cfg, 6, seed=2, batch_size=4, state=state)
    b = sample_images(G, cfg, 6, seed=2, batch_size=6, state=state)
    assert np.array_equal(a, b)  # the drawn conditions do not depend on the batch size
    assert main(["generate", str(f), "--n", "5", "--out", str(tmp_path / "many")]) == 0
    assert len(list((tmp_path / "many").glob("*.png"))) == 5


def test_generate_follows_a_sketch_file(composer, tmp_path, capsys):
    _, run = composer
    sketch = tmp_path / "s.png"
    Image.fromarray(_painted(90, 120, "water", "sky")).save(sketch)
    G, cfg, state = load_generator(run, with_state=True)
    cells = sketch_cells(_painted(90, 120, "water", "sky"), ELEMS, 4)
    want = sample_images(G, cfg, 3, 0, condition=layout_request(G, cells))
    out = tmp_path / "g.png"
    assert main(["generate", str(run), "--layout", str(sketch), "--n", "3", "--out", str(out)]) == 0
    assert np.array_equal(
        np.asarray(Image.open(out)), np.asarray(Image.open(_grid(want, tmp_path / "w.png")))
    )
    fitted = layout_request(G, cells, torch.tensor([0.5, 0, 0, 0.5, 0]))
    assert torch.allclose(fitted.view(16, 5).mean(0), torch.tensor([0.5, 0, 0, 0.5, 0]), atol=1e-3)
    bad = tmp_path / "photo.png"
    Image.fromarray(blobs(1, 32)[0]).save(bad)
    assert main(["generate", str(run), "--layout", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "paint with" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def _grid(images, path):
    from landgan.grid import save_grid

    return save_grid(images, path)


def test_unknown_names_list_the_shipped_models(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "landscapez", "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "landscapez" in err and ", ".join(SHIPPED) in err and len(err.strip().splitlines()) == 1
    assert resolve_model("runs/x") == "runs/x"  # a path is left to the checkpoint reader
    assert resolve_model("landscapes") == SHIPPED["landscapes"]


def test_requests_stay_on_one_device_when_the_model_is_elsewhere(composer, monkeypatch):
    """generate --composition / --layout / no request and the far-request warning, with G
    on another device (meta: shapes only) and requests made on the CPU: no device mix."""
    from landgan import sampling

    _, run = composer
    monkeypatch.setattr(sampling, "resolve_device", lambda d: torch.device(d))
    seen = []

    def fake_uint8(x):  # meta tensors hold no values: record where the images were made
        seen.append(x.device.type)
        return np.zeros((len(x), 64, 64, 3), np.uint8)

    monkeypatch.setattr(sampling, "to_uint8", fake_uint8)
    G, cfg, state = load_generator(run, "meta", with_state=True)
    assert next(G.parameters()).device.type == "meta"
    sea, _ = sampling.parse_condition("water=0.6,sky=0.4", cfg.condition_names)
    sampling.nearest_seen(sea, state["condition_bank"], cfg.condition_names)
    sample_images(G, cfg, 3, condition=sea)
    sample_images(G, cfg, 3, state=state)
    cells = sketch_cells(_painted(16, 16, "water", "sky"), ELEMS, 4)
    sample_images(G, cfg, 3, condition=layout_request(G, cells, sea))
    assert seen == ["meta"] * 3


def test_a_poster_size_sketch_is_read_without_a_per_pixel_blowup():
    big = _painted(3000, 4000, "water", "snow")
    cells = sketch_cells(big, ELEMS, 4).view(4, 4, 5)
    assert torch.equal(cells[:, :2, ELEMS.index("water")], torch.ones(4, 2))
    assert torch.equal(cells[:, 2:, ELEMS.index("snow")], torch.ones(4, 2))


@pytest.mark.slow
def test_the_shipped_composer_puts_water_where_it_was_painted(tmp_path):
    """`generate landscapes --layout FILE`: water painted on the left, then on the right,
    under a band of sky; the photo labeller reads more water on the painted side."""
    from landgan.metrics.photo_labeller import composition_maps

    if not SHIPPED["landscapes"].is_file():
        pytest.skip("the shipped composer's file is not in this checkout")
    water, ratios = ELEMS.index("water"), []
    for side in ("left", "right"):
        img = np.empty((96, 128, 3), np.uint8)
        img[:32] = PALETTE["sky"]
        img[32:] = PALETTE["mountain"]
        cols = slice(0, 64) if side == "left" else slice(64, 128)
        img[32:, cols] = PALETTE["water"]
        sketch = tmp_path / f"{side}.png"
        Image.fromarray(img).save(sketch)
        out = tmp_path / side
        assert (
            main(["generate", "landscapes", "--layout", str(sketch), "--n", "8", "--out", str(out)])
            == 0
        )
        pics = np.stack([np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))])
        maps = composition_maps(pics)[:, water]  # (N, H, W) water per location
        half = maps.shape[-1] // 2
        left, right = maps[..., :half].mean(), maps[..., half:].mean()
        ratios.append((left, right))
    (l1, r1), (l2, r2) = ratios
    assert l1 > r1 and r2 > l2, ratios


@pytest.mark.slow
def test_the_shipped_composer_is_used_by_name_in_every_verb(tmp_path):
    """generate (with and without a request), export and evaluate take `landscapes`."""
    if not SHIPPED["landscapes"].is_file():
        pytest.skip("the shipped composer's file is not in this checkout")
    assert SHIPPED["landscapes"].stat().st_size < 11 * 2**20  # "at most ~10 MB"
    state = load_model_file(SHIPPED["landscapes"])
    assert {"trained_with", "exported_with", "commit"} <= set(state["made_by"])
    assert state["layout_bank"].shape[1] == 80 and "G_ema" in state["models"]
    assert (
        main(
            [
                "generate",
                "landscapes",
                "--composition",
                "water=0.6,sky=0.3,mountain=0.1",
                "--n",
                "4",
                "--out",
                str(tmp_path / "sea.png"),
            ]
        )
        == 0
    )
    assert main(["generate", "landscapes", "--n", "6", "--out", str(tmp_path / "any")]) == 0
    pics = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "any").glob("*"))])
    assert len(pics) == 6 and pics.std(0).mean() > 10  # drawn compositions differ
    assert (
        main(["export", "landscapes", "--format", "torchscript", "--out", str(tmp_path / "g.pt")])
        == 0
    )
    held = save_dataset(tmp_path / "held", blobs(16, 64), {"source": "test"})
    assert (
        main(
            [
                "evaluate",
                "landscapes",
                "--against",
                str(held),
                "--n",
                "16",
                "--n-real",
                "16",
                "--metrics",
                "kid",
            ]
        )
        == 0
    )
