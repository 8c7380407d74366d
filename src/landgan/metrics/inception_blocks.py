"""The mixed blocks of :class:`landgan.metrics.inception_net.InceptionTrunk`, and the
convolutions they are built from.

Each block (torchvision's ``Mixed_*`` names and branch names, so folded weights find
their module by path) runs the 1x1 convolutions that read its input as one
:class:`Stem`, and moves its pooling branch's 1x1 convolution before the pool; why both
are exact is in :mod:`landgan.metrics.inception_net`'s docstring. Apart from it because
these are the network's parts, while it assembles the trunk and loads weights into it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from landgan.metrics.packed_conv import PackedConv2d


class ConvReLU(PackedConv2d):
    """Convolution whose bias already holds the folded BatchNorm, then ReLU."""

    post_op = "relu"


class Stem(nn.Module):
    """The 1x1 convolutions of one block that read the block input, run as one.

    ``parts`` lists (source name, channels) in output order. ``pooled`` names the
    pooling branch's 1x1 conv, if it belongs here: its bias lives in ``pool_bias``
    and is added by the block after the average pool (see the module docstring
    of :mod:`landgan.metrics.inception_net`).
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


def conv(
    cin: int,
    cout: int,
    k: int | tuple[int, int],
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
) -> ConvReLU:
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
        self.stem = Stem(
            cin,
            [
                ("branch1x1", 64),
                ("branch5x5_1", 48),
                ("branch3x3dbl_1", 64),
                ("branch_pool", pool_ch),
            ],
            pooled="branch_pool",
        )
        self.branch5x5_2 = conv(48, 64, 5, padding=2)
        self.branch3x3dbl_2 = conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv(96, 96, 3, padding=1)
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        b1, b5, b3, bp = self.stem(x)
        bp = F.relu_(self.pool(bp) + self.stem.pool_bias.view(1, -1, 1, 1))
        return torch.cat(
            [b1, self.branch5x5_2(b5), self.branch3x3dbl_3(self.branch3x3dbl_2(b3)), bp], 1
        )


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
        self.stem = Stem(
            cin,
            [("branch1x1", 192), ("branch7x7_1", c7), ("branch7x7dbl_1", c7), ("branch_pool", 192)],
            pooled="branch_pool",
        )
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
        return torch.cat(
            [
                b1,
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(bd),
                self.branch3x3dbl_3b(bd),
                bp,
            ],
            1,
        )
