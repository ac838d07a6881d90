"""``plot_landscape``: a static figure of a loss grid (contours or a 3D surface) with the path, that
draws into the caller's axes, for papers and slides.

Object-oriented matplotlib only: a new ``Figure`` when no axes are given, never pyplot's current
figure, never ``plt.show()``; style settings apply inside a scoped ``rc_context``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._validate import check_choice
from ..results import LossGrid, Plane, Trajectory

if TYPE_CHECKING:  # matplotlib is imported when drawing, not with the package
    from matplotlib.figure import Figure

    from .loss_scale import LossScale

__all__ = ["VIEWS", "path_coordinates", "plot_landscape"]

#: The views of a landscape: filled contours seen from above, or a 3D surface.
VIEWS = ("contour", "surface")

_PATH_COLOR = "#ff7f0e"


def plot_landscape(
    grid: LossGrid,
    *,
    plane: Plane | None = None,
    trajectory: Trajectory | None = None,
    ax: Any = None,
    view: str = "contour",
    levels: int | Any = 30,
    cmap: str = "viridis",
    log: bool = True,
    colorbar: bool = True,
    path_color: str = _PATH_COLOR,
    elevation: float = 35.0,
    azimuth: float = -60.0,
) -> tuple[Figure, Any]:
    """Draw the loss grid, and the path when a plane is given, into ``ax`` (or a new figure).

    Args:
        grid: the loss grid (:func:`compute_loss_grid`).
        plane: the plane of the grid: its axis labels, and its path (``plane.path_2d``) drawn
            from a circle (start) to a filled dot (end).
        trajectory: a path to draw instead of the plane's own, projected onto ``plane``
            (needs ``plane``).
        ax: the axes to draw into: a 2D axes for ``view="contour"``, a 3D axes
            (``projection="3d"``) for ``view="surface"``. None makes a new figure (6.4 x 4.8 in).
        view: ``"contour"`` (filled contours from above) or ``"surface"`` (a 3D surface, the
            path drawn on it at the loss of the plane under each point).
        levels: number of contour intervals, or the level boundaries as loss values.
        cmap: a matplotlib colour map name.
        log: colour on a log scale (levels spaced geometrically; the colour bar and the height
            axis read in loss values). Falls back to linear when a loss is zero or negative.
        colorbar: draw a colour bar beside the axes.
        path_color: colour of the path.
        elevation, azimuth: viewing angles of the 3D view, in degrees.

    Returns:
        ``(fig, ax)``: the figure and the axes drawn into.
    """
    import matplotlib

    from .loss_scale import LossScale
    from .surface import path_heights

    view = check_choice(view, "view", VIEWS)
    if not isinstance(grid, LossGrid):
        raise TypeError(f"Expected grid to be a LossGrid but got {type(grid).__name__}")
    xy = path_coordinates(plane, trajectory, grid)
    scale = LossScale.of(grid.loss, levels, log)
    with matplotlib.rc_context({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9}):
        fig, ax = _axes(ax, view)
        if view == "contour":
            _draw_contours(fig, ax, grid, scale, cmap, colorbar)
            if xy is not None:
                _draw_path_2d(ax, xy, path_color)
        else:
            _draw_surface(fig, ax, grid, scale, cmap, colorbar, elevation, azimuth)
            if xy is not None and scale is not None:
                _draw_path_3d(ax, xy, path_heights(grid, xy, scale), path_color)
        labels = plane.axis_labels() if plane is not None else ("direction 0", "direction 1")
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
    return fig, ax


def path_coordinates(
    plane: Plane | None, trajectory: Trajectory | None, grid: LossGrid | None = None
) -> np.ndarray | None:
    """The path to draw: ``plane.path_2d``, or ``trajectory`` projected onto ``plane``.

    Raises :class:`~loss_landscape_anim.errors.IncompatibleFileError` when ``grid`` was computed
    on another plane, or ``trajectory`` holds another model's weights."""
    if plane is not None and not isinstance(plane, Plane):
        raise TypeError(f"Expected plane to be a Plane or None but got {type(plane).__name__}")
    if plane is not None and grid is not None:
        grid.check_plane(plane)
    if trajectory is None:
        return None if plane is None else np.asarray(plane.path_2d)
    if not isinstance(trajectory, Trajectory):
        raise TypeError(
            f"Expected trajectory to be a Trajectory or None but got {type(trajectory).__name__}"
        )
    if plane is None:
        raise ValueError("A trajectory is drawn on a plane: pass plane= as well")
    return np.asarray(plane.with_path(trajectory).path_2d)


