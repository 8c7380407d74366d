"""``landgan generate``: images from a checkpoint, reproducible by seed."""

from __future__ import annotations

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


def load_generator(ckpt: str | Path, device: str | torch.device = "cpu", ema: bool = True):
    """(generator in eval mode, its TrainConfig) from a checkpoint file or run folder."""
    state = load_checkpoint(resolve_checkpoint(ckpt), map_location=device)
    cfg = TrainConfig.from_dict(state["config"])
    G, _ = build_models(cfg)
    key = "G_ema" if ema and "G_ema" in state["models"] else "G"
    try:
        G.load_state_dict(state["models"][key])
    except (RuntimeError, KeyError) as e:
        raise UserError(f"checkpoint {ckpt} does not match model {cfg.model}: "
                        f"{str(e).splitlines()[0]}") from None
    return G.to(device).eval().requires_grad_(False), cfg


def sample_latents(n: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """``n`` latents from N(0, I), or truncated to [-t, t] per coordinate when ``truncation``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.empty(n, z_dim)
    if truncation is None:
        return z.normal_(generator=g)
    if truncation <= 0:
        raise UserError(f"--truncation must be positive, got {truncation}")
    return torch.nn.init.trunc_normal_(z, 0.0, 1.0, -truncation, truncation, generator=g)


@torch.no_grad()
def sample_images(G, cfg, n: int, seed: int = 0, truncation: float | None = None,
                  batch_size: int = 64) -> np.ndarray:
    """``n`` uint8 NHWC images; the same seed gives the same images at any batch size."""
    z = sample_latents(n, cfg.z_dim, seed, truncation)
    device = next(G.parameters()).device
    chunks = [to_uint8(G(z[i:i + batch_size].to(device))) for i in range(0, n, batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, cfg.resolution, cfg.resolution, 3), np.uint8)


def generate(ckpt: str | Path, out: str | Path, n: int = 64, seed: int = 0,
             truncation: float | None = None, ema: bool = True, force: bool = False,
             device: str = "cpu") -> Path:
    """Write ``n`` images: one grid PNG if ``out`` ends in .png, else a folder of PNGs."""
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    out = Path(out)
    as_grid = out.suffix.lower() == ".png"
    if out.exists() and not force and (as_grid or not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists; pass --force to overwrite")
    if out.exists() and not as_grid and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder or a .png path")
    G, cfg = load_generator(ckpt, device, ema)
    images = sample_images(G, cfg, n, seed, truncation)
    if as_grid:
        return save_grid(images, out)
    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(out / f"seed{seed:04d}_{i:05d}.png")
    return out
