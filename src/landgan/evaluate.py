"""``landgan evaluate``: score checkpoints, image folders and datasets; gather tables.

Targets are checkpoints / run folders (their generator is sampled), folders of
generated images, or JSON files written by an earlier ``evaluate`` (gathered as they
are). A generator is compared with ``against`` when given, else with the data it was
trained on (for ``synthetic``, with procedural scenes from seeds training never saw).
Each ``real`` dataset is scored on its own: the report's "real data" column (IS with
``--is-weights``; with ``split_half``, FID/KID between two halves as a floor).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from landgan.errors import UserError

HELD_OUT_SEED_OFFSET = 7919  # synthetic "real" images come from seeds training never used


def _real_for_run(cfg, n_real: int):
    """The images a run should be compared with: its dataset, or unseen procedural scenes."""
    if cfg.data == "synthetic":
        from landgan.data.synthetic import make_synthetic_dataset

        ds = make_synthetic_dataset(n_real, cfg.resolution, seed=cfg.seed + HELD_OUT_SEED_OFFSET)
        ds.name = "synthetic"
        return ds
    return cfg.data


def _condition_sampler(cfg, n_real: int):
    """For a conditional run: (n, seed) -> conditions drawn from its training data."""
    import torch

    from landgan.data.dataset import ImageDataset, open_dataset
    from landgan.train.data import condition_matrix

    data = _real_for_run(cfg, n_real)
    conds, names = condition_matrix(data if isinstance(data, ImageDataset) else open_dataset(data))
    if ",".join(names) != cfg.conditions:
        raise UserError(f"the run's data now has conditions {names}, not {cfg.conditions!r}")
    table = torch.from_numpy(conds)
    return lambda n, seed: table[np.random.default_rng(seed).integers(0, len(table), n)]


def _is_run(path: Path) -> bool:
    return path.is_file() or (path / "checkpoints").is_dir() or str(path) == "auto"


def _generator_row(target: str, against, opts: dict, extractor, classifier) -> dict:
    from landgan.generate import load_generator, sample_images
    from landgan.metrics.evaluate import evaluate_model

    G, cfg = load_generator(target, opts["device"])
    real = against if against is not None else _real_for_run(cfg, opts["n_real"] or 5000)
    name = getattr(real, "name", None) or Path(str(real)).name
    conds = _condition_sampler(cfg, opts["n_real"] or 5000) if cfg.conditional else None

    def sample_fn(n: int, seed: int) -> np.ndarray:
        c = conds(n, seed) if conds else None
        return sample_images(G, cfg, n, seed, opts["truncation"], condition=c)

    return evaluate_model(sample_fn, real,
                          extractor, n=opts["n"], n_real=opts["n_real"], metrics=opts["metrics"],
                          classifier=classifier, dataset=name, model=cfg.model,
                          resolution=cfg.resolution, seed=opts["seed"], progress=opts["progress"])


def _folder_row(target: Path, against, opts: dict, extractor) -> dict:
    from landgan.metrics.evaluate import score_features
    from landgan.metrics.sources import image_source_features

    if against is None:
        raise UserError(f"{target} is a folder of images: say what to compare it with (--against)")
    res = opts["resolution"]
    if res is None:
        raise UserError("scoring a folder of images needs --resolution")
    fake, _ = image_source_features(target, extractor, opts["n"], None, resolution=res,
                                    seed=opts["seed"], use_cache=False)
    real, _ = image_source_features(against, extractor, opts["n_real"], resolution=res,
                                    seed=opts["seed"])
    metrics = [m for m in opts["metrics"] if m != "is"]
    row = {"dataset": Path(str(against)).name, "model": target.name, "resolution": res}
    return row | score_features(real, fake, metrics, seed=opts["seed"])


def evaluate(targets: list[str], *, real: list[str] = (), against: str | None = None,
             n: int = 1000, n_real: int | None = None, seed: int = 0,
             metrics: tuple[str, ...] = ("fid", "kid", "pr"), is_weights: str | None = None,
             split_half: bool = False, resolution: int | None = None, truncation=None,
             device: str = "cpu", json_out: str | None = None, table_out: str | None = None,
             force: bool = False, progress: bool = True) -> list[dict]:
    """Score every target and real dataset; optionally write JSON and a Table-3 Markdown."""
    from landgan.metrics.evaluate import evaluate_real, format_table, table3_markdown
    from landgan.metrics.inception import load_feature_extractor
    from landgan.metrics.is_classifier import IS_UNAVAILABLE, load_is_classifier

    if not targets and not real:
        raise UserError("nothing to evaluate: give checkpoints/run folders/image folders, "
                        "or --real DATASET")
    for out in (json_out, table_out):
        if out and Path(out).exists() and not force:
            raise UserError(f"{out} already exists; pass --force to overwrite")
    classifier = load_is_classifier(is_weights, device) if is_weights else None
    if "is" in metrics and classifier is None:
        raise UserError(IS_UNAVAILABLE)
    opts = dict(n=n, n_real=n_real, seed=seed, metrics=metrics, device=device,
                resolution=resolution, truncation=truncation, progress=progress)
    rows, extractor = [], None
    for t in targets:
        p = Path(t)
        if p.suffix == ".json" and p.is_file():
            rows += _read_rows(p)
            continue
        extractor = extractor or load_feature_extractor(device)
        if _is_run(p):
            rows.append(_generator_row(t, against, opts, extractor, classifier))
        elif p.is_dir():
            rows.append(_folder_row(p, against, opts, extractor))
        else:
            raise UserError(f"not a checkpoint, run folder, image folder or result JSON: {t}")
    for r in real:
        extractor = extractor or (load_feature_extractor(device) if split_half else None)
        rows.append(evaluate_real(r, extractor, classifier=classifier, n=n_real,
                                  dataset=Path(r).name, resolution=resolution,
                                  split_half=split_half, seed=seed, progress=progress))
    if json_out:
        Path(json_out).write_text(json.dumps(rows, indent=1, default=_jsonable))
    if table_out:
        Path(table_out).write_text(table3_markdown(rows) + "\n")
    if progress:
        print(format_table(rows))
    return rows


def _jsonable(v):
    return v.item() if isinstance(v, np.generic) else str(v)


def _read_rows(path: Path) -> list[dict]:
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read results {path}: {e}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UserError(f"{path} is not a landgan evaluate result file")
    return rows
