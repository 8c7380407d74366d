"""D's condition head (``--cond-aux``): AC-GAN-style prediction of the condition."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from landgan.config import TrainConfig
from landgan.images import to_model
from landgan.losses import condition_kl
from landgan.models import build_models, get_model
from landgan.train import TRAINERS


def test_condition_kl_is_zero_at_the_target_and_log_k_at_uniform():
    c = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    assert condition_kl(c.log(), c).item() == pytest.approx(0.0, abs=1e-6)
    one_hot = torch.eye(3)[[0, 2]]
    assert condition_kl(torch.zeros(2, 3), one_hot).item() == pytest.approx(math.log(3))
    # Rows that do not sum to 1 are renormalised: a composition given in percent.
    assert condition_kl(c.log(), 100 * c).item() == pytest.approx(0.0, abs=1e-6)
    assert condition_kl(torch.randn(2, 3), c).item() > 0


@pytest.mark.parametrize("model", ["fastgan", "dcgan4"])
def test_the_head_exists_only_in_conditional_runs_with_cond_aux(model):
    base = dict(model=model, resolution=64, g_width=8, d_width=8, conditions="a,b,c")
    x = torch.randn(2, 3, 64, 64)
    c = torch.eye(3)[[0, 2]]
    _, D = build_models(model, TrainConfig(**base, conditional=True).net_args())
    D.eval()  # the same weights for both calls: no power iteration or batch statistics
    logits, prediction = D.scores(x, c)
    assert logits.shape == (2,) and prediction.shape == (2, 3)
    assert torch.allclose(logits, D(x, c))
    for off in (dict(conditional=True, cond_aux=0.0), dict(conditional=False)):
        _, D = build_models(model, TrainConfig(**base, **off).net_args())
        assert D.predict is None and D.scores(x, c if off["conditional"] else None)[1] is None


def test_configs_from_before_cond_aux_keep_their_discriminator():
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "cond_aux"}
    assert TrainConfig.from_dict(old).cond_aux == 0.0
    assert TrainConfig.from_dict(TrainConfig().to_dict()).cond_aux == TrainConfig().cond_aux


@pytest.mark.parametrize("model", ["fastgan", "dcgan4"])
def test_the_head_learns_from_reals_and_its_loss_reaches_g(model):
    """Dark images are class 0, bright ones class 1: D's prediction error falls, and G's
    loss carries the head's judgement of the fakes (loss/g_cond); cond_aux 0 drops both."""
    cfg = TrainConfig.for_model(
        model=model,
        resolution=64,
        batch_size=16,
        g_width=8,
        d_width=8,
        z_dim=16,
        conditional=True,
        conditions="dark,bright",
        diffaug="",
        lr_d=1e-3,
    ).validated()
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 60, (8, 64, 64, 3), dtype=np.uint8)
    bright = rng.integers(190, 255, (8, 64, 64, 3), dtype=np.uint8)
    real = to_model(torch.from_numpy(np.concatenate([dark, bright])))
    c = torch.eye(2)[[0] * 8 + [1] * 8]
    tr = TRAINERS[get_model(model).trainer](cfg, torch.device("cpu"))
    tr.set_condition_source(lambda i: c)
    stats = [tr.train_step(lambda i: real) for _ in range(40)]
    kl = [float(s["loss/cond"]) for s in stats]
    assert kl[0] > 0.3 and np.mean(kl[-5:]) < 0.7 * np.mean(kl[:3])
    assert all("loss/g_cond" in s for s in stats)
    tr0 = TRAINERS[get_model(model).trainer](
        dataclasses.replace(cfg, cond_aux=0.0), torch.device("cpu")
    )
    tr0.set_condition_source(lambda i: c)
    plain = tr0.train_step(lambda i: real)
    assert "loss/cond" not in plain and "loss/g_cond" not in plain
