"""Stage 2: ``project`` a trajectory onto a plane spanned by two directions in weight space.

The plane passes through the final weights (the *origin*): the weight vector at plane coordinates
``(x, y)`` is ``origin + x * directions[0] + y * directions[1]``. Methods:

- ``"pca"``: the top two principal components of the mean-centred path, as in the seed package.
  Computed from the T x T Gram matrix of the path, streaming over blocks of parameters, so the cost
  is O(T^2 P) time and O(T^2 + block) memory: never a P x P matrix.
- ``"random"``: two Gaussian directions of unit norm, from ``seed``.
- ``"filter"``: filter-normalised Gaussian directions (Li et al. 2018, "Visualizing the Loss
  Landscape of Neural Nets", sec. 4): each filter (slice along the first dimension of a parameter
  tensor with 2 or more dimensions) of the random direction is rescaled to the norm of the same
  filter of the final weights; 1-D parameters (biases, normalisation) get zero. This removes the
  scale invariance of ReLU networks, so plots of models of different scale can be compared.
- ``"hessian"``: the eigenvectors of the two largest eigenvalues of the Hessian of the loss at
  the final weights (needs the model and its data).
- ``"custom"``: two directions the caller gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads, is_small_model, thread_scope
from .._validate import check_choice
from ..params.blocks import project_rows
from ..params.layout import ParamLayout
from ..results.plane import Plane
from ..results.trajectory import Trajectory
from .custom import check_directions
from .hessian import hessian_directions
from .pca import pca_fit
from .random import random_directions

__all__ = ["METHODS", "fit_plane", "project"]

METHODS = ("pca", "random", "filter", "hessian", "custom")


def project(
    trajectory: Trajectory,
    method: str = "pca",
    *,
    directions: Sequence[Any] | None = None,
    seed: int | None = None,
    num_threads: NumThreads = None,
    model: nn.Module | None = None,
    data: Any = None,
    device: str | torch.device | None = None,
    n_examples: int | None = None,
    evaluator: Any = None,
) -> Plane:
    """Project ``trajectory`` onto a plane through its final weights.

    Args:
        trajectory: the recorded path.
        method: ``"pca"``, ``"random"``, ``"filter"``, ``"hessian"`` or ``"custom"``.
        directions: ``(u, v)``, two vectors of length P (arrays or tensors), for ``"custom"``.
        seed: seeds the random directions (``"random"``, ``"filter"``) and the eigensolver's
            start vector (``"hessian"``); None draws fresh ones (``"hessian"``: seed 0).
        num_threads: CPU threads for the products (restored afterwards): a count, ``"auto"``
            (one thread for models under 100,000 parameters) or None (torch's setting).
        model, data: for ``"hessian"`` only: the architecture (the weights are the
            trajectory's final ones) and the evaluation data of the loss.
        device, n_examples: for ``"hessian"``: where to compute, and the first ``n_examples``
            examples of ``data`` only.
        evaluator: for ``"hessian"``, instead of ``model``, ``data``, ``device`` and
            ``n_examples``: a curvature evaluator already built (or a loss evaluator or
            preparation to share).
    """
    return fit_plane(
        [trajectory.params],
        trajectory.final_params,
        trajectory.layout,
        method,
        directions=directions,
        seed=seed,
        num_threads=num_threads,
        model=model,
        data=data,
        device=device,
        n_examples=n_examples,
        evaluator=evaluator,
        subspace=trajectory.subspace,
    )


def fit_plane(
    paths: Sequence[np.ndarray],
    origin: np.ndarray,
    layout: ParamLayout,
    method: str = "pca",
    *,
    directions: Sequence[Any] | None = None,
    seed: int | None = None,
    num_threads: NumThreads = None,
    model: nn.Module | None = None,
    data: Any = None,
    device: str | torch.device | None = None,
    n_examples: int | None = None,
    evaluator: Any = None,
    subspace: str = "",
) -> Plane:
    """A plane through ``origin`` fit to one or several paths (joint PCA over all their rows);
    its ``path_2d`` is the projection of the first path. ``model``, ``data``, ``device`` and
    ``n_examples`` (or ``evaluator``) are for ``method="hessian"`` (the Hessian at
    ``origin``); ``subspace`` says which weights the paths hold (see :attr:`Plane.subspace`)."""
    method = check_choice(method, "reduction_method", METHODS)
    if method != "custom" and directions is not None:
        raise ValueError(
            f"custom_directions were given but reduction_method is {method!r}; "
            "use reduction_method='custom' to use them"
        )
    if method != "hessian" and (model is not None or data is not None or evaluator is not None):
        raise ValueError(
            f"model and data are for reduction_method='hessian' but reduction_method is "
            f"{method!r}; leave them out"
        )
    origin = np.asarray(origin, dtype=np.float64)
    if method == "hessian":
        D = hessian_directions(
            model,
            data,
            origin,
            paths[0],
            seed=seed,
            device=device,
            n_examples=n_examples,
            num_threads=num_threads,
            evaluator=evaluator,
        )
        coords, distance = project_rows(paths[0], origin, D)
        return Plane(origin, D, coords, distance, None, method, subspace, layout)
    small = is_small_model(layout.n_params, torch.device("cpu"))
    with thread_scope(num_threads, small=small):
        plane = _fit(paths, origin, layout, method, directions, seed)
    return replace(plane, subspace=subspace, layout=layout)


def _fit(
    paths: Sequence[np.ndarray],
    origin: np.ndarray,
    layout: ParamLayout,
    method: str,
    directions: Sequence[Any] | None,
    seed: int | None,
) -> Plane:
    explained = None
    if method == "pca":
        fit = pca_fit(paths, seed)
        last = np.asarray(paths[0][-1], dtype=np.float64)
        if fit.path_2d is not None and fit.distance is not None and np.array_equal(origin, last):
            # a large trajectory's projection, read off its Gram matrix: no third pass
            return Plane(origin, fit.directions, fit.path_2d, fit.distance, fit.explained, method)
        D, explained = fit.directions, fit.explained
    elif method == "custom":
        D = check_directions(directions, layout.n_params)
    else:
        D = random_directions(
            layout, seed, filter_norm_weights=origin if method == "filter" else None
        )
    coords, distance = project_rows(paths[0], origin, D)
    return Plane(origin, D, coords, distance, explained, method)
