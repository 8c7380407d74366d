"""``landgan label``: estimate scene composition (sky, mountain, snow, water, vegetation).

Three built-in estimators, none needing downloaded weights (:data:`ESTIMATORS`):

- ``photo`` (the default, for photographs and images generated from them): a per-location
  head on the FID Inception network's feature maps, fitted to people's judgements of
  photos (``judged/``), see :mod:`landgan.metrics.photo_labeller`. Its weights ship with
  the package;
- ``rules``: colour, position and texture rules, see :mod:`landgan.label_rules`; no
  network, but about 0.15 off people per element;
- ``net``: a pixel classifier that is nearly exact on procedural scenes but does not
  transfer to photos. It is the yardstick for models trained on the procedural scenes.

``benchmarks/label_accuracy.py`` measures all three against the judged photos.

The ``net`` network: a small fully convolutional pixel classifier is trained on the
procedural landscapes, whose element maps are exact, with heavy colour augmentation
(gains, hue rotation, contrast, desaturation, noise, blur) so that it leans on colour
relations, texture and position rather than on the renderer's exact palette. The
trained weights are cached (``$LANDGAN_CACHE`` or ``~/.cache/landgan``). A photo's
composition is the mean of its per-pixel class probabilities.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from landgan.data.dataset import META_FILE, open_dataset
from landgan.data.synthetic import ELEMENTS, render, sample_params
from landgan.errors import UserError
from landgan.files import replacing
from landgan.label_rules import per_batch, rule_estimate
from landgan.models.layout import GRID, layout_names, mean_composition, pool_maps

VERSION = 1
SIZE = 64  # the estimator works at 64 px whatever the dataset's resolution
# Images labelled between updates of the progress bar: two of the photo labeller's batches
# of 32 (so they stay the batches it always ran), a few seconds of work on a CPU.
PROGRESS_CHUNK = 64


class PixelClassifier(nn.Module):
    """RGB + vertical position -> per-pixel logits over the 5 scene elements."""

    def __init__(self, width: int = 32, classes: int = 5):
        super().__init__()
        layers, c = [], 4
        for dilation in (1, 1, 2, 4, 8, 1):
            layers += [nn.Conv2d(c, width, 3, padding=dilation, dilation=dilation), nn.ReLU(True)]
            c = width
        self.body = nn.Sequential(*layers, nn.Conv2d(width, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 3, H, W) in [0, 1]
        n, _, h, w = x.shape
        y = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(n, 1, h, w)
        return self.body(torch.cat([x * 2 - 1, y], 1))


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Colour and texture augmentation of (N, 3, H, W) images in [0, 1]."""
    n = x.shape[0]
    r = lambda *s: torch.rand(*s, generator=g)
    gray = x.mean(1, keepdim=True)
    x = gray + (x - gray) * (r(n, 1, 1, 1) * 1.5)  # saturation 0..1.5
    x = x * (0.6 + 0.8 * r(n, 3, 1, 1))  # per-channel gains: white balance, tint
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (0.6 + 0.9 * r(n, 1, 1, 1)) + mean + (r(n, 1, 1, 1) - 0.5) * 0.3
    blur = r(n, 1, 1, 1) < 0.3
    x = torch.where(blur, F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), x)
    return (x + torch.randn(x.shape, generator=g) * 0.04 * r(n, 1, 1, 1)).clamp(0, 1)


