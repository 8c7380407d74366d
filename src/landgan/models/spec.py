"""The records of the model registry: what a family registers, and what its builder takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class NetArgs:
    """The plain arguments every model builder takes (no training config, no files).

    ``stage1``/``stage1_config`` serve StackGAN alone: its trainer (or the sampling
    layer, from a checkpoint) reads the stage-I generator once and hands it in.
    """

    resolution: int  # square output size in pixels
    z_dim: int = 100  # latent size
    g_width: int = 64  # generator width
    d_width: int = 64  # discriminator (or encoder) width
    cond_dim: int = 0  # length of the condition vector (0 = unconditional)
    cond_head: bool = False  # D also predicts the condition (AC-GAN style), when conditional
    cond_bn: bool = False  # the condition also modulates G's BatchNorms (fastgan), when conditional
    layout_elements: int = 0  # elements per cell when the condition is a layout map (0 = not one)
    stage1: Any = None  # stackgan: the frozen stage-I generator (an nn.Module)
    stage1_config: dict = field(default_factory=dict)  # stackgan: stage I's training config


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model family and what it expects."""

    build: Callable  # NetArgs -> (generator: z -> image, discriminator or other second network)
    resolutions: tuple[int, ...]  # square output sizes the architecture supports
    summary: str  # one line for --help
    defaults: dict = field(default_factory=dict)  # TrainConfig fields this model sets by default
    trainer: str = "gan"  # key of landgan.train.TRAINERS: how the networks are trained
    conditional: bool = False  # supports --conditional (class or composition vectors)
    cond_bn: bool = False  # supports --cond-bn (the condition modulates G's BatchNorms)
