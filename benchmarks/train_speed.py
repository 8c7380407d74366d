"""Training-step throughput: landgan's DCGAN step vs the canonical PyTorch DCGAN example.

Both train the same 64 px DCGAN (the example's layout: z to 4x4 then 4 transposed convs in G, 5
convs in D, BatchNorm, batch 64) on the same random batch; the baseline is the
example's plain eager loop (separate D passes on real and fake, BCELoss after a
sigmoid, default memory format, default Adam). The two are timed in alternating
rounds in one process so background load hits both alike.

    python benchmarks/train_speed.py [--batch 64] [--rounds 5] [--steps 5] [--model dcgan4]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from landgan.config import TrainConfig
from landgan.train.gan import GANTrainer, cpu_has_native_bf16


def example_nets(nz=100, ngf=64, ndf=64):
    """Generator and discriminator exactly as in pytorch/examples dcgan/main.py."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False),
        nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(3, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )
    return g, d


class ExampleStep:
    """The example's training iteration, verbatim in structure."""

    def __init__(self, batch: int, nz: int = 100):
        self.G, self.D = example_nets(nz)
        self.crit = nn.BCELoss()
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.batch, self.nz = batch, nz

    def __call__(self, real: torch.Tensor) -> None:
        b = real.shape[0]
        self.D.zero_grad()
        label = torch.full((b,), 1.0)
        err_real = self.crit(self.D(real).view(-1), label)
        err_real.backward()
        fake = self.G(torch.randn(b, self.nz, 1, 1))
        label.fill_(0.0)
        err_fake = self.crit(self.D(fake.detach()).view(-1), label)
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        label.fill_(1.0)
        err_g = self.crit(self.D(fake).view(-1), label)
        err_g.backward()
        self.opt_g.step()


def timed(fn, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    ap.add_argument("--steps", type=int, default=5, help="steps per round")
    ap.add_argument(
        "--model", default="dcgan4", help="landgan model (dcgan4 at 64 px has the example's layout)"
    )
    args = ap.parse_args()
    torch.manual_seed(0)
    real = torch.rand(args.batch, 3, 64, 64) * 2 - 1
    example = ExampleStep(args.batch)
    runs = {"example": lambda: example(real)}
    # --preset report: float32, no EMA, no augmentation; the default --preset fast adds bf16
    # autocast where the CPU has native bf16, the EMA generator and DiffAugment.
    for name, preset in (("landgan fp32", "report"), ("landgan default", "fast")):
        cfg = TrainConfig.for_model(
            model=args.model, resolution=64, batch_size=args.batch, preset=preset
        )
        tr = GANTrainer(cfg, torch.device("cpu"))
        runs[f"{name} ({preset})"] = lambda tr=tr: tr.train_step(lambda i: real)
    print(
        "the default preset autocasts to bf16 on this CPU"
        if cpu_has_native_bf16()
        else "no native bf16 on this CPU: the default preset stays in float32"
    )
    for fn in runs.values():  # warm-up: allocator, oneDNN kernel selection
        timed(fn, 2)
    best = {k: float("inf") for k in runs}
    for _ in range(args.rounds):
        for k, fn in runs.items():
            best[k] = min(best[k], timed(fn, args.steps) / args.steps)
    ips = {k: args.batch / v for k, v in best.items()}
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}, 64 px, model {args.model}")
    for k, v in ips.items():
        ratio = f"  {v / ips['example']:.2f}x the example" if k != "example" else ""
        print(f"{k:>26}: {v:7.1f} images/s ({best[k] * 1000:.0f} ms/step){ratio}")
    if cpu_has_native_bf16():
        loss_agreement(args)


def loss_agreement(args, steps: int = 40) -> None:
    """Same seed, same batches: how far bf16 autocast moves the losses from float32."""
    data = (
        torch.rand(steps, args.batch, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    )
    curves = {}
    for amp in ("off", "bf16"):
        tr = GANTrainer(
            TrainConfig(model=args.model, resolution=64, batch_size=args.batch, amp=amp),
            torch.device("cpu"),
        )
        curves[amp] = torch.tensor(
            [
                [
                    float(v)
                    for k, v in sorted(tr.train_step(lambda i: data[i]).items())
                    if k.startswith("loss/")
                ]
                for _ in range(steps)
            ]
        )
    diff = (curves["bf16"] - curves["off"]).abs().mean(0) / curves["off"].abs().mean(0)
    print(
        f"bf16 vs float32 over {steps} steps from one seed: mean |loss difference| / mean |loss| = "
        f"{diff[0]:.3f} (D), {diff[1]:.3f} (G)"
    )


if __name__ == "__main__":
    main()
