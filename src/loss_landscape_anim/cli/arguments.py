"""The command line's arguments: the parser, its value types, and the checks of options that only
the other options make wrong; every error is one line naming the option."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

from .._io import check_output_path
from .._runtime import SEED_RANGE, resolve_device
from .._validate import check_choice
from ..pipeline import (
    DEFAULT_FPS,
    DEFAULT_MARGIN,
    DEFAULT_RESOLUTION,
    MAX_GIF_FPS,
    METHODS,
    OPTIMIZERS,
    check_fps,
    format_for,
)
from .exports import add_export_arguments, check_export_arguments

__all__ = [
    "MODELS",
    "PROG",
    "TINY_GPT_EPOCHS",
    "TINY_GPT_RESOLUTION",
    "build_parser",
    "check_combinations",
]

PROG = "loss-landscape-anim"
#: The built-in models and the data each trains on.
MODELS = {"mlp": "spirals", "lenet": "mnist", "tiny-gpt": None}
#: Epochs of the tiny-gpt job by default: its loss has flattened by then (full batch).
TINY_GPT_EPOCHS = 100
#: Grid points per axis of the tiny-gpt job by default: a point costs a forward pass of the
#: transformer over the 256 sequences (about 10 ms on one CPU core).
TINY_GPT_RESOLUTION = 60


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
_resolution = _number(int, lambda v: v >= 2, "an integer >= 2")
_positive_float = _number(float, lambda v: 0 < v < math.inf, "a positive finite number")
_non_negative_float = _number(float, lambda v: 0 <= v < math.inf, "a finite number >= 0")
_seed = _number(
    int,
    lambda v: SEED_RANGE[0] <= v <= SEED_RANGE[1],
    "an integer from -2**63 to 2**64 - 1",
)


def _optimizer_list(text: str) -> list[str]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if len(names) < 1:
        raise argparse.ArgumentTypeError("expected a comma-separated list of optimizer names")
    for name in names:
        try:
            check_choice(name, "optimizer", OPTIMIZERS)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"expected each optimizer once but got {', '.join(map(repr, repeated))} more than "
            "once (names ignore case)"
        )
    return names


class _Given(argparse.Action):
    """Stores the value and notes that the option was given on the command line (its default
    alone does not count), so that options that do not apply can be refused."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.option_strings[-1]}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Train a model and animate the optimizer's path over its loss landscape.",
    )
    add = parser.add_argument
    add(
        "--epochs",
        type=_positive_int,
        default=300,
        action=_Given,
        help=f"training epochs (default 300; {TINY_GPT_EPOCHS} with --model tiny-gpt)",
    )
    add(
        "--optimizer",
        choices=list(OPTIMIZERS),
        default="adam",
        type=str.lower,
        action=_Given,
        help="optimizer (default adam); with --compare, list the optimizers there instead",
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
    add("--seed", type=_seed, default=0, help="random seed (default 0)")
    _add_output_and_grid_arguments(add)
    add_export_arguments(parser)
    return parser


def _add_output_and_grid_arguments(add: Callable[..., Any]) -> None:
    """The animation and grid options of :func:`build_parser`."""
    add("--output", default="sample.gif", help="output file: .gif, .mp4 or .html")
    add(
        "--view",
        choices=["contour", "surface"],
        default="contour",
        type=str.lower,
        action=_Given,
        help="contours from above, or the loss surface in 3D (default contour)",
    )
    add(
        "--fps",
        type=_positive_int,
        default=DEFAULT_FPS,
        help=f"frames per second (default {DEFAULT_FPS}; at most {MAX_GIF_FPS} for a .gif)",
    )
    add(
        "--frames",
        type=_positive_int,
        default=None,
        help="show this many frames spread over the path (default: every recorded step)",
    )
    add(
        "--resolution",
        type=_resolution,
        default=DEFAULT_RESOLUTION,
        action=_Given,
        help=f"grid points per axis (default {DEFAULT_RESOLUTION}; {TINY_GPT_RESOLUTION} with "
        "--model tiny-gpt)",
    )
    add(
        "--margin",
        type=_non_negative_float,
        default=DEFAULT_MARGIN,
        help=f"room around the path, share of its extent (default {DEFAULT_MARGIN})",
    )
    add("--device", default=None, help="cpu, cuda, cuda:N (default cpu)")
    add(
        "--precision",
        choices=["bf16", "fp16"],
        default=None,
        type=str.lower,
        help="compute the loss grid in reduced precision (bf16; fp16 on GPUs); default: float32",
    )
    _add_data_arguments(add)
    _add_analysis_and_run_arguments(add)


def _add_data_arguments(add: Callable[..., Any]) -> None:
    """The data, model and comparison options of :func:`build_parser`."""
    add(
        "--data",
        choices=["spirals", "mnist"],
        default="spirals",
        type=str.lower,
        action=_Given,
        help="built-in data: spirals with an MLP, or MNIST with LeNet-5",
    )
    add(
        "--model",
        choices=list(MODELS),
        default=None,
        type=str.lower,
        help="built-in model: mlp (with --data spirals, the default), lenet (with --data mnist), "
        "or tiny-gpt: a small transformer learning to add two 2-digit numbers, generated in code",
    )
    add("--data-dir", default=None, help="with --data mnist: folder with (or for) the MNIST files")
    add(
        "--examples",
        type=_positive_int,
        default=3000,
        action=_Given,
        help="with --data mnist: examples to use (default 3000)",
    )
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


def _add_analysis_and_run_arguments(add: Callable[..., Any]) -> None:
    """The analyses, extra outputs and run options of :func:`build_parser`."""
    add(
        "--curvature",
        action="store_true",
        help="add the Hessian's largest and smallest eigenvalue along the path to the animation "
        "and write the convexity map |λmin/λmax| beside the output as <stem>.curvature.png",
    )
    add(
        "--connect",
        action="store_true",
        help="with --compare: the barrier between each pair's solutions on the line, aligned and "
        "on a trained curve, and each curve's animation as <stem>.connect-<a>-<b>.<suffix>",
    )
    add(
        "--density",
        action="store_true",
        help="show the Hessian's whole spectrum along the path in the curvature panel and write "
        "the spectral density at the final weights as <stem>.density.png",
    )
    add(
        "--sharpness",
        type=_positive_float,
        metavar="RHO",
        help="write the adaptive L2 sharpness (worst and average case, radius RHO) of the final "
        "weights to <stem>.sharpness.json (and log it with -v)",
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
    add(
        "--checkpoints",
        default="checkpoints/",
        action=_Given,
        help="folder for weights and trajectory (not with --compare, which writes none)",
    )
    add(
        "--load",
        action="store_true",
        help="re-render from saved weights, without training (not with --compare)",
    )
    add("--no-progress", action="store_true", help="hide progress bars")
    add("-v", "--verbose", action="store_true", help="log the time of each phase")


def check_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, before any work, options that do not apply together or values that only the
    other options make wrong; each message names the option."""
    given: set[str] = getattr(args, "given", set())
    check_export_arguments(parser, args)
    if args.center is not None and args.compare is None:
        parser.error("--center needs --compare")
    if args.connect and args.compare is None:
        parser.error("--connect needs --compare")
    if args.compare is not None:
        for option in ("--optimizer", "--checkpoints"):
            if option in given:
                parser.error(f"{option} does not apply with --compare: {_COMPARE_REFUSES[option]}")
        if args.load:
            parser.error("--load does not apply with --compare: " + _COMPARE_REFUSES["--load"])
        if args.center is not None and args.center.strip().lower() not in args.compare:
            parser.error(
                f"argument --center: expected one of the compared optimizers "
                f"{', '.join(map(repr, args.compare))} but got {args.center!r}"
            )
    _check_model(parser, args, given)
    if args.data != "mnist":
        for option, value in (("--examples", "--examples" in given), ("--data-dir", args.data_dir)):
            if value:
                parser.error(f"{option} applies to --data mnist only")
    for option, check in (
        ("--output", lambda: format_for(args.output, name="the output file")),
        ("--output", lambda: check_output_path(args.output, "the output file")),
        ("--fps", lambda: check_fps(args.fps, format_for(args.output), "the frame rate")),
        ("--device", lambda: resolve_device(args.device)),
    ):
        try:
            check()
        except (ValueError, RuntimeError) as exc:  # RuntimeError: no ffmpeg for an .mp4
            parser.error(f"argument {option}: {exc}")


def _check_model(
    parser: argparse.ArgumentParser, args: argparse.Namespace, given: set[str]
) -> None:
    """Refuse a built-in model with data it does not take."""
    if args.model is None:
        return
    wanted = MODELS[args.model]
    if wanted is None and "--data" in given:
        parser.error(
            f"--data does not apply with --model {args.model}: it trains on its own token task"
        )
    if wanted is not None and args.data != wanted:
        parser.error(f"--model {args.model} trains on --data {wanted}, not --data {args.data}")


_COMPARE_REFUSES = {
    "--optimizer": "list the optimizers in --compare",
    "--checkpoints": "a comparison saves no weights or trajectory",
    "--load": "a comparison trains every optimizer; it saves nothing to load",
}
