"""The landscape panel of a frame: the loss grid as filled contours (a log colour scale read in loss
values when every loss is positive, linear otherwise), hatched regions where the loss is not finite, the grid's
minimum and the axis labels. Drawn once per animation, into a caller's axes."""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.gridspec import GridSpec
from matplotlib.patches import Patch
from matplotlib.transforms import offset_copy

from ..results import LossGrid, Plane
from .loss_scale import LossScale
from .style import Style

__all__ = [
    "TEXT_COLOR",
    "draw_grid_minimum",
    "draw_landscape",
    "keep_y_label_inside",
    "loss_text",
]

TEXT_COLOR = "#222222"
#: Fill of the grid's regions where the loss is not finite.
NOT_FINITE_COLOR = "#d9d9d9"
#: Room kept between the figure's left edge and the landscape's y label, in points.
EDGE_ROOM_PT = 4.0


def loss_text(value: float) -> str:
    """A loss as the figure writes it everywhere (legend, info rows): 4 significant digits."""
    return f"{value + 0.0:.4g}"  # + 0.0: no "-0"


def draw_landscape(ax: Any, grid: LossGrid, plane: Plane, style: Style) -> None:
    """Draw ``grid`` on ``plane`` into ``ax`` (with a colour bar beside it, in loss values)."""
    finite = np.isfinite(grid.loss)
    # A log colour scale shows the orders of magnitude a loss spans, but only for positive
    # losses: any other finite grid (a shifted regression loss, zero loss) is drawn linearly.
    scale = LossScale.of(grid.loss, style.contour_levels)
    if scale is not None:
        _draw_contours(ax, grid, scale, style)
    else:
        _say_why_flat(ax, grid, style)
    handles = [] if finite.all() else _draw_not_finite(ax)
    if scale is not None:  # else every point is the minimum
        handles.insert(0, _draw_minimum(ax, grid, style))
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=style.text_size - 1, framealpha=0.8)
    xlabel, ylabel = plane.axis_labels()
    ax.set_xlabel(xlabel, fontsize=style.text_size + 1)
    ax.set_ylabel(ylabel, fontsize=style.text_size + 1)
    ax.set_xlim(grid.xs[0], grid.xs[-1])
    ax.set_ylim(grid.ys[0], grid.ys[-1])
    ax.tick_params(labelsize=style.text_size - 1)


def _draw_contours(ax: Any, grid: LossGrid, scale: LossScale, style: Style) -> None:
    loss = np.ma.masked_invalid(grid.loss)
    contour: dict[str, Any] = {"levels": scale.levels, "norm": scale.norm}
    filled = ax.contourf(grid.xs, grid.ys, loss, cmap=style.cmap, **contour)
    if style.contour_lines:
        ax.contour(grid.xs, grid.ys, loss, colors="k", linewidths=0.4, alpha=0.35, **contour)
    scale.colorbar(ax.figure, filled, ax, style.text_size, fraction=0.05, pad=0.02)


def _say_why_flat(ax: Any, grid: LossGrid, style: Style) -> None:
    """No contours to draw: the loss is the same everywhere, or nowhere finite."""
    constant = bool(np.isfinite(grid.loss_min))
    if constant:
        ax.set_facecolor(matplotlib.colormaps[style.cmap](0.5))
    ax.text(  # at the top: the path usually crosses the middle
        0.5,
        0.97,
        f"the loss is {loss_text(grid.loss_min)} everywhere on this plane"
        if constant
        else "no finite loss values on this plane",
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=style.text_size,
        color=TEXT_COLOR,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )


def _draw_not_finite(ax: Any) -> list[Any]:
    """Grey hatching where the grid's loss is NaN or infinite, instead of blank paper, and its
    legend entry. The contours leave out every cell that touches a non-finite value: the hatching
    is the axes' background, seen exactly there."""
    hatch, edge = "xxx", "#777777"
    with matplotlib.rc_context({"hatch.color": edge, "hatch.linewidth": 0.6}):
        background = ax.patch
        background.set_facecolor(NOT_FINITE_COLOR)
        background.set_hatch(hatch)
        background.set_edgecolor(edge)
        background.set_linewidth(0)
        key = Patch(
            facecolor=NOT_FINITE_COLOR,
            edgecolor=edge,
            hatch=hatch,
            linewidth=0,
            label="loss not finite (NaN or inf)",
        )
    return [key]


def _draw_minimum(ax: Any, grid: LossGrid, style: Style) -> Any:
    return draw_grid_minimum(
        ax,
        grid,
        size=style.point_size + 5,
        color=style.minimum_color,
        label=f"grid minimum, loss {loss_text(grid.loss_min)}",
    )


def draw_grid_minimum(
    ax: Any, grid: LossGrid, *, size: float, color: str, label: str, zorder: float = 5
) -> Any:
    """The grid's minimum as a star of ``size`` points; on an edge of the grid it is moved inward
    by its radius, so that it stays inside the axes instead of over the tick labels."""
    x, y = grid.argmin
    shift = [
        (size / 2) * (int(v == axis[0]) - int(v == axis[-1]))
        for v, axis in ((x, grid.xs), (y, grid.ys))
    ]
    transform = ax.transData
    if any(shift):
        transform = offset_copy(transform, fig=ax.figure, x=shift[0], y=shift[1], units="points")
    (star,) = ax.plot(
        x,
        y,
        marker="*",
        markersize=size,
        color=color,
        markeredgecolor="k",
        linestyle="none",
        label=label,
        transform=transform,
        clip_on=False,
        zorder=zorder,
    )
    return star


def keep_x_label_inside(ax: Any, outer: GridSpec) -> None:
    """Raise the bottom margin of ``outer`` (the grid ``ax`` lies in) when the x label of ``ax``
    would be cut at the figure's lower edge (a label of two lines: a plane of a subspace)."""
    _keep_inside(ax, outer, "bottom")


def keep_y_label_inside(ax: Any, outer: GridSpec) -> None:
    """Widen the left margin of ``outer`` (the grid ``ax`` lies in) when the tick labels of ``ax``
    are so wide (e.g. "-150000") that its y label would be cut at the figure's edge."""
    _keep_inside(ax, outer, "left")


def _keep_inside(ax: Any, outer: GridSpec, side: str) -> None:
    """Move ``outer``'s ``side`` margin ("bottom" or "left") in until everything of ``ax`` lies
    at least :data:`EDGE_ROOM_PT` from that edge of the figure."""
    fig = ax.figure
    box = ax.get_tightbbox(fig.canvas.get_renderer())
    edge = math.inf if box is None else (box.y0 if side == "bottom" else box.x0)
    room = EDGE_ROOM_PT * fig.dpi / 72
    if edge >= room:
        return
    current = getattr(outer, side)
    if current is None:
        current = getattr(fig.subplotpars, side)
    size = fig.bbox.height if side == "bottom" else fig.bbox.width
    outer.update(**{side: current + (room - edge) / size})
    _move_axes_of(outer, fig)


def _move_axes_of(outer: GridSpec, fig: Any) -> None:
    """Put the axes of ``outer`` where its updated margins say (``update()`` moves the axes of
    pyplot's figures only)."""
    for other in fig.axes:
        spec = other.get_subplotspec()
        if spec is not None and spec.get_topmost_subplotspec().get_gridspec() is outer:
            other.set_position(spec.get_position(fig))
