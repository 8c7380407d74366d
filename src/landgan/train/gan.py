"""The adversarial training step, with an EMA copy of the generator.

One class covers the report's GAN family: DCGAN (cross-entropy), WGAN (clipping,
RMSprop, several critic steps), WGAN-GP (gradient penalty), and the modern options
(hinge loss, spectral norm, R1, DiffAugment, the adaptive balancer); which of them
is active is read from the config.
"""

from __future__ import annotations

import torch

from landgan.augment import diff_augment
from landgan.losses import LOSSES, condition_kl
from landgan.train.balance import AdaptiveBalancer
from landgan.train.base import Batch, Trainer
from landgan.train.distributed import Distributed


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX); elsewhere bf16
    autocast is emulated and slower than float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def amp_dtype(cfg, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``cfg.amp`` on ``device`` (None = full precision)."""
    if cfg.amp == "native" and device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if cfg.amp == "off" or (cfg.amp == "auto" and device.type != "cuda"):
        return None
    return torch.float16 if cfg.amp == "fp16" else torch.bfloat16


def make_optimizer(cfg, params, lr: float) -> torch.optim.Optimizer:
    """Adam (with the config's betas) or RMSprop, as ``cfg.optimizer`` says."""
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr, foreach=True)
    return torch.optim.Adam(params, lr, betas=(cfg.beta1, cfg.beta2), foreach=True)


class GANTrainer(Trainer):
    """Owns G, D, G_ema, both optimisers and the latent RNG; knows one training step."""

    def __init__(self, cfg, device: torch.device, dist: Distributed | None = None, **net_extra):
        self.D = self.setup(cfg, device, dist, **net_extra)
        # Compiled views share parameters with G and D, whose state_dicts stay plain.
        self.G_fwd = torch.compile(self.G) if cfg.compile else self.G
        self.D_fwd = torch.compile(self.D) if cfg.compile else self.D
        self.amp = amp_dtype(cfg, device)
        # fp16 gradients can underflow; bf16 has float32's range and needs no scaling.
        fp16 = self.amp == torch.float16
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
        self.opt_g = make_optimizer(cfg, self.G.parameters(), cfg.lr_g)
        self.opt_d = make_optimizer(cfg, self.D.parameters(), cfg.lr_d)
        self.d_loss, self.g_loss = LOSSES[cfg.loss]
        self.balancer = None
        if cfg.balance == "adaptive":
            self.balancer = AdaptiveBalancer("midpoint" if cfg.loss == "wasserstein" else "zero")
        self.d_updates = 0
        self.c: torch.Tensor | None = None  # conditions of the current real batch

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, str]]:
        return {"G": (self.opt_g, "lr_g"), "D": (self.opt_d, "lr_d")}

    def _c(self) -> tuple:
        """Extra network arguments: the batch's conditions, or nothing if unconditional."""
        return () if self.cond_source is None else (self.c,)

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None
        )

    def _d_input(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.cfg.diffaug) if self.cfg.diffaug else x

    def _penalties(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, out = self.cfg, {}
        if cfg.gp > 0:
            eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
            mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(
                self.D(self._d_input(mix), *self._c()).sum(), mix, create_graph=True
            )
            out["gp"] = cfg.gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        if cfg.r1 > 0 and self.d_updates % cfg.r1_every == 0:
            x = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(
                self.D(self._d_input(x), *self._c()).sum(), x, create_graph=True
            )
            out["r1"] = cfg.r1 / 2 * cfg.r1_every * grad.flatten(1).pow(2).sum(1).mean()
        return out

    def _predicts(self) -> bool:
        """Whether D's condition head is trained (``cond_aux`` > 0 in a conditional run)."""
        return (
            self.cfg.cond_aux > 0
            and self.cond_source is not None
            and getattr(self.D, "predict", None) is not None
        )

    def _cond_loss(self, prediction: torch.Tensor) -> dict[str, torch.Tensor]:
        """D's condition prediction against the batch's conditions, weighted."""
        return {"cond": self.cfg.cond_aux * condition_kl(prediction, self.c)}

    def _scores(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's logits, plus the condition loss when D predicts conditions.

        The condition head learns from real images (through :meth:`_d_real`) and teaches G
        (through the fakes' scores in :meth:`train_step`); it never sees fakes as targets,
        so D cannot learn to misread bad fakes to push G (the AC-GAN failure mode).
        """
        if not self._predicts():
            return self.D_fwd(x, *self._c()), {}
        logits, prediction = self.D.scores(x, self.c)
        return logits, self._cond_loss(prediction)

    def _mode_seeking(self, z: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mode seeking (Mao et al., CVPR 2019): a quarter of the batch is drawn again from
        new latents under the same conditions, and G is penalised by the inverse of how far
        the images moved per unit of latent, so a condition cannot fix the picture alone."""
        q = max(1, z.shape[0] // 4)
        z2 = self.sample_z(q)
        fake2 = self.G_fwd(z2, *(c[:q] for c in self._c()))
        moved = (fake[:q] - fake2).float().abs().mean((1, 2, 3))
        ratio = moved / (z[:q] - z2).abs().mean(1)
        return {"ms": self.cfg.mode_seeking / (ratio.mean() + 1e-5)}

    def _d_real(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's logits on (augmented) real images, and any extra loss terms on them by name.

        The plain GAN has only the condition loss (when on); a family whose discriminator
        also learns from real images alone (FastGAN's reconstruction) overrides this in
        its trainer.
        """
        return self._scores(x)

    def _d_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        with self._autocast():
            d_real, extra = self._d_real(self._d_input(real))
            d_real = d_real.float()
            d_fake = self.D_fwd(self._d_input(fake), *self._c()).float()
            loss = self.d_loss(d_real, d_fake)
        # Penalties in float32: second-order gradients underflow in half precision.
        pens = {**extra, **self._penalties(real, fake.float())}
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss + sum(pens.values())).backward()
        self.dist.average_gradients(self.opt_d)
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        self.d_updates += 1
        if self.cfg.clip > 0:
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-self.cfg.clip, self.cfg.clip)
        if self.balancer:  # every process must reach the same decisions: judge the global batch
            self.balancer.observe(
                self.dist.gather_rows(d_real.detach()), self.dist.gather_rows(d_fake.detach())
            )
        return {
            "loss/d": loss.detach(),
            "d/real": d_real.detach().mean(),
            "d/fake": d_fake.detach().mean(),
            **{"loss/" + k: v.detach() for k, v in pens.items()},
        }

    def train_step(self, source: Batch) -> dict[str, torch.Tensor]:
        """D update(s) on fresh real batches from ``source``, then one G update."""
        n_d = self.cfg.d_steps
        if self.balancer:
            n_d = self.balancer.d_updates(n_d)
            for group in self.opt_d.param_groups:
                group["lr"] = self.cfg.lr_d * self.balancer.lr_scale
        stats, fake = {}, None
        for _ in range(n_d):
            real = self._next_real(source)
            if self.cond_source is not None:  # fakes get the real batch's conditions
                self.c = self.cond_source(self.batches - 1)
            with self._autocast():
                z = self.sample_z(real.shape[0])
                fake = self.G_fwd(z, *self._c())
            stats = self._d_step(real, fake.detach())
        with self._autocast():
            if fake is None:  # the balancer skipped D this step
                if self.cond_source is not None:
                    self.c = self.cond_source(self.batches)
                z = self.sample_z(self.cfg.batch_size // self.dist.world)
                fake = self.G_fwd(z, *self._c())
            # D's weight gradients are not needed for G's update: skipping them saves
            # about a third of the backward pass through D.
            self.D.requires_grad_(False)
            g_out, g_extra = self._scores(self._d_input(fake))
            if self.cfg.mode_seeking > 0:
                g_extra.update(self._mode_seeking(z, fake))
            g_out = g_out.float()
            loss_g = self.g_loss(g_out) + sum(g_extra.values())
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.dist.average_gradients(self.opt_g)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.D.requires_grad_(True)
        if self.balancer:
            self.balancer.observe(None, self.dist.gather_rows(g_out.detach()))
            stats.update(
                {
                    "balance/accuracy": torch.tensor(self.balancer.accuracy),
                    "balance/d_updates": torch.tensor(float(n_d)),
                    "balance/lr_d_scale": torch.tensor(self.balancer.lr_scale),
                }
            )
        self.step += 1
        n = fake.shape[0] * self.dist.world  # images of the global batch
        self.nimg += n
        self.update_ema(n)
        return {
            **stats,
            "loss/g": loss_g.detach(),
            **{"loss/g_" + k: v.detach() for k, v in g_extra.items()},
        }

    def state_dict(self) -> dict:
        return {
            "models": {
                "G": self.G.state_dict(),
                "D": self.D.state_dict(),
                "G_ema": self.G_ema.state_dict(),
            },
            "optims": {"G": self.opt_g.state_dict(), "D": self.opt_d.state_dict()},
            "rng": {"torch": torch.get_rng_state(), "z": self.zgen.get_state()},
            "counters": {
                "step": self.step,
                "nimg": self.nimg,
                "batches": self.batches,
                "d_updates": self.d_updates,
            },
            "balancer": self.balancer.state_dict() if self.balancer else {},
            "scalers": {"D": self.scaler_d.state_dict(), "G": self.scaler_g.state_dict()},
            "step": self.step,
        }

    def load_state_dict(self, state: dict) -> None:
        m, o = state["models"], state["optims"]
        self.G.load_state_dict(m["G"])
        self.D.load_state_dict(m["D"])
        self.G_ema.load_state_dict(m["G_ema"])
        self.opt_g.load_state_dict(o["G"])
        self.opt_d.load_state_dict(o["D"])
        torch.set_rng_state(state["rng"]["torch"])
        self.zgen.set_state(state["rng"]["z"])
        c = state["counters"]
        self.step, self.nimg, self.batches, self.d_updates = (
            int(c["step"]),
            int(c["nimg"]),
            int(c["batches"]),
            int(c["d_updates"]),
        )
        if self.balancer:
            self.balancer.load_state_dict(state["balancer"])
        if state.get("scalers", {}).get("D"):
            self.scaler_d.load_state_dict(state["scalers"]["D"])
            self.scaler_g.load_state_dict(state["scalers"]["G"])
