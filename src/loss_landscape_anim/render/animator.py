"""Stage 4: ``animate`` a path over the loss grid and write it as GIF, MP4 or HTML.

Rendering knows the result types only, never how they were computed. The static parts (contours,
colour bar, labels, minimum marker) are drawn once; each frame restores that background and draws
only the moving artists (blitting), then the frame is mapped onto a palette fitted once to the
static background plus the moving artists' colours.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._io import check_output_path
from .._runtime import progress_bar
from .._validate import check_choice, check_optional_positive_int, check_positive_int
from ..errors import IncompatibleFileError
from ..results import DecisionRegions, LossGrid, PathCurvature, PathLosses, Plane, Trajectory
from .animation import Animation
from .curvature_panel import as_curvature_map
from .landscape_plot import VIEWS
from .style import PathView, Style
from .writers import check_fps, encode_frames, format_for

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_FRAMES",
    "animate",
    "check_curvature",
    "frame_indices",
    "path_views",
]


#: Default frames per second of an animation.
DEFAULT_FPS = 15
#: Default number of frames, spread evenly over the path, when frames are sampled.
DEFAULT_FRAMES = 300


def frame_indices(n_rows: int, n_frames: int | None) -> np.ndarray:
    """Indices of the rows shown as frames: all rows, or ``n_frames`` spread evenly (first and
    last included) when there are more rows than that.

    >>> frame_indices(5, None).tolist()
    [0, 1, 2, 3, 4]
    >>> frame_indices(11, 3).tolist()
    [0, 5, 10]
    """
    n_rows = check_positive_int(n_rows, "n_rows")
    n_frames = check_optional_positive_int(n_frames, "n_frames")
    if n_frames is None or n_frames >= n_rows:
        return np.arange(n_rows)
    return np.unique(np.round(np.linspace(0, n_rows - 1, n_frames)).astype(int))


def animate(
    trajectory: Trajectory | Mapping[str, Trajectory],
    plane: Plane | Mapping[str, Plane],
    grid: LossGrid,
    output: str | os.PathLike | None = "sample.gif",
    *,
    fps: int = DEFAULT_FPS,
    n_frames: int | None = DEFAULT_FRAMES,
    format: str | None = None,
    style: Style | None = None,
    path_losses: PathLosses | Mapping[str, PathLosses] | None = None,
    decision_regions: DecisionRegions | None = None,
    curvature: PathCurvature | Mapping[str, PathCurvature] | None = None,
    progress: bool = True,
    view: str = "contour",
) -> Animation:
    """Render the path(s) over the loss contours (or on the 3D loss surface) and write the
    animation.

    Args:
        trajectory: the recorded path, or a mapping name -> path to animate several in sync.
        plane: the plane (or name -> plane, the same plane with each path projected on it).
        grid: the loss grid of that plane.
        output: file to write; its suffix picks the format (``.gif``, ``.mp4``, ``.html``).
            None renders to memory (``Animation.data``) without writing.
        fps: frames per second (> 0; at most 50 for a GIF, whose delays are whole hundredths of
            a second: they alternate so that their mean is 1/fps, e.g. 70, 60, 70 ms for 15).
        n_frames: at most this many frames, spread evenly over the path (None: every row).
        format: ``"gif"``, ``"mp4"`` or ``"html"`` when ``output`` is None or has no suffix.
        style: how it looks.
        path_losses: true and projected loss per row (see :class:`PathLosses`), shown per frame.
        decision_regions: a :class:`~loss_landscape_anim.decision.DecisionRegions` to draw in a
            side panel (2-input classifiers).
        curvature: the Hessian's extreme eigenvalues along the path (a :class:`PathCurvature`
            from :func:`curvature_along_path`, or name -> one per path), drawn in a side panel
            growing with the frames, with ``2 / eta`` for plain SGD.
        progress: show a progress bar.
        view: ``"contour"`` (filled contours from above) or ``"surface"`` (the loss surface in
            3D, each path drawn on it at the loss of the plane under it, with a slow camera turn;
            slower to render: the surface is redrawn every frame).
    """
    view = check_choice(view, "view", VIEWS)
    fmt = format_for(output, format)
    fps = check_fps(fps, fmt)
    if output is not None:
        check_output_path(output, "output")
    style = style or Style()
    if isinstance(grid, LossGrid) and isinstance(plane, (Plane, Mapping)):
        for each in [plane] if isinstance(plane, Plane) else plane.values():
            if isinstance(each, Plane):
                grid.check_plane(each)
    paths = path_views(trajectory, plane, path_losses, style)
    n_rows = max(len(p.steps) for p in paths)
    frames = frame_indices(n_rows, n_frames)
    curves = as_curvature_map(curvature, [p.name for p in paths])
    check_curvature(curves, _as_mapping(trajectory, Trajectory, "trajectory"))
    if decision_regions is not None and int(np.max(decision_regions.rows, initial=0)) >= n_rows:
        raise ValueError(
            f"Expected decision_regions of rows below {n_rows} (the trajectory's) but they "
            f"go up to row {int(np.max(decision_regions.rows))}: they are another run's"
        )
    from .figure import LandscapeFigure
    from .surface_figure import SurfaceFigure

    figure_class = SurfaceFigure if view == "surface" else LandscapeFigure
    figure = figure_class(
        paths,
        grid,
        plane if isinstance(plane, Plane) else next(iter(plane.values())),
        style,
        decision_regions,
        curves,
    )
    images = (figure.frame(int(t)) for t in frames)
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
    size = figure.size
    path = Path(output) if output is not None else None
    return Animation(path, fmt, len(frames), fps, size, None if path is not None else data)


def path_views(
    trajectory: Trajectory | Mapping[str, Trajectory],
    plane: Plane | Mapping[str, Plane],
    losses: PathLosses | Mapping[str, PathLosses] | None,
    style: Style,
) -> list[PathView]:
    trajectories = _as_mapping(trajectory, Trajectory, "trajectory")
    planes = _as_mapping(plane, Plane, "plane")
    if isinstance(plane, Plane) and len(trajectories) > 1:
        raise ValueError("Expected one plane per trajectory: pass a mapping name -> Plane")
    if set(planes) != set(trajectories) and not isinstance(plane, Plane):
        raise ValueError(
            f"Expected planes for the same names as trajectories {sorted(trajectories)} "
            f"but got {sorted(planes)}"
        )
    if isinstance(losses, PathLosses):
        losses = {next(iter(trajectories)): losses}
    loss_map = {} if losses is None else _as_mapping(losses, PathLosses, "path_losses")
    views = []
    for k, (name, traj) in enumerate(trajectories.items()):
        pl = plane if isinstance(plane, Plane) else planes[name]
        pl.check_path(traj)
        pls = loss_map.get(name)
        if pls is not None and len(pls.true) != len(traj):
            raise ValueError(
                f"Expected the path losses of {name!r} to have {len(traj)} values (one per row "
                f"of the trajectory) but they have {len(pls.true)}: they are another run's"
            )
        views.append(
            PathView(
                name=name,
                xy=np.asarray(pl.path_2d),
                loss=np.asarray(traj.loss),
                accuracy=np.asarray(traj.accuracy),
                steps=np.asarray(traj.steps),
                off_plane=np.asarray(pl.off_plane_distance),
                true_loss=None if pls is None else np.asarray(pls.true),
                projected_loss=None if pls is None else np.asarray(pls.projected),
                color=style.path_colors[k % len(style.path_colors)],
            )
        )
    return views


def check_curvature(
    curves: Mapping[str, PathCurvature], trajectories: Mapping[str, Trajectory]
) -> None:
    """Raise :class:`~loss_landscape_anim.errors.IncompatibleFileError` unless each curvature
    was computed along the path it is drawn with: the trajectory's fingerprint (when the
    curvature records it), rows within the trajectory, the same steps at those rows, the same
    optimizer and learning rate (where both are known)."""
    for name, c in curves.items():
        why = _other_path(c, trajectories[name])
        if why:
            raise IncompatibleFileError(
                f"The curvature of {name!r} was computed along another path: {why}"
            )


def _other_path(c: PathCurvature, traj: Trajectory) -> str:
    """Why ``c`` was not computed along ``traj`` ("" when nothing says so)."""
    if c.trajectory_fingerprint is not None and c.trajectory_fingerprint != traj.fingerprint():
        return (
            f"its trajectory fingerprint is {c.trajectory_fingerprint}, this trajectory's "
            f"{traj.fingerprint()}"
        )
    rows, steps = np.asarray(c.rows), np.asarray(c.steps)
    if rows.shape != steps.shape or (rows.size and not 0 <= rows.min() <= rows.max() < len(traj)):
        return f"its rows {rows.tolist()[:5]}... are not rows of this {len(traj)}-row trajectory"
    differ = np.flatnonzero(np.asarray(traj.steps)[rows] != steps)
    if differ.size:
        k = int(differ[0])
        return (
            f"its row {int(rows[k])} is at step {int(steps[k])}, this trajectory's at step "
            f"{int(traj.steps[rows[k]])}"
        )
    if c.optimizer and traj.optimizer and c.optimizer != traj.optimizer:
        return f"its optimizer is {c.optimizer!r}, this trajectory's {traj.optimizer!r}"
    rates = (c.learning_rate, traj.learning_rate)
    if all(np.isfinite(rates)) and rates[0] != rates[1]:
        return f"its learning rate is {rates[0]!r}, this trajectory's {rates[1]!r}"
    return ""


def _as_mapping(value: Any, kind: type, name: str) -> dict[str, Any]:
    if isinstance(value, kind):
        return {getattr(value, "optimizer", "") or "path": value}
    if isinstance(value, Mapping) and value and all(isinstance(v, kind) for v in value.values()):
        return dict(value)
    raise TypeError(
        f"Expected {name} to be a {kind.__name__} or a non-empty mapping name -> {kind.__name__} "
        f"but got {type(value).__name__}"
    )
