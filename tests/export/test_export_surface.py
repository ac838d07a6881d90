"""export_surface: each format read back with the library that reads it (PyVista for .vts/.vtp,
meshio for .obj/.stl/.ply): point count, bounds, field values."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from loss_landscape_anim import IncompatibleFileError, LossGrid
from loss_landscape_anim.export import MESH_FORMATS, export_surface
from loss_landscape_anim.render.images import loss_colors
from surfaces import linear_grid, path_plane, plane_surface

pv = pytest.importorskip("pyvista")
meshio = pytest.importorskip("meshio")

EPS32 = float(np.finfo(np.float32).eps)
EPS = float(np.finfo(np.float64).eps)


def grid_points(grid: LossGrid, z: np.ndarray) -> np.ndarray:
    X, Y = np.meshgrid(grid.xs, grid.ys)
    return np.column_stack([X.ravel(), Y.ravel(), z.ravel()])


def bounds_of(points: np.ndarray) -> list[float]:
    return [v for k in range(3) for v in (points[:, k].min(), points[:, k].max())]


def with_holes(grid: LossGrid) -> LossGrid:
    loss = grid.loss.copy()
    loss[1, 2] = np.nan  # an inner point: its 4 cells go
    return LossGrid.from_values(grid.xs, grid.ys, loss)


@pytest.mark.parametrize("log", [False, True], ids=["loss", "log10"])
def test_vts_is_the_structured_grid(tmp_path, log):
    grid = linear_grid(5, 4)
    written = export_surface(grid, tmp_path / "surface.vts", log=log)
    assert written == tmp_path / "surface.vts"
    back = pv.read(written)
    assert isinstance(back, pv.StructuredGrid)
    assert back.dimensions == (5, 4, 1)
    z = np.log10(grid.loss) if log else grid.loss
    expected = grid_points(grid, z)
    np.testing.assert_array_equal(back.points, expected)
    np.testing.assert_allclose(back.bounds, bounds_of(expected), rtol=0, atol=0)
    np.testing.assert_array_equal(back.point_data["loss"], grid.loss.ravel())
    if log:
        np.testing.assert_array_equal(back.point_data["log10_loss"], z.ravel())
    else:
        assert "log10_loss" not in back.point_data


def test_vts_hides_points_where_the_loss_is_not_finite(tmp_path):
    grid = with_holes(linear_grid(5, 4))
    back = pv.read(export_surface(grid, tmp_path / "surface.vts"))
    assert back.n_points == 20
    ghost = np.asarray(back.point_data["vtkGhostType"])
    assert np.flatnonzero(ghost).tolist() == [1 * 5 + 2]
    np.testing.assert_array_equal(back.point_data["loss"], grid.loss.ravel())  # NaN kept
    assert np.isfinite(back.points).all()
    assert back.bounds[4] == np.nanmin(grid.loss)  # the hidden point sits inside the bounds


def test_vtp_holds_the_surface_and_the_path_as_a_polyline(tmp_path):
    grid = linear_grid(5, 4)
    plane = path_plane(grid)
    back = pv.read(export_surface(grid, tmp_path / "surface.vtp", plane=plane))
    assert isinstance(back, pv.PolyData)
    n_path = len(plane.path_2d)
    assert back.n_points == 20 + n_path
    assert len(back.faces) == 5 * 12 and back.n_lines == 1
    np.testing.assert_array_equal(back.lines, [n_path, *range(20, 20 + n_path)])
    np.testing.assert_array_equal(back.points[:20], grid_points(grid, grid.loss))
    on_path = back.points[20:]
    np.testing.assert_array_equal(on_path[:, :2], plane.path_2d)
    expected = plane_surface(plane.path_2d[:, 0], plane.path_2d[:, 1])
    np.testing.assert_allclose(on_path[:, 2], expected, rtol=0, atol=64 * EPS)
    np.testing.assert_array_equal(back.point_data["loss"][:20], grid.loss.ravel())
    np.testing.assert_array_equal(back.point_data["loss"][20:], on_path[:, 2])


def test_vtp_leaves_out_points_where_the_loss_is_not_finite(tmp_path):
    grid = with_holes(linear_grid(5, 4))
    back = pv.read(export_surface(grid, tmp_path / "surface.vtp"))
    assert back.n_points == 19 and len(back.faces) == 5 * (12 - 4) and back.n_lines == 0
    assert np.isfinite(back.points).all()


def test_obj_is_the_quad_mesh(tmp_path):
    grid = linear_grid(5, 4)
    back = meshio.read(export_surface(grid, tmp_path / "surface.obj"))
    np.testing.assert_allclose(back.points, grid_points(grid, grid.loss), rtol=0, atol=8 * EPS)
    [cells] = back.cells
    assert cells.type == "quad" and len(cells.data) == 12


def test_stl_is_the_triangle_mesh(tmp_path):
    grid = linear_grid(5, 4)
    back = meshio.read(export_surface(grid, tmp_path / "surface.stl"))
    [cells] = back.cells
    assert cells.type == "triangle" and len(cells.data) == 2 * 12
    expected = grid_points(grid, grid.loss)
    assert len(back.points) == 20  # the vertices shared by triangles, merged by the reader
    # STL stores float32: the same points, each coordinate rounded to float32
    order = np.lexsort(back.points.T[::-1])
    got = back.points[order]
    want = expected[np.lexsort(expected.T[::-1])]
    np.testing.assert_allclose(got, want, rtol=EPS32, atol=EPS32)
    np.testing.assert_allclose(bounds_of(got), bounds_of(want), rtol=EPS32, atol=EPS32)


def test_ply_carries_loss_and_colours(tmp_path):
    grid = with_holes(linear_grid(5, 4))
    back = meshio.read(export_surface(grid, tmp_path / "surface.ply", log=True))
    finite = np.isfinite(grid.loss.ravel())
    assert len(back.points) == 19
    np.testing.assert_array_equal(back.points, grid_points(grid, np.log10(grid.loss))[finite])
    np.testing.assert_array_equal(back.point_data["loss"], grid.loss.ravel()[finite])
    np.testing.assert_array_equal(
        back.point_data["log10_loss"], np.log10(grid.loss.ravel()[finite])
    )
    colors = np.column_stack([back.point_data[c] for c in ("red", "green", "blue")])
    np.testing.assert_array_equal(colors, loss_colors(grid.loss.ravel()[finite]))
    assert len(np.unique(colors, axis=0)) > 10  # a colour scale, not one colour
    [cells] = back.cells
    assert cells.type == "quad" and len(cells.data) == 12 - 4


def test_a_real_grid_in_every_format(tmp_path, landscape):
    grid = landscape.grid
    n = grid.loss.size
    for suffix in MESH_FORMATS:
        path = export_surface(grid, tmp_path / f"real{suffix}")
        back = pv.read(path) if suffix in (".vts", ".vtp") else meshio.read(path)
        points = np.asarray(back.points)
        assert len(points) == n, suffix
        np.testing.assert_allclose(points[:, 2].min(), grid.loss_min, rtol=EPS32)
        np.testing.assert_allclose(points[:, 2].max(), np.nanmax(grid.loss), rtol=EPS32)


def test_bad_arguments_are_refused(tmp_path, landscape):
    grid = linear_grid()
    with pytest.raises(
        ValueError, match=r"end in one of \.vts, \.vtp, \.obj, \.stl, \.ply but got"
    ):
        export_surface(grid, tmp_path / "surface.vtk")
    with pytest.raises(ValueError, match=r"to \.vtp files only .* not to \.stl"):
        export_surface(grid, tmp_path / "surface.stl", plane=path_plane(grid))
    with pytest.raises(TypeError, match="Expected grid to be a LossGrid but got dict"):
        export_surface({}, tmp_path / "surface.vts")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected path to be a file path but .* is a directory"):
        export_surface(grid, tmp_path)
    with pytest.raises(IncompatibleFileError, match="computed on another plane"):
        export_surface(landscape.grid, tmp_path / "s.vtp", plane=path_plane(grid))
    with pytest.raises(ValueError, match="A trajectory is drawn on a plane"):
        export_surface(grid, tmp_path / "s.vtp", trajectory=landscape.trajectory)


def test_a_failed_write_keeps_the_earlier_file(tmp_path, monkeypatch):
    grid = linear_grid()
    path = export_surface(grid, tmp_path / "surface.ply")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(meshio, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        export_surface(linear_grid(3, 3), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["surface.ply"]


@pytest.mark.parametrize(
    ("suffix", "module", "extra"), [(".vts", "pyvista", "vtk"), (".obj", "meshio", "export")]
)
def test_a_missing_library_says_what_to_install(tmp_path, monkeypatch, suffix, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails
    with pytest.raises(
        ImportError, match=rf"needs {module}: pip install 'loss-landscape-anim\[{extra}\]'"
    ):
        export_surface(linear_grid(), tmp_path / f"surface{suffix}")
    assert not list(tmp_path.iterdir())
