"""Mode seeking (``--mode-seeking``): G is penalised when new latents under one condition
barely change its picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from landgan.config import TrainConfig
from landgan.images import to_model
from landgan.models import get_model
from landgan.train import TRAINERS


def _trainer(weight: float, model: str = "fastgan"):
    cfg = TrainConfig.for_model(
        model=model,
        resolution=64,
        batch_size=8,
        g_width=8,
        d_width=8,
        z_dim=16,
        conditional=True,
        conditions="dark,bright",
        diffaug="",
        mode_seeking=weight,
    ).validated()
    tr = TRAINERS[get_model(model).trainer](cfg, torch.device("cpu"))
    c = torch.eye(2)[[0] * 4 + [1] * 4]
    tr.set_condition_source(lambda i: c)
    tr.c = c
    return tr


def test_a_generator_that_ignores_the_latent_pays_the_most():
    tr = _trainer(1.0)
    z = tr.sample_z(8)
    fake = tr.G_fwd(z, tr.c)
    varied = tr._mode_seeking(z, fake)["ms"]
    assert 0 < float(varied) < 1e3
    still = fake[:1].detach().expand(8, -1, -1, -1)
    tr.G_fwd = lambda z, *c: still[: len(z)]  # one picture whatever the latent
    assert float(tr._mode_seeking(z, still)["ms"]) > 1e4


@pytest.mark.parametrize("model", ["fastgan", "dcgan4"])
def test_the_term_reaches_g_only_when_asked(model):
    rng = np.random.default_rng(0)
    real = to_model(torch.from_numpy(rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)))
    on, off = _trainer(1.0, model), _trainer(0.0, model)
    assert "loss/g_ms" in on.train_step(lambda i: real)
    assert "loss/g_ms" not in off.train_step(lambda i: real)
    z = on.sample_z(8)
    on.G.zero_grad()
    on._mode_seeking(z, on.G_fwd(z, on.c))["ms"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in on.G.parameters())
