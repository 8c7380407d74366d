"""Fitting the photo labeller's head to judged fractions (learning from label proportions).

Used by ``benchmarks/fit_photo_labeller.py``, which regenerates
:data:`~landgan.metrics.photo_labeller.HEAD_FILE`, and by ``benchmarks/label_accuracy.py``
and the tests to read the judged set. The method is described in
:mod:`landgan.metrics.photo_labeller`; the constants below are the hyper-parameters that
5-fold cross-validation on the ``fit`` photos chose.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from landgan.data.decode import decode_image
from landgan.data.synthetic import ELEMENTS
from landgan.metrics.inception import FIDInception
from landgan.metrics.photo_labeller import (
    CHANNELS,
    GROUPS,
    N_ELEMENTS,
    N_HIST,
    CompositionHead,
    location_features,
    network_input,
)

PCA_DIMS = {"Mixed_5d": 64, "Mixed_6e": 128, "Mixed_7c": 128}
# Larger weight = weaker L2 pull on that group (the penalty is shared).
GROUP_WEIGHTS = {"Mixed_5d": 1.0, "Mixed_6e": 3.0, "Mixed_7c": 1.5}
LOCAL_WEIGHTS = np.array([1.0] * 10 + [3.0] * (2 * N_HIST) + [1.0], np.float32)
L2, ENTROPY, STEPS, LR = 0.05, 1.0, 200, 1e-2
SMALL = 64  # the low-resolution variant every photo is also fitted at


def read_judged(
    csv_path: str | Path, split: str | None = None, pass_: str = "main"
) -> tuple[list[str], np.ndarray]:
    """Photo paths and their judged fractions (n, 5) over ELEMENTS, ``other`` dropped and
    the five renormalised to sum to 1, for one split (``fit``/``eval``, None: both)."""
    with open(csv_path, newline="") as f:
        rows = [
            r
            for r in csv.DictReader(f)
            if r["pass"] == pass_ and (split is None or r["split"] == split)
        ]
    y = np.array([[float(r[e]) for e in ELEMENTS] for r in rows], np.float64)
    return [r["path"] for r in rows], y / y.sum(1, keepdims=True)


def load_photo(path: str | Path) -> np.ndarray:
    """A photo's centre square at its own resolution (as ``landgan prepare`` crops it)."""
    with Image.open(path) as img:
        side = min(img.size)
    return decode_image(path, side)


def variants(image: np.ndarray) -> list[np.ndarray]:
    """The photo, mirrored, and both after a round trip through SMALL px: same fractions."""
    small = np.asarray(Image.fromarray(image).resize((SMALL, SMALL), Image.Resampling.LANCZOS))
    return [image, image[:, ::-1], small, small[:, ::-1]]


@torch.inference_mode()
def extract(net: FIDInception, images: list[np.ndarray], batch: int = 32) -> dict[str, Tensor]:
    """Location features (n, C, GRID, GRID) per group of uint8 images of any sizes."""
    parts: dict[str, list[Tensor]] = {g: [] for g in GROUPS}
    for s in range(0, len(images), batch):
        x = torch.cat(
            [network_input(np.ascontiguousarray(im)[None]) for im in images[s : s + batch]]
        )
        for g, f in location_features(net, x).items():
            parts[g].append(f)
    return {g: torch.cat(p) for g, p in parts.items()}


@dataclass
class Projection:
    """One group's standardisation, PCA basis (None: keep all) and weight per output."""

    mean: Tensor
    std: Tensor
    basis: Tensor | None
    weight: Tensor

    def __call__(self, f: Tensor) -> Tensor:  # f: (n, C, G, G) -> (n, G*G, D)
        z = (f.flatten(2).transpose(1, 2) - self.mean) / self.std
        return (z @ self.basis if self.basis is not None else z) * self.weight


def _rows(f: Tensor) -> Tensor:
    return f.flatten(2).transpose(1, 2).reshape(-1, f.shape[1])


def fit_projections(
    feats: dict[str, Tensor], seed: int = 0, sample: int = 12000
) -> dict[str, Projection]:
    """Standardisation and PCA per group from ``sample`` random locations (no labels)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in GROUPS:
        rows = _rows(feats[name])
        rows = rows[torch.randperm(len(rows), generator=g)[:sample]]
        mean, std = rows.mean(0), rows.std(0) + 1e-2
        if name == "local":
            out[name] = Projection(mean, std, None, torch.from_numpy(LOCAL_WEIGHTS))
            continue
        _, _, vt = torch.linalg.svd((rows - mean) / std, full_matrices=False)
        # Dividing by sqrt(C/256) puts layers of different widths on one scale.
        scale = GROUP_WEIGHTS[name] / np.sqrt(CHANNELS[name] / 256)
        out[name] = Projection(
            mean, std, vt[: PCA_DIMS[name]].T.contiguous(), torch.full((PCA_DIMS[name],), scale)
        )
    return out


def project(feats: dict[str, Tensor], projections: dict[str, Projection]) -> Tensor:
    """All groups projected and joined: (n, GRID*GRID, D)."""
    return torch.cat([projections[g](feats[g]) for g in GROUPS], -1)


def train_head(z: Tensor, y: np.ndarray, seed: int = 0) -> torch.nn.Linear:
    """Fit a linear per-location head on ``z`` (n_photos, n_variants, L, D) so that the mean
    of its per-location softmax matches ``y`` (n_photos, 5), every variant alike."""
    torch.manual_seed(seed)
    n, v, locations, d = z.shape
    x = z.reshape(n * v, locations, d)
    target = torch.as_tensor(y, dtype=torch.float32).repeat_interleave(v, 0)
    head = torch.nn.Linear(d, N_ELEMENTS)
    opt = torch.optim.Adam(head.parameters(), LR)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + np.cos(np.pi * (s + 1) / STEPS))
    )
    for _ in range(STEPS):
        p = head(x).softmax(-1)
        log_q = p.mean(1).clamp_min(1e-6).log()
        entropy = -(p * p.clamp_min(1e-6).log()).sum(-1).mean()
        loss = -(target * log_q).sum(1).mean() + ENTROPY * entropy + L2 * (head.weight**2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return head.eval()


@torch.no_grad()
def predict(head: torch.nn.Linear, z: Tensor) -> np.ndarray:
    """Fractions (n, 5) from projected features (n, L, D)."""
    return head(z).softmax(-1).mean(1).numpy()


@torch.no_grad()
def fold(head: torch.nn.Linear, projections: dict[str, Projection]) -> CompositionHead:
    """The same function as ``head`` after ``projections``, on the raw feature groups."""
    out = CompositionHead()
    bias = head.bias.clone()
    start = 0
    for g in GROUPS:
        p = projections[g]
        d = p.weight.numel()
        a = head.weight[:, start : start + d] * p.weight  # (5, D)
        w = (a @ p.basis.T if p.basis is not None else a) / p.std
        out.weights[g].copy_(w)
        bias -= w @ p.mean
        start += d
    out.bias.copy_(bias)
    return out.eval().requires_grad_(False)


def cross_validate(z: Tensor, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold fractions (n, 5) of the unmodified photos (variant 0)."""
    order = np.random.default_rng(seed).permutation(len(y))
    pred = np.zeros((len(y), N_ELEMENTS))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        pred[test] = predict(train_head(z[train], y[train], seed), z[test, 0])
    return pred
