"""The ``landgan`` command line: one verb per library function.

Parsing and error reporting live here; the work is done by the library. A
:class:`~landgan.errors.UserError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from landgan.config import PRESETS, TrainConfig
from landgan.errors import UserError

_TRAIN_FLAGS = {  # TrainConfig field -> help; type and default come from the dataclass
    "data": "prepared dataset folder, or 'synthetic' for the built-in procedural landscapes",
    "model": None, "preset": None, "loss": None,
    "resolution": "output size in px", "out": "parent folder for numbered run folders",
    "steps": "total generator steps (0 = no limit)", "minutes": "wall-clock budget for this "
    "invocation (0 = none)", "batch_size": "images per step", "z_dim": "latent size",
    "g_width": "generator width", "d_width": "discriminator width",
    "lr_g": "generator learning rate", "lr_d": "discriminator learning rate",
    "beta1": "Adam beta1", "beta2": "Adam beta2", "ema_kimg": "EMA half-life, kimg",
    "seed": "random seed", "synthetic_count": "procedural images to render for --data synthetic",
    "sample_every": "sample grid every N steps", "ckpt_every": "checkpoint every N steps",
    "keep": "keep only the newest N checkpoints (0 = all)",
    "log_every": "log every N steps", "device": "auto, cpu, cuda or cuda:N",
    "eval_every": "score KID/FID vs the training data every N steps, keep checkpoints/best.pt",
    "eval_n": "generated images per evaluation", "eval_metric": "kid or fid (which best.pt keeps)",
    "optimizer": "adam or rmsprop", "d_steps": "discriminator steps per generator step",
    "clip": "clip D weights to [-c, c] (WGAN)", "gp": "gradient penalty weight (WGAN-GP)",
    "r1": "R1 penalty weight", "sn": "spectral norm in D", "diffaug": "DiffAugment policy, "
    "e.g. color,translation,cutout", "balance": "off or adaptive (the D/G balancer)",
    "amp": "mixed precision: auto (bf16 on CUDA), native (bf16 on CUDA and on CPUs with native "
    "bf16), bf16, fp16, off",
    "channels_last": "NHWC memory layout", "compile": "torch.compile G and D",
    "conditional": "condition G and D on the data's classes or compositions",
    "stage1": "stackgan: the stage-I checkpoint (or run folder) that stage II refines",
}


def _add_train(sub) -> None:
    from landgan.losses import LOSSES
    from landgan.models import MODELS

    models = "; ".join(f"{k}: {v.summary}" for k, v in MODELS.items())
    p = sub.add_parser("train", help="train a model", description="Train a model. Models: " + models,
                       argument_default=argparse.SUPPRESS)
    defaults = TrainConfig()
    for name, help_text in _TRAIN_FLAGS.items():
        default = getattr(defaults, name)
        kw = {"type": type(default), "help": f"{help_text} (default: {default})"}
        if isinstance(default, bool):
            kw = {"action": argparse.BooleanOptionalAction, "help": help_text}
        if name == "model":
            kw.update(choices=list(MODELS), help=f"architecture (default: {default})")
        if name == "preset":
            kw.update(choices=list(PRESETS), help="bundle of defaults: fast (landgan's recipe: "
                      "bf16 where native, EMA, DiffAugment) or report (the report's plain DCGAN) "
                      "(default: fast)")
        if name == "loss":
            kw.update(choices=list(LOSSES), help="objective (default: the model's own)")
        if "action" not in kw:
            kw["metavar"] = name.upper()
        p.add_argument("--" + name.replace("_", "-"), dest=name, **kw)
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
                   help="skip images announcing more than N pixels (decompression bombs), and files "
                   "or zip members over 8*N bytes (default: 89478485, Pillow's limit)")

    _add_train(sub)

    p = sub.add_parser("generate", help="generate images from a checkpoint")
    p.add_argument("ckpt", help="checkpoint file or run folder (its latest checkpoint)")
    p.add_argument("--out", required=True, help="a .png path for one grid, or a folder for single PNGs")
    p.add_argument("--n", type=int, default=64, help="number of images")
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

    _add_evaluate(sub)

    from landgan.label import ESTIMATORS

    p = sub.add_parser("label", help="estimate each image's scene composition (for --conditional)")
    p.add_argument("dataset", help="a prepared dataset folder")
    p.add_argument("--force", action="store_true", help="replace existing conditions")
    p.add_argument("--estimator", default="rules", choices=list(ESTIMATORS),
                   help="rules: colour/position/texture, for photos (default); net: pixel "
                   "network, near exact on procedural scenes only")

    p = sub.add_parser("export", help="write the generator as ONNX or TorchScript")
    p.add_argument("ckpt", help="checkpoint file or run folder")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--out", required=True, help="output file (.onnx or .pt)")
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


def _run_train(args: argparse.Namespace) -> None:
    from landgan.train.loop import train

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if hasattr(args, f.name)}
    if getattr(args, "resume", None):
        run = train(TrainConfig(out=given.get("out", "runs")), resume=args.resume,
                    overrides=given, progress=not args.quiet)
    else:
        given.setdefault("preset", "fast")
        run = train(TrainConfig.for_model(**given), progress=not args.quiet)
    print(f"run folder: {run}")


def _dispatch(args: argparse.Namespace) -> None:
    if args.verb == "prepare":
        from landgan.data.prepare import prepare_dataset

        report = prepare_dataset(args.src, args.out, args.resolution, force=args.force,
                                 workers=args.workers, max_pixels=args.max_pixels)
        print(report.summary())
    elif args.verb == "train":
        _run_train(args)
    elif args.verb == "generate":
        from landgan.generate import generate

        path = generate(args.ckpt, args.out, n=args.n, seed=args.seed, truncation=args.truncation,
                        ema=not args.no_ema, force=args.force, device=args.device,
                        condition=args.mix or args.composition)
        print(f"wrote {path}")
    elif args.verb == "label":
        from landgan.data.synthetic import ELEMENTS
        from landgan.label import label_dataset

        means = label_dataset(args.dataset, force=args.force, estimator=args.estimator).mean(0)
        print(f"labelled {args.dataset}; mean composition: "
              + ", ".join(f"{e} {m:.2f}" for e, m in zip(ELEMENTS, means)))
    elif args.verb == "export":
        from landgan.export import export

        print(f"wrote {export(args.ckpt, args.out, args.format, not args.no_ema, args.force)}")
    elif args.verb == "ui":
        from landgan.ui import serve

        serve(args.runs, args.host, args.port, device=args.device)
    elif args.verb == "evaluate":
        from landgan.evaluate import evaluate

        evaluate(args.targets, real=args.real, against=args.against, n=args.n,
                 n_real=args.n_real, seed=args.seed,
                 metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()),
                 is_weights=args.is_weights, split_half=args.split_half,
                 resolution=args.resolution, truncation=args.truncation, device=args.device,
                 json_out=args.json_out, table_out=args.table_out, force=args.force)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``landgan`` console script; returns the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        _dispatch(args)
    except UserError as e:
        print(f"landgan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("landgan: interrupted", file=sys.stderr)
        return 130
    return 0
