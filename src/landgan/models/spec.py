"""The record each model family registers under its CLI name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model family and what it expects."""

    build: Callable  # cfg -> (generator: z -> image, discriminator or other second network)
    resolutions: tuple[int, ...]  # square output sizes the architecture supports
    summary: str  # one line for --help
    defaults: dict = field(default_factory=dict)  # TrainConfig fields this model sets by default
    trainer: str = "gan"  # key of landgan.train.TRAINERS: how the networks are trained
    conditional: bool = False  # supports --conditional (class or composition vectors)
