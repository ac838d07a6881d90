"""Random directions: Gaussian of unit norm, or filter-normalised (Li et al. 2018, sec. 4).

Filter normalisation rescales each filter (slice along the first dimension of a parameter tensor
with 2 or more dimensions) of a random direction to the norm of the same filter of the weights;
1-D parameters (biases, normalisation) get zero. ReLU networks are scale invariant, so without it
a unit step means different things in different layers and models.
"""

from __future__ import annotations

import numpy as np
import torch

from ..params.layout import ParamLayout

__all__ = ["filter_normalize", "random_directions"]


def random_directions(
    layout: ParamLayout, seed: int | None, *, filter_norm_weights: np.ndarray | None = None
) -> np.ndarray:
    """Two Gaussian directions (2, P) from ``seed``: unit norm, or filter-normalised against
    ``filter_norm_weights`` (see the module docstring)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    D = torch.randn(2, layout.n_params, generator=generator, dtype=torch.float64).numpy()
    if filter_norm_weights is None:
        return D / np.linalg.norm(D, axis=1, keepdims=True)
    return filter_normalize(D, np.asarray(filter_norm_weights, dtype=np.float64), layout)


def filter_normalize(D: np.ndarray, weights: np.ndarray, layout: ParamLayout) -> np.ndarray:
    """Rescale each filter of each direction in ``D`` (2, P) to the norm of the same filter of
    ``weights`` (P,); zero the entries of 1-D parameters (Li et al. 2018, sec. 4)."""
    out = np.zeros_like(D)
    for shape, (a, b) in zip(layout.shapes, layout.offsets(), strict=True):
        if len(shape) < 2:
            continue
        w = weights[a:b].reshape(shape[0], -1)
        d = D[:, a:b].reshape(2, shape[0], -1)
        scale = np.linalg.norm(w, axis=1) / np.maximum(np.linalg.norm(d, axis=2), 1e-300)
        out[:, a:b] = (d * scale[:, :, None]).reshape(2, -1)
    if not np.any(out):
        raise ValueError(
            "Filter-normalised directions are all zero: the model has no parameter with 2 or more "
            "dimensions. Use reduction_method='random' or 'pca' instead"
        )
    return out
