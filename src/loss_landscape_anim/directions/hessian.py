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

__all__ = ["hessian_directions"]


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
) -> np.ndarray:
    """The unit eigenvectors (2, P) of the two largest Hessian eigenvalues at ``origin``, each
    signed so that the first point of ``path`` (T, P) has a negative coordinate on it."""
    if model is None or data is None:
        raise ValueError(
            "reduction_method='hessian' needs the model and its data: pass model=... and "
            "data=... (the Hessian is computed at the final weights)"
        )
    from ..analysis.curvature import hessian_eigenvalues

    spectrum = hessian_eigenvalues(
        model,
        data,
        k=2,
        params=origin,
        seed=0 if seed is None else seed,
        return_vectors=True,
        device=device,
        n_examples=n_examples,
        num_threads=num_threads,
    )
    assert spectrum.largest_vectors is not None
    D = np.asarray(spectrum.largest_vectors, dtype=np.float64)
    start = np.asarray(path[0], dtype=np.float64) - origin
    signs = np.where(D @ start > 0, -1.0, 1.0)
    return D * signs[:, None]
