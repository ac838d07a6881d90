"""``curvature_along_path``: the extreme Hessian eigenvalues at the recorded weights of a path.

For full-batch gradient descent with step size ``eta`` the largest eigenvalue tends to climb to
``2 / eta`` and hover there, the "edge of stability" (Cohen et al. 2021, *Gradient Descent on
Neural Networks Typically Occurs at the Edge of Stability*): a picture of training that the loss
curve alone does not give.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import check_optional_positive_int, check_positive_int
from ..evaluate import CurvatureEvaluator
from ..results import PathCurvature, Trajectory
from ._evaluators import check_spans, curvature_evaluator, require
from .curvature_grid import DEFAULT_CURVATURE_TOL
from .density import spectral_densities

__all__ = [
    "DEFAULT_PATH_DENSITY_RUNS",
    "DEFAULT_PATH_DENSITY_STEPS",
    "curvature_along_path",
    "path_rows",
]

#: Default Lanczos runs and steps of the density at each row of a path (fewer than for one
#: point: the same start vectors at every row keep the frames comparable).
DEFAULT_PATH_DENSITY_RUNS = 5
DEFAULT_PATH_DENSITY_STEPS = 40


def path_rows(n_rows: int, *, every: int | None = None, rows: Any = None) -> np.ndarray:
    """The rows to evaluate (ascending, unique): ``rows``, or every ``every``-th row, or all;
    the first and the last row always."""
    every = check_optional_positive_int(every, "every")
    if rows is not None and every is not None:
        raise ValueError("Expected at most one of every and rows but got both")
    if rows is not None:
        chosen = np.asarray(rows).reshape(-1)
        if chosen.size and (
            not np.issubdtype(chosen.dtype, np.integer)
            or chosen.min() < 0
            or chosen.max() >= n_rows
        ):
            raise ValueError(
                f"Expected rows to be integers in [0, {n_rows - 1}] (the trajectory's rows) "
                f"but got {rows!r}"
            )
    elif every is not None:
        chosen = np.arange(0, n_rows, every)
    else:
        chosen = np.arange(n_rows)
    return np.unique(np.concatenate([chosen.astype(np.int64), [0, n_rows - 1]]))


def curvature_along_path(
    model: nn.Module | None = None,
    data: Any = None,
    trajectory: Trajectory | None = None,
    *,
    every: int | None = None,
    rows: Any = None,
    method: str = "auto",
    tol: float = DEFAULT_CURVATURE_TOL,
    max_iter: int | None = None,
    seed: int | None = 0,
    progress: bool = True,
    density: bool = False,
    density_runs: int = DEFAULT_PATH_DENSITY_RUNS,
    density_steps: int = DEFAULT_PATH_DENSITY_STEPS,
    evaluator: CurvatureEvaluator | None = None,
    **evaluator_options: Any,
) -> PathCurvature:
    """The largest and smallest eigenvalue of the Hessian of the mean loss over ``data`` at the
    recorded weights of ``trajectory``.

    Args:
        model: supplies the architecture (and buffers); the weights are the trajectory's rows.
        data: the evaluation data, as for :func:`curvature_grid`.
        trajectory: the recorded path.
        every: evaluate every ``every``-th row (default: every row).
        rows: or evaluate these rows (indices into the trajectory).
        method, tol, max_iter, seed, progress, evaluator, evaluator_options: as for
            :func:`curvature_grid`.
        density: also estimate the whole spectrum at each row, by stochastic Lanczos quadrature
            (see :func:`hessian_density`) from the same start vectors at every row, so that the
            densities change with the curvature from frame to frame, not with the draw.
        density_runs, density_steps: the runs and Lanczos steps of each row's density.

    The first and the last recorded rows are always included.
    """
    trajectory = require(trajectory, "trajectory", Trajectory)
    chosen = path_rows(len(trajectory), every=every, rows=rows)
    if not isinstance(density, bool):
        raise TypeError(f"Expected density to be True or False but got {density!r}")
    density_runs = check_positive_int(density_runs, "density_runs")
    density_steps = check_positive_int(density_steps, "density_steps")
    evaluator = curvature_evaluator(model, data, evaluator, evaluator_options)
    check_spans(evaluator, trajectory=trajectory)
    found = evaluator.weight_extremes(
        np.asarray(trajectory.params[chosen]),
        method=method,
        tol=tol,
        max_steps=max_iter,
        seed=seed,
        progress=progress,
        desc="path curvature",
    )
    densities = None
    if density:
        W = torch.as_tensor(np.asarray(trajectory.params[chosen]))
        with evaluator.scope():
            densities = spectral_densities(
                evaluator,
                W,
                n_runs=density_runs,
                n_steps=density_steps,
                seed=seed,
                progress=progress,
                desc="path spectrum",
            )
    return PathCurvature(
        rows=chosen,
        steps=np.asarray(trajectory.steps)[chosen],
        lambda_max=found.largest,
        lambda_min=found.smallest,
        optimizer=trajectory.optimizer,
        learning_rate=float(trajectory.learning_rate),
        n_examples=evaluator.n_examples,
        precision=evaluator.precision,
        converged=found.converged,
        trajectory_fingerprint=trajectory.fingerprint(),
        density_nodes=None if densities is None else densities.nodes,
        density_weights=None if densities is None else densities.weights,
        n_params=evaluator.n_params,
    )
