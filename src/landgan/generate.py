"""``landgan generate``: images from a checkpoint, reproducible by seed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.grid import save_grid
from landgan.images import to_uint8
from landgan.models import build_models
from landgan.train.checkpoint import load_checkpoint, resolve_checkpoint


def load_generator(ckpt: str | Path, device: str | torch.device = "cpu", ema: bool = True,
                   with_state: bool = False):
    """(generator in eval mode, its TrainConfig) from a checkpoint file or run folder.

    With ``with_state`` the whole checkpoint dict comes third.
    """
    state = load_checkpoint(resolve_checkpoint(ckpt), map_location=device)
    cfg = TrainConfig.from_dict(state["config"])
    G, _ = build_models(cfg)
    key = "G_ema" if ema and "G_ema" in state["models"] else "G"
    try:
        G.load_state_dict(state["models"][key])
    except (RuntimeError, KeyError) as e:
        raise UserError(f"checkpoint {ckpt} does not match model {cfg.model}: "
                        f"{str(e).splitlines()[0]}") from None
    G = G.to(device).eval().requires_grad_(False)
    return (G, cfg, state) if with_state else (G, cfg)


FAR_FROM_TRAINING = 0.3  # L1 distance to the nearest training condition that earns a warning


def nearest_seen(cond: torch.Tensor, bank: torch.Tensor | None, names: list[str]) -> str | None:
    """A warning if ``cond`` is far from every condition seen in training, naming the nearest."""
    if bank is None or len(bank) == 0:
        return None
    dist = (bank.float() - cond).abs().sum(1)
    i = int(dist.argmin())
    if float(dist[i]) <= FAR_FROM_TRAINING:
        return None
    near = ", ".join(f"{n}={v:.2f}" for n, v in zip(names, bank[i].tolist()) if v >= 0.005)
    return (f"warning: these proportions are far from anything in the training data "
            f"(L1 distance {float(dist[i]):.2f}); the nearest seen was {near}")


def sample_latents(n: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """``n`` latents from N(0, I), or truncated to [-t, t] per coordinate when ``truncation``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.empty(n, z_dim)
    if truncation is None:
        return z.normal_(generator=g)
    if truncation <= 0:
        raise UserError(f"--truncation must be positive, got {truncation}")
    return torch.nn.init.trunc_normal_(z, 0.0, 1.0, -truncation, truncation, generator=g)


def parse_condition(spec: str, names: list[str]) -> tuple[torch.Tensor, str | None]:
    """``"mountain=0.6,sea=0.4"`` -> a vector over ``names`` summing to 1, and a note if rescaled.

    Names left out get 0. Unknown names, negative or non-numeric values and an all-zero
    request are user errors that list the valid names.
    """
    valid = ", ".join(names)
    vec = torch.zeros(len(names))
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in names:
            raise UserError(f"unknown condition {name!r}; this model knows: {valid}")
        try:
            v = float(value)
        except ValueError:
            raise UserError(f"{part!r}: give NAME=NUMBER (names: {valid})") from None
        if v < 0 or not np.isfinite(v):
            raise UserError(f"{part!r}: values must be finite and >= 0 (names: {valid})")
        vec[names.index(name)] = v
    total = float(vec.sum())
    if total <= 0:
        raise UserError(f"the proportions are all zero; give at least one of: {valid}")
    note = None
    if abs(total - 1) > 1e-6:
        note = f"proportions summed to {total:g}; renormalised to sum to 1"
    return vec / total, note


@torch.no_grad()
def sample_images(G, cfg, n: int, seed: int = 0, truncation: float | None = None,
                  batch_size: int = 64, condition: torch.Tensor | None = None) -> np.ndarray:
    """``n`` uint8 NHWC images; the same seed gives the same images at any batch size.

    A conditional generator needs ``condition``: one vector (K,) for every image, or one
    row per image (n, K).
    """
    if getattr(cfg, "conditional", False) and condition is None:
        raise UserError(f"this model is conditional on: {cfg.conditions.replace(',', ', ')}; "
                        "pass --mix or --composition")
    z = sample_latents(n, cfg.z_dim, seed, truncation)
    device = next(G.parameters()).device
    if condition is not None:
        condition = condition.expand(n, -1) if condition.dim() == 1 else condition
    extra = lambda i: () if condition is None else (condition[i:i + batch_size].to(device),)
    chunks = [to_uint8(G(z[i:i + batch_size].to(device), *extra(i)))
              for i in range(0, n, batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, cfg.resolution, cfg.resolution, 3), np.uint8)


def generate(ckpt: str | Path, out: str | Path, n: int = 64, seed: int = 0,
             truncation: float | None = None, ema: bool = True, force: bool = False,
             device: str = "cpu", condition: str | None = None) -> Path:
    """Write ``n`` images: one grid PNG if ``out`` ends in .png, else a folder of PNGs.

    ``condition`` ("name=value,...") drives a conditional model; see :func:`parse_condition`.
    """
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    out = Path(out)
    as_grid = out.suffix.lower() == ".png"
    if out.exists() and not force and (as_grid or not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists; pass --force to overwrite")
    if out.exists() and not as_grid and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder or a .png path")
    G, cfg, state = load_generator(ckpt, device, ema, with_state=True)
    cond = None
    if condition is not None:
        if not cfg.conditional:
            raise UserError("--mix/--composition need a conditional model (trained with "
                            "--conditional); this one is unconditional")
        names = cfg.conditions.split(",")
        cond, note = parse_condition(condition, names)
        for msg in (note, nearest_seen(cond, state.get("condition_bank"), names)):
            if msg:
                print(f"landgan: {msg}", file=sys.stderr)
    images = sample_images(G, cfg, n, seed, truncation, condition=cond)
    if as_grid:
        return save_grid(images, out)
    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(out / f"seed{seed:04d}_{i:05d}.png")
    return out
