"""What the loggers share: checking their arguments, and the figure and mesh of a grid."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_positive_int
from ..render.animation import Animation
from ..results import LossGrid, Plane, Trajectory
from .surface_mesh import SurfaceMesh, surface_mesh


def check_inputs(
    animation: Any, grid: Any, plane: Any, trajectory: Any, step: Any, tag: Any
) -> None:
    """Raise ``TypeError``/``ValueError`` naming the argument unless the loggers' arguments fit:
    an :class:`Animation` and/or a :class:`LossGrid`; a plane or trajectory only with a grid (the
    plane the grid was computed on); a step >= 0 or None; a non-empty tag."""
    for name, value, kind in (
        ("animation", animation, Animation),
        ("grid", grid, LossGrid),
        ("plane", plane, Plane),
        ("trajectory", trajectory, Trajectory),
    ):
        if value is not None and not isinstance(value, kind):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            raise TypeError(
                f"Expected {name} to be {article} {kind.__name__} or None but got "
                f"{type(value).__name__}"
            )
    if animation is None and grid is None:
        raise ValueError("Nothing to log: pass animation=, grid= or both")
    if grid is None and (plane is not None or trajectory is not None):
        raise ValueError("plane= and trajectory= draw the path on the grid's figure: pass grid=")
    if trajectory is not None and plane is None:
        raise ValueError("A trajectory is drawn on a plane: pass plane= as well")
    if grid is not None and plane is not None:
        grid.check_plane(plane)
    if step is not None:
        check_positive_int(step, "step", allow_zero=True)
    if not isinstance(tag, str) or not tag.strip("/"):
        raise ValueError(f"Expected tag to be a non-empty string but got {tag!r}")


def figure_and_mesh(
    grid: LossGrid, plane: Plane | None, trajectory: Trajectory | None, log: bool
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """The :func:`plot_landscape` figure of ``grid`` as an (H, W, 3) uint8 image, and its surface
    as ``(points (N, 3), triangles (F, 3), colours (N, 3) uint8)`` over the finite grid points
    (None when no loss is finite)."""
    from ..render.images import landscape_image, loss_colors

    image = landscape_image(grid, plane=plane, trajectory=trajectory)
    points, quads, loss = surface_mesh(grid, log=bool(log)).compact()
    if not len(points):
        return image, None
    return image, (points, SurfaceMesh.triangles(quads), loss_colors(loss, log=True))
