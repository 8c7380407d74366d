"""Layout models: trained on where each element lies, asked for fractions like any other."""

import numpy as np
import pytest
import torch
from PIL import Image

from landgan.cli import main
from landgan.data.dataset import open_dataset
from landgan.data.synthetic import ELEMENTS
from landgan.losses import condition_kl
from landgan.models import get_model
from landgan.models.layout import (
    LayoutGenerator,
    MapModulation,
    fit_layout,
    layout_names,
    layout_of,
    pool_maps,
)
from landgan.models.spec import NetArgs
from landgan.sampling import load_generator, maps_in_turn, sample_latents

from conftest import tiny_layout_run


def test_names_round_trip_and_only_layouts_parse():
    names = layout_names(["sky", "water"], 2)
    assert names[:3] == ["sky@r0c0", "water@r0c0", "sky@r0c1"] and len(names) == 8
    assert layout_of(names) == (["sky", "water"], 2)
    assert layout_of(list(ELEMENTS)) is None  # a composition model
    assert layout_of(names[:-2]) is None  # a cell missing
    assert layout_of(names[::-1]) is None  # not in cell order
    assert layout_of([]) is None


def test_pooled_map_keeps_where_and_how_much():
    maps = torch.zeros(1, 2, 8, 8)
    maps[0, 0, :2] = 1  # sky in the top quarter
    maps[0, 1, 2:] = 1  # water below
    cells = pool_maps(maps, 4).view(4, 4, 2)  # rows, columns, elements
    assert torch.equal(cells[0, :, 0], torch.ones(4)) and torch.equal(
        cells[1:, :, 1], torch.ones(3, 4)
    )
    assert torch.allclose(cells.mean((0, 1)), maps.mean((0, 2, 3)))
    with pytest.raises(ValueError, match="does not pool"):
        pool_maps(torch.rand(1, 2, 6, 6), 4)


def test_fitted_layout_has_the_requested_mean_and_keeps_its_layout():
    g = torch.Generator().manual_seed(0)
    cells = torch.rand(3, 16, 5, generator=g)
    cells[:, :8, 3] = 0  # no water in the top half of any map
    cells = cells / cells.sum(2, keepdim=True)
    want = torch.tensor([[0.3, 0.1, 0, 0.6, 0], [0.2, 0.2, 0.2, 0.2, 0.2], [1, 0, 0, 0, 0]])
    fitted = fit_layout(cells, want)
    assert torch.allclose(fitted.mean(1), want, atol=1e-4)
    assert torch.allclose(fitted.sum(2), torch.ones(3, 16), atol=1e-5)
    assert fitted[0, :, 2].abs().max() == 0  # snow not asked for: gone
    # water asked for 60 %: it fills the bottom half first, where the map had it
    assert fitted[0, 8:, 3].mean() > 2 * fitted[0, :8, 3].mean()


class _Echo(torch.nn.Module):
    """A stand-in generator that returns the condition it was given."""

    z_dim, resolution = 4, 8

    def forward(self, z, c):
        return c


def test_the_latent_picks_among_the_nearest_maps_and_the_request_is_met():
    g = torch.Generator().manual_seed(1)
    bank = torch.rand(40, 16, 5, generator=g)
    bank = (bank / bank.sum(2, keepdim=True)).flatten(1)
    G = LayoutGenerator(_Echo(), bank, 5)
    c = torch.tensor([[0.3, 0.1, 0, 0.6, 0]]).repeat(64, 1)
    z = torch.randn(64, 4, generator=g)
    out = G(z, c).view(64, 16, 5)
    assert torch.allclose(out.mean(1), c, atol=1e-4)
    assert torch.equal(G(z, c), G(z, c))  # the same latent keeps its layout
    assert len({tuple(row.round(decimals=4).tolist()) for row in out.flatten(1)}) == 8
    near = (bank.view(40, 16, 5).mean(1) - c[0]).abs().sum(1).argsort()[: G.pool]
    picked = G.layouts(z[:1], c[:1]).view(16, 5)
    assert any(
        torch.allclose(picked, fit_layout(bank.view(40, 16, 5)[i : i + 1], c[:1])[0]) for i in near
    )
    assert LayoutGenerator(_Echo(), bank[:3], 5).choices == 3


