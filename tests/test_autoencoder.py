"""Non-adversarial baselines: shapes, the fitted code Gaussian, the VAE's KL,
reconstruction learning, generation through ``landgan generate`` and exact resume."""

import numpy as np
import pytest
import torch

from landgan.config import TrainConfig
from landgan.sampling import load_generator, sample_images
from landgan.models import MODELS, NetArgs, build_models
from landgan.models.autoencoder import CodeStats, GaussianDecoder
from landgan.train.autoencoder import kl_divergence
from landgan.checkpoint import list_checkpoints, load_checkpoint
from landgan.train.loop import train


@pytest.fixture(autouse=True)
def _one_thread():
    """Run these small networks on one thread: on a shared, busy CPU, intra-op threads
    wait on each other and make each step ten times slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(out, data, model, **kw):
    base = dict(
        model=model,
        data=str(data),
        out=str(out),
        resolution=32,
        batch_size=16,
        g_width=16,
        d_width=16,
        z_dim=32,
        steps=10,
        sample_every=0,
        ckpt_every=0,
        log_every=1,
    )
    return TrainConfig(**{**MODELS[model].defaults, **base, **kw})


def _stream(n_batches=40, batch=25, dim=4, seed=0):
    """Batches of codes from a fixed, correlated, off-centre Gaussian."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    mean = torch.arange(dim, dtype=torch.float64) - 1.5
    return (
        [
            mean + torch.randn(batch, dim, generator=g, dtype=torch.float64) @ a.T
            for _ in range(n_batches)
        ],
        mean,
        a @ a.T,
    )


@pytest.mark.parametrize("model", ["autoencoder", "vae"])
@pytest.mark.parametrize("res", [32, 64])
def test_forward_shapes(model, res):
    G, E = build_models(model, NetArgs(res, z_dim=20, g_width=8, d_width=8))
    x = G(torch.randn(3, 20))
    assert x.shape == (3, 3, res, res) and x.min() >= -1 and x.max() <= 1
    codes = E(x)
    if model == "vae":
        assert [t.shape for t in codes] == [(3, 20), (3, 20)]
    else:
        assert codes.shape == (3, 20)
        # Before any fit the latent Gaussian is N(0, I): G decodes z itself.
        z = torch.randn(3, 20)
        assert torch.equal(G.eval()(z), G.decoder(z))


def test_code_stats_are_exact_without_decay():
    batches, _, _ = _stream()
    stats = CodeStats(4)
    for b in batches:
        stats.update(b)
    every = torch.cat(batches)
    assert stats.weight == len(every)
    torch.testing.assert_close(stats.mean, every.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        stats.covariance(), torch.cov(every.T, correction=0), rtol=1e-10, atol=1e-12
    )


def test_code_stats_moving_average_tracks_a_shift():
    batches, mean, cov = _stream(n_batches=200)
    stats = CodeStats(4)
    for b in batches:
        stats.update(b, decay=0.98)
    # A stationary stream: the moving estimate sits near the true mean and covariance.
    assert (stats.mean - mean).abs().max() < 0.5
    assert (stats.covariance() - cov).abs().max() < 0.25 * cov.abs().max()
    for b in batches[:100]:
        stats.update(b + 10, decay=0.98)
    # Old codes are forgotten: after 100 batches (weight 0.98**100 ~ 0.13) of shifted
    # codes the estimate has moved most of the way.
    assert ((stats.mean - mean) > 8).all()


def test_gaussian_decoder_samples_the_fitted_gaussian():
    batches, _, _ = _stream()
    stats = CodeStats(4)
    for b in batches:
        stats.update(b)
    G = GaussianDecoder(torch.nn.Identity(), 4)
    G.fit(stats)
    torch.testing.assert_close(G.mean, stats.mean.float())
    # chol chol^T is the covariance up to the small relative ridge.
    torch.testing.assert_close(G.chol @ G.chol.T, stats.covariance().float(), rtol=0, atol=1e-2)
    out = G(torch.randn(200_000, 4, generator=torch.Generator().manual_seed(1))).double()
    torch.testing.assert_close(out.mean(0), stats.mean, rtol=0, atol=0.05)
    torch.testing.assert_close(torch.cov(out.T), stats.covariance(), rtol=0.03, atol=0.05)


def test_kl_divergence():
    zero = torch.zeros(5, 8)
    assert torch.equal(kl_divergence(zero, zero), torch.zeros(5))
    mu, logvar = torch.full((1, 8), 0.5), torch.full((1, 8), -1.0)
    expected = 8 * 0.5 * (0.25 + np.exp(-1.0) - 1 + 1)
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected)
    assert (kl_divergence(torch.randn(5, 8), torch.randn(5, 8)) > 0).all()


def _logged(run, key):
    lines = [l for l in (run / "log.txt").read_text().splitlines() if l.startswith("step ")]
    return [float(l.split(key + "=")[1].split()[0]) for l in lines]


@pytest.mark.parametrize("model", ["autoencoder", "vae"])
def test_learns_to_reconstruct_and_generates(tmp_path, model):
    run = train(_cfg(tmp_path, "synthetic", model, synthetic_count=256, steps=60), progress=False)
    recon = _logged(run, "loss/recon")
    assert len(recon) == 60
    assert np.mean(recon[-5:]) < 0.5 * np.mean(recon[:3])
    if model == "vae":
        assert all(k >= 0 for k in _logged(run, "loss/kl"))
    G, cfg = load_generator(run)
    images = sample_images(G, cfg, 5, seed=3)
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8
    assert images.std() > 1  # not a constant image
    assert np.array_equal(images, sample_images(G, cfg, 5, seed=3, batch_size=2))
    if model == "autoencoder":
        stats = load_checkpoint(list_checkpoints(run)[-1])["codes"]
        assert torch.allclose(G.mean, stats["mean"].float())


def _state(run, step):
    ckpt = [p for p in list_checkpoints(run) if p.name == f"step_{step:07d}.pt"][0]
    state = load_checkpoint(ckpt)
    return {**state["models"], "codes": state["codes"]}


@pytest.mark.parametrize("model", ["autoencoder", "vae"])
def test_resume_is_exact(tmp_path, tiny_dataset, model):
    one = train(_cfg(tmp_path / "a", tiny_dataset, model, steps=10), progress=False)
    two = train(_cfg(tmp_path / "b", tiny_dataset, model, steps=4), progress=False)
    assert (
        train(
            TrainConfig(out=str(tmp_path / "b")),
            resume=str(two),
            overrides={"steps": 10},
            progress=False,
        )
        == two
    )
    a, b = _state(one, 10), _state(two, 10)
    assert set(a) == {"G", "E", "G_ema", "codes"}
    for net, tensors in a.items():
        for name, t in tensors.items():
            assert torch.equal(t, b[net][name]), f"{net}.{name} differs after resume"
