"""Sampling a trained generator: loading it from a checkpoint, latents, conditions, images.

The library layer under every verb that makes pictures (generate, evaluate, export,
the UI) and under StackGAN's trainer, which reads its stage I through it. The same
seed always gives the same images, at any batch size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from landgan.checkpoint import load_checkpoint, resolve_checkpoint
from landgan.composer import composition_view, draw_conditions
from landgan.config import TrainConfig
from landgan.device import resolve_device
from landgan.errors import UserError
from landgan.images import to_uint8
from landgan.models import build_models
from landgan.modelfile import is_model_file, load_model_file
from landgan.models.stackgan import stage1_config_of
from landgan.shipped import resolve_model

MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed takes
# Latents come in blocks of this many images, one generator each: part of what a seed means
# (changing it changes every image past the first block). Huge z_dim gets smaller blocks.
LATENT_BLOCK, LATENT_BLOCK_VALUES = 10_000, 2**22


def load_generator(
    ckpt: str | Path,
    device: str | torch.device = "cpu",
    ema: bool = True,
    with_state: bool = False,
    state: dict | None = None,
):
    """(generator in eval mode, its TrainConfig) from a shipped model's name, a model
    file (.safetensors), a checkpoint file or a run folder; or from ``state``, a
    checkpoint dict already loaded (``ckpt`` then only names it in messages).

    With ``with_state`` the whole checkpoint dict comes third.
    """
    device = resolve_device(device)
    # Everything but G stays on the CPU, where requests are made: only G moves to --device.
    state = load_state(ckpt, "cpu") if state is None else state
    cfg = TrainConfig.from_dict(state["config"])
    key = "G_ema" if ema and "G_ema" in state["models"] else "G"
    if key not in state["models"]:  # a model file keeps the EMA generator alone
        raise UserError(
            f"{ckpt} holds only the EMA generator; --no-ema needs a training "
            "checkpoint, which keeps the raw one too"
        )
    try:
        G = build_generator(cfg, state["models"][key])
        G.load_state_dict(state["models"][key])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise UserError(
            f"checkpoint {ckpt} does not match model {cfg.model}: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    G, cfg, state = composition_view(G, cfg, state)
    G = G.to(device).eval().requires_grad_(False)
    return (G, cfg, state) if with_state else (G, cfg)


def load_state(target, device="cpu") -> dict:
    """The checkpoint-shaped dict behind a shipped name, model file, checkpoint or run."""
    target = resolve_model(target)
    if is_model_file(target):
        return load_model_file(target, map_location=device)
    return load_checkpoint(resolve_checkpoint(target), map_location=device)


def build_generator(cfg: TrainConfig, g_state: dict | None = None) -> torch.nn.Module:
    """The untrained generator architecture of ``cfg`` that ``g_state`` will load into.

    A StackGAN generator records its stage I's config in its state dict: stage I is
    built from that record (recursively), so the checkpoint needs no stage-I file.
    """
    extra = {}
    stage1 = stage1_config_of(g_state or {})
    if stage1 is not None:
        stage1_cfg = TrainConfig.from_dict(stage1)
        extra = {"stage1": build_generator(stage1_cfg), "stage1_config": stage1}
    return build_models(cfg.model, cfg.net_args(**extra), cfg.sn)[0]


FAR_FROM_TRAINING = 0.3  # L1 distance to the nearest training condition that earns a warning


def nearest_seen(cond: torch.Tensor, bank: torch.Tensor | None, names: list[str]) -> str | None:
    """A warning if ``cond`` is far from every condition seen in training, naming the nearest."""
    if bank is None or len(bank) == 0:
        return None
    # The request is made on the CPU; the bank lives wherever the model was loaded.
    dist = (bank.float() - cond.to(bank.device)).abs().sum(1)
    i = int(dist.argmin())
    if float(dist[i]) <= FAR_FROM_TRAINING:
        return None
    near = ", ".join(f"{n}={v:.2f}" for n, v in zip(names, bank[i].tolist()) if v >= 0.005)
    return (
        f"warning: these proportions are far from anything in the training data "
        f"(L1 distance {float(dist[i]):.2f}); the nearest seen was {near}"
    )


def check_seed_and_truncation(seed: int, truncation: float | None) -> None:
    """UserError unless ``seed`` fits a torch generator and ``truncation`` is finite and > 0."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be a whole number between 0 and {MAX_SEED}, got {seed!r}")
    if truncation is not None and not (math.isfinite(truncation) and truncation > 0):
        raise UserError(f"--truncation must be a finite number > 0, got {truncation}")


