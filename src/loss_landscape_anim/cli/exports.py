"""The command's export options: ``--export FILE`` (repeatable), ``--tensorboard DIR``, and
``--from-h5 FILE`` (with ``--h5-key``), which animates a surface file instead of training."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_export_arguments", "check_export_arguments", "run_from_h5"]


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options to ``parser``."""
    add = parser.add_argument
    add(
        "--export",
        action="append",
        default=None,
        metavar="FILE",
        help="also write the grid to FILE (repeatable): .vts, .vtp (with the path), .obj, .stl, "
        ".ply, or .h5 (Li et al.'s layout)",
    )
    add("--tensorboard", default=None, metavar="DIR", help="also log to this TensorBoard folder")
    add(
        "--from-h5",
        default=None,
        metavar="FILE",
        help="animate the surface of an HDF5 file in Li et al.'s layout instead of training "
        "(no model, no path: the surface and its minimum, turning in 3D unless --view contour)",
    )
    add("--h5-key", default=None, help="with --from-h5: the surface to read (default train_loss)")


def check_export_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, before any work, export and surface-file options that do not apply, unwritable
    export files and missing packages; each message names the option."""
    from ..pipeline import check_exports

    if args.h5_key is not None and args.from_h5 is None:
        parser.error("--h5-key applies to --from-h5 only")
    if args.from_h5 is not None:
        needs_model = {"--compare": args.compare, "--load": args.load, "--line": args.line}
        needs_model.update({"--interactive": args.interactive, "--curvature": args.curvature})
        for flag, value in needs_model.items():
            if value:
                parser.error(f"{flag} needs a trained model: it does not apply with --from-h5")
    try:
        check_exports(args.export, args.tensorboard)
    except (ValueError, ImportError) as exc:
        parser.error(f"argument --export/--tensorboard: {exc}")


def run_from_h5(args: argparse.Namespace, given: set[str]) -> Any:
    """Animate the surface file of ``--from-h5`` to ``--output`` (a 3D camera turn unless
    ``--view`` was given), then write the exports."""
    from ..pipeline import SURFACE_FRAMES, animate_surface_file, check_exports, write_exports

    animation, grid = animate_surface_file(
        args.from_h5,
        args.output,
        key=args.h5_key or "train_loss",
        view=args.view if "--view" in given else "surface",
        fps=args.fps,
        n_frames=args.frames or SURFACE_FRAMES,
        progress=not args.no_progress,
    )
    write_exports(grid, None, animation, *check_exports(args.export, args.tensorboard))
    return animation
