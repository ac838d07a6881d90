"""``turntable``: a loss grid alone, with no path, animated as a slow camera turn around its 3D
surface (or drawn as a still contour picture), for surfaces that come without a model or a path,
such as the HDF5 files of Li et al.'s reference code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import check_output_path
from .._runtime import progress_bar
from .._validate import check_choice, check_positive_int
from ..results import LossGrid
from .animation import Animation
from .landscape_plot import VIEWS, plot_landscape
from .writers import check_fps, encode_frames, format_for

__all__ = ["turntable"]

#: The colour of the star at the grid's minimum.
_MINIMUM_COLOR = "#ff7f0e"


def turntable(
    grid: LossGrid,
    output: str | os.PathLike | None,
    *,
    view: str = "surface",
    n_frames: int = 60,
    fps: int = 15,
    turn: float = 90.0,
    elevation: float = 35.0,
    azimuth: float = -60.0,
    title: str | None = None,
    format: str | None = None,
    progress: bool = True,
) -> Animation:
    """Animate ``grid`` with no path: its :func:`plot_landscape` surface, the grid's minimum
    marked with a star, seen from a camera that turns ``turn`` degrees of azimuth over
    ``n_frames`` frames (``view="surface"``); ``view="contour"`` draws one still frame.

    Args:
        grid: the loss grid.
        output: the file to write (``.gif``, ``.mp4``, ``.html``), or None for the bytes.
        view: ``"surface"`` (the turning 3D surface) or ``"contour"`` (a still picture).
        n_frames: frames of the turn (>= 1).
        fps: frames per second.
        turn: degrees of azimuth the camera turns through.
        elevation, azimuth: the camera's angles at the first frame, in degrees.
        title: the figure's title.
        format: the format when ``output`` is None or has no suffix.
        progress: show a progress bar.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    view = check_choice(view, "view", VIEWS)
    n_frames = 1 if view == "contour" else check_positive_int(n_frames, "n_frames")
    fmt = format_for(output, format)
    fps = check_fps(fps, fmt)
    if output is not None:
        check_output_path(output, "output")
    fig, ax = plot_landscape(grid, view=view, elevation=elevation, azimuth=azimuth)
    if view == "surface":
        _mark_minimum(ax, grid)
    if title:
        ax.set_title(title)
    canvas = FigureCanvasAgg(fig)

    def frame(k: int) -> np.ndarray:
        if view == "surface" and n_frames > 1:
            ax.view_init(elev=elevation, azim=azimuth + turn * k / (n_frames - 1))
        canvas.draw()
        return np.array(canvas.buffer_rgba())

    first, last = frame(0), frame(n_frames - 1)
    frames = progress_bar(
        (frame(k) for k in range(n_frames)),
        enabled=progress,
        total=n_frames,
        desc="rendering",
        unit="frame",
    )
    colors = [(255, 127, 14), (0, 0, 0), (255, 255, 255)]
    data = encode_frames(
        frames, fmt, fps=fps, output=output, palette_source=(first, last, colors), n_frames=n_frames
    )
    size = (int(first.shape[1]), int(first.shape[0]))
    path = Path(output) if output is not None else None
    return Animation(path, fmt, n_frames, fps, size, None if path is not None else data)


def _mark_minimum(ax: Any, grid: LossGrid) -> None:
    from .loss_scale import LossScale

    scale = LossScale.of(grid.loss, 2, True)
    if scale is None or not np.isfinite(grid.loss_min):
        return
    height = float(scale.height(grid.loss_min))
    ax.plot(
        [grid.argmin[0]],
        [grid.argmin[1]],
        [height],
        marker="*",
        markersize=15,
        color=_MINIMUM_COLOR,
        markeredgecolor="k",
        linestyle="none",
        zorder=20,
        label=f"grid minimum, loss {grid.loss_min:.4g}",
    )
    ax.legend(loc="upper left", framealpha=0.8)
