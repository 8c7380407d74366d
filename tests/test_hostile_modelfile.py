"""Model files from strangers: every damaged or forged one is one clear line, exit 2."""

import json
import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from landgan.cli import main
from landgan.modelfile import FORMAT, save_model_file

CFG = {"model": "fastgan", "resolution": 64, "g_width": 8, "d_width": 8, "z_dim": 16}


def _one_line(capsys, fragment: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("landgan: error: ") and err.count("\n") == 1, err
    assert fragment in err and "Traceback" not in err, err


def _write(path, tensors, **meta):
    base = {"format": FORMAT, "config": json.dumps(CFG), "step": "1", "made_by": "{}"}
    save_file(tensors, str(path), metadata={**base, **meta})
    return path


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("random bytes", "not a readable landgan model file"),
        ("huge header", "not a readable landgan model file"),
        ("other safetensors", "not a landgan model file"),
        ("bad config", "damaged landgan model file"),
        ("absurd size", "g-width must be between"),
        ("wrong weights", "does not match model fastgan"),
    ],
)
def test_forged_model_files_are_refused_in_one_line(tmp_path, capsys, case, fragment):
    f = tmp_path / "m.safetensors"
    if case == "random bytes":
        f.write_bytes(b"\x07" * 100)
    elif case == "huge header":
        f.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    elif case == "other safetensors":
        save_file({"w": torch.zeros(2)}, str(f))
    elif case == "bad config":
        _write(f, {"G_ema.w": torch.zeros(2)}, config="{not json")
    elif case == "absurd size":
        _write(f, {"G_ema.w": torch.zeros(2)}, config=json.dumps(dict(CFG, g_width=10**6)))
    else:
        _write(f, {"G_ema.w": torch.zeros(2)})
    assert main(["generate", str(f), "--out", str(tmp_path / "x.png")]) == 2
    _one_line(capsys, fragment)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "bank, weights, fragment",
    [
        (torch.full((4, 7), 0.2), torch.ones(4), "a map has 7 numbers, the model takes 80"),
        (torch.full((4, 80), 0.2), torch.ones(3), "one weight per map"),
        (torch.full((4, 80), float("nan")), torch.ones(4), "NaN"),
        (torch.full((4, 80), 0.2), -torch.ones(4), "negative"),
    ],
)
def test_a_layout_model_with_damaged_maps_is_refused(tmp_path, capsys, bank, weights, fragment):
    from landgan.composer import composer_maps

    with pytest.raises(Exception) as e:
        composer_maps({"layout_bank": bank, "layout_weights": weights}, 80)
    assert fragment in str(e.value) and type(e.value).__name__ == "UserError"


def test_no_ema_on_a_model_file_says_what_it_holds(tmp_path, capsys):
    f = save_model_file(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, CFG, 1)
    assert main(["generate", str(f), "--no-ema", "--out", str(tmp_path / "x.png")]) == 2
    _one_line(capsys, "holds only the EMA generator")


def test_a_model_file_is_readable_as_any_file_the_user_writes(tmp_path):
    """safetensors writes 0600; a shared model file follows the umask like any other file."""
    old = os.umask(0o022)
    try:
        f = save_model_file(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, CFG, 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
