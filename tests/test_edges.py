"""Numbers are validated at the edge: one line, exit 2, nothing created (issue 14, item 3)."""

from __future__ import annotations

import pytest
import torch

from landgan.cli import main
from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.sampling import parse_condition


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--lr-g", "nan"], "--lr-g must be a finite number > 0"),
        (["--lr-d", "-1"], "--lr-d must be a finite number > 0"),
        (["--beta1", "1.5"], "--beta1 must be between 0 and"),
        (["--ema-kimg", "nan"], "--ema-kimg must be >= 0"),
        (["--minutes", "nan"], "--minutes must be between 0 and"),
        (["--minutes", "inf"], "--minutes must be between 0 and"),
        (["--log-every", "0"], "--log-every must be >= 1"),
        (["--seed", str(2**70)], "--seed must be between 0 and"),
        (["--z-dim", str(10**12)], "--z-dim must be between 1 and"),
        (["--gp", "inf"], "--gp must be >= 0"),
    ],
)
def test_bad_training_numbers_are_one_line(tmp_path, capsys, flags, message):
    assert main(["train", *flags, "--steps", "1", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_absurd_sizes_in_a_checkpoint_config_are_refused_before_building():
    with pytest.raises(UserError, match="--z-dim must be between"):
        TrainConfig.from_dict({**TrainConfig().to_dict(), "z_dim": 10**12})


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--truncation", "nan"], "--truncation must be a finite number > 0"),
        (["--truncation", "-1"], "--truncation must be a finite number > 0"),
        (["--seed", str(2**64)], "--seed must be a whole number between 0 and"),
    ],
)
def test_bad_sampling_numbers_are_refused_before_loading(tmp_path, capsys, flags, message):
    # The checkpoint does not even exist: the numbers are checked first.
    assert (
        main(["generate", str(tmp_path / "none.pt"), "--out", str(tmp_path / "g.png"), *flags]) == 2
    )
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "spec,message",
    [
        ("sky=1e308,water=1e308", "too large"),
        ("sky=0.3,sky=0.2", "given twice"),
        ("sky=nan", "finite"),
    ],
)
def test_bad_compositions(spec, message):
    with pytest.raises(UserError, match=message):
        parse_condition(spec, ["sky", "water"])


def test_huge_but_finite_proportions_renormalise_exactly():
    vec, note = parse_condition("sky=3e38,water=1e38", ["sky", "water"])
    assert vec.dtype == torch.float32 and torch.allclose(vec, torch.tensor([0.75, 0.25]))
    assert "renormalised" in note


def test_guard_checks_the_ema_generator():
    from landgan.train import TRAINERS
    from landgan.train.guard import DivergenceGuard

    cfg = TrainConfig.for_model(model="dcgan4", resolution=32, g_width=8, d_width=8, batch_size=8)
    tr = TRAINERS["gan"](cfg, torch.device("cpu"))
    guard = DivergenceGuard(cfg, tr, log=lambda msg: None)
    assert guard.check({"loss/d": torch.tensor(1.0)})
    with torch.no_grad():
        next(tr.G_ema.parameters()).fill_(float("nan"))  # only the EMA copy goes bad
    assert not guard.check({"loss/d": torch.tensor(1.0)})  # caught: rolled back
    assert all(torch.isfinite(p).all() for p in tr.G_ema.parameters())


def test_kid_spread_uses_subsets_smaller_than_the_sets():
    """At n = 1,000 the spread is over subsets of 500, not 0 from whole-set 'subsets'."""
    import numpy as np

    from landgan.metrics.evaluate import score_features
    from landgan.metrics.tables import format_table

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8)) + 0.2
    row = score_features(real, fake, ("kid",), kid_subsets=20)
    assert row["kid_subset_size"] == 500 and row["kid_std"] > 0
    assert "20 x 500" in format_table([row])


def test_resuming_a_loose_checkpoint_writes_nothing_beside_it(tmp_path):
    """A checkpoint copied out of its run starts a new numbered run under --out."""
    import shutil

    from conftest import dcgan4_config
    from landgan.checkpoint import list_checkpoints
    from landgan.train.loop import train

    run = train(
        dcgan4_config(
            data="synthetic",
            synthetic_count=16,
            resolution=32,
            g_width=8,
            d_width=8,
            batch_size=8,
            steps=1,
            sample_every=0,
            out=str(tmp_path / "runs"),
        ),
        progress=False,
    )
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    loose = home / "sub" / "model.pt"
    shutil.copy(list_checkpoints(run)[-1], loose)
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    new = train(
        TrainConfig(),
        resume=str(loose),
        overrides={"steps": 2, "out": str(tmp_path / "runs")},
        progress=False,
    )
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before
    assert new.parent == tmp_path / "runs" and new != run and new.name.startswith("00001-")
    assert [p.name for p in list_checkpoints(new)] == ["step_0000002.pt"]
