"""The adaptive D/G balancer: the report's "adaptive algorithm", made explicit.

Rule (documented in the README): track the discriminator's accuracy on real and on
fake images, smoothed over ~10 steps. Accuracy is the share of real logits above,
and fake logits below, a threshold (0 for cross-entropy and hinge, the midpoint of
the two means for Wasserstein critics, whose scores have no fixed origin).

* accuracy above ``high`` -- D has pulled ahead: skip D's update this step (never
  more than ``max_skip`` in a row, so D keeps learning) and lower D's learning rate
  by 2% (not below ``min_lr_scale`` of its base value);
* accuracy below ``low`` -- G has pulled ahead: give D one extra update;
* in between: D's learning rate recovers by 1% a step towards its base value.
"""

from __future__ import annotations

import torch


class AdaptiveBalancer:
    """Decides how many D updates each step gets and scales D's learning rate."""

    def __init__(
        self,
        threshold_mode: str = "zero",
        high: float = 0.9,
        low: float = 0.6,
        smoothing: float = 0.9,
        max_skip: int = 3,
        min_lr_scale: float = 0.25,
    ):
        self.mode, self.high, self.low, self.smoothing = threshold_mode, high, low, smoothing
        self.max_skip, self.min_lr_scale = max_skip, min_lr_scale
        self.acc_real, self.acc_fake = 0.5, 0.5
        self.skipped, self.lr_scale = 0, 1.0

    @property
    def accuracy(self) -> float:
        return (self.acc_real + self.acc_fake) / 2

    def observe(self, d_real: torch.Tensor | None, d_fake: torch.Tensor) -> None:
        """Fold one step's logits into the smoothed accuracies (``d_real`` may be None)."""
        t = 0.0
        if self.mode == "midpoint" and d_real is not None:
            t = float((d_real.mean() + d_fake.mean()) / 2)
        s = self.smoothing
        if d_real is not None:
            self.acc_real = s * self.acc_real + (1 - s) * float((d_real > t).float().mean())
        self.acc_fake = s * self.acc_fake + (1 - s) * float((d_fake < t).float().mean())

    def d_updates(self, base: int) -> int:
        """Number of D updates for the coming step, given the configured ``base``."""
        acc = self.accuracy
        if acc > self.high and self.skipped < self.max_skip:
            self.skipped += 1
            self.lr_scale = max(self.min_lr_scale, self.lr_scale * 0.98)
            return 0
        self.skipped = 0
        if acc < self.low:
            return base + 1
        self.lr_scale = min(1.0, self.lr_scale * 1.01)
        return base

    def state_dict(self) -> dict:
        return {
            "acc_real": self.acc_real,
            "acc_fake": self.acc_fake,
            "skipped": self.skipped,
            "lr_scale": self.lr_scale,
        }

    def load_state_dict(self, d: dict) -> None:
        self.acc_real, self.acc_fake = float(d["acc_real"]), float(d["acc_fake"])
        self.skipped, self.lr_scale = int(d["skipped"]), float(d["lr_scale"])
