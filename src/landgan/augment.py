"""DiffAugment (Zhao et al. 2020): differentiable augmentation of real and fake alike.

Applied to every image the discriminator sees, so D cannot memorise a small
training set, while gradients still flow to G through the augmentation. Policy
names: ``color`` (brightness, saturation, contrast), ``translation`` (shift by up to
1/8 of the size, zero fill) and ``cutout`` (one zeroed square of half the size).
Randomness comes from torch's global generator, which checkpoints save.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from landgan.errors import UserError


def _color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    r = lambda: torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device)
    x = x + (r() - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (r() * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (r() + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(
        torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    # Index into a zero-padded copy so shifted-in pixels are zeros.
    yy = (gy.unsqueeze(0) + dy).clamp(-1, h) + 1
    xx = (gx.unsqueeze(0) + dx).clamp(-1, w) + 1
    padded = F.pad(x, (1, 1, 1, 1))
    idx = (yy * (w + 2) + xx).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    return padded.flatten(2).gather(2, idx).view_as(x)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (
        ((gy - cy + ch // 2).clamp(0) < ch)
        & (gy >= cy - ch // 2)
        & ((gx - cx + cw // 2).clamp(0) < cw)
        & (gx >= cx - cw // 2)
    )
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}


def parse_policy(policy: str) -> list[str]:
    """``"color,translation"`` -> ["color", "translation"], checking each name."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    bad = [p for p in names if p not in AUGMENTS]
    if bad:
        raise UserError(
            f"unknown DiffAugment policy {', '.join(bad)}; choose from: {', '.join(AUGMENTS)}"
        )
    return names


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply every augmentation named in ``policy`` (comma separated) to NCHW ``x``."""
    for name in parse_policy(policy):
        x = AUGMENTS[name](x)
    return x
