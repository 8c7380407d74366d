"""The layers FastGAN's generator and discriminator are built from.

The channel plan, the GLU-gated upsampling block, skip-layer excitation, conditional
BatchNorm's condition part, D's residual down block and reconstruction decoders, and
spectral norm over a whole scoring path. They live apart from :mod:`landgan.models.fastgan`,
which assembles them into G and D (its docstring describes the architecture), so that
the two networks read as their wiring rather than among the parts.
"""

from __future__ import annotations

import torch
from torch import nn


def plan(resolution: int, width: int, side: int) -> int:
    """Channels of a side x side map: ``width`` at R/2, doubling per halving, capped at 8x."""
    return max(1, min(8 * width, width * resolution // (2 * side)))


def doublings(start: int, stop: int) -> list[int]:
    """start, 2*start, ..., stop."""
    return [start << i for i in range((stop // start).bit_length())]


class GLU(nn.Module):
    """Gated linear unit over channels: first half * sigmoid(second half)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not F.glu: its backward hands a channels-last input an NCHW gradient, which
        # sends the BatchNorm backward before it down a path ~5x slower on CPU.
        a, b = x.chunk(2, 1)
        return a * torch.sigmoid(b)


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """Double the side: nearest x2, conv3x3 to 2*c_out, BN, GLU (halves to c_out)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c_in, 2 * c_out, 3, 1, 1, bias=False),
        nn.BatchNorm2d(2 * c_out),
        GLU(),
    )


class SkipExcitation(nn.Module):
    """(low, high) -> high * gate(low): per-channel gates of a high-res map from a low-res one."""

    def __init__(self, c_low: int, c_high: int, low: int, high: int):
        super().__init__()
        self.low, self.high = low, high  # the sides it joins, for inspection
        pool = nn.AvgPool2d(low // 4) if low > 4 else nn.Identity()
        self.net = nn.Sequential(
            pool,
            nn.Conv2d(c_low, c_high, 4, bias=False),
            nn.LeakyReLU(0.1),
            nn.Conv2d(c_high, c_high, 1, bias=False),
            nn.Sigmoid(),
        )

    def gate(self, low: torch.Tensor) -> torch.Tensor:
        """Gates (N, C_high, 1, 1) in (0, 1) from the low-res map."""
        return self.net(low)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.gate(low)


class CondModulation(nn.Module):
    """Conditional BatchNorm's condition part: c -> per-channel (scale, shift) of a BN output.

    Applied as ``bn(x) * (1 + scale) + shift`` on top of the BN's own affine. The linear
    starts at zero, so a new model begins exactly as the unconditional-BN one and the
    condition earns its influence.
    """

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.linear(c.to(h.dtype))[:, :, None, None].chunk(2, 1)
        return h * (1 + scale) + shift


def spectral_normed(net: nn.Module) -> nn.Module:
    """Spectral norm on every conv/linear weight of ``net`` (BatchNorm kept, as in FastGAN)."""
    if isinstance(net, (nn.Conv2d, nn.Linear)):
        return nn.utils.parametrizations.spectral_norm(net)  # in place: same module back
    for child in net.children():
        spectral_normed(child)
    return net


class DownBlock(nn.Module):
    """Halve the side: mean of a conv4x4/2 + conv3x3 path and an avgpool + conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.skip = nn.Sequential(
            nn.AvgPool2d(2),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.skip(x)) / 2


def decoder(c_in: int, sides: list[int], chans: dict[int, int]) -> nn.Sequential:
    """8x8 features -> RGB at sides[-1] through up blocks; tanh output like the images."""
    layers: list[nn.Module] = []
    for side in sides[1:]:
        layers.append(up_block(c_in, chans[side]))
        c_in = chans[side]
    return nn.Sequential(*layers, nn.Conv2d(c_in, 3, 3, 1, 1), nn.Tanh())
