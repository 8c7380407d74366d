"""The arguments of each ``landgan`` verb, one function a verb.

Kept apart from :mod:`landgan.cli` so that ``landgan --help``, ``--version`` and a
mistyped verb build none of them: several need the library's registries (models,
estimators, export formats), whose modules import torch. Each function imports what its
arguments list (start-up cost: only the verb being run pays for it).
"""

from __future__ import annotations

import argparse
import dataclasses

MODEL_HELP = (
    "a shipped model's name (landscapes), a model file (.safetensors), a checkpoint "
    "file or a run folder (its latest checkpoint)"
)

# Config fields that are not flags of ``train``: set from the data, not by the user.
_NOT_FLAGS = {"conditions"}


def add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help=HELP["prepare"])
    p.add_argument("src", help="folder (searched recursively) or .zip of images")
    p.add_argument("--out", required=True, help="output dataset folder")
    p.add_argument("--resolution", type=int, default=64, choices=[32, 64, 128, 256])
    p.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default: all cores)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing dataset at --out")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="skip images announcing more than N pixels (decompression bombs), and files, "
        "zip members or decodes needing over 8*N bytes: a worker's memory bound "
        "(default: 89478485, Pillow's limit)",
    )
    p.add_argument(
        "--follow-links",
        action="store_true",
        help="also read links (to files or "
        "folders) that lead out of SRC; by default they are skipped and listed",
    )


def add_train(sub) -> None:
    from landgan.config import PRESETS, TrainConfig, field_help  # start-up cost: torch
    from landgan.losses import LOSSES  # start-up cost: torch
    from landgan.models import MODELS  # start-up cost: torch

    models = "; ".join(f"{k}: {v.summary}" for k, v in MODELS.items())
    p = sub.add_parser(
        "train",
        help=HELP["train"],
        description="Train a model. Models: " + models,
        argument_default=argparse.SUPPRESS,
    )
    defaults, helps = TrainConfig(), field_help()
    for f in dataclasses.fields(TrainConfig):
        if f.name in _NOT_FLAGS:
            continue
        default = getattr(defaults, f.name)
        kw = {"type": type(default), "help": f"{helps[f.name]} (default: {default})"}
        choices = {"model": list(MODELS), "preset": list(PRESETS), "loss": list(LOSSES)}
        if f.name in choices:
            kw["choices"] = choices[f.name]
        else:
            kw["metavar"] = f.name.upper()
        if isinstance(default, bool):
            kw = {"action": argparse.BooleanOptionalAction, "help": helps[f.name]}
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kw)
    p.add_argument(
        "--resume",
        metavar="RUN_OR_CKPT",
        default=None,
        help="continue a run folder, a checkpoint file, or 'auto' (the latest run under --out)",
    )
    p.add_argument("--quiet", action="store_true", default=False, help="no progress bar")


