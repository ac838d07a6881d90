"""The curvature steps of the pipeline (``curvature=True``): the extreme Hessian eigenvalues along
each path for the animation's side panel, and the convexity map of the plane written beside the
output as ``<stem>.curvature.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._runtime import is_writer
from ..analysis import DEFAULT_CURVATURE_RESOLUTION, curvature_along_path, curvature_grid
from ..evaluate import CurvatureEvaluator
from ..results import CurvatureGrid, LossGrid, PathCurvature, Plane, Trajectory
from .options import RunOptions
from .stages import timed

__all__ = [
    "MAX_PANEL_ROWS",
    "curvature_map_path",
    "panel_curvature",
    "write_curvature_map",
]

#: At most this many rows of each path get their curvature computed for the panel (spread
#: evenly over the frames, first and last included): the curve needs no more.
MAX_PANEL_ROWS = 100


def curvature_map_path(output: str | Path) -> Path:
    """Where the convexity map of an animation written to ``output`` goes."""
    output = Path(output)
    return output.with_name(output.stem + ".curvature.png")


def panel_curvature(
    trajectories: dict[str, Trajectory],
    frames: np.ndarray,
    run: RunOptions,
    evaluator: CurvatureEvaluator,
) -> dict[str, PathCurvature]:
    """The extreme eigenvalues along each path at up to :data:`MAX_PANEL_ROWS` of the frames."""
    out = {}
    with timed("path curvature"):
        for name, trajectory in trajectories.items():
            shown = frames[frames < len(trajectory)]
            pick = np.unique(np.round(np.linspace(0, len(shown) - 1, MAX_PANEL_ROWS)).astype(int))
            out[name] = curvature_along_path(
                trajectory=trajectory,
                rows=shown[pick],
                seed=0 if run.seed is None else run.seed,
                progress=run.progress,
                evaluator=evaluator,
            )
    return out


def write_curvature_map(
    plane: Plane,
    loss_grid: LossGrid,
    output: Path,
    paths: list[np.ndarray],
    run: RunOptions,
    evaluator: CurvatureEvaluator,
) -> CurvatureGrid:
    """The convexity map over the loss grid's extent (at :data:`DEFAULT_CURVATURE_RESOLUTION`
    points per axis), drawn with the loss contours and the ``paths`` (T, 2) on the plane, in the
    animation's order, and written to :func:`curvature_map_path` of ``output``."""
    from ..render.curvature import save_curvature_png

    with timed("curvature grid"):
        result = curvature_grid(
            plane=plane,
            resolution=min(DEFAULT_CURVATURE_RESOLUTION, loss_grid.resolution),
            margin=loss_grid.margin if loss_grid.margin is not None else 0.0,
            extra_paths=paths,
            seed=0 if run.seed is None else run.seed,
            progress=run.progress,
            evaluator=evaluator,
        )
    if is_writer():  # rank 0 of a distributed job
        save_curvature_png(
            curvature_map_path(output),
            result,
            loss_grid=loss_grid,
            axis_labels=plane.axis_labels(),
            paths=paths,
        )
    return result
