"""Which torch device a verb runs on: one answer, one error message, for every verb."""

from __future__ import annotations

import torch

from landgan.errors import UserError


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks CUDA when present; an unknown name, or CUDA without one, is a user error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    return device
