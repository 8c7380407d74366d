"""The ``landgan`` command line: one verb per library function.

Parsing and error reporting live here; the work is done by the library. A
:class:`~landgan.errors.UserError` becomes one line on stderr and exit status 2.

Only the verb being run builds its arguments (:mod:`landgan.cli_args`) and imports its
module, inside its runner below (start-up cost: torch, TensorBoard, the metrics stack,
Gradio): ``landgan --help`` and ``--version`` import none of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys

from landgan import __version__
from landgan.cli_args import ADD, HELP
from landgan.errors import UserError


def _build_parser(only: str | None = "all") -> argparse.ArgumentParser:
    """The parser with every verb's arguments (``only="all"``), one verb's, or none
    (``None``: the verbs are listed by name only)."""
    parser = argparse.ArgumentParser(
        prog="landgan",
        description="Train GANs that generate landscapes, and compose landscapes to order.",
    )
    parser.add_argument("--version", action="version", version=f"landgan {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, add in ADD.items():
        if only in ("all", verb):
            add(sub)
        else:
            sub.add_parser(verb, help=HELP[verb], add_help=False)
    return parser


def _verb_of(argv: list[str]) -> str | None:
    """The verb ``argv`` names (its first word that is not an option), if it is one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in ADD else None


def _run_prepare(args) -> None:
    from landgan.data.prepare import prepare_dataset  # start-up cost: decoders, workers

    report = prepare_dataset(
        args.src,
        args.out,
        args.resolution,
        force=args.force,
        workers=args.workers,
        max_pixels=args.max_pixels,
        follow_links=args.follow_links,
    )
    print(report.summary())


def _given(args) -> dict:
    """The TrainConfig fields given on the command line (the parser suppresses the rest)."""
    from landgan.config import TrainConfig  # start-up cost: torch

    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if hasattr(args, f.name)
    }


def _run_train(args) -> None:
    from landgan.config import TrainConfig  # start-up cost: torch
    from landgan.config_flags import check_given_flags  # start-up cost: torch
    from landgan.train.loop import train  # start-up cost: TensorBoard

    given = _given(args)
    if getattr(args, "resume", None):
        run = train(
            TrainConfig(out=given.get("out", "runs")),
            resume=args.resume,
            overrides=given,
            progress=not args.quiet,
        )
    else:
        cfg = TrainConfig.for_model(**given)
        for line in check_given_flags(cfg, given):  # a refused flag raises before any work
            if os.environ.get("RANK", "0") == "0":  # once, not from every torchrun process
                print(f"landgan: warning: {line}", file=sys.stderr)
        run = train(cfg, progress=not args.quiet)
    print(f"run folder: {run}")


def _run_generate(args) -> None:
    from landgan.generate import generate  # start-up cost: torch

    path = generate(
        args.ckpt,
        args.out,
        n=args.n,
        seed=args.seed,
        truncation=args.truncation,
        ema=not args.no_ema,
        force=args.force,
        device=args.device,
        condition=args.mix or args.composition,
        best_of=args.best_of,
        layout=args.layout,
    )
    print(f"wrote {path}")


def _run_evaluate(args) -> None:
    from landgan.evaluate import EvalOptions, evaluate  # start-up cost: the metrics stack

    opts = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(EvalOptions)
        if hasattr(args, f.name)
    }
    opts["real"] = tuple(opts["real"])
    opts["metrics"] = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    evaluate(args.targets, EvalOptions(**opts))


def _run_label(args) -> None:
    from landgan.data.synthetic import ELEMENTS  # start-up cost: numpy, PIL
    from landgan.label import label_dataset  # start-up cost: torch, the labeller

    means = label_dataset(
        args.dataset, force=args.force, estimator=args.estimator, layout=args.layout
    ).mean(0)
    print(
        f"labelled {args.dataset}; mean composition: "
        + ", ".join(f"{e} {m:.2f}" for e, m in zip(ELEMENTS, means))
    )


def _run_export(args) -> None:
    from landgan.export import export  # start-up cost: torch

    path = export(
        args.ckpt,
        args.out,
        args.format,
        not args.no_ema,
        args.force,
        args.half,
        args.command,
        args.average,
    )
    print(f"wrote {path}")


def _run_ui(args) -> None:
    from landgan import ui  # start-up cost: Gradio, and only this verb needs it

    ui.serve(args.runs, args.host, args.port, device=args.device, shipped=not args.no_shipped)


RUN = {
    "prepare": _run_prepare,
    "train": _run_train,
    "generate": _run_generate,
    "evaluate": _run_evaluate,
    "label": _run_label,
    "export": _run_export,
    "ui": _run_ui,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``landgan`` console script; returns the exit status."""
    status = _run(argv)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun
        _end_worker(status)
    return status


def _run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _build_parser(_verb_of(argv)).parse_args(argv)
    # What was typed, for the files that record the command that made them.
    args.command = "landgan " + shlex.join(argv)
    try:
        RUN[args.verb](args)
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
