"""Writing a file whole or not at all.

Single files that a user or a later run reads back -- checkpoints, feature caches,
exported models, generated PNGs, evaluate's reports, a labelled dataset's metadata -- go
through :func:`replacing`, so a full disk or Ctrl-C leaves the old file or none, never a
torn one. (``prepare`` and ``save_dataset`` write several files that must appear together
and keep their own protocol.) A process killed outright leaves its hidden temporary behind;
:func:`temporaries` finds those for clean-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """The hidden temporary that :func:`replacing` writes beside ``path`` (per process,
    so two processes writing the same file do not write into each other's temporary)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def temporaries(folder: Path, pattern: str = "*") -> list[Path]:
    """The temporaries :func:`replacing` left in ``folder`` for files named like ``pattern``
    (a glob, e.g. ``"*.pt"``): what a process killed mid-write leaves behind."""
    return sorted(Path(folder).glob(f".{pattern}.tmp[0-9]*"))


@contextmanager
def replacing(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on leaving, it replaces ``path``.

    ``os.replace`` within one folder is atomic, so readers see the old file or the new
    one. If the block raises (anything, KeyboardInterrupt included) the temporary is
    removed, ``path`` is untouched and the exception goes on. ``durable`` also flushes the
    new file and the rename to disk before returning (checkpoints: a power cut must not
    lose the last one).
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
