"""Shared fixtures: tiny datasets and the location of the optional real photos."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from landgan.config import TrainConfig
from landgan.data.dataset import save_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def load_benchmark(name: str, monkeypatch):
    """The module ``benchmarks/NAME.py``, imported as a script would see its folder (some
    import their neighbours, e.g. gpu_fastgan imports time_to_quality)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shared_data(sub: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    p = SHARED_DATA / sub
    if not p.exists():
        pytest.skip(f"{p} not found: real photos live in ../shared/data beside the checkout "
                    "(absent in a fresh clone of the project alone)")
    return p


def process_exists(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has; Linux /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def blobs(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Simple structured images: a bright disc on a dark background, random colours."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        r = size * rng.uniform(0.15, 0.3)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        out[i] = rng.integers(0, 60, 3)
        out[i][disc] = rng.integers(150, 255, 3)
    return out


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """A prepared 32 px dataset of 128 images."""
    return save_dataset(tmp_path / "tiny", blobs(128, 32), {"source": "test"})


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests use small tensors, for which a second OpenMP thread costs more than it gives
    (and on a busy machine it spin-waits); one thread keeps the suite fast and steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def dcgan4_config(**kw) -> TrainConfig:
    """A training config for the report's dcgan4 with its own recipe (the model these
    tests' small 32 px runs use; the package's default model, fastgan, starts at 64 px)."""
    return TrainConfig.for_model(**{"model": "dcgan4", **kw})
