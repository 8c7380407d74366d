"""The ``landgan`` command line: one verb per library function.

Parsing and error reporting live here; the work is done by the library. A
:class:`~landgan.errors.UserError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys

from landgan.config import PRESETS, TrainConfig, field_help
from landgan.data.prepare import prepare_dataset
from landgan.data.synthetic import ELEMENTS
from landgan.errors import UserError
from landgan.export import FORMATS, export
from landgan.generate import generate
from landgan.label import ESTIMATORS, label_dataset
from landgan.losses import LOSSES
from landgan.models import MODELS
from landgan.train.distributed import launched_world_size

MODEL_HELP = ("a shipped model's name (landscapes), a model file (.safetensors), a checkpoint "
              "file or a run folder (its latest checkpoint)")

# Config fields that are not flags of ``train``: set from the data, not by the user.
_NOT_FLAGS = {"conditions"}


def _add_train(sub) -> None:
    models = "; ".join(f"{k}: {v.summary}" for k, v in MODELS.items())
    p = sub.add_parser("train", help="train a model", description="Train a model. Models: " + models,
                       argument_default=argparse.SUPPRESS)
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
    p.add_argument("--resume", metavar="RUN_OR_CKPT", default=None, help="continue a run folder, a checkpoint "
                   "file, or 'auto' (the latest run under --out)")
    p.add_argument("--quiet", action="store_true", default=False, help="no progress bar")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="landgan", description="Train GANs that generate landscapes.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("prepare", help="turn a folder or .zip of photos into a dataset")
    p.add_argument("src", help="folder (searched recursively) or .zip of images")
    p.add_argument("--out", required=True, help="output dataset folder")
    p.add_argument("--resolution", type=int, default=64, choices=[32, 64, 128, 256])
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="skip images announcing more than N pixels (decompression bombs), and files, "
                   "zip members or decodes needing over 8*N bytes: a worker's memory bound "
                   "(default: 89478485, Pillow's limit)")
    p.add_argument("--follow-links", action="store_true", help="also read links (to files or "
                   "folders) that lead out of SRC; by default they are skipped and listed")

    _add_train(sub)

    p = sub.add_parser("generate", help="generate images from a shipped model or a checkpoint")
    p.add_argument("ckpt", help=MODEL_HELP)
    p.add_argument("--out", required=True, help="a .png path for one grid, or a folder for single PNGs")
    p.add_argument("--n", type=int, default=64, help="number of images (a .png grid holds at "
                   "most 4096 and 2^25 pixels; a folder any number, written 64 at a time)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=None, help="sample z from N(0,1) truncated to [-t, t]")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA copy")
    p.add_argument("--device", default="cpu")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    mix = p.add_mutually_exclusive_group()
    mix.add_argument("--mix", metavar="NAME=W,...", help="conditional models trained on classes: "
                     "soft class weights, e.g. mountain=0.6,sea=0.4")
    mix.add_argument("--composition", metavar="NAME=F,...", help="conditional models trained on "
                     "compositions: area fractions, e.g. sky=0.4,mountain=0.3,water=0.3")
    p.add_argument("--best-of", type=int, default=1, metavar="K", help="with --composition: keep, "
                   "for each image, the one of K candidates whose composition the photo "
                   "labeller reads nearest the request (K times the work)")
    p.add_argument("--layout", metavar="SKETCH", help="layout models: an image of any size "
                   "painted in the five element colours (docs/composition.md) that says where "
                   "each element goes; --composition is then optional")

    _add_evaluate(sub)

    p = sub.add_parser("label", help="estimate each image's scene composition (for --conditional)")
    p.add_argument("dataset", help="a prepared dataset folder")
    p.add_argument("--force", action="store_true", help="replace existing conditions")
    p.add_argument("--estimator", default="photo", choices=list(ESTIMATORS),
                   help="; ".join(f"{k}: {v}" for k, v in ESTIMATORS.items()))
    p.add_argument("--layout", action="store_true", help="store where each element lies (a "
                   "coarse map per image, photo estimator) for a layout model that --composition "
                   "then places; see docs/control.md")

    p = sub.add_parser("export", help="write the generator as a model file, ONNX or TorchScript")
    p.add_argument("ckpt", help=MODEL_HELP)
    p.add_argument("--format", default="onnx", choices=list(FORMATS), help="safetensors: a "
                   "landgan model file (every verb takes it; weights, config, condition bank); "
                   "onnx or torchscript: the generator for other runtimes")
    p.add_argument("--out", required=True, help="output file (.safetensors, .onnx or .pt)")
    p.add_argument("--half", action="store_true", help="safetensors: store weights in float16 "
                   "(half the size; see docs/pretrained.md for what it changes)")
    p.add_argument("--no-ema", action="store_true", help="export the raw generator")
    p.add_argument("--force", action="store_true", help="overwrite --out")

    p = sub.add_parser("ui", help="a local web page to generate from trained checkpoints")
    p.add_argument("--runs", default="runs", help="folder of run folders to offer checkpoints "
                   "from (default: runs); nothing outside it is ever opened")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, "
                   "this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    return parser


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="FID, KID, precision/recall, IS of runs, folders, datasets",
                       description="Score checkpoints/run folders (against their training data "
                       "unless --against), folders of generated images (against --against), "
                       "and --real datasets on their own; gather earlier result JSONs.")
    p.add_argument("targets", nargs="*", help="checkpoint, run folder, 'auto', image folder, or "
                   "a result .json from an earlier evaluate")
    p.add_argument("--real", action="append", default=[], metavar="DATASET",
                   help="score this dataset on its own (the 'real data' column); repeatable")
    p.add_argument("--against", metavar="DATASET", help="real images to compare targets with")
    p.add_argument("--n", type=int, default=1000, help="generated images per target")
    p.add_argument("--n-real", type=int, default=None, help="real images (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", default="fid,kid,pr", help="comma list of fid, kid, pr, is")
    p.add_argument("--is-weights", metavar="PATH", help="Inception-v3 ImageNet weights for IS "
                   "(torchvision inception_v3_google-*.pth or pytorch-fid pt_inception-*.pth)")
    p.add_argument("--split-half", action="store_true", help="for --real: FID/KID between two "
                   "halves of the real set, the floor a generator can reach")
    p.add_argument("--resolution", type=int, default=None, help="size for folders of images")
    p.add_argument("--truncation", type=float, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", dest="json_out", metavar="PATH", help="write the result rows as JSON")
    p.add_argument("--table", dest="table_out", metavar="PATH",
                   help="write the rows as Markdown in the report's Table 3 layout")
    p.add_argument("--force", action="store_true", help="overwrite --json/--table")


# Two verbs' modules are imported only when they run (start-up cost): the training loop
# pulls in TensorBoard (1.4 s measured), evaluate the metrics stack (0.8 s), and every
# other verb, `--help` and a mistyped flag should not wait for them.

def _given(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line (the parser suppresses the rest)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if hasattr(args, f.name)}


def _run_train(args: argparse.Namespace) -> None:
    from landgan.train.loop import train  # start-up cost: TensorBoard

    given = _given(args)
    if getattr(args, "resume", None):
        run = train(TrainConfig(out=given.get("out", "runs")), resume=args.resume,
                    overrides=given, progress=not args.quiet)
    else:
        run = train(TrainConfig.for_model(**given), progress=not args.quiet)
    print(f"run folder: {run}")


def _run_evaluate(args: argparse.Namespace) -> None:
    from landgan.evaluate import EvalOptions, evaluate  # start-up cost: the metrics stack

    opts = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalOptions)
            if hasattr(args, f.name)}
    opts["real"] = tuple(opts["real"])
    opts["metrics"] = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    evaluate(args.targets, EvalOptions(**opts))


def _dispatch(args: argparse.Namespace) -> None:
    if args.verb == "prepare":
        report = prepare_dataset(args.src, args.out, args.resolution, force=args.force,
                                 workers=args.workers, max_pixels=args.max_pixels,
                                 follow_links=args.follow_links)
        print(report.summary())
    elif args.verb == "train":
        _run_train(args)
    elif args.verb == "generate":
        path = generate(args.ckpt, args.out, n=args.n, seed=args.seed, truncation=args.truncation,
                        ema=not args.no_ema, force=args.force, device=args.device,
                        condition=args.mix or args.composition, best_of=args.best_of,
                        layout=args.layout)
        print(f"wrote {path}")
    elif args.verb == "label":
        means = label_dataset(args.dataset, force=args.force, estimator=args.estimator,
                              layout=args.layout).mean(0)
        print(f"labelled {args.dataset}; mean composition: "
              + ", ".join(f"{e} {m:.2f}" for e, m in zip(ELEMENTS, means)))
    elif args.verb == "export":
        path = export(args.ckpt, args.out, args.format, not args.no_ema, args.force, args.half,
                      args.command)
        print(f"wrote {path}")
    elif args.verb == "ui":
        from landgan import ui  # start-up cost: Gradio, and only this verb needs it

        ui.serve(args.runs, args.host, args.port, device=args.device)
    elif args.verb == "evaluate":
        _run_evaluate(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``landgan`` console script; returns the exit status."""
    status = _run(argv)
    if launched_world_size() > 1:
        _end_worker(status)
    return status


def _run(argv: list[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    # What was typed, for the files that record the command that made them.
    args.command = "landgan " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        _dispatch(args)
    except UserError as e:
        print(f"landgan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("landgan: interrupted", file=sys.stderr)
        return 130
    return 0


def _end_worker(status: int) -> None:
    """End a torchrun worker now, without the interpreter's shutdown.

    After the last collective returns, gloo's worker thread may still be releasing that
    collective's tensors, which needs the GIL; if the interpreter has begun shutting down
    by then, Python ends the thread inside a C++ destructor and the process aborts
    ("terminate called without an active exception", SIGABRT; about 1 run in 5 beside a
    busy loop, 1 in 10-20 idle; docs/performance.md). Training has closed every file it
    wrote, so only the standard streams need flushing.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
