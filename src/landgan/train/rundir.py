"""Numbered run folders: runs/00000-dcgan4-synthetic-64, runs/00001-..., never reused."""

from __future__ import annotations

import re
from pathlib import Path

from landgan.errors import UserError


def new_run_dir(root: str | Path, tag: str) -> Path:
    """Create the next numbered folder under ``root`` (created if needed)."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {root}: {e.strerror}") from None
    nums = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    n = max(nums, default=-1) + 1
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag).strip("_") or "run"
    while True:  # another process may have taken the number meanwhile
        path = root / f"{n:05d}-{safe}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
