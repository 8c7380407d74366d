"""StackGAN stage II (Zhang et al. 2017), unconditional: refine a trained 64 px generator.

Stage I is any already trained generator with 64 px output (``--stage1`` names its
checkpoint); it stays frozen. This module never reads that file: the trainer (or, for
a stage-II checkpoint, :mod:`landgan.sampling`) reads it once and hands the network
and its training config in through :class:`~landgan.models.spec.NetArgs`. Stage II follows the paper's Stage-II generator with
the text embedding replaced by the latent ``z`` itself:

* an encoder takes the stage-I image down to 16x16 features (conv3x3 + ReLU, then
  two stride-2 conv4x4 + BN + ReLU);
* a linear projection of the *same* ``z`` stage I saw is replicated over the 16x16
  map and joined to the features (conv3x3 + BN + ReLU), so an image stays a pure
  function of ``z``;
* two residual blocks, then nearest-neighbour upsample + conv3x3 + BN + ReLU blocks
  up to 128 or 256 px, and a conv3x3 + tanh to RGB.

With ``g_width`` 32 at 256 px the channel plan is exactly the paper's (512 at 16x16,
halving at every upsample down to 32). The discriminator is the 5-layer DCGAN one.

:class:`StackedGenerator` is the z -> image network the rest of the package sees.
Its state dict carries stage I's weights and stage I's training config (as extra
state), so a stage-II checkpoint rebuilds and runs without the stage-I file
(:func:`stage1_config_of` reads that config back out of a state dict).
"""

from __future__ import annotations

import torch
from torch import nn

from landgan.errors import UserError
from landgan.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_weights
from landgan.models.spec import NetArgs

STAGE1_RESOLUTION = 64
RESOLUTIONS = (128, 256)
ENCODED = 16  # side of the feature map where the stage-I image meets z
N_RESIDUAL = 2  # the paper's Stage-II generator uses two residual blocks
_EXTRA = "_extra_state"  # where nn.Module.state_dict puts get_extra_state()


def _conv3(c_in: int, c_out: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)


