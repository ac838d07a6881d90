"""The curvature steps of the pipeline: the extreme Hessian eigenvalues along each path for the
animation's side panel (``curvature=True``; with ``density=True`` the whole spectrum, drawn as a
heat strip), the convexity map of the plane written beside the output as ``<stem>.curvature.png``,
the spectral density of the final weights as ``<stem>.density.png`` (``density=True``), and their
sharpness as ``<stem>.sharpness.json`` (``sharpness=rho``)."""

from __future__ import annotations

import json
import logging
import math
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from .._io import write_bytes_atomic
from .._runtime import is_writer
from ..analysis import (
    DEFAULT_CURVATURE_RESOLUTION,
    curvature_along_path,
    curvature_grid,
    hessian_density,
    sharpness,
)
from ..evaluate import CurvatureEvaluator, LossEvaluator
from ..results import CurvatureGrid, LossGrid, PathCurvature, Plane, Trajectory
from .options import RunOptions
from .stages import timed

__all__ = [
    "MAX_PANEL_ROWS",
    "curvature_map_path",
    "density_figure_path",
    "panel_curvature",
    "sharpness_path",
    "write_curvature_map",
    "write_density_figure",
    "write_sharpness",
]

logger = logging.getLogger(__name__)

#: At most this many rows of each path get their curvature computed for the panel (spread
#: evenly over the frames, first and last included): the curve needs no more.
MAX_PANEL_ROWS = 100


def density_figure_path(output: str | Path) -> Path:
    """Where the spectral density of an animation written to ``output`` goes."""
    output = Path(output)
    return output.with_name(output.stem + ".density.png")


def sharpness_path(output: str | Path) -> Path:
    """Where the sharpness of an animation written to ``output`` goes."""
    output = Path(output)
    return output.with_name(output.stem + ".sharpness.json")


def curvature_map_path(output: str | Path) -> Path:
    """Where the convexity map of an animation written to ``output`` goes."""
    output = Path(output)
    return output.with_name(output.stem + ".curvature.png")


def panel_curvature(
    trajectories: dict[str, Trajectory],
    frames: np.ndarray,
    run: RunOptions,
    evaluator: CurvatureEvaluator,
    density: bool = False,
) -> dict[str, PathCurvature]:
    """The extreme eigenvalues along each path at up to :data:`MAX_PANEL_ROWS` of the frames
    (and the spectral density there, with ``density``)."""
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
                density=density,
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


def write_density_figure(
    trajectories: dict[str, Trajectory],
    output: Path,
    run: RunOptions,
    evaluator: CurvatureEvaluator,
) -> None:
    """The Hessian's spectral density at each path's final weights, overlaid (log density), in
    :func:`density_figure_path` of ``output``."""
    from ..render.density import plot_density

    with timed("spectral density"):
        densities = {
            name: hessian_density(
                params=trajectory.final_params,
                seed=0 if run.seed is None else run.seed,
                evaluator=evaluator,
            )
            for name, trajectory in trajectories.items()
        }
    if not is_writer():
        return
    fig, ax = plot_density(densities if len(densities) > 1 else next(iter(densities.values())))
    ax.set_title("Hessian eigenvalue density at the final weights (SLQ)", fontsize=10)
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(density_figure_path(output), buffer.getvalue())


def write_sharpness(
    trajectories: dict[str, Trajectory],
    rho: float,
    output: Path | None,
    run: RunOptions,
    evaluator: LossEvaluator,
) -> dict[str, dict[str, Any]]:
    """Adaptive L2 sharpness, worst case and average case, at each path's final weights with
    radius ``rho``; logged, and written to :func:`sharpness_path` of ``output`` (if any) as JSON:
    path name -> measure -> value, standard error, loss."""
    out: dict[str, dict[str, Any]] = {}
    with timed("sharpness"):
        for name, trajectory in trajectories.items():
            out[name] = {}
            for worst in (True, False):
                found = sharpness(
                    rho=rho,
                    worst_case=worst,
                    params=trajectory.final_params,
                    seed=0 if run.seed is None else run.seed,
                    evaluator=evaluator,
                )
                key = "worst_case" if worst else "average_case"
                stderr = None if math.isnan(found.stderr) else found.stderr
                out[name][key] = {"value": found.value, "stderr": stderr, "loss": found.loss}
                logger.info("%s: %s sharpness %.4g", name, found.label, found.value)
    if output is not None and is_writer():
        body = {"rho": rho, "kind": "adaptive", "norm": "l2", "paths": out}
        write_bytes_atomic(sharpness_path(output), json.dumps(body, indent=2).encode())
    return out