def train_estimator(
    steps: int = 600, batch: int = 32, seed: int = 0, pool: int = 2048
) -> PixelClassifier:
    """Train the pixel classifier on procedural scenes (about a minute on 2 cores)."""
    params = [sample_params(seed * 1_000_003 + 500_000 + i) for i in range(pool)]
    images, maps = render(params, SIZE)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    y_all = torch.from_numpy(maps).long()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = PixelClassifier()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for step in range(steps):
        idx = torch.randint(0, pool, (batch,), generator=g)
        loss = F.cross_entropy(net(_augment(x_all[idx], g)), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step == steps * 2 // 3:
            for group in opt.param_groups:
                group["lr"] = 1e-3
    return net.eval()


def load_estimator(cache_dir: str | Path | None = None) -> PixelClassifier:
    """The trained estimator, from the cache or trained now (then cached)."""
    root = Path(cache_dir or os.environ.get("LANDGAN_CACHE") or Path.home() / ".cache" / "landgan")
    path = root / f"label-estimator-v{VERSION}.pt"
    net = PixelClassifier()
    if path.is_file():
        net.load_state_dict(torch.load(path, weights_only=True))
        return net.eval()
    net = train_estimator()
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        torch.save(net.state_dict(), tmp)
    return net


@torch.no_grad()
def estimate(net: PixelClassifier, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Composition fractions (N, 5), summing to 1, for uint8 NHWC images of any size."""
    return per_batch(lambda x: net(x).softmax(1).mean((2, 3)), images, SIZE, batch)


def _check_estimator(name: str) -> None:
    if name not in ESTIMATORS:
        raise UserError(f"unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)}")


def estimator_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 NHWC images -> composition fractions (N, 5) by the estimator called ``name``,
    its network (if any) loaded once, here."""
    _check_estimator(name)
    if name == "photo":
        # start-up cost: at the top, landgan.metrics and SciPy (~0.4 s) would load on every command
        from landgan.metrics.photo_labeller import label_photos

        return label_photos
    if name == "net":
        net = load_estimator()
        return lambda images: estimate(net, images)
    return lambda images: rule_estimate(images, SIZE)


def estimate_with(name: str, images: np.ndarray) -> np.ndarray:
    """Composition fractions (N, 5) of uint8 NHWC images by the estimator called ``name``."""
    return estimator_function(name)(images)


def _with_progress(fn, images: np.ndarray, progress: bool | None) -> np.ndarray:
    """``fn(images)``, computed :data:`PROGRESS_CHUNK` images at a time under a bar of
    photos/s and time left on stderr (``progress`` None: only when stderr is a terminal).

    Labelling thousands of photos takes minutes; without the bar they passed in silence.
    """
    if len(images) == 0:
        return fn(images)
    parts = []
    with tqdm(
        total=len(images),
        unit=" photos",
        desc="label",
        disable=None if progress is None else not progress,
    ) as bar:
        for s in range(0, len(images), PROGRESS_CHUNK):
            parts.append(fn(images[s : s + PROGRESS_CHUNK]))
            bar.update(len(parts[-1]))
    return np.concatenate(parts)


ESTIMATORS = {  # name -> what it is good for (the CLI's --estimator choices)
    "photo": "Inception features + head fitted to people's judgements; for photos (default)",
    "rules": "colour/position/texture rules; no network, ~0.15 off people per element",
    "net": "pixel network trained on procedural masks; near exact on procedural scenes",
}


def label_dataset(
    path: str | Path,
    force: bool = False,
    estimator: str = "photo",
    layout: bool = False,
    progress: bool | None = None,
) -> np.ndarray:
    """Estimate every image's composition and store it as the dataset's conditions.

    ``layout``: store the photo labeller's per-location map pooled to a coarse grid
    instead (:mod:`landgan.models.layout`), for a model told where each element lies.
    ``progress``: a bar on stderr (None: when stderr is a terminal).
    Returns the (N, 5) fractions either way."""
    _check_estimator(estimator)  # before reading the dataset
    if layout and estimator != "photo":
        raise UserError("--layout needs the photo estimator: only it maps where each element lies")
    ds = open_dataset(path)
    if ds.conditions is not None and not force:
        raise UserError(
            f"{path} already has conditions ({', '.join(ds.condition_names[:5])}"
            f"{', ...' * (len(ds.condition_names) > 5)}); pass --force to replace them"
        )
    if layout:
        # start-up cost, as in estimator_function
        from landgan.metrics.photo_labeller import composition_maps

        maps = _with_progress(composition_maps, ds.images, progress)
        conds = pool_maps(torch.from_numpy(maps), GRID).numpy()
        fractions = mean_composition(conds, len(ELEMENTS))
        names, kind = layout_names(list(ELEMENTS), GRID), f"layout {GRID}x{GRID} (estimated: photo)"
    else:
        conds = fractions = _with_progress(estimator_function(estimator), ds.images, progress)
        names, kind = list(ELEMENTS), f"composition (estimated: {estimator})"
    meta = dict(
        ds.meta, conditions=np.round(conds, 5).tolist(), condition_names=names, condition_kind=kind
    )
    meta_path = Path(path) / META_FILE
    with replacing(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return fractions
