"""--preset: fast (landgan's recipe, the CLI default) and report (the report's plain DCGAN)."""

import json

import pytest
import torch

from landgan.cli import main
from landgan.config import PRESETS, TrainConfig
from landgan.errors import UserError
from landgan.sampling import load_generator
from landgan.train import gan


def test_preset_order_preset_then_model_then_user():
    fast = TrainConfig.for_model(preset="fast", model="dcgan4")
    assert (fast.amp, fast.ema_kimg, fast.diffaug) == ("native", 10.0, "color,translation")
    report = TrainConfig.for_model(preset="report", model="dcgan4")
    assert (report.amp, report.ema_kimg, report.diffaug) == ("off", 0.0, "")
    assert TrainConfig.for_model(preset="fast", diffaug="cutout").diffaug == "cutout"
    assert TrainConfig.for_model(preset="fast", model="wgan-gp").lr_g == 1e-4  # the model's own
    # The library's default is the CLI's (issue 11): the fast recipe, not a bare config.
    assert TrainConfig.for_model() == TrainConfig() and TrainConfig().preset == "fast"
    with pytest.raises(UserError, match="fast, report"):
        TrainConfig.for_model(preset="turbo")
    assert set(PRESETS) == {"fast", "report"}


def test_native_amp_follows_the_cpu(monkeypatch):
    cfg = TrainConfig(amp="native")
    monkeypatch.setattr(gan, "cpu_has_native_bf16", lambda: True)
    assert gan.amp_dtype(cfg, torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(gan, "cpu_has_native_bf16", lambda: False)
    assert gan.amp_dtype(cfg, torch.device("cpu")) is None
    assert gan.amp_dtype(cfg, torch.device("cuda")) == torch.bfloat16
    assert gan.amp_dtype(TrainConfig(amp="auto"), torch.device("cpu")) is None


def _train(tmp_path, *extra):
    out = tmp_path / "runs"
    argv = [
        "train",
        "--model",
        "dcgan4",
        "--data",
        "synthetic",
        "--synthetic-count",
        "64",
        "--resolution",
        "32",
        "--g-width",
        "8",
        "--d-width",
        "8",
        "--batch-size",
        "16",
        "--steps",
        "3",
        "--sample-every",
        "0",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    assert main(argv) == 0
    run = next(out.glob("0*"))
    return run, json.loads((run / "config.json").read_text())


def test_cli_default_is_fast_and_report_keeps_no_ema(tmp_path):
    _, cfg = _train(tmp_path / "a")
    assert (
        cfg["preset"] == "fast" and cfg["diffaug"] == "color,translation" and cfg["amp"] == "native"
    )
    run, cfg = _train(tmp_path / "b", "--preset", "report")
    assert cfg["preset"] == "report" and cfg["ema_kimg"] == 0.0 and cfg["amp"] == "off"
    g_ema, _ = load_generator(run, ema=True)
    g, _ = load_generator(run, ema=False)
    for a, b in zip(g_ema.state_dict().values(), g.state_dict().values()):
        assert torch.equal(a, b)  # no EMA: the report's generator is G itself
