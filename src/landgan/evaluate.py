"""``landgan evaluate``: score checkpoints, image folders and datasets; gather tables.

Targets are checkpoints / run folders (their generator is sampled), folders of
generated images, or JSON files written by an earlier ``evaluate`` (gathered as they
are). A generator is compared with ``against`` when given, else with the data it was
trained on (for ``synthetic``, with procedural scenes from seeds training never saw).
Each ``real`` dataset is scored on its own: the report's "real data" column (IS with
``--is-weights``; with ``split_half``, FID/KID between two halves as a floor).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landgan.data.dataset import is_dataset, open_dataset
from landgan.data.limits import available_memory
from landgan.data.synthetic import make_synthetic_dataset
from landgan.device import resolve_device
from landgan.errors import UserError
from landgan.files import replacing
from landgan.metrics.evaluate import (
    evaluate_model,
    evaluate_real,
    format_table,
    score_features,
    table3_markdown,
)
from landgan.metrics.inception import load_feature_extractor
from landgan.metrics.is_classifier import IS_UNAVAILABLE, load_is_classifier
from landgan.metrics.tables import row_problem
from landgan.metrics.sources import image_source_features
from landgan.sampling import check_seed_and_truncation, load_generator, sample_images
from landgan.shipped import looks_like_name

HELD_OUT_SEED_OFFSET = 7919  # synthetic "real" images come from seeds training never used
FEATURE_BYTES = 2048 * 8  # one image's Inception features: 2048 float64
# At most this many images' features at once, whatever the memory: 16 GiB, 20 times the
# 50,000 FID is usually reported at, and about a day of feature extraction on a GPU.
MAX_FEATURE_IMAGES = 1_000_000
# The share of available memory features may take: the chunks are joined into one array
# (a second copy for a moment) and the scores' temporaries need room too.
FEATURE_MEMORY_SHARE = 0.5


@dataclass
class EvalOptions:
    """How ``landgan evaluate`` scores; each field is the ``--flag`` of the same name."""

    real: tuple[str, ...] = ()  # datasets to score on their own (the report's "real data" column)
    against: str | None = None  # real images to compare targets with (default: their training data)
    n: int = 1000  # generated images per target
    n_real: int | None = None  # real images (default: all)
    seed: int = 0  # seeds latents, conditions and the choice of real images
    metrics: tuple[str, ...] = ("fid", "kid", "pr")  # which of fid, kid, pr, is
    is_weights: str | None = None  # Inception-v3 ImageNet weights for IS
    split_half: bool = False  # for --real: FID/KID between two halves of the real set
    resolution: int | None = None  # size for folders of images
    truncation: float | None = None  # sample z from N(0,1) truncated to [-t, t]
    device: str = "cpu"  # cpu, cuda or cuda:N
    json_out: str | None = None  # write the result rows as JSON
    table_out: str | None = None  # write the rows as Markdown in the report's Table 3 layout
    force: bool = False  # overwrite json_out/table_out
    progress: bool = True  # progress bars and the printed table


def _real_for_run(cfg, n_real: int):
    """The images a run should be compared with: its dataset, or unseen procedural scenes."""
    if cfg.data == "synthetic":
        ds = make_synthetic_dataset(n_real, cfg.resolution, seed=cfg.seed + HELD_OUT_SEED_OFFSET)
        ds.name = "synthetic"
        return ds
    return cfg.data


def _is_run(path: Path) -> bool:
    """A checkpoint or model file, a run folder, ``auto`` or a shipped model's name."""
    return (
        path.is_file()
        or (path / "checkpoints").is_dir()
        or str(path) == "auto"
        or looks_like_name(path)
    )


def _generator_row(target: str, o: EvalOptions, get_extractor, classifier) -> dict:
    """A checkpoint's generator scored against its data; ``get_extractor()`` gives the
    features network, asked for only once the checkpoint and real images passed their checks."""
    G, cfg, state = load_generator(target, o.device, with_state=True)
    if o.against is not None:
        real = o.against  # checked with the other sources before any target was scored
    else:
        real = _real_for_run(cfg, o.n_real or 5000)
        if isinstance(real, str) and not Path(real).exists():
            raise UserError(
                f"{target} was trained on {real}, which is not here; give the "
                "photos to compare with as --against DATASET"
            )
        if isinstance(real, str):  # the run's own dataset, known only from its config
            _check_source(real)
    name = getattr(real, "name", None) or Path(str(real)).name

    def sample_fn(n: int, seed: int) -> np.ndarray:
        # A conditional model draws its conditions as they occur in its training photos,
        # from its own bank: what the training-time evaluator scores, too.
        return sample_images(G, cfg, n, seed, o.truncation, state=state)

    return evaluate_model(
        sample_fn,
        real,
        get_extractor(),
        n=o.n,
        n_real=o.n_real,
        metrics=o.metrics,
        classifier=classifier,
        dataset=name,
        model=cfg.model,
        resolution=cfg.resolution,
        seed=o.seed,
        progress=o.progress,
    )


def _folder_row(target: Path, o: EvalOptions, extractor) -> dict:
    """A folder of generated images scored against --against (checked by _plan_target)."""
    fake, _ = image_source_features(
        target, extractor, o.n, None, resolution=o.resolution, seed=o.seed, use_cache=False
    )
    real, _ = image_source_features(
        o.against, extractor, o.n_real, resolution=o.resolution, seed=o.seed
    )
    metrics = [m for m in o.metrics if m != "is"]
    row = {"dataset": Path(str(o.against)).name, "model": target.name, "resolution": o.resolution}
    return row | score_features(real, fake, metrics, seed=o.seed)


