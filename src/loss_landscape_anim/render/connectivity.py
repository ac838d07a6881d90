"""``plot_connectivity``: the plane through two solutions and the bend of the curve between them,
with the loss contours on it, the straight line and the curve (the figure of Garipov et al. 2018,
"Loss surfaces, mode connectivity, and fast ensembling of DNNs", fig. 1). Object-oriented
matplotlib only, never pyplot's state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import Curve, LossGrid, LossLine, Plane
from .style import Style

if TYPE_CHECKING:  # matplotlib is imported when drawing, not with the package
    from matplotlib.figure import Figure

__all__ = ["CurveArtists", "check_curve_inputs", "draw_curve_plane", "plot_connectivity"]

#: Points of ``t`` the curve is drawn with.
CURVE_DRAW_POINTS = 101
LINE_COLOR = "white"
END_COLOR = "#1f77b4"


def check_curve_inputs(curve: Any, grid: Any, plane: Any) -> Plane:
    """The plane the grid lies on (default: the curve's), after checking the types and that the
    grid was computed on it."""
    if not isinstance(curve, Curve):
        raise TypeError(f"Expected curve to be a Curve but got {type(curve).__name__}")
    if not isinstance(grid, LossGrid):
        raise TypeError(f"Expected grid to be a LossGrid but got {type(grid).__name__}")
    plane = curve.plane() if plane is None else plane
    if not isinstance(plane, Plane):
        raise TypeError(f"Expected plane to be a Plane but got {type(plane).__name__}")
    if plane.origin.shape[0] != curve.n_params:
        raise ValueError(
            f"Expected a plane of {curve.n_params} weights (the curve's) but got "
            f"{plane.origin.shape[0]}"
        )
    grid.check_plane(plane)
    return plane


def plot_connectivity(
    curve: Curve,
    grid: LossGrid,
    *,
    plane: Plane | None = None,
    line: LossLine | None = None,
    curve_line: LossLine | None = None,
    row: int = -1,
    ax: Any = None,
    style: Style | None = None,
) -> tuple[Figure, Any]:
    """Draw the loss on the plane through the curve's ends and its bend, the straight line
    between the ends (dashed) and the curve (solid), its bends and control polygon.

    Args:
        curve: from :func:`connect`.
        grid: the loss grid of ``plane`` (``compute_loss_grid(model, data, curve.plane())``).
        plane: the plane (default: ``curve.plane()``); the grid must have been computed on it.
        line: the loss on the straight line (:func:`loss_along_line`): its barrier goes into the
            legend.
        curve_line: the loss along the curve (:func:`loss_along_curve`): its barrier too.
        row: draw the curve with the bends of this row of ``curve.history`` (default: final).
        ax: the axes to draw into; None makes a new figure (7 x 5 in).
        style: colours and sizes (``cmap``, ``contour_levels``, ``path_colors[0]`` for the
            curve, ``text_size``...).

    Returns:
        ``(fig, ax)``. Plane coordinates are distances in weight space: the first axis runs
        from the start to the end, the second towards the bend.
    """
    from matplotlib.figure import Figure

    plane = check_curve_inputs(curve, grid, plane)
    style = style or Style(title=None)
    if ax is None:
        fig = Figure(figsize=(7.0, 5.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure()
    draw_curve_plane(ax, curve, grid, plane, style, line)
    artists = CurveArtists(ax, curve, plane, style, animated=False)
    artists.update(row)
    if curve_line is not None:
        artists.curve.set_label(f"curve, barrier {curve_line.barrier:.3g}")
    ax.legend(loc="best", fontsize=style.text_size - 1, framealpha=0.85)
    return fig, ax


def draw_curve_plane(
    ax: Any, curve: Curve, grid: LossGrid, plane: Plane, style: Style, line: LossLine | None
) -> None:
    """The static parts: contours, colour bar, the straight line, the two ends and their names,
    the axis labels."""
    from .landscape import TEXT_COLOR, draw_landscape

    draw_landscape(ax, grid, plane, style)
    start, end = _coordinates(plane, np.stack([curve.start, curve.end]))
    label = "straight line" + (f", barrier {line.barrier:.3g}" if line is not None else "")
    ax.plot(
        [start[0], end[0]],
        [start[1], end[1]],
        color=LINE_COLOR,
        linestyle="--",
        linewidth=1.6,
        label=label,
        zorder=4,
    )
    for (x, y), name, side in ((start, curve.labels[0], "right"), (end, curve.labels[1], "left")):
        ax.plot(x, y, "o", color=END_COLOR, markeredgecolor="k", markersize=9, zorder=6)
        ax.annotate(
            name,
            (x, y),
            xytext=(-7 if side == "right" else 7, -12),
            textcoords="offset points",
            ha=side,
            va="top",
            fontsize=style.text_size,
            color=TEXT_COLOR,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5},
            zorder=7,
        )
    ax.set_xlabel(f"along {curve.labels[0]} → {curve.labels[1]}", fontsize=style.text_size + 1)
    ax.set_ylabel("towards the bend (orthogonal)", fontsize=style.text_size + 1)


class CurveArtists:
    """The curve, its control polygon and bends in ``ax``, moved to any row of the history."""

    def __init__(self, ax: Any, curve: Curve, plane: Plane, style: Style, *, animated: bool):
        self.curve_result, self.plane = curve, plane
        self.ts = np.linspace(0.0, 1.0, CURVE_DRAW_POINTS)
        color = style.path_colors[0]
        (self.polygon,) = ax.plot(
            [], [], color="k", linestyle=":", linewidth=0.9, alpha=0.7, animated=animated, zorder=4
        )
        (self.curve,) = ax.plot(
            [],
            [],
            color=color,
            linewidth=style.path_width + 0.5,
            solid_capstyle="round",
            label=f"{curve.kind} curve",
            animated=animated,
            zorder=5,
        )
        (self.bends,) = ax.plot(
            [],
            [],
            linestyle="none",
            marker="s",
            markersize=style.point_size - 2,
            color=color,
            markeredgecolor="k",
            label="bend" if curve.n_bends == 1 else "bends",
            animated=animated,
            zorder=6,
        )
        self.artists = [self.polygon, self.curve, self.bends]

    def update(self, row: int) -> float:
        """Move to history row ``row``; returns the largest distance of the drawn curve from the
        plane (it is drawn at its projection)."""
        coords, distance = self.curve_result.project(
            self.plane.origin, self.plane.directions, self.ts, row
        )
        self.curve.set_data(coords[:, 0], coords[:, 1])
        control = _coordinates(self.plane, self.curve_result.control_points(row))
        self.polygon.set_data(control[:, 0], control[:, 1])
        self.bends.set_data(control[1:-1, 0], control[1:-1, 1])
        return float(distance.max())


def _coordinates(plane: Plane, points: np.ndarray) -> np.ndarray:
    """Plane coordinates (K, 2) of weight vectors (K, P) (least squares)."""
    D = plane.directions
    return np.linalg.solve(D @ D.T, D @ (points - plane.origin).T).T
