"""The 3D view of a loss grid: the surface, and the heights of points of the plane on it (to draw a
path on the surface). Shared by :func:`plot_landscape` and the animation's 3D view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import LossGrid

if TYPE_CHECKING:
    from .loss_scale import LossScale

__all__ = ["draw_surface", "grid_loss_at", "path_heights"]


def grid_loss_at(grid: LossGrid, xy: np.ndarray) -> np.ndarray:
    """The grid's loss at plane coordinates ``xy`` (N, 2), interpolated bilinearly between the
    four surrounding grid points; points outside the grid take the value at its edge."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    xs, ys = np.asarray(grid.xs, dtype=float), np.asarray(grid.ys, dtype=float)
    j, tx = _cell(xs, xy[:, 0])
    i, ty = _cell(ys, xy[:, 1])
    L = np.asarray(grid.loss, dtype=float)
    return (1 - ty) * ((1 - tx) * L[i, j] + tx * L[i, j + 1]) + ty * (
        (1 - tx) * L[i + 1, j] + tx * L[i + 1, j + 1]
    )


def path_heights(grid: LossGrid, xy: np.ndarray, scale: LossScale) -> np.ndarray:
    """Heights (N,) of the points ``xy`` on the surface drawn with ``scale``: the plane's loss
    under each point, as the surface's height axis measures it."""
    return scale.height(grid_loss_at(grid, xy))


def _cell(axis: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the cell ``[axis[k], axis[k + 1]]`` holding each value, and the fraction of the
    way across it (clipped to the axis)."""
    if len(axis) < 2:
        return np.zeros(len(values), dtype=int), np.zeros(len(values))
    clipped = np.clip(values, axis[0], axis[-1])
    k = np.clip(np.searchsorted(axis, clipped, side="right") - 1, 0, len(axis) - 2)
    t = (clipped - axis[k]) / (axis[k + 1] - axis[k])
    return k, t


def draw_surface(
    fig: Any,
    ax: Any,
    grid: LossGrid,
    scale: LossScale,
    cmap: str,
    *,
    text_size: float,
    colorbar: bool = True,
    animated: bool = False,
) -> Any:
    """Draw ``grid`` as a surface into the 3D axes ``ax``: heights and colours on ``scale``, the
    height axis ticked in loss values, and a colour bar beside it. Returns the surface."""
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    X, Y = np.meshgrid(grid.xs, grid.ys)
    Z = np.ma.masked_invalid(scale.height(grid.loss))
    colors = matplotlib.colormaps[cmap](scale.norm(np.ma.masked_invalid(grid.loss)))
    surface = ax.plot_surface(
        X,
        Y,
        Z,
        facecolors=colors,
        rstride=1,
        cstride=1,
        linewidth=0,
        antialiased=False,
        shade=False,
        animated=animated,
    )
    ax.computed_zorder = False  # the path is drawn over the surface, never hidden under it
    ax.set_zticks(scale.height(scale.ticks()), labels=scale.tick_labels())
    ax.set_zlim(scale.height(scale.low), scale.height(scale.high))
    ax.set_zlabel("loss (log scale)" if scale.log else "loss", fontsize=text_size)
    ax.set_xlim(grid.xs[0], grid.xs[-1])
    ax.set_ylim(grid.ys[0], grid.ys[-1])
    ax.tick_params(labelsize=text_size - 1)
    if colorbar:
        # Coloured over the heights, as the surface is: on a log scale, log10(loss) stays a
        # plain number where matplotlib's log norm fails (losses below about 1e-287, which its
        # colour bar takes for 0).
        norm = Normalize(*scale.height([scale.low, scale.high]))
        mappable = ScalarMappable(norm=norm, cmap=cmap)
        scale.colorbar(fig, mappable, ax, text_size, in_heights=True, shrink=0.6, pad=0.1)
    return surface
