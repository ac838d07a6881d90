"""The surface geometry every mesh writer shares: point order, cell orientation, non-finite losses,
log heights, and the path lifted onto the surface."""

from __future__ import annotations

import numpy as np
import pytest

from loss_landscape_anim import LossGrid
from loss_landscape_anim.export.surface_mesh import SurfaceMesh, path_points, surface_mesh
from surfaces import linear_grid, path_plane, plane_surface

EPS = np.finfo(np.float64).eps


def cross_z(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The z component of the cross product of 2D vectors (N, 2)."""
    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]


def test_points_are_the_grid_points_at_their_loss():
    grid = linear_grid(5, 4)
    mesh = surface_mesh(grid)
    assert mesh.points.shape == (20, 3) and mesh.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            np.testing.assert_array_equal(
                mesh.points[i * 5 + j], [grid.xs[j], grid.ys[i], grid.loss[i, j]]
            )
    np.testing.assert_array_equal(mesh.loss, grid.loss.reshape(-1))


def test_cells_cover_the_grid_counter_clockwise_from_above():
    mesh = surface_mesh(linear_grid(5, 4))
    assert mesh.quads.shape == (4 * 3, 4)
    for quads in (mesh.quads, SurfaceMesh.triangles(mesh.quads)):
        corners = mesh.points[quads][:, :3, :2]  # the first three corners in the plane
        assert np.all(cross_z(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]) > 0)
    # the triangles of a quad cover its area: half each of a rectangle cell
    tri = mesh.points[SurfaceMesh.triangles(mesh.quads)][:, :, :2]
    areas = 0.5 * np.abs(cross_z(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
    total = np.ptp(mesh.points[:, 0]) * np.ptp(mesh.points[:, 1])
    np.testing.assert_allclose(areas.sum(), total, rtol=len(areas) * EPS)


def test_cells_touching_a_non_finite_loss_are_left_out():
    grid = linear_grid(5, 4)
    loss = grid.loss.copy()
    loss[1, 2] = np.nan
    loss[3, 4] = np.inf
    mesh = surface_mesh(LossGrid.from_values(grid.xs, grid.ys, loss))
    assert len(mesh.quads) == 12 - 4 - 1  # an inner point: 4 cells; a corner: 1
    assert mesh.finite.sum() == 18
    points, quads, kept_loss = mesh.compact()
    assert len(points) == 18 and np.isfinite(points).all()
    np.testing.assert_array_equal(points[quads], mesh.points[mesh.quads])
    np.testing.assert_array_equal(kept_loss, loss.reshape(-1)[np.isfinite(loss.reshape(-1))])


def test_log_heights_and_the_error_for_non_positive_losses():
    grid = linear_grid()
    mesh = surface_mesh(grid, log=True)
    np.testing.assert_array_equal(mesh.points[:, 2], np.log10(grid.loss.reshape(-1)))
    zero = LossGrid.from_values(grid.xs, grid.ys, grid.loss - grid.loss.min())
    with pytest.raises(ValueError, match=r"positive losses for log=True .* smallest is 0.0"):
        surface_mesh(zero, log=True)
    with pytest.raises(TypeError, match="Expected grid to be a LossGrid but got ndarray"):
        surface_mesh(grid.loss)  # type: ignore[arg-type]


def test_the_path_lies_on_the_surface():
    grid = linear_grid()
    xy = path_plane(grid).path_2d
    points, loss = path_points(grid, xy)
    # bilinear interpolation reproduces a surface bilinear in x and y, up to the rounding of
    # its dozen operations on values of about 2
    expected = plane_surface(xy[:, 0], xy[:, 1])
    np.testing.assert_allclose(points[:, 2], expected, rtol=0, atol=32 * EPS * 2)
    np.testing.assert_array_equal(points[:, :2], xy)
    np.testing.assert_array_equal(loss, points[:, 2])
    log_points, _ = path_points(grid, xy, log=True)
    np.testing.assert_allclose(log_points[:, 2], np.log10(expected), rtol=0, atol=32 * EPS)
