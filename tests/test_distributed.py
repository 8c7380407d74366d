"""Training in several processes: K processes on one global batch compute what one does.
The launches of ``landgan train`` under torchrun are in test_distributed_torchrun.py.

Weights are compared by their distance relative to how far training moved them from
their initial values (``RTOL``). Exact equality is not expected: K processes add the
same numbers in another order, and a few steps of Adam turn float32 rounding into
differences of up to 1e-4 of the displacement (measured on a 2-core CPU, GAN with
spectral norm in D, 16 seed and data-size combinations). A gradient summed instead of
averaged gives 1.6e-2; one left unaveraged, per-process BatchNorm statistics or a
wrongly sliced batch 0.5 to 1.3.

Why spectral norm in D (the generators keep their BatchNorm): early in training the
fakes are nearly alike, so a BatchNorm D sees variances far below its epsilon and
leaves many activations within rounding distance of the LeakyReLU kink. Rounding
alone then moves training by per cent: one process fed the same batch in reversed
order drifts that far from itself for some seeds, as do the tiny untrained encoders
of the VAE and autoencoder, whose codes are nearly all alike. The synchronised
BatchNorm is therefore checked separately, double backward included, on a
well-conditioned network, and the VAE and autoencoder on their first step.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.train import get_trainer
from landgan.train.data import StepSampler
from landgan.train.distributed import Distributed
from landgan.models import get_model

RTOL = 1e-3
# The CLI's default preset (fast) autocasts to bf16 on some CPUs and augments with per-rank
# noise; the report preset keeps the arithmetic float32 and the same in both launches.
TINY = dict(
    data="synthetic",
    synthetic_count=64,
    resolution=32,
    g_width=8,
    d_width=8,
    z_dim=16,
    batch_size=8,
    sample_every=0,
    ckpt_every=2,
    log_every=1,
    device="cpu",
    sn=True,
    preset="report",
)


def assert_same_training(got: dict, want: dict, init: dict, where: str) -> None:
    """Every tensor of ``got`` equals ``want`` up to RTOL of ``want``'s distance from ``init``.

    Tensors training did not move (e.g. the power-iteration vector of a 1-channel
    spectral norm) must match to float32 precision instead.
    """
    for net, tensors in want.items():
        for name, w in tensors.items():
            g = got[net][name]
            if not w.is_floating_point():  # e.g. BatchNorm's batch counter
                assert torch.equal(g, w), f"{where}: {net}.{name}"
                continue
            moved = (w - init[net][name]).norm()
            tol = RTOL * moved if moved > 0 else 1e-6 * (1 + w.norm())
            assert (g - w).norm() <= tol, f"{where}: {net}.{name} differs"


def test_processes_split_the_global_batch_in_order():
    one = StepSampler(40, 8, seed=3)
    two = [StepSampler(40, 8, seed=3, rank=r, world=2) for r in range(2)]
    for step in range(12):  # crosses epochs (5 batches each)
        joined = np.concatenate([s.indices(step) for s in two])
        assert np.array_equal(joined, one.indices(step))


def test_batch_size_must_divide_among_processes():
    with pytest.raises(UserError, match="--batch-size 10 is the global batch.*3 processes"):
        Distributed(rank=0, world=3).check_batch(10)
    Distributed(rank=0, world=3).check_batch(12)


class _PixelFeatures:
    """Stands in for Inception: a few pixel values per image, enough to check gathering."""

    def features(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1)[:, :16].astype(np.float64)


def _sync_batchnorm_matches_one_batch(rank: int, world: int) -> None:
    """Gradients (through a double backward, as R1 takes) and running statistics."""
    from torch import nn

    from landgan.train.syncbn import convert_sync_batchnorm

    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 6, 3),
            nn.BatchNorm2d(6),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(6, 4, 3),
            nn.BatchNorm2d(4),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(4, 1, 4),
        )

    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 3 + 1
    nets = {1: net(), world: convert_sync_batchnorm(net())}
    for w, m in nets.items():
        part = x if w == 1 else x[rank * 4 : (rank + 1) * 4]
        part = part.contiguous(memory_format=torch.channels_last).requires_grad_(True)
        out = m(part)
        (grad,) = torch.autograd.grad(out.sum(), part, create_graph=True)
        (out.mean() + grad.square().sum(dim=(1, 2, 3)).mean()).backward()
        Distributed(rank if w > 1 else 0, w).average_gradients(torch.optim.SGD(m.parameters()))
    for (name, a), b in zip(nets[world].state_dict().items(), nets[1].state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name  # incl. running statistics
    for (name, a), b in zip(nets[world].named_parameters(), nets[1].parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), f"gradient of {name}"


def _train_alone_and_shared(cfg, steps: int, rank: int, world: int, data) -> dict:
    """{1: (trainer, initial state, last stats), world: ...}: one process, and this rank."""
    from landgan.images import to_model
    from landgan.train.data import fetch

    out = {}
    for d in (Distributed(), Distributed(rank, world)):
        trainer = get_trainer(get_model(cfg.model).trainer)(cfg, torch.device("cpu"), d)
        init = copy.deepcopy(trainer.state_dict())  # not views of the live weights
        sampler = StepSampler(len(data), cfg.batch_size, cfg.seed, d.rank, d.world)
        for _ in range(steps):
            stats = trainer.train_step(lambda i: to_model(fetch(data, sampler.indices(i)), "cpu"))
        out[d.world] = (trainer, init, d.mean_stats(stats))
    return out


def _trainers_match_one_process(rank: int, world: int) -> None:
    """Each trainer, in ``world`` processes and in one, on the same batches."""
    from landgan.data.synthetic import make_synthetic_dataset
    from landgan.train.evaluator import TrainingEvaluator

    data = make_synthetic_dataset(32, 32)
    # The VAE and the autoencoder: what their first step computes from the initial
    # weights (the losses, which pair each image with its noise; the code statistics,
    # gathered from every process), not their weights (see the module docstring).
    variants = [
        (dict(model="dcgan4", r1=1.0, r1_every=1, balance="adaptive"), 3, "weights"),
        (dict(model="vae", sn=False), 1, "losses"),
        (dict(model="autoencoder", sn=False), 1, "codes"),
    ]
    trained = {}
    for extra, steps, check in variants:
        cfg = TrainConfig.for_model(**{**TINY, **extra}).validated()
        runs = trained[cfg.model] = _train_alone_and_shared(cfg, steps, rank, world, data)
        (shared, _, shared_stats), (alone, init, alone_stats) = runs[world], runs[1]
        assert shared.nimg == alone.nimg == steps * cfg.batch_size
        where = f"{cfg.model} rank {rank}"
        if check == "losses":
            for k, v in alone_stats.items():
                assert torch.allclose(shared_stats[k], v, rtol=1e-5), f"{where}: {k}"
        else:
            got, want, init = (
                {**s["models"], "codes": s.get("codes", {})}
                for s in (shared.state_dict(), alone.state_dict(), init)
            )
            parts = ["codes"] if check == "codes" else list(want)
            assert_same_training(
                {k: got[k] for k in parts}, {k: want[k] for k in parts}, init, where
            )
    ev = TrainingEvaluator.__new__(TrainingEvaluator)  # without loading Inception
    ev.cfg = TrainConfig.for_model(**{**TINY, **variants[0][0], "eval_n": 13})  # an uneven split
    ev.conds, ev.extractor = None, _PixelFeatures()
    ev.dist = Distributed()
    alone = ev.fake_features(trained["dcgan4"][1][0])
    ev.dist = Distributed(rank, world)
    shared = ev.fake_features(trained["dcgan4"][world][0])
    if rank == 0:
        assert shared.shape == alone.shape == (13, 16)
        assert np.abs(shared - alone).max() <= 1  # uint8 pixels: rounding may differ by one
    else:
        assert shared is None


def _worker(rank: int, world: int, rendezvous: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    try:
        handle = Distributed(rank, world)
        x = torch.tensor([1.0, float(rank)], requires_grad=True)
        opt = torch.optim.SGD([x], lr=1.0)
        (x * (rank + 1)).sum().backward()
        handle.average_gradients(opt)
        assert torch.equal(x.grad, torch.full((2,), 1.5))  # the mean of 1 and 2, not the sum
        assert handle.any_true(rank == 1, False) == [True, False]
        assert handle.all_true(rank == 1) is False
        _sync_batchnorm_matches_one_batch(rank, world)
        _trainers_match_one_process(rank, world)
        dist.barrier()  # neither process closes its sockets while the other still reads
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_trainers_in_two_processes_match_one(tmp_path):
    ctx = mp.spawn(_worker, (2, f"file://{tmp_path / 'rendezvous'}"), nprocs=2, join=False)
    deadline = time.monotonic() + 180
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the two processes did not finish within 180 s (deadlock?)")
