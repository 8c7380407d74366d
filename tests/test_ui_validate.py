"""The web UI's input checks (:mod:`landgan.ui.validate`), as pure functions: bounded numbers,
compositions and sliders, and checkpoint names that never leave the runs folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from landgan.errors import UserError
from landgan.ui.validate import (
    MAX_SEED,
    list_ui_checkpoints,
    percentages,
    rebalance,
    resolve_ui_checkpoint,
    validate_composition,
    validate_count,
    validate_frames,
    validate_port,
    validate_seed,
    validate_spec,
    validate_truncation,
)

# ---- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn,good,bad",
    [
        (validate_count, [1, 4, 64, 4.0], [0, 65, -1, 3.5, "4", True, None, float("nan")]),
        (
            validate_seed,
            [0, 7, MAX_SEED, 12.0],
            [-1, MAX_SEED + 1, 2**63, 0.5, "1", None, float("inf")],
        ),
        (validate_frames, [2, 48], [1, 49, "10"]),
        (validate_port, [1, 7860, 65535], [0, 65536, 99999, "80"]),
    ],
)
def test_integers_are_bounded(fn, good, bad):
    assert [fn(v) for v in good] == [int(v) for v in good]
    for v in bad:
        with pytest.raises(UserError):
            fn(v)


def test_truncation():
    assert validate_truncation(0) is None  # 0 is "off": plain N(0, I) latents
    assert validate_truncation(1.5) == 1.5
    for v in (-0.1, 4.1, float("nan"), "1", None):
        with pytest.raises(UserError, match="truncation"):
            validate_truncation(v)


# ---- compositions and sliders ------------------------------------------------------------


def test_composition_is_normalised_and_checked():
    names = ["sky", "water"]
    assert torch.allclose(validate_composition([30, 10], names), torch.tensor([0.75, 0.25]))
    assert torch.allclose(validate_composition([40, 60, 99, 99], names), torch.tensor([0.4, 0.6]))
    for values, msg in [
        ([10], "expected 2"),
        ([0, 0], "all zero"),
        ([-5, 50], "between 0 and 100"),
        ([101, 0], "between 0 and 100"),
        (["a", 5], "must be a number"),
        ([float("nan"), 5], "finite"),
    ]:
        with pytest.raises(UserError, match=msg):
            validate_composition(values, names)


def test_typed_composition():
    assert torch.allclose(
        validate_spec("sky=1,water=3", ["sky", "water"]), torch.tensor([0.25, 0.75])
    )
    for spec, msg in [
        ("moon=1", "unknown condition 'moon'"),
        ("", "give a composition"),
        (None, "give a composition"),
        ("sky=1," * 500, "too long"),
    ]:
        with pytest.raises(UserError, match=msg):
            validate_spec(spec, ["sky", "water"])


def test_percentages_sum_exactly():
    assert percentages([1, 1, 1]) == [34, 33, 33]
    assert percentages([0, 0]) == [50, 50]
    assert percentages([3, 1], 40) == [30, 10]
    assert percentages([]) == []


def test_rebalance_keeps_the_moved_slider_and_proportions():
    assert rebalance([80, 30, 10], 0) == [80, 15, 5]  # the others keep their 3:1 ratio
    assert rebalance([20, 0, 0], 0) == [20, 40, 40]  # all-zero others share equally
    assert rebalance([120, 50], 0) == [100, 0]  # clamped to 100
    assert rebalance([37], 0) == [100]  # one condition is always all of it
    with pytest.raises(UserError):
        rebalance([10, 10], 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=12), st.data())
def test_rebalance_always_sums_to_100(values, data):
    moved = data.draw(st.integers(0, len(values) - 1))
    out = rebalance(values, moved)
    assert sum(out) == 100 and all(0 <= v <= 100 for v in out)
    assert len(values) == 1 or out[moved] == round(values[moved])


# ---- checkpoint names --------------------------------------------------------------------


@pytest.fixture
def fake_runs(tmp_path) -> Path:
    """Checkpoint-shaped files (contents do not matter for listing), plus links out of the folder."""
    root = tmp_path / "runs"
    ck = root / "00001-b" / "checkpoints"
    ck.mkdir(parents=True)
    for name in (
        "step_0000010.pt",
        "step_0000200.pt",
        "best.pt",
        ".step_0000300.pt.tmp1",
        "notes.txt",
    ):
        (ck / name).write_bytes(b"x")
    (root / "00000-a" / "checkpoints").mkdir(parents=True)
    (root / "00000-a" / "checkpoints" / "step_0000001.pt").write_bytes(b"x")
    outside = tmp_path / "outside"
    (outside / "checkpoints").mkdir(parents=True)
    (outside / "checkpoints" / "step_0000001.pt").write_bytes(b"secret")
    (root / "00002-link").symlink_to(outside)  # a run folder that is really elsewhere
    (ck / "step_0000999.pt").symlink_to(outside / "checkpoints" / "step_0000001.pt")
    (ck / "step_0000005.pt").symlink_to(ck / "step_0000010.pt")  # inside: allowed
    return root


def test_listing_stays_inside_the_runs_folder(fake_runs):
    assert list_ui_checkpoints(fake_runs) == [
        "00001-b/step_0000200.pt",
        "00001-b/step_0000010.pt",
        "00001-b/step_0000005.pt",
        "00001-b/best.pt",
        "00000-a/step_0000001.pt",
    ]
    with pytest.raises(UserError, match="runs folder not found"):
        list_ui_checkpoints(fake_runs / "nope")


def test_resolve_accepts_listed_names(fake_runs):
    for name in list_ui_checkpoints(fake_runs):
        path = resolve_ui_checkpoint(fake_runs, name)
        assert path.resolve().is_relative_to(fake_runs.resolve()) and path.is_file()


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/etc/passwd",
        "../../../../etc/passwd",
        "00001-b/../../outside/checkpoints/step_0000001.pt",
        "00001-b/../00000-a/step_0000001.pt",
        "00001-b/checkpoints/step_0000010.pt",
        "00001-b",
        "..\\..\\x.pt",
        "C:/Windows/x.pt",
        "00001-b/notes.txt",
        "00001-b/.step_0000300.pt.tmp1",
        "00001-b/step_0000999.pt",
        "00002-link/step_0000001.pt",
        "00001-b/missing.pt",
        "./00001-b/step_0000010.pt",
        "00001-b/step_0000010.pt\x00",
        "",
        "   ",
        None,
        7,
        ["00001-b"],
    ],
)
def test_resolve_refuses_anything_else(fake_runs, name):
    with pytest.raises(UserError):
        resolve_ui_checkpoint(fake_runs, name)
