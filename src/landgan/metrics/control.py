"""How well a conditional generator obeys its condition.

- Classes: an independent scene classifier, trained here on real labelled photos only,
  judges images generated for each pure class; agreement is the share it assigns to the
  requested class.
- Compositions: an estimator of area fractions (see :mod:`landgan.label`) is run on the
  generated images and compared with the requested fractions (mean absolute error).

Everything takes uint8 NHWC images, like the other metrics.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landgan.images import to_model

CLASSIFIER_SIZE = 64  # the classifier judges every image at this size


class SceneClassifier(nn.Module):
    """A small CNN: four stride-2 conv blocks, global average pooling, a linear head."""

    def __init__(self, classes: int, width: int = 32):
        super().__init__()
        layers, c = [], 3
        for k in range(4):
            layers += [
                nn.Conv2d(c, width << k, 3, 2, 1, bias=False),
                nn.BatchNorm2d(width << k),
                nn.ReLU(True),
            ]
            c = width << k
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3))
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 3, H, W) in [-1, 1]
        return self.head(self.body(x))


def _to_input(images: np.ndarray) -> torch.Tensor:
    x = to_model(torch.from_numpy(np.ascontiguousarray(images)))
    if x.shape[-1] != CLASSIFIER_SIZE:
        x = F.interpolate(
            x,
            size=(CLASSIFIER_SIZE, CLASSIFIER_SIZE),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
    return x


def holdout_split(n: int, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices), a seeded random split of ``range(n)``."""
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    classes: int,
    steps: int = 1500,
    batch: int = 64,
    seed: int = 0,
    lr: float = 2e-3,
) -> SceneClassifier:
    """Train :class:`SceneClassifier` on uint8 NHWC ``images`` with integer ``labels``.

    Random flips and crops-with-padding keep the small net from memorising a few
    thousand photos; the learning rate decays as a cosine to zero.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = SceneClassifier(classes)
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    y_all = torch.as_tensor(labels, dtype=torch.long)
    for _ in range(steps):
        idx = torch.randint(0, len(images), (batch,), generator=g)
        x = _to_input(images[np.sort(idx.numpy())])
        y = y_all[np.sort(idx.numpy())]
        if torch.rand((), generator=g) < 0.5:
            x = x.flip(3)
        dx, dy = (int(v) for v in torch.randint(-4, 5, (2,), generator=g))
        x = torch.roll(x, (dy, dx), (2, 3))
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def classify(net: SceneClassifier, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Predicted class index per uint8 NHWC image."""
    net.eval()
    return (
        np.concatenate(
            [
                net(_to_input(images[s : s + batch])).argmax(1).numpy()
                for s in range(0, len(images), batch)
            ]
        )
        if len(images)
        else np.zeros(0, int)
    )


def class_agreement(
    sample: Callable[[np.ndarray, int], np.ndarray],
    classifier: SceneClassifier,
    names: list[str],
    n: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Per class: the share of ``n`` images generated for that pure class judged as it.

    ``sample(condition, seed)`` returns ``n`` uint8 images for one condition vector.
    """
    out = {}
    for k, name in enumerate(names):
        onehot = np.eye(len(names), dtype=np.float32)[k]
        out[name] = float((classify(classifier, sample(onehot, seed + k)) == k).mean())
    return out


def composition_error(
    sample: Callable[[np.ndarray, int], np.ndarray],
    estimator: Callable[[np.ndarray], np.ndarray],
    requests: np.ndarray,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """(MAE, per-element MAE) between requested fractions and those estimated on the images.

    ``sample(requests, seed)`` returns one uint8 image per row of ``requests`` (N, K).
    """
    est = estimator(sample(requests, seed))
    err = np.abs(est - requests)
    return float(err.mean()), err.mean(0)
