"""Checks on everything the web UI receives, as pure functions.

The browser is not trusted: Gradio's API accepts any JSON, so every handler passes its
inputs through these functions first. Each raises :class:`~landgan.errors.UserError`
with a message fit to show the user; the app turns it into a ``gr.Error``.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from landgan.errors import UserError
from landgan.checkpoint import CKPT_DIR
from landgan.sampling import parse_condition

MAX_IMAGES = 64  # one Generate click; bounds memory and CPU per request
MAX_BEST_OF = 8  # candidates per image (composition models): each a generation and a reading
BEST_OF = 1  # the page's starting number of candidates per image
MAX_SEED = 2**31 - 1  # what torch.Generator.manual_seed and every UI widget can hold
MAX_TRUNCATION = 4.0  # beyond 4 sigma truncation changes nothing visible
MAX_FRAMES = 48  # interpolation frames per GIF
MAX_SPEC_CHARS = 2000  # a composition typed as "name=value,..."
SHOWN_CHARS = 60  # of a bad value, quoted back in a message
MAX_SKETCH_SIDE = 2048  # px; the page's canvas is 256, and a sketch is pooled to a few cells
SKETCH_FORMATS = ("PNG", "WEBP")  # what the canvas and Gradio's cache write
_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


def shown(value, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages never echo a megabyte of input."""
    if isinstance(value, str) and len(value) > limit:  # no repr of all of it first
        value = value[:limit]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value, what: str) -> float:
    """``value`` as a finite float; bools and strings are refused (the API accepts any JSON)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{what} must be a number, got {shown(value)}")
    try:
        value = float(value)
    except OverflowError:  # a JSON integer of hundreds of digits
        value = math.inf
    if not math.isfinite(value):
        raise UserError(f"{what} must be finite, got {value}")
    return value


def _integer(value, what: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; 3.0 is accepted (sliders send floats), 3.5 is not."""
    v = _number(value, what)
    if v != int(v):
        raise UserError(f"{what} must be a whole number, got {value}")
    if not low <= v <= high:
        raise UserError(f"{what} must be between {low} and {high}, got {int(v)}")
    return int(v)


def validate_count(value, high: int = MAX_IMAGES) -> int:
    """Number of images to generate: 1..``high``."""
    return _integer(value, "number of images", 1, high)


def validate_best_of(value) -> int:
    """Candidates per image: 1..MAX_BEST_OF."""
    return _integer(value, "candidates per image", 1, MAX_BEST_OF)


def validate_frames(value) -> int:
    """Number of interpolation frames: 2..MAX_FRAMES."""
    return _integer(value, "number of frames", 2, MAX_FRAMES)


def validate_seed(value) -> int:
    """A seed in 0..2**31-1."""
    return _integer(value, "seed", 0, MAX_SEED)


def validate_port(value) -> int:
    """A TCP port to listen on: 1..65535."""
    return _integer(value, "port", 1, 65535)


def validate_truncation(value) -> float | None:
    """Truncation in [0, MAX_TRUNCATION]; 0 means off (``None``, plain N(0, I) latents)."""
    v = _number(value, "truncation")
    if not 0 <= v <= MAX_TRUNCATION:
        raise UserError(f"truncation must be between 0 (off) and {MAX_TRUNCATION:g}, got {v:g}")
    return v or None


def validate_composition(values, names: list[str]) -> torch.Tensor:
    """Slider percentages (one per name, in order) -> a vector summing to 1.

    Values must be numbers in 0..100 and not all zero; a total other than 100 is
    renormalised, as ``landgan generate`` does.
    """
    values = list(values or [])
    if len(values) < len(names):
        raise UserError(
            f"expected {len(names)} proportions ({', '.join(names)}), got {len(values)}"
        )
    vec = torch.tensor([_number(v, f"proportion of {n}") for n, v in zip(names, values)])
    bad = [n for n, v in zip(names, vec.tolist()) if not 0 <= v <= 100]
    if bad:
        raise UserError(f"proportions must be between 0 and 100 % ({', '.join(bad)})")
    if float(vec.sum()) <= 0:
        raise UserError(f"the proportions are all zero; raise at least one of: {', '.join(names)}")
    return vec / vec.sum()


def validate_spec(spec, names: list[str]) -> torch.Tensor:
    """A typed composition ``"sky=0.4,water=0.6"`` -> a vector summing to 1."""
    if not isinstance(spec, str) or not spec.strip():
        raise UserError(f"give a composition such as {names[0]}=1 (names: {', '.join(names)})")
    if len(spec) > MAX_SPEC_CHARS:
        raise UserError(f"composition too long ({len(spec)} characters)")
    return parse_condition(spec, names)[0]


