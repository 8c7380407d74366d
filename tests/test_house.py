"""One home for each idea: defaults, help, devices, conditions, the decoder, the trainer
contract and a new model family plugging into it."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import blobs
from landgan import cli, cli_args, models
from landgan.config import TrainConfig, field_help
from landgan.data.dataset import open_dataset
from landgan.data.prepare import prepare_dataset
from landgan.metrics.sources import list_images, load_folder_images
from landgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from landgan.models.spec import ModelSpec
from landgan.sampling import load_generator, sample_images
from landgan.train import TRAINERS, Trainer
from landgan.train.loop import train


def test_cli_without_flags_is_the_library_default():
    args = cli._build_parser().parse_args(["train"])
    assert TrainConfig.for_model(**cli._given(args)) == TrainConfig()
    assert TrainConfig().preset == "fast" and TrainConfig().diffaug  # the recipe, not bare


def test_every_train_flag_help_is_the_field_comment(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    helps = field_help()
    for f in dataclasses.fields(TrainConfig):
        if f.name not in cli_args._NOT_FLAGS:
            assert " ".join(helps[f.name].split()) in text, f.name
    assert helps["lr_g"] == "generator learning rate"


@pytest.mark.parametrize("verb", ["generate", "evaluate"])
def test_bad_device_is_the_same_clear_error_on_every_verb(verb, tmp_path, capsys):
    run = tmp_path / "runs" / "00000-x"
    assert cli.main(["train", "--device", "gpu7", "--steps", "1", "--out", str(tmp_path)]) == 2
    train_err = capsys.readouterr().err
    argv = {
        "generate": ["generate", str(run), "--out", str(tmp_path / "g.png")],
        "evaluate": ["evaluate", str(run)],
    }[verb]
    assert cli.main(argv + ["--device", "gpu7"]) == 2
    err = capsys.readouterr().err
    assert "unknown device 'gpu7'" in err and err == train_err


def test_condition_names():
    assert TrainConfig(conditional=True, conditions="sky,water").condition_names == ["sky", "water"]
    assert TrainConfig(conditions="sky,water").condition_names == []
    assert TrainConfig(conditional=True, conditions="a,b,c").net_args().cond_dim == 3


def test_folder_and_prepared_dataset_decode_alike(tmp_path):
    """EXIF rotation, 16-bit and transparency handled by one decoder for both paths."""
    src = tmp_path / "photos"
    src.mkdir()
    imgs = blobs(3, 80, seed=5)
    Image.fromarray(imgs[0][:, :60]).save(src / "a.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(imgs[1][:50]).save(src / "b.jpg", exif=exif)
    Image.fromarray((imgs[2][..., 0].astype(np.uint16) * 257)).save(src / "c.png")
    prepare_dataset(src, tmp_path / "ds", 32, workers=1)
    ds = open_dataset(tmp_path / "ds")
    folder = load_folder_images(list_images(src), 32)
    assert ds.images.shape == folder.shape == (3, 32, 32, 3)
    assert np.array_equal(np.asarray(ds.images), folder)


def test_every_trainer_fulfils_the_contract():
    for kind, cls in TRAINERS.items():
        assert issubclass(cls, Trainer) and not inspect.isabstract(cls), kind
    for spec in models.MODELS.values():
        assert spec.trainer in TRAINERS


def _build_tiny_family(a):
    """A made-up family: the DCGAN networks under a new name, as a new model file would be."""
    return (
        DCGANGenerator(a.resolution, 3, a.z_dim, a.g_width),
        DCGANDiscriminator(a.resolution, 3, a.d_width),
    )


def test_a_new_family_is_a_model_and_a_registry_entry(tmp_path, monkeypatch):
    monkeypatch.setitem(models.MODELS, "tiny", ModelSpec(_build_tiny_family, (32,), "test family"))
    run = train(
        TrainConfig(
            model="tiny",
            resolution=32,
            batch_size=8,
            g_width=8,
            d_width=8,
            steps=2,
            sample_every=0,
            synthetic_count=16,
            out=str(tmp_path),
        ),
        progress=False,
    )
    G, cfg = load_generator(run)
    assert cfg.model == "tiny" and isinstance(G, DCGANGenerator)
    assert sample_images(G, cfg, 2).shape == (2, 32, 32, 3)


def test_guard_finds_networks_and_optimisers_through_the_contract():
    cfg = TrainConfig(model="autoencoder", resolution=32, batch_size=8, g_width=8, d_width=8)
    tr = TRAINERS["ae"](cfg, torch.device("cpu"))
    assert set(tr.networks()) == {"G", "E", "G_ema"}
    assert all(isinstance(n, nn.Module) for n in tr.networks().values())
    ((opt, field),) = tr.optimizers().values()
    assert field == "lr_g" and opt.param_groups[0]["lr"] == cfg.lr_g


MAX_FILE_LINES = 350


def test_every_python_file_stays_under_the_line_limit():
    """The house limit, as formatted by ``ruff format``: a longer module gets split along a seam."""
    repo = Path(__file__).resolve().parents[1]
    long = []
    for folder in ("src", "tests", "benchmarks"):
        assert (repo / folder).is_dir(), folder
        for path in sorted((repo / folder).rglob("*.py")):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_FILE_LINES:
                long.append(f"{path.relative_to(repo)}: {n} lines")
    assert not long, f"over {MAX_FILE_LINES} lines:\n" + "\n".join(long)
