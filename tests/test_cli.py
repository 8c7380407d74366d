"""The command line as a user meets it: every verb, and clean one-line errors."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from landgan.cli import main
from landgan.data.dataset import open_dataset

from conftest import blobs

TRAIN = [
    "--resolution",
    "32",
    "--batch-size",
    "16",
    "--g-width",
    "16",
    "--d-width",
    "16",
    "--quiet",
    "--sample-every",
    "0",
]


@pytest.fixture
def run_dir(tmp_path, tiny_dataset):
    assert (
        main(
            [
                "train",
                "--model",
                "dcgan4",
                "--data",
                str(tiny_dataset),
                "--steps",
                "3",
                "--out",
                str(tmp_path / "runs"),
                *TRAIN,
            ]
        )
        == 0
    )
    return tmp_path / "runs" / "00000-dcgan4-tiny-32"


def test_prepare_train_generate(tmp_path, capsys):
    src = tmp_path / "photos" / "lake"
    src.mkdir(parents=True)
    for i, img in enumerate(blobs(20, 48)):
        Image.fromarray(img).save(src / f"{i}.png")
    assert (
        main(
            [
                "prepare",
                str(tmp_path / "photos"),
                "--out",
                str(tmp_path / "ds"),
                "--resolution",
                "32",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert len(open_dataset(tmp_path / "ds")) == 20
    assert (
        main(
            [
                "train",
                "--model",
                "dcgan4",
                "--data",
                str(tmp_path / "ds"),
                "--steps",
                "2",
                "--out",
                str(tmp_path / "runs"),
                *TRAIN,
            ]
        )
        == 0
    )
    run = tmp_path / "runs" / "00000-dcgan4-ds-32"
    assert main(["generate", str(run), "--n", "6", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == (3 * 34 + 2, 2 * 34 + 2)
    assert main(["generate", str(run), "--n", "3", "--out", str(tmp_path / "single")]) == 0
    assert len(list((tmp_path / "single").glob("*.png"))) == 3


def test_generate_is_reproducible_and_truncation(tmp_path, run_dir):
    for name, extra in (
        ("a", []),
        ("b", []),
        ("c", ["--seed", "7"]),
        ("t", ["--truncation", "0.5"]),
    ):
        assert (
            main(["generate", str(run_dir), "--n", "4", "--out", str(tmp_path / name), *extra]) == 0
        )
    read = lambda d: np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / d).iterdir())])
    assert np.array_equal(read("a"), read("b"))
    assert not np.array_equal(read("a"), read("c"))
    assert not np.array_equal(read("a"), read("t"))


def test_resume_from_cli(tmp_path, run_dir, capsys):
    assert main(["train", "--resume", str(run_dir), "--steps", "5", "--quiet"]) == 0
    assert (run_dir / "checkpoints" / "step_0000005.pt").exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--data", "/nonexistent/ds", "--steps", "1"], "dataset not found"),
        (
            ["train", "--model", "dcgan5", "--resolution", "32", "--steps", "1"],
            "does not support 32 px",
        ),
        (["train", "--steps", "0"], "give a budget"),
        (["generate", "/nonexistent.pt", "--out", "x.png"], "not found"),
        (["prepare", "/nonexistent", "--out", "ds"], "not found"),
    ],
)
def test_user_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("landgan: error:") and err.count("\n") == 1


class _Exited(Exception):
    pass


def test_torchrun_worker_ends_without_interpreter_shutdown(tmp_path, monkeypatch, capsys):
    """Under torchrun (WORLD_SIZE > 1) main ends the process itself, streams flushed, with
    its exit status: gloo threads may otherwise abort the shutdown (cli._end_worker)."""
    ended = []

    def fake_exit(status):
        ended.append(status)
        raise _Exited

    monkeypatch.setattr("landgan.cli.os._exit", fake_exit)
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "/nonexistent", "--out", "ds"]) == 2  # not a worker: returns
    assert ended == []
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(_Exited):
        main(["prepare", "/nonexistent", "--out", "ds"])
    assert ended == [2]
    assert capsys.readouterr().err.count("landgan: error:") == 2


def test_not_a_checkpoint(tmp_path, capsys):
    (tmp_path / "fake.pt").write_text("not a checkpoint")
    assert main(["generate", str(tmp_path / "fake.pt"), "--out", str(tmp_path / "g.png")]) == 2
    assert "not a readable landgan checkpoint" in capsys.readouterr().err


def test_generate_refuses_to_overwrite(tmp_path, run_dir, capsys):
    out = tmp_path / "g.png"
    out.write_bytes(b"precious")
    assert main(["generate", str(run_dir), "--out", str(out)]) == 2
    assert out.read_bytes() == b"precious"
    assert main(["generate", str(run_dir), "--n", "2", "--out", str(out), "--force"]) == 0
    assert Image.open(out).size[0] > 0


@pytest.mark.slow
def test_unknown_model_from_a_subprocess_has_no_traceback(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "landgan", "train", "--model", "nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2 and "invalid choice: 'nope'" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "landgan", "generate", "x.pt", "--out", "o.png"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (
        r.returncode == 2
        and r.stderr.strip() == "landgan: error: checkpoint or run folder not found: x.pt"
    )


def test_train_help_lists_models():
    r = subprocess.run(
        [sys.executable, "-m", "landgan", "train", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "dcgan4" in r.stdout and "dcgan5" in r.stdout


@pytest.mark.parametrize("model", ["dcgan4", "mlp-gan", "autoencoder", "vae", "wgan", "wgan-gp"])
def test_every_model_trains_resumes_and_generates(tmp_path, tiny_dataset, model):
    runs = tmp_path / "runs"
    args = ["--data", str(tiny_dataset), "--model", model, "--out", str(runs), *TRAIN]
    assert main(["train", *args, "--steps", "2"]) == 0
    (run,) = runs.iterdir()
    assert main(["train", "--resume", str(run), "--steps", "3", "--quiet"]) == 0
    assert (run / "checkpoints" / "step_0000003.pt").exists()
    assert main(["generate", str(run), "--n", "4", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == (2 * 34 + 2, 2 * 34 + 2)


def test_prepare_max_pixels_flag(tmp_path, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(blobs(1, 48)[0]).save(src / "big.png")
    Image.fromarray(blobs(1, 16)[0]).save(src / "small.png")
    assert (
        main(
            [
                "prepare",
                str(src),
                "--out",
                str(tmp_path / "ds"),
                "--resolution",
                "32",
                "--workers",
                "1",
                "--max-pixels",
                "1000",
            ]
        )
        == 0
    )
    assert len(open_dataset(tmp_path / "ds")) == 1
    assert "too large: 48 x 48 pixels" in (tmp_path / "ds" / "skipped.txt").read_text()


def test_help_and_version_import_neither_torch_nor_gradio():
    """`landgan --help`/`--version` answer without the heavy imports (start-up time)."""
    code = (
        "import sys\nfrom landgan.cli import main\n"
        "for argv in (['--help'], ['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('torch', 'gradio', 'scipy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY []" in out, out
