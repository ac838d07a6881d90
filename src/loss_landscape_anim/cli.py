"""The ``loss-landscape-anim`` command: parses arguments and calls :func:`loss_landscape_anim`.

Bad values exit with code 2 and a one-line message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ._validate import check_choice
from .directions import METHODS
from .record.optimizers import OPTIMIZERS

__all__ = ["build_parser", "main"]

PROG = "loss-landscape-anim"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``prog: error: message``."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # user text may hold line breaks
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(convert: type, accept: Callable[[float], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: ``convert(text)`` if ``accept`` holds, else a one-line error."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected} but got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_positive_float = _number(float, lambda v: 0 < v < math.inf, "a positive finite number")
_non_negative_float = _number(float, lambda v: 0 <= v < math.inf, "a finite number >= 0")
_int = _number(int, lambda v: True, "an integer")


def _optimizer_list(text: str) -> list[str]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if len(names) < 1:
        raise argparse.ArgumentTypeError("expected a comma-separated list of optimizer names")
    for name in names:
        try:
            check_choice(name, "optimizer", OPTIMIZERS)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Train a model and animate the optimizer's path over its loss landscape.",
    )
    add = parser.add_argument
    add("--epochs", type=_positive_int, default=300, help="training epochs (default 300)")
    add(
        "--optimizer",
        choices=list(OPTIMIZERS),
        default="adam",
        type=str.lower,
        help="optimizer (default adam)",
    )
    add("--lr", type=_positive_float, default=None, help="learning rate (default: the model's)")
    add(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="batch size (default: full batch for spirals, 16 for MNIST)",
    )
    add(
        "--method",
        choices=[m for m in METHODS if m != "custom"],
        default="pca",
        type=str.lower,
        help="directions of the plane (default pca)",
    )
    add("--seed", type=_int, default=0, help="random seed (default 0)")
    add("--output", default="sample.gif", help="output file: .gif, .mp4 or .html")
    add(
        "--view",
        choices=["contour", "surface"],
        default="contour",
        type=str.lower,
        help="contours from above, or the loss surface in 3D (default contour)",
    )
    add("--fps", type=_positive_int, default=15, help="frames per second (default 15)")
    add(
        "--frames",
        type=_positive_int,
        default=None,
        help="show this many frames spread over the path (default: every recorded step)",
    )
    add("--resolution", type=_positive_int, default=100, help="grid points per axis (default 100)")
    add(
        "--margin",
        type=_non_negative_float,
        default=0.3,
        help="room around the path, share of its extent",
    )
    add("--device", default=None, help="cpu, cuda, cuda:N (default cpu)")
    add(
        "--data",
        choices=["spirals", "mnist"],
        default="spirals",
        type=str.lower,
        help="built-in data: spirals with an MLP, or MNIST with LeNet-5",
    )
    add("--data-dir", default=None, help="folder with (or for) the MNIST files")
    add("--examples", type=_positive_int, default=3000, help="MNIST examples to use (default 3000)")
    add(
        "--compare",
        type=_optimizer_list,
        default=None,
        metavar="OPT,OPT,...",
        help="compare several optimizers in one animation, e.g. adam,sgd,adagrad,rmsprop",
    )
    add(
        "--center",
        default=None,
        help="with --compare: the optimizer whose optimum centres the plane",
    )
    add(
        "--line",
        action="store_true",
        help="also write <output stem>.line.png: the loss on the straight line from the initial "
        "to the final weights",
    )
    add(
        "--interactive",
        action="store_true",
        help="also write <output stem>.interactive.html: the 3D surface to rotate, with the path "
        "and a step slider (needs plotly)",
    )
    add("--checkpoints", default="checkpoints/", help="folder for weights and trajectory")
    add("--load", action="store_true", help="re-render from saved weights, without training")
    add("--no-progress", action="store_true", help="hide progress bars")
    add("-v", "--verbose", action="store_true", help="log the time of each phase")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.center is not None and args.compare is None:
        parser.error("--center needs --compare")
    if args.line and args.compare is not None:
        parser.error("--line draws a single run: leave out --compare")
    if args.interactive and args.compare is not None:
        parser.error("--interactive draws a single run: leave out --compare")
    try:
        _run(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, ImportError) as exc:
        _fail(exc)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    return 0


def _fail(exc: BaseException) -> NoReturn:
    message = " ".join(str(exc).split())
    sys.stderr.write(f"{PROG}: error: {message}\n")
    raise SystemExit(2)


def _run(args: argparse.Namespace) -> None:
    from .pipeline import loss_landscape_anim
    from .pipeline.line_figure import interactive_path, line_path
    from .render.writers import format_for

    format_for(args.output)  # before any data are downloaded or files written
    data, model = _data_and_model(args)
    common = dict(
        learning_rate=args.lr,
        resolution=args.resolution,
        margin=args.margin,
        view=args.view,
        device=args.device,
        progress=not args.no_progress,
    )
    if args.compare is not None:
        from .pipeline import compare_optimizers

        compare_optimizers(
            args.compare,
            args.epochs,
            model=model,
            datamodule=data,
            center=args.center,
            reduction_method=args.method,
            seed=args.seed,
            output_filename=args.output,
            giffps=args.fps,
            n_frames=args.frames,
            **common,
        )
        return
    loss_landscape_anim(
        args.epochs,
        datamodule=data,
        model=model,
        optimizer=args.optimizer,
        reduction_method=args.method,
        model_dirpath=args.checkpoints,
        load_model=args.load,
        output_filename=args.output,
        giffps=args.fps,
        sampling=args.frames is not None,
        n_frames=args.frames or 300,
        seed=args.seed,
        batch_size=args.batch_size,
        line_output=line_path(args.output) if args.line else None,
        interactive_output=interactive_path(args.output) if args.interactive else None,
        **common,
    )


def _data_and_model(args: argparse.Namespace):
    if args.data == "spirals":
        return None, None
    from ._runtime import seeded
    from .data import MNISTDataModule
    from .models import LeNet

    data = MNISTDataModule(
        batch_size=args.batch_size or 16, n_examples=args.examples, data_dir=args.data_dir
    )
    with seeded(args.seed):  # the initial weights, like the default MLP's
        model = LeNet(learning_rate=args.lr or 1e-3, optimizer=args.optimizer)
    return data, model
