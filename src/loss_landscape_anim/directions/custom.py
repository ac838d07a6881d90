"""Custom directions: two vectors the caller gives, validated."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["check_directions"]


def check_directions(directions: Any, n_params: int) -> np.ndarray:
    """Validate custom ``(u, v)`` and return them as a (2, P) float64 array."""
    if directions is None:
        raise ValueError(
            "reduction_method='custom' needs custom_directions=(u, v): two vectors of length "
            f"{n_params}, the model's parameter count"
        )
    try:
        vectors = [
            np.asarray(torch.as_tensor(d).detach().cpu(), dtype=np.float64).ravel()
            for d in directions
        ]
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"Expected custom_directions to be two numeric vectors: {exc}") from exc
    if len(vectors) != 2:
        raise ValueError(f"Expected custom_directions to hold 2 vectors but got {len(vectors)}")
    for k, v in enumerate(vectors):
        if v.shape[0] != n_params:
            raise ValueError(
                f"Expected custom_directions[{k}] to have {n_params} entries (the model's "
                f"parameter count) but got {v.shape[0]}"
            )
        if not np.isfinite(v).all():
            raise ValueError(f"Expected custom_directions[{k}] to be finite but it has NaN or inf")
        if not np.any(v):
            raise ValueError(f"Expected custom_directions[{k}] to be non-zero but it is all zeros")
    D = np.stack(vectors)
    gram = D @ D.T
    if abs(np.linalg.det(gram)) <= 1e-12 * gram[0, 0] * gram[1, 1]:
        raise ValueError(
            "Expected custom_directions to be linearly independent but they are parallel"
        )
    return D
