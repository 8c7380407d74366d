"""Each GAN variant of the report learns something measurable in a short run."""

import numpy as np
import pytest
import torch

from landgan.config import TrainConfig
from landgan.data.synthetic import make_synthetic_dataset
from landgan.sampling import sample_images
from landgan.images import to_model
from landgan.train.balance import AdaptiveBalancer
from landgan.train.gan import GANTrainer, cpu_has_native_bf16


@pytest.fixture(scope="module")
def data():
    return make_synthetic_dataset(256, 32, seed=0)


def _trainer(model, **kw):
    # Plain defaults (no DiffAugment) unless a case asks for it, as before the fast
    # preset became TrainConfig's own default.
    cfg = TrainConfig.for_model(
        model=model, resolution=32, batch_size=32, g_width=16, d_width=16, **{"diffaug": "", **kw}
    ).validated()
    return GANTrainer(cfg, torch.device("cpu"))


def _source(data):
    return lambda i: to_model(
        data.images[np.random.default_rng(i).choice(len(data), 32, replace=False)]
    )


def _colour_error(tr, data):
    """Mean |colour mean of samples - colour mean of data|, in 0..255 units."""
    fake = sample_images(tr.G_ema, tr.cfg, 64, seed=3).reshape(-1, 3).mean(0)
    return float(np.abs(fake - data.images.reshape(-1, 3).mean(0)).mean())


@pytest.mark.parametrize(
    "model,extra",
    [
        ("dcgan4", {}),
        ("mlp-gan", {}),
        ("dcgan4", {"loss": "hinge", "sn": True, "diffaug": "color,translation,cutout", "r1": 0.1}),
        ("dcgan4", {"balance": "adaptive"}),
    ],
)
def test_gap_opens_then_colours_move_towards_data(data, model, extra):
    tr = _trainer(model, **extra)
    before, gaps = _colour_error(tr, data), []
    for _ in range(60):
        stats = tr.train_step(_source(data))
        if "d/real" in stats:
            gaps.append(float(stats["d/real"] - stats["d/fake"]))
    assert max(gaps) > 0.3  # D separates real from fake
    # ...and G follows the data's colours (short DCGAN runs wander, hence the margin).
    assert _colour_error(tr, data) < 0.85 * before


def test_wgan_clipping_bounds_every_critic_weight(data):
    tr = _trainer("wgan")
    assert tr.cfg.clip == 0.01 and tr.cfg.d_steps == 5 and tr.cfg.optimizer == "rmsprop"
    gaps = [
        float(s["d/real"] - s["d/fake"]) for s in (tr.train_step(_source(data)) for _ in range(8))
    ]
    params = list(tr.D.parameters())
    assert all(p.abs().max() <= 0.01 + 1e-9 for p in params)
    assert any(p.abs().max() >= 0.0099 for p in params)  # clipping was active, not vacuous
    assert tr.d_updates == 40 and np.mean(gaps[-3:]) > 0  # the critic ranks real above fake


def _interpolate_grad_norm(tr, real, fake):
    eps = torch.rand(real.shape[0], 1, 1, 1)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(tr.D(mix).sum(), mix)
    return g.flatten(1).norm(dim=1)


def test_gradient_penalty_value_for_a_linear_critic():
    tr = _trainer("wgan-gp")
    w = torch.zeros(3, 32, 32)
    w[0, 0, 0] = 2.0  # gradient norm 2 everywhere -> penalty = gp * (2 - 1)^2
    tr.D = lambda x: (x * w).flatten(1).sum(1)
    x = torch.randn(4, 3, 32, 32)
    assert torch.isclose(tr._penalties(x, -x)["gp"], torch.tensor(10.0))


@pytest.mark.slow
def test_gradient_penalty_holds_the_norm_near_one(data):
    tr = _trainer("wgan-gp", gp=100.0)
    with torch.no_grad():
        fake = tr.G(tr.sample_z(32))
    source, real64 = _source(data), to_model(data.images[:32])
    for i in range(150):
        stats = tr._d_step(source(i), fake)
    norms = _interpolate_grad_norm(tr, real64, fake)
    assert abs(float(norms.mean()) - 1) < 0.25
    assert float(stats["d/real"] - stats["d/fake"]) > 1  # while still separating the two


def test_balancer_rule():
    b = AdaptiveBalancer()
    confident = torch.full((8,), 5.0)
    for _ in range(50):
        b.observe(confident, -confident)  # D right on every sample
    assert b.accuracy > 0.9
    assert [b.d_updates(1) for _ in range(4)] == [0, 0, 0, 1]  # at most 3 skips in a row
    assert b.lr_scale < 1
    for _ in range(50):
        b.observe(-confident, confident)  # D wrong on every sample
    assert b.d_updates(1) == 2  # G ahead -> an extra D update
    for _ in range(500):
        b.observe(confident, -confident)
        b.d_updates(1)
    assert b.lr_scale >= b.min_lr_scale  # bounded


@pytest.mark.parametrize("amp,layout", [("bf16", True), ("fp16", False), ("off", False)])
def test_precision_and_layout_options_train(data, amp, layout):
    """The CUDA-oriented options also run on CPU (autocast, grad scaler, NCHW layout)."""
    tr = _trainer("dcgan4", amp=amp, channels_last=layout)
    expected = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]
    assert tr.amp == expected and tr.scaler_d.is_enabled() == (amp == "fp16")
    g0 = [p.clone() for p in tr.G.parameters()]
    stats = [tr.train_step(_source(data)) for _ in range(3)][-1]
    assert all(torch.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters()))
    # The default, "native": bf16 only where the CPU computes it natively (AVX-512 BF16,
    # AMX), else float32 (the old "None" expectation held only on AVX2 machines)
    assert _trainer("dcgan4").amp == (torch.bfloat16 if cpu_has_native_bf16() else None)
