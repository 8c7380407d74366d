"""The trained models that ship inside the package, usable by name.

``landgan generate landscapes ...`` (and ``evaluate``, ``export``, the UI) take a shipped
model's name wherever they take a checkpoint. Each is a model file
(:mod:`landgan.modelfile`) under ``landgan/pretrained/``; docs/pretrained.md is their
model card (data, terms, the commands that made them, their figures).
"""

from __future__ import annotations

from pathlib import Path

from landgan.errors import UserError

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
# name -> file: a photo composer, 64 px, trained on ../shared/data/landscapes (docs/pretrained.md)
SHIPPED: dict[str, Path] = {"landscapes": PRETRAINED_DIR / "landscapes.safetensors"}


def looks_like_name(target: str | Path) -> bool:
    """Whether ``target`` reads as a model name rather than a path: no folder part, no
    suffix, not ``auto``, and nothing of that name in the current folder."""
    t = str(target)
    return (
        t not in ("auto", "")
        and "/" not in t
        and "\\" not in t
        and "." not in t
        and not Path(t).exists()
    )


def resolve_model(target: str | Path) -> str | Path:
    """A shipped model's file for its name; any other target unchanged. A bare word that
    is neither a shipped name nor an existing path gets one line listing the shipped ones."""
    t = str(target)
    if t in SHIPPED and not Path(t).exists():
        return SHIPPED[t]
    if looks_like_name(t):
        raise UserError(
            f"no model, run folder or checkpoint called {t!r}; the shipped "
            f"models are: {', '.join(SHIPPED)} (or give a path)"
        )
    return target
