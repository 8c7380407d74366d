"""The composer's side of sampling: a layout model's set of maps, and drawn conditions.

A layout model (:mod:`landgan.models.layout`) is trained on maps but asked, like any
composition model, for fractions; :func:`composition_view` wraps it so. Its set of maps
(:func:`composer_maps`) is part of the model: stored in every checkpoint and model file,
it decides which arrangements a request can get, and :func:`draw_conditions` draws from it
when no request is given. Sketches reach a layout model through :func:`layout_request`.
"""

from __future__ import annotations

import dataclasses

import torch

from landgan.config import TrainConfig
from landgan.errors import UserError
from landgan.models.layout import (
    CHOICES,
    POOL,
    LayoutGenerator,
    cover_bank,
    draw_maps,
    fit_layout,
    layout_of,
)


def composer_maps(state: dict, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps, weights): a layout model's set of maps. A model file or a new run stores
    them (``layout_bank``, chosen by :func:`~landgan.models.layout.cover_bank` from all
    the training maps); an older checkpoint kept a random sample of training maps as its
    condition bank, and the set is chosen from that sample the same way. ``width``: the
    numbers a map must have (the model's conditions); a file whose maps do not fit is
    refused with one line, not left to fail inside the generator."""
    if state.get("layout_bank") is not None:
        bank, weights = state["layout_bank"], state.get("layout_weights")
    else:
        sample = state.get("condition_bank")
        if sample is None or len(sample) == 0:
            raise UserError(
                "this layout model's checkpoint has no condition bank (its training "
                "maps), which generation needs; it cannot make pictures"
            )
        bank, weights = cover_bank(sample.float().cpu())
    problem = _maps_problem(bank, weights, width)
    if problem:
        raise UserError(f"this layout model's set of maps is damaged: {problem}")
    return bank.float(), weights.float()


def _maps_problem(bank, weights, width: int | None) -> str | None:
    """What is wrong with a set of maps and their weights, or None."""
    if not isinstance(bank, torch.Tensor) or bank.dim() != 2 or len(bank) == 0:
        return "the maps are not a non-empty table"
    if width is not None and bank.shape[1] != width:
        return f"a map has {bank.shape[1]} numbers, the model takes {width}"
    if not isinstance(weights, torch.Tensor) or weights.shape != (len(bank),):
        return f"there must be one weight per map ({len(bank)})"
    if not (torch.isfinite(bank).all() and torch.isfinite(weights).all()):
        return "they hold NaN or infinite numbers"
    if (bank < 0).any() or (weights < 0).any() or float(weights.sum()) <= 0:
        return "they hold negative fractions or weights"
    return None


def composition_view(G, cfg: TrainConfig, state: dict):
    """(G, cfg, state) unchanged, except for a layout model (:mod:`landgan.models.layout`):
    then a generator asked for fractions (or given a map), a config naming the elements,
    and a condition bank of its maps' mean compositions, so callers see a composition
    model; ``state`` gains ``layout_grid`` and ``layout_bank`` (the maps themselves)."""
    layout = layout_of(cfg.condition_names)
    if layout is None:
        return G, cfg, state
    elements = layout[0]
    bank, weights = composer_maps(state, len(cfg.condition_names))
    G = LayoutGenerator(
        G,
        bank,
        len(elements),
        weights,
        state.get("layout_choices", CHOICES),
        state.get("layout_pool", POOL),
    )
    cfg = dataclasses.replace(cfg, conditions=",".join(elements))
    return (
        G,
        cfg,
        dict(
            state,
            condition_bank=G.means,
            layout_grid=layout[1],
            layout_bank=bank,
            layout_weights=G.weights,
        ),
    )


def layout_request(G, cells: torch.Tensor, fractions: torch.Tensor | None = None) -> torch.Tensor:
    """The map (C * K,) a layout model draws for a sketch's ``cells``, rescaled to the
    composition ``fractions`` (K,) when one is given (iterative proportional fitting)."""
    if not isinstance(G, LayoutGenerator):
        raise UserError(
            "--layout needs a layout model (trained on maps: landgan label "
            "--layout, train --conditional --cond-bn); this model has none"
        )
    k = G.elements
    if cells.numel() != G.bank.shape[1] * k:
        raise UserError(
            f"the sketch gives {cells.numel() // k} cells; this model draws {G.grid}x{G.grid}"
        )
    if fractions is None:
        return cells.float()
    return fit_layout(cells.float().reshape(1, -1, k), fractions.float()[None]).flatten()


BANK_SAMPLE = 2048  # training conditions a composition model's checkpoint keeps


def stored_conditions(conds: torch.Tensor, names: list[str]) -> dict:
    """What a conditional run's checkpoints keep of its training conditions ``conds``, so
    that generation can draw conditions as they occur and warn about requests far from
    them: a layout model's set of maps (:func:`~landgan.models.layout.cover_bank`) with
    their weights, else a seed-0 sample of :data:`BANK_SAMPLE` conditions."""
    if layout_of(names) is not None:
        bank, weights = cover_bank(conds)
        return {"condition_bank": bank, "layout_bank": bank, "layout_weights": weights}
    pick = torch.randperm(len(conds), generator=torch.Generator().manual_seed(0))[:BANK_SAMPLE]
    return {"condition_bank": conds[pick].contiguous()}


def draw_conditions(state: dict, n: int, seed: int) -> torch.Tensor:
    """``n`` conditions as they occur in the training photos, for a conditional model
    asked for no particular one: a layout model's maps by how often each occurs, else
    rows of the condition bank. ``landgan generate``/``evaluate`` and the training-time
    evaluator all draw this way, so they score the same generator."""
    if state.get("layout_bank") is not None:
        return draw_maps(state["layout_bank"], state["layout_weights"], n, seed)
    bank = state.get("condition_bank")
    if bank is None or len(bank) == 0:
        raise UserError(
            "this conditional model keeps no training conditions to draw from; pass --composition"
        )
    g = torch.Generator().manual_seed(seed)
    return bank[torch.randint(len(bank), (n,), generator=g).to(bank.device)].float()
