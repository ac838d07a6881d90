"""``animate_connectivity``: the curve between two solutions bending into the low-loss valley
while it trains, written as GIF, MP4 or HTML by the writers of the main animation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .._io import check_output_path
from .._runtime import progress_bar
from .._validate import is_integer
from ..results import Curve, LossGrid, LossLine, Plane
from .animation import Animation
from .animator import frame_indices
from .connectivity import check_curve_inputs
from .style import Style
from .writers import check_fps, encode_frames, format_for

__all__ = ["animate_connectivity"]


def animate_connectivity(
    curve: Curve,
    grid: LossGrid,
    output: str | os.PathLike | None = "connectivity.gif",
    *,
    plane: Plane | None = None,
    line: LossLine | None = None,
    curve_losses: Mapping[int, LossLine] | None = None,
    fps: int = 10,
    n_frames: int | None = None,
    format: str | None = None,
    style: Style | None = None,
    progress: bool = True,
) -> Animation:
    """Animate the training of a curve between two solutions on the plane through its ends and
    its final bend (Garipov et al. 2018, fig. 1): the loss contours of that plane, the straight
    line between the ends, and, frame by frame, the curve as it was at each recorded step of its
    training, with the loss along it and the training loss so far.

    The curve of an earlier step need not lie in the plane (the final bend defines it): it is
    drawn at its projection, and the text gives its largest distance from the plane.

    Args:
        curve: from :func:`connect` (its ``history`` gives the frames).
        grid: the loss grid of ``plane``; compute it with every recorded curve's projection as
            an extra path, so that each frame's curve lies inside it.
        output: ``.gif``, ``.mp4`` or ``.html`` (the suffix picks the format); None renders to
            memory (``Animation.data``).
        plane: the plane (default ``curve.plane()``); the grid must have been computed on it.
        line: the loss on the straight line between the ends (:func:`loss_along_line`), drawn
            in the side panel with its barrier.
        curve_losses: history row -> the loss along the curve at that row
            (``loss_along_curve(..., row=row)``): drawn on the frames of those rows, with the
            barrier. Rows without one draw no loss along the curve: every drawn loss is an
            evaluation, never an interpolation.
        fps: frames per second (at most 50 for a GIF).
        n_frames: at most this many frames, spread evenly over the history (None: every row).
        format: ``"gif"``, ``"mp4"`` or ``"html"`` when ``output`` is None or has no suffix.
        style: how it looks (default: the main animation's, titled with the two ends).
        progress: show a progress bar.
    """
    plane = check_curve_inputs(curve, grid, plane)
    fmt = format_for(output, format)
    fps = check_fps(fps, fmt)
    if output is not None:
        check_output_path(output, "output")
    if line is not None and not isinstance(line, LossLine):
        raise TypeError(f"Expected line to be a LossLine but got {type(line).__name__}")
    losses = _check_curve_losses(curve_losses, curve.n_rows)
    style = style or Style(title=f"A low-loss curve from {curve.labels[0]} to {curve.labels[1]}")
    frames = frame_indices(curve.n_rows, n_frames)
    from .connectivity_figure import ConnectivityFigure

    figure = ConnectivityFigure(curve, grid, plane, style, line, losses)
    images = (figure.frame(int(row)) for row in frames)
    images = progress_bar(
        images, enabled=progress, total=len(frames), desc="rendering", unit="frame"
    )
    data = encode_frames(
        images,
        fmt,
        fps=fps,
        output=output,
        palette_source=figure.palette_source(),
        n_frames=len(frames),
    )
    path = Path(output) if output is not None else None
    return Animation(path, fmt, len(frames), fps, figure.size, None if path is not None else data)


def _check_curve_losses(
    curve_losses: Mapping[int, LossLine] | None, n_rows: int
) -> dict[int, LossLine]:
    """``curve_losses`` keyed by non-negative row (negative rows count from the end)."""
    if curve_losses is None:
        return {}
    if not isinstance(curve_losses, Mapping):
        raise TypeError(
            "Expected curve_losses to be a mapping history row -> LossLine but got "
            f"{type(curve_losses).__name__}"
        )
    checked = {}
    for row, value in curve_losses.items():
        if not is_integer(row) or not -n_rows <= row < n_rows:
            raise ValueError(
                f"Expected the rows of curve_losses to be rows of the curve's history "
                f"(0 to {n_rows - 1}) but got {row!r}"
            )
        if not isinstance(value, LossLine):
            raise TypeError(
                f"Expected curve_losses[{row!r}] to be a LossLine but got {type(value).__name__}"
            )
        checked[int(row) % n_rows] = value
    return checked