def _axes(ax: Any, view: str) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    is_3d = getattr(ax, "name", None) == "3d"
    if ax is None:
        fig = Figure(figsize=(6.4, 4.8), layout="constrained")
        ax = fig.add_subplot(projection="3d" if view == "surface" else None)
        return fig, ax
    if view == "surface" and not is_3d:
        raise ValueError(
            "view='surface' draws into a 3D axes: pass ax=fig.add_subplot(projection='3d') "
            "or ax=None"
        )
    if view == "contour" and is_3d:
        raise ValueError("view='contour' draws into a 2D axes but ax is a 3D axes")
    return ax.get_figure(), ax


def _no_values(ax: Any) -> None:
    draw = getattr(ax, "text2D", ax.text)  # a 3D axes places 2D text with text2D
    draw(0.5, 0.5, "no finite loss values", transform=ax.transAxes, ha="center", va="center")


def _draw_contours(
    fig: Figure, ax: Any, grid: LossGrid, scale: LossScale | None, cmap: str, colorbar: bool
) -> None:
    import matplotlib

    if scale is None:
        _no_values(ax)
    else:
        loss = np.ma.masked_invalid(grid.loss)
        filled = ax.contourf(
            grid.xs, grid.ys, loss, levels=scale.levels, norm=scale.norm, cmap=cmap
        )
        ax.contour(
            grid.xs,
            grid.ys,
            loss,
            levels=scale.levels,
            norm=scale.norm,
            colors="k",
            linewidths=0.4,
            alpha=0.3,
        )
        if colorbar:
            scale.colorbar(fig, filled, ax, matplotlib.rcParams["font.size"])
    if np.isfinite(grid.loss_min):
        from .landscape import draw_grid_minimum, loss_text

        label = f"grid minimum, loss {loss_text(grid.loss_min)}"
        draw_grid_minimum(ax, grid, size=13, color="white", label=label)
        ax.legend(loc="best", framealpha=0.8)
    ax.set_xlim(grid.xs[0], grid.xs[-1])
    ax.set_ylim(grid.ys[0], grid.ys[-1])


def _draw_path_2d(ax: Any, xy: np.ndarray, color: str) -> None:
    ax.plot(xy[:, 0], xy[:, 1], color=color, linewidth=2.0, zorder=4)
    ax.plot(*xy[0], marker="o", markersize=7, mfc="white", mec=color, mew=2, zorder=6)
    ax.plot(*xy[-1], marker="o", markersize=7, color=color, mec="k", zorder=6)


def _draw_surface(
    fig: Figure,
    ax: Any,
    grid: LossGrid,
    scale: LossScale | None,
    cmap: str,
    colorbar: bool,
    elevation: float,
    azimuth: float,
) -> None:
    import matplotlib

    from .surface import draw_surface

    ax.view_init(elev=elevation, azim=azimuth)
    if scale is None:
        _no_values(ax)
        return
    size = matplotlib.rcParams["font.size"]
    draw_surface(fig, ax, grid, scale, cmap, text_size=size, colorbar=colorbar)


def _draw_path_3d(ax: Any, xy: np.ndarray, z: np.ndarray, color: str) -> None:
    ax.plot(xy[:, 0], xy[:, 1], z, color=color, linewidth=2.0, zorder=10)
    ax.plot([xy[0, 0]], [xy[0, 1]], [z[0]], marker="o", mfc="white", mec=color, mew=2, zorder=11)
    ax.plot([xy[-1, 0]], [xy[-1, 1]], [z[-1]], marker="o", color=color, mec="k", zorder=11)
