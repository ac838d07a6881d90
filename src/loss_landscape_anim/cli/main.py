"""The ``loss-landscape-anim`` command: parses arguments and calls :func:`loss_landscape_anim` (or
:func:`compare_optimizers`). It knows only the pipeline.

Bad input (a bad value, a file that cannot be read or written, a missing optional package) exits
with code 2 and a one-line message on stderr; running out of memory exits with code 1 and one
line that names the levers; anything else is a bug and shows its traceback (exit code 1).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from ..errors import PACKAGE_ERRORS
from ..pipeline import DEFAULT_FRAMES
from .arguments import (
    PROG,
    TINY_GPT_EPOCHS,
    TINY_GPT_RESOLUTION,
    build_parser,
    check_combinations,
)
from .exports import run_from_h5

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    check_combinations(parser, args)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warn_in_one_line
            if args.from_h5 is not None:
                run_from_h5(args, getattr(args, "given", set()))
            else:
                _run_on_ranks(args)
    except _BAD_INPUT as exc:
        _fail(exc)
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise  # a bug: its traceback
        _fail(exc, code=1, hint=_MEMORY_LEVERS)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    return 0


#: The errors of bad input: the package's own, a bad value, a file that cannot be read or
#: written, a missing optional package.
_BAD_INPUT: tuple[type[Exception], ...] = (*PACKAGE_ERRORS, ValueError, OSError, ImportError)
#: What to turn down when a run does not fit in memory.
_MEMORY_LEVERS = (
    "out of memory: lower --resolution (the grid costs resolution^2 evaluations), --examples "
    "(evaluate on fewer examples), --frames, or use a machine with more memory"
)


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that the CPU or a GPU ran out of memory."""
    if isinstance(exc, MemoryError):
        return True
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return any(s in text for s in ("out of memory", "can't allocate memory", "not enough memory"))


def _warn_in_one_line(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
    text = " ".join(str(message).split())
    sys.stderr.write(f"{PROG}: warning: {text}\n")


def _fail(exc: BaseException, *, code: int = 2, hint: str = "") -> NoReturn:
    message = " ".join(str(exc).split())
    if hint:
        message = f"{hint} ({message})" if message else hint
    sys.stderr.write(f"{PROG}: error: {message}\n")
    raise SystemExit(code)


def _run_on_ranks(args: argparse.Namespace) -> None:
    """:func:`_run`, in a process group of its own when launched by ``torchrun``: every rank
    trains the same way and shares the grid; rank 0 alone shows progress and writes files."""
    from .._runtime import is_writer
    from ..pipeline import launched_group

    with launched_group(args.device) as device:
        args.device = device
        args.no_progress = args.no_progress or not is_writer()
        _run(args)


def _run(args: argparse.Namespace) -> None:
    from ..pipeline import interactive_path, line_path, loss_landscape_anim

    data, model = _data_and_model(args)
    batch_size = args.batch_size if data is None else None  # set on the built-in data module
    given: set[str] = getattr(args, "given", set())
    if args.model == "tiny-gpt":  # its own defaults: a transformer's points cost more
        args.epochs = args.epochs if "--epochs" in given else TINY_GPT_EPOCHS
        args.resolution = args.resolution if "--resolution" in given else TINY_GPT_RESOLUTION
    common = dict(
        datamodule=data,
        model=model,
        reduction_method=args.method,
        seed=args.seed,
        output_filename=args.output,
        giffps=args.fps,
        batch_size=batch_size,
        learning_rate=args.lr,
        resolution=args.resolution,
        margin=args.margin,
        view=args.view,
        device=args.device,
        progress=not args.no_progress,
        curvature=args.curvature,
        precision=args.precision,
        density=args.density,
        sharpness=args.sharpness,
        line_output=line_path(args.output) if args.line else None,
        interactive_output=interactive_path(args.output) if args.interactive else None,
        export=args.export,
        tensorboard=args.tensorboard,
    )
    if args.compare is not None:
        from ..pipeline import compare_optimizers

        compare_optimizers(
            args.compare,
            args.epochs,
            center=args.center,
            n_frames=args.frames,
            connectivity=args.connect,
            **common,
        )
        return
    loss_landscape_anim(
        args.epochs,
        optimizer=args.optimizer,
        model_dirpath=args.checkpoints,
        load_model=args.load,
        sampling=args.frames is not None,
        n_frames=args.frames or DEFAULT_FRAMES,
        **common,
    )


def _data_and_model(args: argparse.Namespace) -> tuple[Any, Any]:
    if args.model == "tiny-gpt":
        from ..pipeline import tiny_gpt_job

        return tiny_gpt_job(
            batch_size=args.batch_size,
            seed=args.seed,
            learning_rate=args.lr,
            optimizer=args.optimizer,
        )
    if args.data == "spirals":
        return None, None
    from ..pipeline import mnist_job

    return mnist_job(
        batch_size=args.batch_size,
        n_examples=args.examples,
        data_dir=args.data_dir,
        seed=args.seed,
        learning_rate=args.lr,
        optimizer=args.optimizer,
    )
