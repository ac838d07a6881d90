"""``curvature_grid``: the largest and smallest Hessian eigenvalue on a grid of a plane, the
convexity map of Li et al. (2018, *Visualizing the Loss Landscape of Neural Nets*, end of sec. 6).

As in :func:`compute_loss_grid`, the caller's model supplies the architecture and the weights of
each point come from the plane. Points are evaluated many at once: for models with few parameters
the dense Hessian of each point from one batched set of Hessian-vector products, else a Lanczos
iteration batched across points (see :mod:`loss_landscape_anim.evaluate.hessian`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads
from .._validate import check_positive_number
from ..evaluate.hessian import Extremes, HessianEvaluator
from ..evaluate.points import PlanePoints, Points
from ..results import CurvatureGrid, LossGrid, Plane
from .loss_grid import DEFAULT_MARGIN, check_grid_arguments, grid_axes

__all__ = ["DEFAULT_CURVATURE_RESOLUTION", "DEFAULT_CURVATURE_TOL", "curvature_grid"]

#: Default grid points along each axis: each point costs tens of Hessian-vector products.
DEFAULT_CURVATURE_RESOLUTION = 25
#: Default relative residual at which the batched Lanczos iteration stops: the eigenvalues are
#: then within about this share of the largest one's magnitude.
DEFAULT_CURVATURE_TOL = 1e-3


def curvature_grid(
    model: nn.Module,
    data: Any,
    plane: Plane,
    *,
    resolution: int = DEFAULT_CURVATURE_RESOLUTION,
    margin: float = DEFAULT_MARGIN,
    grid: LossGrid | None = None,
    device: str | torch.device | None = None,
    n_examples: int | None = None,
    extra_paths: list[np.ndarray] | None = None,
    method: str = "auto",
    tol: float = DEFAULT_CURVATURE_TOL,
    max_iter: int | None = None,
    seed: int | None = 0,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    num_threads: NumThreads = None,
    progress: bool = True,
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
        device: where to compute; default CPU.
        n_examples: use the first ``n_examples`` examples only.
        extra_paths: more (T, 2) paths the grid must cover.
        method: ``"auto"`` (dense Hessians for models of at most ``DENSE_MAX_PARAMS``
            parameters, else batched Lanczos), ``"dense"`` or ``"lanczos"``.
        tol: Lanczos stops at a residual below ``tol`` times the largest eigenvalue's magnitude.
        max_iter: at most this many Hessian-vector products per point with Lanczos.
        seed: seeds the Lanczos start vector (one for every point); None draws one.
        chunk_size, memory_budget, num_threads: as for :class:`LossEvaluator`.
        progress: show a progress bar.
    """
    if grid is not None:
        if not isinstance(grid, LossGrid):
            raise TypeError(f"Expected grid to be a LossGrid but got {type(grid).__name__}")
        grid.check_plane(plane)
        xs, ys = np.asarray(grid.xs), np.asarray(grid.ys)
        used_margin = grid.margin
    else:
        resolution, used_margin = check_grid_arguments(resolution, margin)
        xs, ys = grid_axes([plane.path_2d, *(extra_paths or [])], resolution, used_margin)
    XX, YY = np.meshgrid(xs, ys)
    coords = np.stack([XX.ravel(), YY.ravel()], axis=1)

    def points_of(evaluator: HessianEvaluator) -> PlanePoints:
        device, dtype = evaluator.device, evaluator.model.dtype
        return PlanePoints.of(plane.origin, plane.directions, coords, device, dtype)

    evaluator, found = hessian_extremes(
        model,
        data,
        points_of,
        method=method,
        tol=tol,
        max_iter=max_iter,
        seed=seed,
        progress=progress,
        desc="curvature grid",
        device=device,
        n_examples=n_examples,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        num_threads=num_threads,
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
    )


def hessian_extremes(
    model: nn.Module,
    data: Any,
    points_of: Callable[[HessianEvaluator], Points],
    *,
    method: str,
    tol: float,
    max_iter: int | None,
    seed: int | None,
    progress: bool,
    desc: str,
    **evaluator_options: Any,
) -> tuple[HessianEvaluator, Extremes]:
    """A :class:`HessianEvaluator` of ``model`` on ``data`` (``evaluator_options``: ``device``,
    ``n_examples``, ``chunk_size``, ``memory_budget``, ``num_threads``) and the largest and
    smallest Hessian eigenvalue at the points ``points_of(evaluator)``: what
    :func:`curvature_grid` and ``curvature_along_path`` share."""
    tol = check_positive_number(tol, "tol")
    evaluator = HessianEvaluator(model, data, **evaluator_options)
    found = evaluator.extremes(
        points_of(evaluator),
        method=method,
        tol=tol,
        max_steps=max_iter,
        seed=seed,
        progress=progress,
        desc=desc,
    )
    return evaluator, found
