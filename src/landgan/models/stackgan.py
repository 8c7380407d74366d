"""StackGAN stage II (Zhang et al. 2017), unconditional: refine a trained 64 px generator.

Stage I is any already trained generator with 64 px output (``--stage1`` names its
checkpoint); it stays frozen. Stage II follows the paper's Stage-II generator with
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
state), so a stage-II checkpoint rebuilds and runs without the stage-I file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.models.dcgan import DCGANDiscriminator, init_weights
from landgan.train.checkpoint import load_checkpoint, resolve_checkpoint

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
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv3(c_in, c_out),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """x -> ReLU(x + BN(conv(ReLU(BN(conv(x)))))), the paper's ResBlock."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv3(channels, channels), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True), _conv3(channels, channels),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class Stage2Generator(nn.Module):
    """(stage-I image (N, 3, 64, 64), z (N, z_dim)) -> image (N, 3, R, R) in [-1, 1]."""

    def __init__(self, resolution: int, z_dim: int, width: int):
        super().__init__()
        n_up = (resolution // ENCODED).bit_length() - 1
        if ENCODED * 2 ** n_up != resolution:
            raise ValueError(f"resolution {resolution} is not 16 * 2**k")
        core = width * 2 ** n_up  # halves at every upsample, ending at ``width``
        self.encode = nn.Sequential(
            _conv3(3, core // 4, bias=True), nn.ReLU(inplace=True),
            nn.Conv2d(core // 4, core // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(core // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(core // 2, core, 4, 2, 1, bias=False), nn.BatchNorm2d(core),
            nn.ReLU(inplace=True))
        # Stands in for the paper's conditioning code (also core/4 = 128 channels there).
        self.project = nn.Linear(z_dim, core // 4)
        self.join = nn.Sequential(_conv3(core + core // 4, core), nn.BatchNorm2d(core),
                                  nn.ReLU(inplace=True))
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

    ``stage1_config`` is stage I's TrainConfig as a dict. It is saved in the state
    dict, and :meth:`load_state_dict` rebuilds stage I from the saved one when it
    differs, so a checkpoint is self-describing: whatever stage I ``build`` could
    guess, the loaded weights always get the architecture they were trained with.
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
        """Adopt the recorded stage-I config (a no-op after :meth:`load_state_dict`,
        which has already rebuilt stage I to match it; this covers loads through a
        parent module, where stage I's weights must then fit the current architecture)."""
        self.stage1_config = dict(state["stage1_config"])

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        saved = state_dict.get(_EXTRA, {}).get("stage1_config")
        if saved is not None and saved != self.stage1_config:
            device = next(self.stage2.parameters()).device
            stage1 = stage1_from_config(TrainConfig.from_dict(saved)).to(device)
            self.use_stage1(stage1, saved)
        return super().load_state_dict(state_dict, strict, assign)


def check_stage1_config(stage1: TrainConfig, cfg, where: str) -> None:
    """UserError unless the stage-I run at ``where`` makes 64 px images from cfg's z."""
    if stage1.resolution != STAGE1_RESOLUTION:
        raise UserError(f"--stage1 {where} generates {stage1.resolution} px images; stage II "
                        f"refines a {STAGE1_RESOLUTION} px generator (train one with "
                        f"--resolution {STAGE1_RESOLUTION}, e.g. --model dcgan4)")
    if stage1.z_dim != cfg.z_dim:
        raise UserError(f"--stage1 {where} uses z_dim {stage1.z_dim} but --z-dim is {cfg.z_dim}; "
                        f"both stages read the same z: pass --z-dim {stage1.z_dim}")


def stage1_from_config(stage1: TrainConfig) -> nn.Module:
    """Stage I's generator architecture (untrained) from its training config."""
    from landgan.models import build_models  # the registry imports this module

    return build_models(stage1)[0]


def _stage1_config(cfg) -> TrainConfig:
    """Stage I's config from the checkpoint ``cfg.stage1`` names, or a placeholder.

    The placeholder (dcgan4 at 64 px with cfg's z_dim and g_width) serves when there
    is no stage-I file to read: a bare architecture for shape tests, or generation
    from a stage-II checkpoint after the stage-I run was removed -- loading that
    checkpoint replaces it with the recorded stage I (see StackedGenerator).
    """
    where = getattr(cfg, "stage1", "")
    if where and Path(where).exists():
        stage1 = TrainConfig.from_dict(load_checkpoint(resolve_checkpoint(where))["config"])
        check_stage1_config(stage1, cfg, where)
        return stage1
    return TrainConfig(model="dcgan4", resolution=STAGE1_RESOLUTION, z_dim=cfg.z_dim,
                       g_width=cfg.g_width)


def build_stackgan(cfg) -> tuple[nn.Module, nn.Module]:
    """(StackedGenerator, 5-layer DCGAN discriminator) at 128 or 256 px.

    Stage I gets its architecture, not its weights: the trainer loads those, and a
    stage-II checkpoint carries its own copy.
    """
    stage1_cfg = _stage1_config(cfg)
    stage1 = stage1_from_config(stage1_cfg)
    stage2 = Stage2Generator(cfg.resolution, cfg.z_dim, cfg.g_width)
    return (StackedGenerator(stage1, stage2, stage1_cfg.to_dict()),
            DCGANDiscriminator(cfg.resolution, 5, cfg.d_width))

