"""`landgan label` shows its progress, and a raw photo folder is told where a dataset goes.

Labelling 6,144 photos took four silent minutes; now a bar counts photos, photos/s and
the time left, for the composition and the --layout paths alike, without changing a
single label.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from landgan import label
from landgan.cli import main
from landgan.data.dataset import open_dataset, save_dataset
from landgan.label_rules import rule_estimate
from landgan.models.layout import GRID, pool_maps

from conftest import blobs

N = 150  # three chunks, the last one short


def _bar_done(err: str, n: int) -> bool:
    """Whether ``err`` holds a finished label bar of ``n`` photos with a rate and time left."""
    bar = rf"label: 100%.*\b{n}/{n} \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ photos/s\]"
    return re.search(bar, err) is not None


def test_label_draws_a_bar_and_labels_as_before(tmp_path, capsys, monkeypatch):
    images = blobs(N, 32)
    ds = save_dataset(tmp_path / "ds", images, {"source": "test"})
    calls = []
    real = label.estimator_function
    monkeypatch.setattr(
        label, "estimator_function", lambda name: lambda x: calls.append(len(x)) or real(name)(x)
    )
    fractions = label.label_dataset(ds, estimator="rules", progress=True)
    err = capsys.readouterr().err
    assert _bar_done(err, N), err
    assert calls == [64, 64, 22]  # the bar moved as the work did, not once at the end
    assert np.allclose(fractions, rule_estimate(images, label.SIZE), atol=1e-6)
    assert np.allclose(open_dataset(ds).conditions, fractions, atol=1e-5)


def test_no_bar_when_asked_or_when_stderr_is_not_a_terminal(tmp_path, capsys):
    ds = save_dataset(tmp_path / "ds", blobs(20, 32), {"source": "test"})
    label.label_dataset(ds, estimator="rules", progress=False)
    label.label_dataset(ds, estimator="rules", force=True)  # None: pytest's stderr is no tty
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_photo_and_layout_paths_show_the_bar(tmp_path, capsys):
    from landgan.metrics.photo_labeller import composition_maps, label_photos

    images = blobs(70, 32, seed=3)
    ds = save_dataset(tmp_path / "ds", images, {"source": "test"})
    fractions = label.label_dataset(ds, progress=True)  # the default: the photo labeller
    assert _bar_done(capsys.readouterr().err, 70)
    whole = label_photos(images)  # in one call, as before the bar
    assert np.allclose(fractions, whole, atol=1e-5)
    label.label_dataset(ds, force=True, layout=True, progress=True)
    assert _bar_done(capsys.readouterr().err, 70)
    cells = pool_maps(torch.from_numpy(composition_maps(images)), GRID).numpy()
    assert np.allclose(open_dataset(ds).conditions, np.round(cells, 5), atol=1e-5)


def test_a_photo_folder_is_offered_a_dataset_beside_it(tmp_path, capsys):
    photos = tmp_path / "alps"
    photos.mkdir()
    Image.new("RGB", (80, 60), (90, 140, 220)).save(photos / "a.jpg")
    want = f"make one from these photos with: landgan prepare {photos} --out {tmp_path / 'alps-64'}"
    for argv in (
        ["label", str(photos)],
        ["train", "--data", str(photos), "--steps", "1", "--out", str(tmp_path / "runs")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and want in err, err
        assert f"--out {photos}\n" not in err  # never into the photos' own folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alps"]  # nothing written

    save_dataset(tmp_path / "alps-64", blobs(4, 32), {"source": "test"})
    assert main(["label", str(photos)]) == 2
    assert f"{tmp_path / 'alps-64'} beside it is one; use that" in capsys.readouterr().err
    (half := tmp_path / "half").mkdir()
    (half / "images.npy").write_bytes(b"")  # an interrupted dataset: made again, in place
    assert main(["label", str(half)]) == 2
    assert f"recreate it with: landgan prepare SRC --out {half} --force" in capsys.readouterr().err