def _block_seed(seed: int, block: int) -> int:
    """Seed of latent block ``block``: ``seed`` itself for the first, so n <= a block keeps its images."""
    if block == 0:
        return seed
    # SeedSequence mixes (seed, block) well: neighbouring seeds do not share later blocks.
    return _mixed_seed(seed, block)


def _mixed_seed(*entropy: int) -> int:
    """A seed for torch derived from ``entropy`` by numpy's SeedSequence."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1, np.uint64)[0]) & MAX_SEED


def maps_in_turn(G, z: torch.Tensor, seed: int, start: int, c: torch.Tensor | None) -> torch.Tensor:
    """Latents ``start``, ``start`` + 1, ... of ``seed`` as a layout model draws them for
    composition requests ``c``: the signs that pick a request's map set so that
    consecutive images take its candidate maps in turn, from a place the seed decides
    (:meth:`LayoutGenerator.in_turn`). Latents given a map itself (a sketch, a drawn
    map), or of any other generator, are unchanged."""
    turn = getattr(G, "in_turn", None)
    if turn is None or c is None or c.shape[-1] != G.elements:
        return z
    return turn(z, _mixed_seed(seed, 0x7A) % (1 << 20) + start)


def latent_block_size(z_dim: int) -> int:
    """Images per latent block: LATENT_BLOCK, fewer for huge z_dim so a block stays small."""
    return max(1, min(LATENT_BLOCK, LATENT_BLOCK_VALUES // max(1, z_dim)))


def iter_latents(n: int, z_dim: int, seed: int, truncation: float | None = None, chunk: int = 64):
    """The latents of :func:`sample_latents` (n, seed, truncation), ``chunk`` rows at a time.

    Latents are drawn per block of :func:`latent_block_size` images, each block from its
    own generator, so memory stays bounded by one block whatever ``n`` is, and the rows
    are the same however they are chunked.
    """
    check_seed_and_truncation(seed, truncation)
    block = latent_block_size(z_dim)
    for b, start in enumerate(range(0, n, block)):
        g = torch.Generator().manual_seed(_block_seed(seed, b))
        z = torch.empty(min(block, n - start), z_dim)
        if truncation is None:
            z.normal_(generator=g)
        else:
            torch.nn.init.trunc_normal_(z, 0.0, 1.0, -truncation, truncation, generator=g)
        yield from z.split(max(1, chunk))


def sample_latents(n: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """``n`` latents from N(0, I), or truncated to [-t, t] per coordinate when ``truncation``.

    Up to one block (10,000 images for z_dim <= 419) they are a single draw from a
    generator seeded with ``seed``; beyond, each block has a seed derived from ``seed``.
    """
    rows = list(iter_latents(n, z_dim, seed, truncation, chunk=max(1, n)))
    return torch.cat(rows) if rows else torch.empty(0, z_dim)


def parse_condition(spec: str, names: list[str]) -> tuple[torch.Tensor, str | None]:
    """``"mountain=0.6,sea=0.4"`` -> a vector over ``names`` summing to 1, and a note if rescaled.

    Names left out get 0. Unknown or repeated names, negative, non-numeric or huge values
    and an all-zero request are user errors that list the valid names.
    """
    valid = ", ".join(names)
    vec = torch.zeros(len(names), dtype=torch.float64)  # float32 would overflow at 1e39
    seen = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in names:
            raise UserError(f"unknown condition {name!r}; this model knows: {valid}")
        if name in seen:
            raise UserError(f"{name!r} is given twice; give each of {valid} at most once")
        seen.add(name)
        try:
            v = float(value)
        except ValueError:
            raise UserError(f"{part!r}: give NAME=NUMBER (names: {valid})") from None
        if v < 0 or not np.isfinite(v):
            raise UserError(f"{part!r}: values must be finite and >= 0 (names: {valid})")
        vec[names.index(name)] = v
    total = float(vec.sum())
    if not math.isfinite(total):
        raise UserError(
            f"the proportions are too large to add up; give fractions such as "
            f"{names[0]}=0.6 (names: {valid})"
        )
    if total <= 0:
        raise UserError(f"the proportions are all zero; give at least one of: {valid}")
    note = None
    if abs(total - 1) > 1e-6:
        note = f"proportions summed to {total:g}; renormalised to sum to 1"
    return (vec / total).float(), note


@torch.no_grad()
def iter_images(
    G,
    cfg,
    n: int,
    seed: int = 0,
    truncation: float | None = None,
    batch_size: int = 64,
    condition: torch.Tensor | None = None,
    state: dict | None = None,
):
    """The images of :func:`sample_images` as uint8 NHWC arrays of at most ``batch_size``.

    A conditional model given no ``condition`` draws conditions as they occur in its
    training photos from ``state`` (its checkpoint dict, :func:`draw_conditions`), a
    block of latents at a time, so a seed gives the same images at any batch size.
    Memory is one latent block and one batch, whatever ``n`` is: write each batch out
    before asking for the next.
    """
    if cfg.conditional and condition is None and state is None:
        raise UserError(
            f"this model is conditional on: {', '.join(cfg.condition_names)}; "
            "pass --mix or --composition"
        )
    device = next(G.parameters()).device
    if condition is not None and condition.dim() == 1:
        condition = condition.expand(n, -1)
    block, drawn = latent_block_size(cfg.z_dim), None
    start = 0
    for z in iter_latents(n, cfg.z_dim, seed, truncation, chunk=batch_size):
        extra = ()
        if condition is not None:
            extra = (condition[start : start + len(z)].to(device),)
        elif cfg.conditional:  # chunks never straddle latent blocks (iter_latents)
            b, at = divmod(start, block)
            if at == 0:
                drawn = draw_conditions(state, min(block, n - start), _mixed_seed(seed, 0xC0, b))
            extra = (drawn[at : at + len(z)].to(device),)
        z = maps_in_turn(G, z, seed, start, extra[0] if extra else None)
        yield to_uint8(G(z.to(device), *extra))
        start += len(z)


def candidate_seed(seed: int, k: int) -> int:
    """Seed of candidate ``k`` in :func:`iter_best_of`: ``seed`` itself for the first, so
    one candidate gives exactly the plain images."""
    if k == 0:
        return seed
    # Mixed with a tag so candidate seeds do not coincide with other latent blocks' seeds.
    return _mixed_seed(seed, 0xBE57, k)


@torch.no_grad()
def iter_best_of(
    G,
    cfg,
    n: int,
    seed: int,
    truncation: float | None,
    batch_size: int,
    condition: torch.Tensor,
    k: int,
    read,
):
    """The batches of :func:`iter_images`, each image the best of ``k`` candidates.

    Candidate ``j`` of image ``i`` is image ``i`` of seed :func:`candidate_seed` (seed, j);
    the one kept is the candidate whose ``read`` (uint8 NHWC images -> (N, K) fractions
    in the condition's order) is nearest its condition (mean absolute difference, the
    first candidate on ties). Rejection sampling at generation time: the generator is not
    changed, and a score by the same reader is no longer independent of the choice.
    """
    if condition.dim() == 1:
        condition = condition.expand(n, -1)
    streams = [
        iter_images(G, cfg, n, candidate_seed(seed, j), truncation, batch_size, condition)
        for j in range(k)
    ]
    start = 0
    for batches in zip(*streams):
        cands = np.stack(batches)  # (k, b, H, W, 3)
        b = cands.shape[1]
        got = np.asarray(read(cands.reshape(k * b, *cands.shape[2:]))).reshape(k, b, -1)
        want = condition[start : start + b].cpu().numpy()
        best = np.abs(got - want).mean(-1).argmin(0)
        yield cands[best, np.arange(b)]
        start += b


def sample_images(
    G,
    cfg,
    n: int,
    seed: int = 0,
    truncation: float | None = None,
    batch_size: int = 64,
    condition: torch.Tensor | None = None,
    best_of: int = 1,
    read=None,
    state: dict | None = None,
) -> np.ndarray:
    """``n`` uint8 NHWC images; the same seed gives the same images at any batch size.

    A conditional generator needs ``condition``: one vector (K,) for every image, or one
    row per image (n, K). All ``n`` are held at once: for many, use :func:`iter_images`.
    ``best_of`` > 1 with a reader ``read``: each image as :func:`iter_best_of` chooses it.
    """
    chunks = list(
        iter_images(G, cfg, n, seed, truncation, batch_size, condition, state)
        if best_of == 1
        else iter_best_of(G, cfg, n, seed, truncation, batch_size, condition, best_of, read)
    )
    return (
        np.concatenate(chunks)
        if chunks
        else np.zeros((0, cfg.resolution, cfg.resolution, 3), np.uint8)
    )
