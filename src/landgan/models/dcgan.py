"""DCGAN (Radford et al. 2016), the report's final model, in two depths.

* ``dcgan4`` -- the classic layout: z is projected to a small feature map, then
  four stride-2 transposed convolutions double it to 32 or 64 px.
* ``dcgan5`` -- one more transposed convolution, for 64, 128 and 256 px.

Generator: BatchNorm + ReLU after every layer but the last, tanh output.
Discriminator: stride-2 convolutions with LeakyReLU(0.2), BatchNorm on all but the
first, and one logit out (the sigmoid lives in the loss, computed on logits for
numerical stability).
"""

from __future__ import annotations

import torch
from torch import nn

from landgan.models.spec import NetArgs


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) for convs/linears, N(1, 0.02) for BN scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def channel_plan(width: int, n_layers: int, cap_mult: int = 8) -> list[int]:
    """Feature widths from the smallest map to the largest: width*8, ..., width*2, width."""
    return [width * min(cap_mult, 2 ** (n_layers - 1 - i)) for i in range(n_layers)]


class DCGANGenerator(nn.Module):
    """z (N, z_dim) -> image (N, 3, R, R) in [-1, 1] through ``n_up`` transposed convs."""

    def __init__(
        self, resolution: int, n_up: int, z_dim: int = 100, width: int = 64, cond_dim: int = 0
    ):
        super().__init__()
        base = resolution // 2**n_up
        if base < 1 or base * 2**n_up != resolution:
            raise ValueError(f"resolution {resolution} is not reachable with {n_up} doublings")
        chans = channel_plan(width, n_up)
        self.z_dim, self.base, self.resolution, self.cond_dim = z_dim, base, resolution, cond_dim
        # A linear "project and reshape" equals a transposed conv on a 1x1 map; it is
        # one matmul instead of a conv, and the BN after it normalises per channel. A
        # condition vector is joined to z here, so this layer is also its embedding.
        self.project = nn.Linear(z_dim + cond_dim, chans[0] * base * base, bias=False)
        self.project_bn = nn.BatchNorm2d(chans[0])
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans, chans[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond_dim:
            z = torch.cat([z, c.to(z.dtype)], 1)
        x = self.project(z).view(z.shape[0], -1, self.base, self.base)
        x = torch.relu(self.project_bn(x))
        return self.body(x)


class DCGANDiscriminator(nn.Module):
    """image (N, 3, R, R) -> one real/fake logit per image, through ``n_down`` strided convs.

    ``norm`` "batch" (DCGAN) or "none" (WGAN-GP critics, spectral norm); ``first_norm``
    also normalises the first layer (the report's WGAN: BN after every conv);
    ``dropout`` follows each activation (the report's WGAN).
    """

    def __init__(
        self,
        resolution: int,
        n_down: int,
        width: int = 64,
        norm: str = "batch",
        first_norm: bool = False,
        dropout: float = 0.0,
        cond_dim: int = 0,
        cond_head: bool = False,
    ):
        super().__init__()
        final = resolution // 2**n_down
        if final < 1 or final * 2**n_down != resolution:
            raise ValueError(f"resolution {resolution} is not reachable with {n_down} halvings")
        chans = channel_plan(width, n_down)[::-1]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip([3] + chans, chans)):
            use_norm = norm == "batch" and (i > 0 or first_norm)
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not use_norm))
            if use_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        # A valid conv over the whole final map is the report's dense output layer.
        self.head = nn.Conv2d(chans[-1], 1, final)
        # Projection discriminator (Miyato & Koyama 2018): logit += <embed(c), features>.
        self.embed = nn.Linear(cond_dim, chans[-1], bias=False) if cond_dim else None
        # AC-GAN-style head: the condition's logits from the same pooled features.
        self.predict = nn.Linear(chans[-1], cond_dim) if cond_dim and cond_head else None
        init_weights(self)

    def scores(
        self, x: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, condition logits (N, K) or None without a ``cond_head``) in one pass."""
        h = self.body(x)
        out = self.head(h).flatten(1).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(c.to(h.dtype)) * h.sum((2, 3))).sum(1)
        return out, None if self.predict is None else self.predict(h.mean((2, 3)))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.scores(x, c)[0]


def _depth(resolution: int) -> int:
    """4 up/down layers up to 64 px, 5 above (the report's two DCGAN depths)."""
    return 4 if resolution <= 64 else 5


def build_dcgan4(a: NetArgs) -> tuple[nn.Module, nn.Module]:
    """The classic DCGAN: 4 transposed convs (32 or 64 px)."""
    return (
        DCGANGenerator(a.resolution, 4, a.z_dim, a.g_width, a.cond_dim),
        DCGANDiscriminator(a.resolution, 4, a.d_width, cond_dim=a.cond_dim, cond_head=a.cond_head),
    )


def build_dcgan5(a: NetArgs) -> tuple[nn.Module, nn.Module]:
    """The deeper DCGAN: 5 transposed convs (64, 128 or 256 px)."""
    return (
        DCGANGenerator(a.resolution, 5, a.z_dim, a.g_width, a.cond_dim),
        DCGANDiscriminator(a.resolution, 5, a.d_width, cond_dim=a.cond_dim, cond_head=a.cond_head),
    )


def build_wgan(a: NetArgs) -> tuple[nn.Module, nn.Module]:
    """The report's WGAN: DCGAN with BN after every conv, dropout in the critic."""
    n = _depth(a.resolution)
    return (
        DCGANGenerator(a.resolution, n, a.z_dim, a.g_width, a.cond_dim),
        DCGANDiscriminator(
            a.resolution,
            n,
            a.d_width,
            first_norm=True,
            dropout=0.3,
            cond_dim=a.cond_dim,
            cond_head=a.cond_head,
        ),
    )


def build_wgan_gp(a: NetArgs) -> tuple[nn.Module, nn.Module]:
    """WGAN-GP (Gulrajani 2017): no BatchNorm in the critic, since the penalty is per sample."""
    n = _depth(a.resolution)
    return (
        DCGANGenerator(a.resolution, n, a.z_dim, a.g_width, a.cond_dim),
        DCGANDiscriminator(
            a.resolution, n, a.d_width, norm="none", cond_dim=a.cond_dim, cond_head=a.cond_head
        ),
    )
