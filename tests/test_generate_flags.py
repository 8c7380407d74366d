"""Every `generate` flag either acts for every model or is refused, in one line, where it
would do nothing (issue: options silently ignored)."""

import argparse

import pytest

from landgan import cli
from landgan.config import TrainConfig
from landgan.train.loop import train

from conftest import blobs

# flags that act for every model: the latents (seed, truncation), the output, the device
USED_BY_ALL = {"ckpt", "out", "n", "seed", "truncation", "device", "force"}
# flag -> (extra argv, a fragment of the one-line refusal) on an unconditional checkpoint
# (or, for --no-ema, a model file, which keeps the EMA generator alone)
REFUSED = {
    "mix": (["--mix", "sky=1"], "need a conditional model"),
    "composition": (["--composition", "sky=1"], "need a conditional model"),
    "best_of": (["--best-of", "2"], "--best-of needs --composition"),
    "layout": (["--layout", "SKETCH"], "--layout needs a layout model"),
    "no_ema": (["--no-ema"], "holds only the EMA generator"),
}


def _generate_flags() -> set[str]:
    parser = cli._build_parser("generate")
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {a.dest for a in sub.choices["generate"]._actions if a.dest != "help"}


def test_every_generate_flag_acts_everywhere_or_has_a_refusal():
    flags = _generate_flags()
    assert flags == USED_BY_ALL | set(REFUSED), flags ^ (USED_BY_ALL | set(REFUSED))


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """(an unconditional run, its model file)."""
    tmp = tmp_path_factory.mktemp("plain")
    cfg = TrainConfig.for_model(
        model="dcgan4",
        data="synthetic",
        synthetic_count=16,
        resolution=32,
        batch_size=8,
        g_width=8,
        d_width=8,
        steps=1,
        sample_every=0,
        out=str(tmp / "runs"),
    )
    run = train(cfg, progress=False)
    assert (
        cli.main(
            ["export", str(run), "--format", "safetensors", "--out", str(tmp / "m.safetensors")]
        )
        == 0
    )
    return run, tmp / "m.safetensors"


@pytest.mark.parametrize("flag", sorted(REFUSED))
def test_a_generate_flag_that_would_do_nothing_is_refused(flag, plain, tmp_path, capsys):
    from PIL import Image

    run, model_file = plain
    extra, fragment = REFUSED[flag]
    sketch = tmp_path / "s.png"
    Image.fromarray(blobs(1, 32)[0] * 0 + 255).save(sketch)  # white: all snow, a valid sketch
    extra = [str(sketch) if a == "SKETCH" else a for a in extra]
    target = model_file if flag == "no_ema" else run
    out = tmp_path / "x.png"
    assert cli.main(["generate", str(target), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not out.exists()
