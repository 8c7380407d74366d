"""The vanilla GAN of Goodfellow et al. 2014: fully connected G and D, the report's baseline."""

from __future__ import annotations

import torch
from torch import nn

from landgan.models.dcgan import init_weights
from landgan.models.spec import NetArgs


class MLPGenerator(nn.Module):
    """z -> 256 -> 512 -> 1024 -> 3*R*R pixels, ReLU hidden layers, tanh output."""

    def __init__(self, resolution: int, z_dim: int = 100, width: int = 64):
        super().__init__()
        hidden = [width * 4, width * 8, width * 16]
        layers: list[nn.Module] = []
        for a, b in zip([z_dim] + hidden, hidden):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        layers += [nn.Linear(hidden[-1], 3 * resolution * resolution), nn.Tanh()]
        self.net, self.resolution = nn.Sequential(*layers), resolution
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        return self.net(z).view(-1, 3, r, r)


class MLPDiscriminator(nn.Module):
    """3*R*R pixels -> 1024 -> 512 -> 256 -> one logit, LeakyReLU and dropout (as in the paper)."""

    def __init__(self, resolution: int, width: int = 64):
        super().__init__()
        hidden = [width * 16, width * 8, width * 4]
        layers: list[nn.Module] = []
        for a, b in zip([3 * resolution * resolution] + hidden, hidden):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.3)]
        layers.append(nn.Linear(hidden[-1], 1))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1)).squeeze(1)


def build_mlp_gan(a: NetArgs) -> tuple[nn.Module, nn.Module]:
    """The fully connected pair at ``a.resolution``."""
    return MLPGenerator(a.resolution, a.z_dim, a.g_width), MLPDiscriminator(a.resolution, a.d_width)
