"""`landgan generate` against hostile input (issue 14, item 2): a folder of many images
streams to disk batch by batch, a grid is bounded before anything loads, and a full disk is
one line with no torn file. Split from test_hostile_ui.py, which keeps the UI's server.
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from landgan import generate as generate_mod
from landgan import sampling
from landgan.cli import main
from landgan.images import to_uint8
from landgan.sampling import iter_latents, load_generator, sample_latents
from ui_runs import PLAIN, ckpt_file, tiny_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tiny_runs(tmp_path_factory)


# ---- generate: a folder streams, a grid is bounded ----------------------------------------


def test_latents_are_the_same_however_they_are_chunked():
    block = sampling.latent_block_size(4)
    n = 2 * block + 5  # three blocks, the last one short
    for t in (None, 0.7):
        whole = sample_latents(n, 4, seed=9, truncation=t)
        assert torch.equal(whole, torch.cat(list(iter_latents(n, 4, 9, t, chunk=333))))
        assert not torch.equal(whole[:block], whole[block : 2 * block])  # blocks differ
    # up to one block it is the single draw it always was: old seeds keep their images
    g = torch.Generator().manual_seed(9)
    assert torch.equal(sample_latents(50, 8, 9), torch.empty(50, 8).normal_(generator=g))
    assert sampling.latent_block_size(100) == 10_000 and sampling.latent_block_size(2**16) == 64


def test_generate_writes_a_folder_as_it_goes(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(sampling, "LATENT_BLOCK", 48)  # cross latent blocks with few images
    monkeypatch.setattr(generate_mod, "WRITE_BATCH", 16)
    out, seen = tmp_path / "many", []
    G, cfg = load_generator(ckpt_file(runs, PLAIN))

    def spy(*args, **kw):  # every forward pass: its batch, and the files already on disk
        G.register_forward_pre_hook(
            lambda m, inp: seen.append(
                (len(inp[0]), len(list(out.glob("*.png"))) if out.exists() else 0)
            )
        )
        return G, cfg, {}

    monkeypatch.setattr(generate_mod, "load_generator", spy)
    assert main(["generate", "x.pt", "--n", "100", "--seed", "3", "--out", str(out)]) == 0
    assert max(b for b, _ in seen) <= 16 and sum(b for b, _ in seen) == 100
    assert seen[-1][1] >= 100 - 16  # written batch by batch, not all at the end
    files = sorted(out.glob("*.png"))
    assert len(files) == 100 and not list(out.glob(".*"))
    with torch.no_grad():  # one forward pass over all 100 latents: nothing chunked
        whole = to_uint8(G(sample_latents(100, cfg.z_dim, 3)))
    assert all(np.array_equal(np.asarray(Image.open(f)), img) for f, img in zip(files, whole))


def test_generate_refuses_a_grid_too_large_to_hold(runs, tmp_path, monkeypatch, capsys):
    grid = tmp_path / "g.png"
    # refused before anything is loaded: the checkpoint does not even exist
    assert main(["generate", str(tmp_path / "none.pt"), "--n", "1000000", "--out", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "a .png grid holds at most 4096 images, got --n 1000000" in err and err.count("\n") == 1
    monkeypatch.setattr(generate_mod, "MAX_GRID_PIXELS", 1000)  # 4 x 34^2 px is over
    assert main(["generate", str(ckpt_file(runs, PLAIN)), "--n", "4", "--out", str(grid)]) == 2
    assert "a grid of 4 images at 32 px is over 1,000 pixels" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_generate_full_disk_is_one_line_and_no_torn_file(runs, tmp_path, monkeypatch, capsys):
    real_save, calls = Image.Image.save, []

    def full_disk(self, fp, *a, **kw):
        calls.append(fp)
        if len(calls) == 5:
            Path(fp).write_bytes(b"half a png")  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *a, **kw)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    out = tmp_path / "out"
    assert main(["generate", str(ckpt_file(runs, PLAIN)), "--n", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device; 4 of 10 images were written" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == [f"seed0000_{i:05d}.png" for i in range(4)]
