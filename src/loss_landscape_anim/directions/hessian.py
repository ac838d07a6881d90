"""Hessian directions: the eigenvectors of the two largest eigenvalues of the Hessian of the loss
at the final weights, the directions of sharpest upward curvature (as in loss-landscape-3d and
PyHessian's plots). A slice along them shows the minimum's steepest walls; unlike PCA it does not
follow the path, so the path may lie far off it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads
from ..evaluate import CurvatureEvaluator
from ..evaluate.eigenpairs import eigenpairs

__all__ = ["HESSIAN_TOL", "hessian_directions"]

#: The relative accuracy of the two eigenvectors asked of ``eigsh`` (as
#: :func:`~loss_landscape_anim.hessian_eigenvalues` asks by default).
HESSIAN_TOL = 1e-4


def hessian_directions(
    model: nn.Module | None,
    data: Any,
    origin: np.ndarray,
    path: np.ndarray,
    *,
    seed: int | None = None,
    device: str | torch.device | None = None,
    n_examples: int | None = None,
    num_threads: NumThreads = None,
    evaluator: Any = None,
) -> np.ndarray:
    """The unit eigenvectors (2, P) of the two largest Hessian eigenvalues at ``origin``, each
    signed so that the first point of ``path`` (T, P) has a negative coordinate on it; the
    Hessian of ``model`` on ``data``, or of an ``evaluator`` already built (a curvature
    evaluator, or a loss evaluator or preparation to share)."""
    if evaluator is None and (model is None or data is None):
        raise ValueError(
            "reduction_method='hessian' needs the model and its data: pass model=... and "
            "data=... (the Hessian is computed at the final weights)"
        )
    if evaluator is None:
        evaluator = CurvatureEvaluator(
            model, data, device=device, n_examples=n_examples, num_threads=num_threads
        )
    elif not isinstance(evaluator, CurvatureEvaluator):
        evaluator = CurvatureEvaluator(evaluator)
    if evaluator.n_params <= 2:
        raise ValueError(
            f"Expected k to be below the number of parameters ({evaluator.n_params}) but got 2"
        )
    found = eigenpairs(
        evaluator, origin, k=2, tol=HESSIAN_TOL, max_iter=None, seed=0 if seed is None else seed
    )
    D = np.asarray(found.largest_vectors, dtype=np.float64)
    start = np.asarray(path[0], dtype=np.float64) - origin
    signs = np.where(D @ start > 0, -1.0, 1.0)
    return D * signs[:, None]
