"""``export_surface``: a loss grid as a 3D surface file, the format chosen by the file's suffix.

- ``.vts`` (VTK structured grid) and ``.vtp`` (VTK poly data, with the path as a polyline) for
  ParaView, written with PyVista (``pip install "loss-landscape-anim[vtk]"``); points where the
  loss is not finite are kept in the ``.vts`` grid but hidden (VTK's ghost points), and left out
  of the ``.vtp``.
- ``.obj``, ``.stl`` and ``.ply`` meshes for Blender, MeshLab and 3D printing, written with meshio
  (``pip install "loss-landscape-anim[export]"``): quadrilaterals in ``.obj`` and ``.ply``,
  triangles in ``.stl``; points where the loss is not finite are left out.

The height is the loss (or log10 of it with ``log=True``). Formats with point fields (``.vts``,
``.vtp``, ``.ply``) also carry ``loss`` (and ``log10_loss``) at each point; ``.ply`` carries the
animation's colours too (``red``, ``green``, ``blue``, which Blender and MeshLab show). ``.obj``
and ``.stl`` carry the loss as the height only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path, check_output_path
from ..results import LossGrid, Plane, Trajectory
from ._deps import require
from .surface_mesh import SurfaceMesh, path_points, surface_mesh

__all__ = ["MESH_FORMATS", "export_surface"]

#: Suffix -> what it is, for messages and the README.
MESH_FORMATS = {
    ".vts": "VTK structured grid (ParaView)",
    ".vtp": "VTK poly data with the path as a polyline (ParaView)",
    ".obj": "Wavefront OBJ mesh",
    ".stl": "STL triangle mesh (3D printing)",
    ".ply": "PLY mesh with loss and colour per point",
}


def export_surface(
    grid: LossGrid,
    path: str | os.PathLike,
    *,
    plane: Plane | None = None,
    trajectory: Trajectory | None = None,
    log: bool = False,
) -> Path:
    """Write the surface of ``grid`` to ``path``, in the format its suffix names (see
    :data:`MESH_FORMATS`), atomically.

    Args:
        grid: the loss grid (:func:`compute_loss_grid` or :meth:`LossGrid.load_h5`).
        path: the file to write: ``.vts``, ``.vtp``, ``.obj``, ``.stl`` or ``.ply``.
        plane: the grid's plane; its path (``plane.path_2d``) is written as a polyline on the
            surface (``.vtp`` only).
        trajectory: a path to write instead of the plane's own, projected onto ``plane``.
        log: heights are log10(loss) instead of the loss (every finite loss must be positive).

    Returns:
        The path written.
    """
    if not isinstance(grid, LossGrid):
        raise TypeError(f"Expected grid to be a LossGrid but got {type(grid).__name__}")
    target = check_output_path(path, "path")
    suffix = target.suffix.lower()
    if suffix not in MESH_FORMATS:
        raise ValueError(
            f"Expected path to end in one of {', '.join(MESH_FORMATS)} but got {str(path)!r}"
        )
    if (plane is not None or trajectory is not None) and suffix != ".vtp":
        raise ValueError(
            f"A path is written to .vtp files only (a polyline), not to {suffix}: "
            "pass plane= and trajectory= with a .vtp path, or neither"
        )
    xy = None
    if plane is not None or trajectory is not None:
        from ..render.landscape_plot import path_coordinates

        xy = path_coordinates(plane, trajectory)
        if plane is not None:
            grid.check_plane(plane)
    mesh = surface_mesh(grid, log=bool(log))
    writers: dict[str, Callable[[Path], None]] = {
        ".vts": lambda out: _write_vts(mesh, out),
        ".vtp": lambda out: _write_vtp(mesh, grid, xy, out),
        ".obj": lambda out: _write_meshio(mesh, out, "obj"),
        ".stl": lambda out: _write_meshio(mesh, out, "stl"),
        ".ply": lambda out: _write_meshio(mesh, out, "ply"),
    }
    _write_atomically(target, writers[suffix])
    return target


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a temporary file beside ``target`` that has ``target``'s suffix (the
    libraries choose their writer by suffix), then rename it onto ``target``."""
    with atomic_path(target) as tmp:
        staged = tmp.with_name(tmp.name + target.suffix)
        try:
            write(staged)
            os.replace(staged, tmp)
        finally:
            staged.unlink(missing_ok=True)


def _point_fields(mesh: SurfaceMesh, loss: np.ndarray) -> dict[str, np.ndarray]:
    fields = {"loss": loss}
    if mesh.log:
        with np.errstate(divide="ignore", invalid="ignore"):
            fields["log10_loss"] = np.log10(loss)
    return fields


def _write_meshio(mesh: SurfaceMesh, out: Path, file_format: str) -> None:
    meshio = require("meshio", f"Writing .{file_format} meshes")
    points, quads, loss = mesh.compact()
    quads = quads.astype(np.int32)
    if file_format == "stl":
        cells = [("triangle", SurfaceMesh.triangles(quads))]
    else:
        cells = [("quad", quads)]
    fields: dict[str, Any] = {}
    if file_format == "ply":
        from ..render.images import loss_colors

        fields = _point_fields(mesh, loss)
        colors = loss_colors(loss, log=True)
        fields.update(red=colors[:, 0], green=colors[:, 1], blue=colors[:, 2])
    result = meshio.Mesh(points, cells, point_data=fields)
    options = {"binary": True} if file_format in ("stl", "ply") else {}
    meshio.write(out, result, file_format=file_format, **options)


def _write_vts(mesh: SurfaceMesh, out: Path) -> None:
    pv = require("pyvista", "Writing .vts files")
    ny, nx = mesh.shape
    points = mesh.points.copy()
    hidden = ~mesh.finite
    if hidden.all():
        raise ValueError("Cannot write a surface: no loss of the grid is finite")
    points[hidden, 2] = np.nanmin(points[:, 2])  # hidden, but inside the bounds
    # (nx, ny, 1) arrays: VTK's first index (x) runs fastest, as point i * nx + j does.
    X, Y, Z = (points[:, k].reshape(ny, nx).T[..., None] for k in range(3))
    structured = pv.StructuredGrid(X, Y, Z)
    for name, values in _point_fields(mesh, mesh.loss).items():
        structured.point_data[name] = values
    if hidden.any():
        structured.hide_points(np.flatnonzero(hidden))
    structured.save(str(out))


def _write_vtp(mesh: SurfaceMesh, grid: LossGrid, xy: np.ndarray | None, out: Path) -> None:
    pv = require("pyvista", "Writing .vtp files")
    points, quads, loss = mesh.compact()
    faces = np.column_stack([np.full(len(quads), 4), quads]).reshape(-1)
    lines = None
    if xy is not None:
        path, path_loss = path_points(grid, xy, log=mesh.log)
        if len(path) >= 2:
            lines = np.concatenate([[len(path)], len(points) + np.arange(len(path))])
            points = np.concatenate([points, path])
            loss = np.concatenate([loss, path_loss])
    poly = pv.PolyData(points, faces=faces, lines=lines)
    for name, values in _point_fields(mesh, loss).items():
        poly.point_data[name] = values
    poly.save(str(out))
