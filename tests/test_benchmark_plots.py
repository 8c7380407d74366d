"""benchmarks/plots.py and the plot options of time_to_quality.py: drawn only when asked."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import load_benchmark

ROWS = [
    {"recipe": r, "cpu_min": m, "kid": k, "kid_std": 0.002}
    for r, pts in {"dcgan4": [(10, 0.27), (20, 0.15)], "fastgan": [(10, 0.08), (20, 0.04)]}.items()
    for m, k in pts
]


def test_kid_plot_draws_a_line_per_recipe(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib", reason="the bench extra (matplotlib) is not installed")
    plots = load_benchmark("plots", monkeypatch)
    out = tmp_path / "sub" / "kid.png"
    plots.kid_plot(ROWS, out)
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape == (400, 640, 3)
    # matplotlib's first two line colours (blue, orange) are both drawn
    blue = (abs(img - [31, 119, 180]).sum(-1) < 30).sum()
    orange = (abs(img - [255, 127, 14]).sum(-1) < 30).sum()
    assert blue > 100 and orange > 100


def test_a_missing_matplotlib_is_one_line_naming_the_extra(monkeypatch):
    plots = load_benchmark("plots", monkeypatch)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    with pytest.raises(SystemExit, match=r"pip install -e '\.\[bench\]'"):
        plots.require_matplotlib()


def test_replot_draws_from_saved_rows_without_training(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib", reason="the bench extra (matplotlib) is not installed")
    ttq = load_benchmark("time_to_quality", monkeypatch)
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(ROWS))
    out = tmp_path / "kid.png"
    monkeypatch.setattr(sys, "argv", ["ttq", "--replot", str(rows), "--plot", str(out)])
    monkeypatch.setattr(ttq, "held_out_data", lambda *a: pytest.fail("no data needed"))
    ttq.main()
    assert Image.open(out).size == (640, 400)


def test_replot_without_plot_is_refused(monkeypatch, tmp_path):
    ttq = load_benchmark("time_to_quality", monkeypatch)
    monkeypatch.setattr(sys, "argv", ["ttq", "--replot", str(tmp_path / "rows.json")])
    with pytest.raises(SystemExit, match="give both"):
        ttq.main()


def test_without_plot_a_run_writes_no_picture(monkeypatch, tmp_path, capsys):
    """The report step of a run: with no --plot nothing is drawn (nowhere in docs/ either)."""
    ttq = load_benchmark("time_to_quality", monkeypatch)
    monkeypatch.setattr(ttq, "kid_plot", lambda *a: pytest.fail("plotted unasked"))
    args = ttq.argparse.Namespace(
        threads=1,
        parallel=False,
        amp="off",
        resolution=64,
        photos="p",
        n_eval=2,
        held_out=2,
        plot="",
        json="",
    )
    rows = [dict(r, chunk=1, chunk_wall_s=1.0, step=5, fid=9.0) for r in ROWS[1::2]]
    ttq.report(args, rows, ["dcgan4", "fastgan"])
    assert "KID fastgan / KID dcgan4 = 0.27" in capsys.readouterr().out
