"""The one place where pixels change representation.

Datasets and metrics hold ``uint8`` images in NHWC layout; networks see
``float32`` NCHW tensors in [-1, 1]. Every conversion goes through here so the
scaling is identical for training, generation and evaluation.
"""

from __future__ import annotations

import numpy as np
import torch


def to_model(batch: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC (numpy or tensor) -> float32 NCHW in [-1, 1] on ``device``.

    The result is channels-last in memory (an NHWC buffer viewed as NCHW), which is
    also the faster layout for convolutions on CPU, so no copy is spent on layout.
    """
    t = torch.as_tensor(batch)
    if t.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {t.dtype}")
    t = t.to(device, non_blocking=True).permute(0, 3, 1, 2)
    return t.float().mul_(1 / 127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 NHWC numpy (values outside are clipped)."""
    x = x.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255)
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