def test_consecutive_images_of_one_request_take_every_candidate_map():
    """Eight images of one request draw eight different maps (independent signs repeat
    maps, and one map draws near copies), the same at any chunking, z's magnitudes kept."""
    g = torch.Generator().manual_seed(1)
    bank = torch.rand(40, 16, 5, generator=g)
    G = LayoutGenerator(_Echo(), (bank / bank.sum(2, keepdim=True)).flatten(1), 5)
    c = torch.tensor([[0.3, 0.1, 0, 0.6, 0]])
    maps = lambda z: len({tuple(m.round(decimals=4).tolist()) for m in G(z, c.expand(len(z), -1))})
    z = sample_latents(20, 4, 5)
    turned = maps_in_turn(G, z, 5, 0, c)
    assert maps(turned[:8]) == 8 and maps(turned[3:11]) == 8
    assert torch.equal(maps_in_turn(G, z[8:], 5, 8, c), turned[8:])  # chunks give the same
    assert torch.allclose(turned.abs(), z.abs(), atol=1e-6)
    assert sum(maps(sample_latents(8, 4, s)) == 8 for s in range(50)) < 5  # signs alone repeat
    firsts = {bool(maps_in_turn(G, sample_latents(1, 4, s), s, 0, c)[0, 0] > 0) for s in range(20)}
    assert firsts == {True, False}  # where the turn starts depends on the seed
    assert torch.equal(maps_in_turn(_Echo(), z, 5, 0, c), z)  # other generators: unchanged
    assert torch.equal(maps_in_turn(G, z, 5, 0, torch.rand(20, 80)), z)  # a map: as drawn


