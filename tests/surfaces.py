"""Loss grids with a known surface, for the exporter tests."""

from __future__ import annotations

import numpy as np

from loss_landscape_anim import LossGrid, Plane


def plane_surface(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A positive surface linear in x and y (bilinear interpolation reproduces it) plus a term in
    x * y (also bilinear), asymmetric in x and y."""
    return 2.0 + 0.5 * x - 0.25 * y + 0.1 * x * y


def linear_grid(nx: int = 5, ny: int = 4) -> LossGrid:
    xs = np.linspace(-1.0, 1.0, nx)
    ys = np.linspace(-2.0, 1.0, ny)
    return LossGrid.from_values(xs, ys, plane_surface(*np.meshgrid(xs, ys)))


def path_plane(grid: LossGrid) -> Plane:
    """A plane whose path crosses ``grid``; the fingerprint of ``grid`` is not set, so any plane
    fits it."""
    path = np.stack([np.linspace(-0.9, 0.7, 7), np.linspace(-1.8, 0.6, 7)], axis=1)
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return Plane(np.zeros(3), directions, path, np.zeros(len(path)))