def evaluate(targets: list[str], o: EvalOptions | None = None) -> list[dict]:
    """Score every target and real dataset; optionally write JSON and a Table-3 Markdown.

    Everything that can be checked without scoring is checked first (options, targets,
    datasets, output paths), so a mistake costs no minutes of feature extraction.
    """
    o = dataclasses.replace(o or EvalOptions())
    o.device = resolve_device(o.device)  # a bad --device fails here, before any work
    check_seed_and_truncation(o.seed, o.truncation)
    if not targets and not o.real:
        raise UserError(
            "nothing to evaluate: give checkpoints/run folders/image folders, or --real DATASET"
        )
    _check_outputs(o)
    jobs = [_plan_target(t, o) for t in targets]
    _check_counts(o, scores_targets=any(not isinstance(job, list) for job in jobs))
    _check_real_sources(o)
    classifier = load_is_classifier(o.is_weights, o.device) if o.is_weights else None
    if "is" in o.metrics and classifier is None:
        raise UserError(IS_UNAVAILABLE)
    rows = []
    extractor = functools.cache(lambda: load_feature_extractor(o.device))  # loaded once, if needed
    for t, job in zip(targets, jobs):
        if isinstance(job, list):  # rows of an earlier evaluate, read while planning
            rows += job
        elif job == "run":
            rows.append(_generator_row(t, o, extractor, classifier))
        else:
            rows.append(_folder_row(Path(t), o, extractor()))
    for r in o.real:
        rows.append(
            evaluate_real(
                r,
                extractor() if o.split_half else None,
                classifier=classifier,
                n=o.n_real,
                dataset=Path(r).name,
                resolution=o.resolution,
                split_half=o.split_half,
                seed=o.seed,
                progress=o.progress,
            )
        )
    if o.progress:  # printed before the files are written: a failed write loses no scores
        print(format_table(rows))
    if o.json_out:
        _write_text(o.json_out, json.dumps(rows, indent=1, default=_jsonable))
    if o.table_out:
        _write_text(o.table_out, table3_markdown(rows) + "\n")
    return rows


def _plan_target(target: str, o: EvalOptions):
    """What ``target`` is: "run", "folder", or the rows of a result JSON (read now).

    Anything else is a UserError, raised before any target is scored.
    """
    p = Path(target)
    if p.suffix == ".json" and p.is_file():
        return _read_rows(p)
    if _is_run(p):
        return "run"
    if p.is_dir():
        if o.against is None:
            raise UserError(f"{p} is a folder of images: say what to compare it with (--against)")
        if o.resolution is None:
            raise UserError("scoring a folder of images needs --resolution")
        return "folder"
    raise UserError(f"not a checkpoint, run folder, image folder or result JSON: {target}")


def feature_image_limit() -> tuple[int, str]:
    """(most images whose features may be held at once, why that many)."""
    avail = available_memory()
    fit = None if avail is None else int(avail * FEATURE_MEMORY_SHARE) // FEATURE_BYTES
    if fit is None or fit >= MAX_FEATURE_IMAGES:
        return MAX_FEATURE_IMAGES, "landgan's fixed cap"
    return fit, f"half of the {avail / 2**30:.1f} GiB of memory available now"


def _check_counts(o: EvalOptions, scores_targets: bool) -> None:
    """--n and --n-real are positive, and the features they mean fit in memory.

    A target's generated features (--n) and the real ones (--n-real) are held together
    while it is scored; refused here, a typo costs no hours of extraction before failing.
    """
    for flag, n in (("--n", o.n), ("--n-real", o.n_real)):
        if n is not None and n < 1:
            raise UserError(f"{flag} must be at least 1, got {n}")
    counts = [
        (flag, n)
        for flag, n in (("--n", o.n if scores_targets else None), ("--n-real", o.n_real))
        if n
    ]
    held = sum(n for _, n in counts)
    limit, why = feature_image_limit()
    if held > limit:
        given = " plus ".join(f"{flag} {n:,}" for flag, n in counts)
        raise UserError(
            f"{given} images need {held * FEATURE_BYTES / 2**30:,.1f} GiB of "
            f"features (2048 float64 each, held at once); at most {limit:,} "
            f"images fit ({why})"
        )


def _check_real_sources(o: EvalOptions) -> None:
    """--against and every --real exist, and the datasets among them open."""
    for source in ([o.against] if o.against is not None else []) + list(o.real):
        _check_source(source)


def _check_source(source: str) -> None:
    """UserError unless ``source`` exists and, if a dataset, passes open_dataset's checks."""
    p = Path(source)
    if not p.exists():
        raise UserError(f"real images not found: {source}")
    if is_dataset(p):
        open_dataset(p)  # memory-mapped: cheap, and a bad dataset.json fails before sampling


def _check_outputs(o: EvalOptions) -> None:
    """--json and --table can be written: checked before the work, not after it."""
    for out in (o.json_out, o.table_out):
        if not out:
            continue
        p = Path(out)
        if p.is_dir():
            raise UserError(f"{out} is a folder; give a file path")
        if p.exists() and not o.force:
            raise UserError(f"{out} already exists; pass --force to overwrite")
        folder = p.parent
        if not folder.is_dir():
            raise UserError(f"cannot write {out}: the folder {folder} does not exist")
        try:  # a real file, not os.access: that ignores read-only mounts and says yes to root
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None


def _write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: an old file survives a failure."""
    try:
        with replacing(path) as tmp:
            tmp.write_text(text)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def _jsonable(v):
    return v.item() if isinstance(v, np.generic) else str(v)


def _read_rows(path: Path) -> list[dict]:
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read results {path}: {e}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise UserError(f"{path} is not a landgan evaluate result file")
    for i, row in enumerate(rows, 1):
        problem = row_problem(row)
        if problem:
            raise UserError(f"{path}: row {i}: {problem}")
    return rows