def _up_block(c_in: int, c_out: int) -> nn.Sequential:
    """Double the size: nearest upsample + conv3x3 + BN + ReLU (the paper's upBlock).

    Upsample-then-conv, rather than a transposed conv, avoids checkerboard artefacts.
    """
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        _conv3(c_in, c_out),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """x -> ReLU(x + BN(conv(ReLU(BN(conv(x)))))), the paper's ResBlock."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv3(channels, channels),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            _conv3(channels, channels),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class Stage2Generator(nn.Module):
    """(stage-I image (N, 3, 64, 64), z (N, z_dim)) -> image (N, 3, R, R) in [-1, 1]."""

    def __init__(self, resolution: int, z_dim: int, width: int):
        super().__init__()
        n_up = (resolution // ENCODED).bit_length() - 1
        if ENCODED * 2**n_up != resolution:
            raise ValueError(f"resolution {resolution} is not 16 * 2**k")
        core = width * 2**n_up  # halves at every upsample, ending at ``width``
        self.encode = nn.Sequential(
            _conv3(3, core // 4, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(core // 4, core // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(core // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(core // 2, core, 4, 2, 1, bias=False),
            nn.BatchNorm2d(core),
            nn.ReLU(inplace=True),
        )
        # Stands in for the paper's conditioning code (also core/4 = 128 channels there).
        self.project = nn.Linear(z_dim, core // 4)
        self.join = nn.Sequential(
            _conv3(core + core // 4, core), nn.BatchNorm2d(core), nn.ReLU(inplace=True)
        )
        self.residual = nn.Sequential(*(ResidualBlock(core) for _ in range(N_RESIDUAL)))
        self.upsample = nn.Sequential(*(_up_block(core >> i, core >> (i + 1)) for i in range(n_up)))
        self.to_rgb = nn.Sequential(_conv3(width, 3, bias=True), nn.Tanh())
        init_weights(self)

    def forward(self, low: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.encode(low)
        code = self.project(z)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        h = self.join(torch.cat([h, code], 1))
        return self.to_rgb(self.upsample(self.residual(h)))


class StackedGenerator(nn.Module):
    """z -> stage2(stage1(z), z): both stages end to end, stage I frozen.

    ``stage1_config`` is stage I's training config as a dict. It is saved in the state
    dict, so a checkpoint is self-describing: whoever loads it builds stage I from the
    recorded config (:func:`stage1_config_of`) before loading the weights.
    """

    def __init__(self, stage1: nn.Module, stage2: Stage2Generator, stage1_config: dict):
        super().__init__()
        self.use_stage1(stage1, stage1_config)
        self.stage2 = stage2

    def use_stage1(self, stage1: nn.Module, stage1_config: dict) -> None:
        """Install ``stage1`` (frozen, eval mode) and record the config it came from."""
        self.stage1 = stage1.eval().requires_grad_(False)
        self.stage1_config = dict(stage1_config)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # No graph through the frozen stage: saves memory and guarantees no gradient
        # ever reaches stage I's weights, whatever optimiser holds them.
        with torch.no_grad():
            low = self.stage1(z)
        return self.stage2(low, z)

    def train(self, mode: bool = True) -> "StackedGenerator":
        super().train(mode)
        # Stage I's BatchNorm must keep normalising with its own running statistics.
        self.stage1.eval()
        return self

    def get_extra_state(self) -> dict:
        return {"stage1_config": self.stage1_config}

    def set_extra_state(self, state: dict) -> None:
        """Adopt the recorded stage-I config (stage I's weights must fit the network
        built for it: build from :func:`stage1_config_of` first)."""
        self.stage1_config = dict(state["stage1_config"])


def check_stage1_config(stage1: dict, z_dim: int, where: str) -> None:
    """UserError unless the stage-I run at ``where`` (its config dict) makes 64 px images
    from a z of length ``z_dim``."""
    if stage1["resolution"] != STAGE1_RESOLUTION:
        raise UserError(
            f"--stage1 {where} generates {stage1['resolution']} px images; stage II "
            f"refines a {STAGE1_RESOLUTION} px generator (train one with "
            f"--resolution {STAGE1_RESOLUTION}, e.g. --model dcgan4)"
        )
    if stage1["z_dim"] != z_dim:
        raise UserError(
            f"--stage1 {where} uses z_dim {stage1['z_dim']} but --z-dim is {z_dim}; "
            f"both stages read the same z: pass --z-dim {stage1['z_dim']}"
        )


def stage1_config_of(state_dict: dict) -> dict | None:
    """The stage-I config recorded in a StackedGenerator state dict (None if absent)."""
    return state_dict.get(_EXTRA, {}).get("stage1_config")


def build_stackgan(a: NetArgs) -> tuple[nn.Module, nn.Module]:
    """(StackedGenerator, 5-layer DCGAN discriminator) at 128 or 256 px.

    ``a.stage1`` is the stage-I generator (its architecture is what matters: the
    trainer loads its weights, and a stage-II checkpoint carries its own copy). Without
    one, an untrained dcgan4 at 64 px with ``a``'s z_dim and g_width stands in: a bare
    architecture for shape tests.
    """
    stage1, stage1_config = a.stage1, a.stage1_config
    if stage1 is None:
        stage1 = DCGANGenerator(STAGE1_RESOLUTION, 4, a.z_dim, a.g_width)
        stage1_config = {
            "model": "dcgan4",
            "resolution": STAGE1_RESOLUTION,
            "z_dim": a.z_dim,
            "g_width": a.g_width,
        }
    stage2 = Stage2Generator(a.resolution, a.z_dim, a.g_width)
    return (
        StackedGenerator(stage1, stage2, stage1_config),
        DCGANDiscriminator(a.resolution, 5, a.d_width),
    )
