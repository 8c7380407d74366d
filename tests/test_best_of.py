"""``generate --best-of``: each image the one of K candidates read nearest its request."""

import numpy as np
import torch
from PIL import Image

from landgan.cli import main
from landgan.config import TrainConfig
from landgan.metrics.photo_labeller import label_photos, load_photo_labeller, reader_for
from landgan.models import build_models
from landgan.sampling import candidate_seed, iter_best_of, sample_images
from landgan.train.loop import train

from conftest import dcgan4_config

NAMES = "sky,mountain,snow,water,vegetation"


def _brightness(images: np.ndarray) -> np.ndarray:
    """A stand-in reader: 'sky' is the image's mean brightness, the rest share what is left."""
    b = images.reshape(len(images), -1).mean(1) / 255.0
    return np.stack([b] + [(1 - b) / 4] * 4, 1)


def _tiny_g():
    cfg = TrainConfig(
        model="dcgan4", resolution=32, g_width=8, d_width=8, conditional=True, conditions=NAMES
    )
    G, _ = build_models(cfg.model, cfg.net_args())
    torch.manual_seed(0)
    for p in G.parameters():  # random weights that make images differ visibly per latent
        p.data.normal_(0, 0.5)
    return G.eval(), cfg


def test_the_kept_candidate_is_the_nearest_and_one_is_plain():
    G, cfg = _tiny_g()
    want = torch.tensor([1.0, 0, 0, 0, 0])  # all sky: the brightest candidate wins
    cands = np.stack(
        [sample_images(G, cfg, 6, candidate_seed(3, j), condition=want) for j in range(5)]
    )
    err = np.abs(_brightness(cands.reshape(30, 32, 32, 3)).reshape(5, 6, 5) - want.numpy()).mean(-1)
    expect = cands[err.argmin(0), np.arange(6)]
    got = np.concatenate(list(iter_best_of(G, cfg, 6, 3, None, 6, want, 5, _brightness)))
    assert np.array_equal(got, expect)
    # In smaller batches too (up to rounding: convolutions may sum in another order).
    got = np.concatenate(list(iter_best_of(G, cfg, 6, 3, None, 4, want, 5, _brightness)))
    assert np.abs(got.astype(int) - expect).max() <= 2
    assert len(set(err.argmin(0))) > 1  # not always the same candidate: the test can tell
    one = np.concatenate(list(iter_best_of(G, cfg, 6, 3, None, 4, want, 1, _brightness)))
    assert np.array_equal(one, sample_images(G, cfg, 6, 3, condition=want))


def test_reader_follows_the_models_condition_order():
    imgs = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    full = label_photos(imgs)
    swapped = reader_for(["water", "sky", "mountain", "snow", "vegetation"])(imgs)
    assert np.allclose(swapped[:, 0], full[:, 3]) and np.allclose(swapped[:, 1], full[:, 0])
    assert reader_for(["forest", "sea"]) is None


def test_generate_best_of_is_never_further_from_the_request(tmp_path, capsys):
    run = train(
        dcgan4_config(
            out=str(tmp_path / "runs"),
            resolution=32,
            batch_size=16,
            g_width=16,
            d_width=16,
            steps=2,
            sample_every=0,
            synthetic_count=64,
            conditional=True,
        ),
        progress=False,
    )
    comp, want = "water=0.6,sky=0.3,mountain=0.1", np.array([0.3, 0.1, 0, 0.6, 0])
    for k in (1, 4):
        assert (
            main(
                [
                    "generate",
                    str(run),
                    "--n",
                    "4",
                    "--composition",
                    comp,
                    "--best-of",
                    str(k),
                    "--out",
                    str(tmp_path / f"k{k}"),
                ]
            )
            == 0
        )
    err = {
        k: np.abs(
            label_photos(
                np.stack(
                    [np.asarray(Image.open(p)) for p in sorted((tmp_path / f"k{k}").iterdir())]
                )
            )
            - want
        ).mean(1)
        for k in (1, 4)
    }
    assert np.all(err[4] <= err[1] + 1e-6)
    assert (
        main(
            [
                "generate",
                str(run),
                "--n",
                "2",
                "--composition",
                comp,
                "--best-of",
                "0",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    assert "--best-of must be between 1 and 64" in capsys.readouterr().err
    assert (
        main(["generate", str(run), "--n", "2", "--best-of", "2", "--out", str(tmp_path / "y.png")])
        == 2
    )
    assert "--best-of needs --composition" in capsys.readouterr().err


def test_the_labeller_can_first_load_inside_inference_mode():
    """The UI generates under inference mode; a first click with candidates loads it there."""
    imgs = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    load_photo_labeller.cache_clear()
    with torch.inference_mode():
        inside = label_photos(imgs)
    assert np.allclose(inside, label_photos(imgs), atol=1e-6)