def add_generate(sub) -> None:
    p = sub.add_parser("generate", help=HELP["generate"])
    p.add_argument("ckpt", help=MODEL_HELP)
    p.add_argument(
        "--out", required=True, help="a .png path for one grid, or a folder for single PNGs"
    )
    p.add_argument(
        "--n",
        type=int,
        default=64,
        help="number of images (a .png grid holds at "
        "most 4096 and 2^25 pixels; a folder any number, written 64 at a time)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--truncation", type=float, default=None, help="sample z from N(0,1) truncated to [-t, t]"
    )
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA copy")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    mix = p.add_mutually_exclusive_group()
    mix.add_argument(
        "--mix",
        metavar="NAME=W,...",
        help="conditional models trained on classes: soft class weights, e.g. mountain=0.6,sea=0.4",
    )
    mix.add_argument(
        "--composition",
        metavar="NAME=F,...",
        help="conditional models trained on "
        "compositions: area fractions, e.g. sky=0.4,mountain=0.3,water=0.3",
    )
    p.add_argument(
        "--best-of",
        type=int,
        default=1,
        metavar="K",
        help="with --composition: keep, "
        "for each image, the one of K candidates whose composition the photo "
        "labeller reads nearest the request (K times the work)",
    )
    p.add_argument(
        "--layout",
        metavar="SKETCH",
        help="layout models: an image of any size "
        "painted in the five element colours (docs/composition.md) that says where "
        "each element goes; --composition is then optional",
    )


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help=HELP["evaluate"],
        description="Score checkpoints/run folders (against their training data "
        "unless --against), folders of generated images (against --against), "
        "and --real datasets on their own; gather earlier result JSONs.",
    )
    p.add_argument(
        "targets",
        nargs="*",
        help="checkpoint, run folder, 'auto', image folder, or "
        "a result .json from an earlier evaluate",
    )
    p.add_argument(
        "--real",
        action="append",
        default=[],
        metavar="DATASET",
        help="score this dataset on its own (the 'real data' column); repeatable",
    )
    p.add_argument("--against", metavar="DATASET", help="real images to compare targets with")
    p.add_argument("--n", type=int, default=1000, help="generated images per target")
    p.add_argument("--n-real", type=int, default=None, help="real images (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", default="fid,kid,pr", help="comma list of fid, kid, pr, is")
    p.add_argument(
        "--is-weights",
        metavar="PATH",
        help="Inception-v3 ImageNet weights for IS "
        "(torchvision inception_v3_google-*.pth or pytorch-fid pt_inception-*.pth)",
    )
    p.add_argument(
        "--split-half",
        action="store_true",
        help="for --real: FID/KID between two "
        "halves of the real set, the floor a generator can reach",
    )
    p.add_argument("--resolution", type=int, default=None, help="size for folders of images")
    p.add_argument("--truncation", type=float, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", dest="json_out", metavar="PATH", help="write the result rows as JSON")
    p.add_argument(
        "--table",
        dest="table_out",
        metavar="PATH",
        help="write the rows as Markdown in the report's Table 3 layout",
    )
    p.add_argument("--force", action="store_true", help="overwrite --json/--table")


def add_label(sub) -> None:
    from landgan.label import ESTIMATORS  # start-up cost: the estimators import torch

    p = sub.add_parser("label", help=HELP["label"])
    p.add_argument("dataset", help="a prepared dataset folder")
    p.add_argument("--force", action="store_true", help="replace existing conditions")
    p.add_argument(
        "--estimator",
        default="photo",
        choices=list(ESTIMATORS),
        help="; ".join(f"{k}: {v}" for k, v in ESTIMATORS.items()),
    )
    p.add_argument(
        "--layout",
        action="store_true",
        help="store where each element lies (a "
        "coarse map per image, photo estimator) for a layout model that --composition "
        "then places; see docs/composition.md",
    )


def add_export(sub) -> None:
    from landgan.export import FORMATS  # start-up cost: the exporters import torch

    p = sub.add_parser("export", help=HELP["export"])
    p.add_argument("ckpt", help=MODEL_HELP)
    p.add_argument(
        "--format",
        default="onnx",
        choices=list(FORMATS),
        help="safetensors: a "
        "landgan model file (every verb takes it; weights, config, condition bank); "
        "onnx or torchscript: the generator for other runtimes",
    )
    p.add_argument("--out", required=True, help="output file (.safetensors, .onnx or .pt)")
    p.add_argument(
        "--half",
        action="store_true",
        help="safetensors: store weights in float16 "
        "(half the size; see docs/pretrained.md for what it changes)",
    )
    p.add_argument("--no-ema", action="store_true", help="export the raw generator")
    p.add_argument(
        "--average",
        type=int,
        default=1,
        metavar="N",
        help="a run folder: the generator's "
        "weights averaged over the run's newest N checkpoints (docs/export.md)",
    )
    p.add_argument("--force", action="store_true", help="overwrite --out")


def add_ui(sub) -> None:
    p = sub.add_parser("ui", help=HELP["ui"])
    p.add_argument(
        "--runs",
        default="runs",
        help="folder of run folders to offer checkpoints "
        "from (default: runs); nothing outside it is ever opened",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument(
        "--no-shipped",
        action="store_true",
        help="offer only the checkpoints under --runs, not the models shipped with landgan",
    )


# Each verb's one-line help, shown by ``landgan --help`` without building its arguments.
HELP = {
    "prepare": "turn a folder or .zip of photos into a dataset",
    "train": "train a model",
    "generate": "generate images from a shipped model or a checkpoint",
    "evaluate": "FID, KID, precision/recall, IS of runs, folders, datasets",
    "label": "estimate each image's scene composition (for --conditional)",
    "export": "write the generator as a model file, ONNX or TorchScript",
    "ui": "a local web page to generate from the shipped model and trained checkpoints",
}
ADD = {
    "prepare": add_prepare,
    "train": add_train,
    "generate": add_generate,
    "evaluate": add_evaluate,
    "label": add_label,
    "export": add_export,
    "ui": add_ui,
}
