"""benchmarks/controllability.py: the blind grid a judge reads without knowing the rows."""

from __future__ import annotations

import numpy as np
from PIL import Image

from conftest import load_benchmark


def test_blind_grid_rows_are_the_requests_shuffled_and_the_key_says_how(
    tmp_path, monkeypatch, capsys
):
    bench = load_benchmark("controllability", monkeypatch)
    names = list(bench.PHOTO_ROWS)

    def sample(conds, seed):  # each request paints its own grey level: rows identify it
        level = (
            names.index(next(n for n in names if np.allclose(bench.PHOTO_ROWS[n], conds[0]))) * 40
        )
        return np.full((len(conds), 8, 8, 3), level, np.uint8)

    path = tmp_path / "blind.png"
    bench.blind_grid(sample, path)
    key = capsys.readouterr().out.split("key: ")[1].strip().split("; ")
    grid = np.asarray(Image.open(path))
    levels = [
        int(np.median(grid[r * grid.shape[0] // 6 : (r + 1) * grid.shape[0] // 6]))
        for r in range(6)
    ]
    assert levels != sorted(levels)  # not in the order of PHOTO_ROWS
    for row, entry in enumerate(key):
        assert entry.startswith(f"row {row + 1} = ")
        assert names.index(entry.split(" = ", 1)[1]) * 40 == levels[row]