def validate_sketch(data: bytes | Path) -> np.ndarray:
    """A painted sketch, as PNG or WebP bytes or a file already known to be safe to open,
    -> uint8 RGBA pixels (H, W, 4); anything else is one line, never a decoder traceback."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
                if im.format not in SKETCH_FORMATS:
                    raise UserError(f"a sketch must be a PNG or WebP image, not {im.format}")
                if max(im.size) > MAX_SKETCH_SIDE:  # checked before any pixel is decoded
                    raise UserError(
                        f"the sketch is {im.size[0]}x{im.size[1]} px; at most "
                        f"{MAX_SKETCH_SIDE} px a side"
                    )
                return np.asarray(im.convert("RGBA"))
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 -- a hostile file may fail the decoder in any way
        raise UserError(f"the sketch is not a readable image ({type(e).__name__})") from None


def percentages(weights: list[float], total: int = 100) -> list[int]:
    """Whole percentages proportional to ``weights`` that sum exactly to ``total``.

    Largest-remainder rounding, so 1/3 each gives 34, 33, 33 rather than 33 x 3 = 99.
    All-zero weights are split equally.
    """
    if not weights:
        return []
    w = [max(0.0, float(x)) for x in weights]
    s = sum(w)
    w = [1.0] * len(w) if s <= 0 else w
    s = sum(w)
    exact = [total * x / s for x in w]
    out = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(w)), key=lambda i: (out[i] - exact[i], i))
    for i in by_remainder[: total - sum(out)]:
        out[i] += 1
    return out


def rebalance(values, moved: int) -> list[int]:
    """Slider values after the user set ``values[moved]``: the others rescale so all sum to 100.

    The moved slider keeps its value (clamped to 0..100); the rest share what is left in
    their current proportions, or equally when they were all zero. With a single slider
    it is always 100.
    """
    vals = [min(100.0, max(0.0, _number(v, "proportion"))) for v in values]
    if not 0 <= moved < len(vals):
        raise UserError(f"no slider {moved}")
    if len(vals) == 1:
        return [100]
    mine = int(round(vals[moved]))
    others = [v for i, v in enumerate(vals) if i != moved]
    rest = percentages(others, 100 - mine)
    rest.insert(moved, mine)
    return rest


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symlinks followed) lies inside the already-resolved ``root``."""
    try:
        return path.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):  # missing, a symlink loop, unreadable
        return False


def _sort_key(p: Path) -> tuple:
    """Step checkpoints newest first, then any others (best.pt) by name."""
    m = _STEP_RE.match(p.name)
    return (0, -int(m.group(1)), "") if m else (1, 0, p.name)


def list_ui_checkpoints(runs_root: str | Path) -> list[str]:
    """Names ``RUN/FILE.pt`` of the checkpoints under ``runs_root``, newest run first.

    Only ``RUN/checkpoints/*.pt`` files whose real location (symlinks followed) is inside
    the runs folder are listed; hidden files (half-written temporaries) are not.
    """
    root = Path(runs_root).resolve()
    if not root.is_dir():
        raise UserError(f"runs folder not found: {runs_root}")
    try:
        runs = sorted((p for p in root.iterdir() if p.is_dir()), reverse=True)
    except OSError as e:
        raise UserError(f"cannot read the runs folder {runs_root}: {e.strerror or e}") from None
    names = []
    for run in runs:
        ckpts = [
            p
            for p in (run / CKPT_DIR).glob("*.pt")
            if not p.name.startswith(".") and p.is_file() and _inside(p, root)
        ]
        names += [f"{run.name}/{p.name}" for p in sorted(ckpts, key=_sort_key)]
    return names


def resolve_ui_checkpoint(runs_root: str | Path, name) -> Path:
    """The file behind a checkpoint name from :func:`list_ui_checkpoints`, or a UserError.

    Refuses anything that could reach outside the runs folder: absolute paths, ``..``,
    backslashes, more or fewer than two parts, and symlinks whose target lies outside.
    """
    if not isinstance(name, str) or not name.strip():
        raise UserError("choose a checkpoint")
    quoted = shown(name, 120)
    if "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UserError(f"invalid checkpoint name {quoted}: give RUN/FILE.pt from the list")
    parts = name.split("/")  # not PurePosixPath: it would quietly drop "./" and "//"
    if (
        len(parts) != 2
        or any(not p.strip() or p.startswith(".") for p in parts)
        or not parts[1].endswith(".pt")
    ):
        raise UserError(f"invalid checkpoint name {quoted}: give RUN/FILE.pt from the list")
    root = Path(runs_root).resolve()
    path = root / parts[0] / CKPT_DIR / parts[1]
    if not _inside(path, root) or not path.is_file():
        raise UserError(f"no checkpoint {quoted} in the runs folder")
    return path
