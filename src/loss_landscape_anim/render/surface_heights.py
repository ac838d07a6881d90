"""Heights of points of the plane on a loss grid's surface, for drawing a path on a 3D view."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..results import LossGrid

if TYPE_CHECKING:
    from .loss_scale import LossScale

__all__ = ["grid_loss_at", "path_heights"]


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
