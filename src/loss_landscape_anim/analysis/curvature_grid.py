"""``curvature_grid``: the largest and smallest Hessian eigenvalue on a grid of a plane, the
convexity map of Li et al. (2018, *Visualizing the Loss Landscape of Neural Nets*, end of sec. 6).

As in :func:`compute_loss_grid`, the caller's model supplies the architecture and the weights of
each point come from the plane. Points are evaluated many at once, on the same scheduler as the
loss grid (chunks, ranks, resumable checkpoints): for models with few parameters the dense Hessian
of each point from one batched set of Hessian-vector products, else a Lanczos iteration batched
across points (see :mod:`loss_landscape_anim.evaluate.extremes`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from torch import nn

from ..evaluate import CurvatureEvaluator
from ..evaluate.extremes import DEFAULT_TOL
from ..results import CurvatureGrid, LossGrid, Plane
from ._evaluators import check_spans, curvature_evaluator, require
from .loss_grid import DEFAULT_MARGIN, check_grid_arguments, grid_axes, grid_coords

__all__ = ["DEFAULT_CURVATURE_RESOLUTION", "DEFAULT_CURVATURE_TOL", "curvature_grid"]

#: Default grid points along each axis: each point costs tens of Hessian-vector products.
DEFAULT_CURVATURE_RESOLUTION = 25
#: Default relative residual at which the batched Lanczos iteration stops: the eigenvalues are
#: then within about this share of the largest one's magnitude.
DEFAULT_CURVATURE_TOL = DEFAULT_TOL


def curvature_grid(
    model: nn.Module | None = None,
    data: Any = None,
    plane: Plane | None = None,
    *,
    resolution: int = DEFAULT_CURVATURE_RESOLUTION,
    margin: float = DEFAULT_MARGIN,
    grid: LossGrid | None = None,
    extra_paths: list[np.ndarray] | None = None,
    method: str = "auto",
    tol: float = DEFAULT_CURVATURE_TOL,
    max_iter: int | None = None,
    seed: int | None = 0,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    evaluator: CurvatureEvaluator | None = None,
    **evaluator_options: Any,
) -> CurvatureGrid:
    """The largest and smallest eigenvalue of the Hessian of the mean loss over ``data`` on an
    R x R grid of ``plane``, and their ratio ``|lambda_min / lambda_max|``.

    Args:
        model: supplies the architecture (and buffers); the weights at each point are
            ``plane.point(x, y)``. Evaluated in eval mode; not changed.
        data: the evaluation data: a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``.
        plane: the plane, from :func:`project`.
        resolution: points along each axis (>= 2); ignored with ``grid``.
        margin: extra room around the path(s), as a share of their extent (>= 0), as for
            :func:`compute_loss_grid`; ignored with ``grid``.
        grid: a :class:`LossGrid` of this plane whose axes to use exactly.
        extra_paths: more (T, 2) paths the grid must cover.
        method: ``"auto"`` (dense Hessians for models of at most ``DENSE_MAX_PARAMS``
            parameters, else batched Lanczos), ``"dense"`` or ``"lanczos"``.
        tol: Lanczos stops at a residual below ``tol`` times the largest eigenvalue's magnitude.
        max_iter: at most this many Hessian-vector products per point with Lanczos.
        seed: seeds the Lanczos start vector (one for every point); None draws one.
        progress: show a progress bar.
        checkpoint: a file (``.npz``) that finished chunks of points are saved to, as for
            :func:`compute_loss_grid`: a rerun after a kill computes only the missing points,
            and a file of another job is refused.
        evaluator: a :class:`CurvatureEvaluator` already built (or a loss evaluator or
            preparation to share), instead of ``model``, ``data`` and ``evaluator_options``.
        evaluator_options: the options of :class:`CurvatureEvaluator`: ``device``,
            ``n_examples``, ``chunk_size``, ``memory_budget``, ``num_threads``, ``products``,
            ``distributed`` (under ``torch.distributed`` each rank computes only its share of
            the map), ``stream``, ``subset_seed``, ``precision``.
    """
    plane = require(plane, "plane", Plane)
    if grid is not None:
        grid = require(grid, "grid", LossGrid)
        grid.check_plane(plane)
        xs, ys = np.asarray(grid.xs), np.asarray(grid.ys)
        used_margin = grid.margin
    else:
        resolution, used_margin = check_grid_arguments(resolution, margin)
        xs, ys = grid_axes([plane.path_2d, *(extra_paths or [])], resolution, used_margin)
    evaluator = curvature_evaluator(model, data, evaluator, evaluator_options)
    check_spans(evaluator, plane=plane)
    job = {
        "what": "curvature grid",
        "plane": plane.fingerprint(),
        "xs": [float(x) for x in xs],
        "ys": [float(y) for y in ys],
    }
    found = evaluator.plane_extremes(
        plane.origin,
        plane.directions,
        grid_coords(xs, ys),
        method=method,
        tol=tol,
        max_steps=max_iter,
        seed=seed,
        progress=progress,
        desc="curvature grid",
        checkpoint=checkpoint,
        job=job,
    )
    shape = (ys.shape[0], xs.shape[0])
    return CurvatureGrid(
        xs,
        ys,
        found.largest.reshape(shape),
        found.smallest.reshape(shape),
        margin=used_margin,
        n_examples=evaluator.n_examples,
        precision=evaluator.precision,
        plane_fingerprint=plane.fingerprint(),
        method=found.method,
        n_products=found.n_products,
        converged=found.converged.reshape(shape),
    )