def test_a_wider_pool_gives_a_request_more_varied_maps():
    """The candidates are the most varied of the pool nearest the request: where the maps
    nearest in composition all share one arrangement, a wider pool brings in others."""
    g = torch.Generator().manual_seed(3)
    water, sky = torch.tensor([0, 0, 0, 1.0, 0]), torch.tensor([1.0, 0, 0, 0, 0])
    half = lambda rows: torch.stack([water if rows(i // 4, i % 4) else sky for i in range(16)])
    kinds = [half(lambda r, c: r >= 2), half(lambda r, c: c < 2), half(lambda r, c: c >= 2)]
    # 40 maps of water below, exactly half water; the side-by-side kinds a little further off
    bank = torch.cat([kinds[0].repeat(40, 1, 1)] + [k.repeat(10, 1, 1) for k in kinds[1:]])
    bank = (
        bank
        + 0.01 * torch.rand(bank.shape, generator=g) * torch.arange(len(bank))[:, None, None] / 60
    )
    bank = (bank / bank.sum(2, keepdim=True)).flatten(1)
    c = torch.tensor([[0.5, 0, 0, 0.5, 0]])
    z = torch.tensor(
        [[a, b, d, 0.0] for a in (-1.0, 1.0) for b in (-1.0, 1.0) for d in (-1.0, 1.0)]
    )

    def kinds_drawn(pool):
        maps = LayoutGenerator(_Echo(), bank, 5, choices=8, pool=pool).layouts(z, c.repeat(8, 1))
        cells = maps.view(8, 16, 5)[:, :, 3] > 0.5  # where the water is
        return len({tuple(m.tolist()) for m in cells})

    assert kinds_drawn(8) == 1 and kinds_drawn(64) == 3


def test_spatial_modulation_acts_where_the_map_changed():
    mod = MapModulation(2, 4, 3)
    h = torch.randn(1, 3, 16, 16)
    sea = torch.tensor([[0.0, 1.0]]).repeat(16, 1)  # 4x4 cells of (sky, water)
    sky_corner = sea.clone()
    sky_corner[0] = torch.tensor([1.0, 0.0])  # the top-left cell turned to sky
    assert torch.equal(mod(h, sea.flatten()[None]), h)  # zero at the start: BN unchanged
    torch.nn.init.normal_(mod.conv.weight)
    diff = (mod(h, sea.flatten()[None]) - mod(h, sky_corner.flatten()[None])).abs().sum(1)[0]
    assert diff[:4, :4].min() > 0  # the cell's own pixels change
    assert diff[8:].max() == 0 and diff[:, 8:].max() == 0  # far from it nothing does


def test_layout_head_is_scored_cell_by_cell():
    g = torch.Generator().manual_seed(2)
    cells = torch.rand(3, 16, 5, generator=g)
    cells = cells / cells.sum(2, keepdim=True)
    assert condition_kl(cells.log(), cells.flatten(1)) < 1e-6  # exact prediction: no loss
    logits = torch.randn(3, 16, 5, generator=g)
    per_cell = [condition_kl(logits[:, i], cells[:, i]) for i in range(16)]
    assert torch.allclose(condition_kl(logits, cells.flatten(1)), torch.stack(per_cell).mean())


@pytest.mark.parametrize("cond_bn", [False, True])
def test_layout_is_read_where_it_lies_only_with_cond_bn(cond_bn):
    """Without --cond-bn a layout model keeps the pilot's networks (its checkpoints load);
    with it G modulates by the map and D predicts and projects cell by cell."""
    args = NetArgs(64, 16, 8, 8, 80, cond_head=True, cond_bn=cond_bn, layout_elements=5)
    G, D = get_model("fastgan").build(args)
    z, c = torch.randn(2, 16), torch.full((2, 80), 0.2)
    logits, prediction = D.scores(G(z, c), c)
    assert logits.shape == (2,)
    assert prediction.shape == ((2, 16, 5) if cond_bn else (2, 80))
    assert isinstance(G.cond_bn[0], MapModulation) if cond_bn else G.cond_bn is None
    assert D.embed.in_features == (5 if cond_bn else 80)


@pytest.fixture(scope="module", params=[False, True], ids=["first-layer", "cond-bn"])
def layout_run(tmp_path_factory, request):
    """A tiny fastgan trained on ``label --layout`` maps of 24 blob images, the map
    entering G's first layer only or (``--cond-bn``) every block and D cell by cell."""
    return tiny_layout_run(tmp_path_factory.mktemp("layout"), request.param)


def test_label_layout_stores_maps_whose_mean_is_the_composition(layout_run, capsys):
    ds, _ = layout_run
    data = open_dataset(ds)
    assert data.condition_names == layout_names(list(ELEMENTS), 4)
    assert data.meta["condition_kind"] == "layout 4x4 (estimated: photo)"
    cells = data.conditions.reshape(24, 16, 5)
    assert np.allclose(cells.sum(2), 1, atol=1e-3)
    from landgan.metrics.photo_labeller import label_photos

    assert np.allclose(cells.mean(1), label_photos(data.images), atol=1e-4)
    assert main(["label", str(ds), "--layout", "--estimator", "rules", "--force"]) == 2
    assert "needs the photo estimator" in capsys.readouterr().err


def test_layout_model_is_asked_for_fractions(layout_run, tmp_path):
    """generate, best-of and evaluate see a composition model of the five elements."""
    _, run = layout_run
    G, cfg, state = load_generator(run, with_state=True)
    assert cfg.condition_names == list(ELEMENTS) and state["condition_bank"].shape[1] == 5
    assert state["layout_grid"] == 4
    z = torch.randn(4, G.z_dim)
    sea, snow = torch.tensor([[0.3, 0.1, 0, 0.6, 0]]), torch.tensor([[0.5, 0, 0.5, 0, 0]])
    assert not torch.allclose(G(z, sea.repeat(4, 1)), G(z, snow.repeat(4, 1)))
    out = tmp_path / "sea.png"
    assert (
        main(
            [
                "generate",
                str(run),
                "--n",
                "4",
                "--composition",
                "water=0.6,sky=0.3,mountain=0.1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(out)).shape == (2 * 66 + 2, 2 * 66 + 2, 3)
    assert (
        main(
            [
                "generate",
                str(run),
                "--n",
                "2",
                "--composition",
                "water=1",
                "--best-of",
                "2",
                "--out",
                str(tmp_path / "b.png"),
            ]
        )
        == 0
    )
    assert main(["evaluate", str(run), "--n", "16", "--n-real", "16", "--metrics", "kid"]) == 0


def test_layout_model_exports_with_a_free_batch_size(layout_run, tmp_path):
    ort = pytest.importorskip(
        "onnxruntime", reason="onnxruntime not installed (pip install landgan[export])"
    )
    _, run = layout_run
    out = tmp_path / "g.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    G, _ = load_generator(run)
    z, c = torch.randn(3, G.z_dim), torch.tensor([[0.3, 0.1, 0, 0.6, 0]]).repeat(3, 1)
    got = ort.InferenceSession(str(out)).run(None, {"z": z.numpy(), "c": c.numpy()})[0]
    assert np.abs(got - G(z, c).numpy()).max() < 1e-4


def test_ui_offers_a_slider_per_element_for_a_layout_model(layout_run, tmp_path):
    from landgan.ui.engine import Engine
    from landgan.ui.validate import validate_composition

    _, run = layout_run
    eng = Engine(run.parent, scratch=tmp_path / "out")
    (name,) = eng.checkpoints()
    m = eng.model(name)
    assert m.names == list(ELEMENTS) and sum(m.typical()) == 100
    sea = validate_composition([30, 10, 0, 60, 0], m.names)
    images, _ = eng.generate(name, 3, 0, None, sea)
    assert len(images) == 3 and images[0].shape == (64, 64, 3)
    assert len(eng.read(name, images)) == 5
    snow = validate_composition([50, 0, 50, 0, 0], m.names)
    assert eng.interpolate(name, (1, 2), (sea, snow), 3, None).shape == (3, 64, 64, 3)


def test_controllability_scores_a_layout_model_without_quality(layout_run, monkeypatch, capsys):
    """benchmarks/controllability.py --photo-ckpt on a layout model, --n-fid 0: control only."""
    import argparse

    from conftest import load_benchmark

    ds, run = layout_run
    bench = load_benchmark("controllability", monkeypatch)
    args = argparse.Namespace(
        photo_ckpt=str(run),
        held_out=str(ds),
        n_comp=4,
        best_of=1,
        seed=0,
        n_fid=0,
        uncond_ckpt=None,
        grids="",
    )
    bench.photo_part(args, extractor=None)  # no features network: quality is not scored
    out = capsys.readouterr().out
    assert "| requested vs read |" in out and "KID" not in out


def test_pool_error_prints_one_row_per_pool(layout_run, monkeypatch, capsys):
    """benchmarks/pool_error.py: the labeller's error on the same requests for each pool
    size, the model's pool set to each in turn (capped by its number of maps)."""
    from conftest import load_benchmark

    ds, run = layout_run
    bench = load_benchmark("pool_error", monkeypatch)
    argv = ["pool_error", "--ckpt", str(run), "--held-out", str(ds), "--n", "4", "--pools", "1,2"]
    monkeypatch.setattr("sys.argv", argv)
    bench.main()
    rows = [
        r for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and "MAE" not in r
    ]
    pools = [int(r.split("|")[1]) for r in rows]
    maes = [float(r.split("|")[2]) for r in rows]
    assert len(rows) == 2 and pools[0] <= pools[1] and all(0 <= m <= 1 for m in maes)
