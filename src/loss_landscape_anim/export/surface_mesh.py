"""``SurfaceMesh``: a loss grid as a surface in 3D (points, quadrilateral cells, the loss at each
point), and a path lifted onto it: the geometry every mesh writer and the TensorBoard mesh share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..render.surface import grid_loss_at
from ..results import LossGrid

__all__ = ["SurfaceMesh", "heights", "path_points", "surface_mesh"]


@dataclass(frozen=True, eq=False)
class SurfaceMesh:
    """The surface of a loss grid with ``nx`` x ``ny`` points.

    Attributes:
        points: (nx * ny, 3) point ``i * nx + j`` at ``(xs[j], ys[i], height of loss[i, j])``;
            the height is NaN where the loss is not finite.
        quads: (F, 4) the corners of each grid cell whose four corners are finite,
            counter-clockwise seen from above (normals point to +z).
        loss: (nx * ny,) the loss at each point.
        log: whether the height is log10(loss) (else the loss).
        shape: ``(ny, nx)``.
    """

    points: np.ndarray
    quads: np.ndarray
    loss: np.ndarray
    log: bool
    shape: tuple[int, int]

    @property
    def finite(self) -> np.ndarray:
        """(nx * ny,) True where the height is finite."""
        return np.isfinite(self.points[:, 2])

    def compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(points, quads, loss)`` with the points of non-finite height left out and the cells
        renumbered to the points kept."""
        keep = self.finite
        index = np.cumsum(keep) - 1
        return self.points[keep], index[self.quads], self.loss[keep]

    @staticmethod
    def triangles(quads: np.ndarray) -> np.ndarray:
        """(2F, 3) each quad ``a, b, c, d`` split into ``a, b, c`` and ``a, c, d`` (same
        orientation)."""
        quads = np.asarray(quads)
        return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).reshape(-1, 3)


def heights(loss: np.ndarray, log: bool) -> np.ndarray:
    """The height of each loss value: the loss, or log10(loss) with ``log`` (NaN where not
    finite). Raises ``ValueError`` when ``log`` and a finite loss is not positive."""
    values = np.asarray(loss, dtype=np.float64)
    finite = np.isfinite(values)
    if not log:
        return np.where(finite, values, np.nan)
    if np.any(values[finite] <= 0):
        raise ValueError(
            f"Expected positive losses for log=True (heights are log10(loss)) but the smallest "
            f"is {float(values[finite].min())!r}: use log=False"
        )
    return np.where(finite, np.log10(np.where(finite, values, 1.0)), np.nan)


def surface_mesh(grid: LossGrid, *, log: bool = False) -> SurfaceMesh:
    """The surface of ``grid``: each grid point at its loss (or log10 loss) as height."""
    if not isinstance(grid, LossGrid):
        raise TypeError(f"Expected grid to be a LossGrid but got {type(grid).__name__}")
    ny, nx = grid.loss.shape
    X, Y = np.meshgrid(grid.xs, grid.ys)
    loss = np.asarray(grid.loss, dtype=np.float64).reshape(-1)
    points = np.column_stack([X.reshape(-1), Y.reshape(-1), heights(loss, log)])
    corner = (np.arange(ny - 1)[:, None] * nx + np.arange(nx - 1)[None, :]).reshape(-1)
    quads = np.column_stack([corner, corner + 1, corner + nx + 1, corner + nx])
    ok = np.isfinite(points[:, 2])[quads].all(axis=1)
    return SurfaceMesh(points, quads[ok], loss, bool(log), (ny, nx))


def path_points(
    grid: LossGrid, xy: np.ndarray, *, log: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The path ``xy`` (T, 2) on the surface of ``grid``: points (T', 3) at the height of the
    grid's loss under each (bilinear between the grid points around it; the edge value outside
    the grid) and that loss (T',). Points over a non-finite part of the grid are left out."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    loss = grid_loss_at(grid, xy)
    points = np.column_stack([xy, heights(loss, log)])
    keep = np.isfinite(points).all(axis=1)
    return points[keep], loss[keep]
