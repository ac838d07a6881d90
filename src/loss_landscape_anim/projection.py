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
- ``"custom"``: two directions the caller gives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import load_npz, save_npz
from ._layout import ParamLayout
from ._runtime import default_threads, torch_threads
from ._validate import check_choice
from .trajectory import (
    DEFAULT_BLOCK_BYTES,
    Trajectory,
    iter_column_blocks,
    read_columns,
)

__all__ = ["METHODS", "Plane", "project"]

METHODS = ("pca", "random", "filter", "custom")


@dataclass(frozen=True, eq=False)
class Plane:
    """A 2D plane in weight space and a path projected onto it.

    Attributes:
        origin: (P,) the final weights; plane coordinates (0, 0).
        directions: (2, P) the two directions spanning the plane.
        path_2d: (T, 2) least-squares coordinates of each recorded point (dot products when the
            directions are orthonormal); ``path_2d[-1]`` is (0, 0) for the path the plane was fit on.
        off_plane_distance: (T,) Euclidean distance of each recorded point from the plane.
        explained_variance: (2,) share of the path's variance along each direction (PCA only).
        method: how the directions were made.
    """

    origin: np.ndarray
    directions: np.ndarray
    path_2d: np.ndarray
    off_plane_distance: np.ndarray
    explained_variance: np.ndarray | None = None
    method: str = "custom"

    def point(self, x: float, y: float) -> np.ndarray:
        """The weight vector at plane coordinates ``(x, y)``."""
        return self.origin + x * self.directions[0] + y * self.directions[1]

    def axis_labels(self) -> tuple[str, str]:
        """Axis labels: "principal component k, 61.2%" for PCA, else "direction k"."""
        if self.explained_variance is not None:
            return tuple(  # type: ignore[return-value]
                f"principal component {k}, {100 * v:.1f}%"
                for k, v in enumerate(self.explained_variance)
            )
        return ("direction 0", "direction 1")

    def with_path(self, trajectory: Trajectory) -> Plane:
        """The same plane with ``trajectory`` projected onto it instead."""
        coords, distance = _project_rows(trajectory.params, self.origin, self.directions)
        return replace(self, path_2d=coords, off_plane_distance=distance)

    def save(self, path: str | os.PathLike) -> Path:
        arrays = {
            "origin": self.origin,
            "directions": self.directions,
            "path_2d": self.path_2d,
            "off_plane_distance": self.off_plane_distance,
            "explained_variance": self.explained_variance,
        }
        return save_npz(path, "Plane", arrays, {"method": self.method})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Plane:
        arrays, meta = load_npz(path, "Plane")
        return cls(
            origin=arrays["origin"],
            directions=arrays["directions"],
            path_2d=arrays["path_2d"],
            off_plane_distance=arrays["off_plane_distance"],
            explained_variance=arrays.get("explained_variance"),
            method=meta.get("method", "custom"),
        )


def project(
    trajectory: Trajectory,
    method: str = "pca",
    *,
    directions: Sequence[Any] | None = None,
    seed: int | None = None,
) -> Plane:
    """Project ``trajectory`` onto a plane through its final weights.

    Args:
        trajectory: the recorded path.
        method: ``"pca"``, ``"random"``, ``"filter"`` or ``"custom"``.
        directions: ``(u, v)``, two vectors of length P (arrays or tensors), for ``"custom"``.
        seed: seeds the random directions (``"random"``, ``"filter"``); None draws fresh ones.
    """
    return fit_plane(
        [trajectory.params],
        trajectory.final_params,
        trajectory.layout,
        method,
        directions=directions,
        seed=seed,
    )


def fit_plane(
    paths: Sequence[np.ndarray],
    origin: np.ndarray,
    layout: ParamLayout,
    method: str = "pca",
    *,
    directions: Sequence[Any] | None = None,
    seed: int | None = None,
) -> Plane:
    """A plane through ``origin`` fit to one or several paths (joint PCA over all their rows);
    its ``path_2d`` is the projection of the first path."""
    method = check_choice(method, "reduction_method", METHODS)
    if method != "custom" and directions is not None:
        raise ValueError(
            f"custom_directions were given but reduction_method is {method!r}; "
            "use reduction_method='custom' to use them"
        )
    origin = np.asarray(origin, dtype=np.float64)
    with torch_threads(default_threads(layout.n_params, torch.device("cpu"))):
        return _fit(paths, origin, layout, method, directions, seed)


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
        D, explained = _pca_directions(paths, seed)
    elif method == "custom":
        D = check_directions(directions, layout.n_params)
    else:
        D = random_directions(
            layout, seed, filter_norm_weights=origin if method == "filter" else None
        )
    coords, distance = _project_rows(paths[0], origin, D)
    return Plane(origin, D, coords, distance, explained, method)


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


def _pca_directions(
    paths: Sequence[np.ndarray], seed: int | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """Top-2 principal directions (2, P) of the mean-centred rows of ``paths`` and their share of
    the variance, from the Gram matrix of the rows (read in blocks of ``block_bytes``). Missing
    components (fewer than 3 distinct points) are seeded random orthogonal directions."""
    rows = np.cumsum([0] + [p.shape[0] for p in paths])
    gram = np.zeros((rows[-1], rows[-1]))
    for _start, _stop, block in _joint_column_blocks(paths, block_bytes):
        block -= block.mean(axis=0)
        gram += _mm(block, block.T)
    total = float(np.trace(gram))
    eigvals, eigvecs = (v.numpy() for v in torch.linalg.eigh(torch.from_numpy(gram)))
    order = np.argsort(eigvals)[::-1][:2]
    values = np.clip(eigvals[order], 0.0, None)
    # Components with no variance (a path of 1 or 2 points, or a straight line) are completed by
    # seeded random directions orthogonal to the others, with 0% explained variance.
    found = int(np.sum(values > 1e-12 * max(total, 1e-300))) if total > 0 else 0
    order, values = order[:found], values[:found]
    U = eigvecs[:, order] / np.sqrt(values)
    # Sign convention: the first path starts at negative coordinates on both axes.
    first = paths[0].shape[0]
    signs = np.where(eigvecs[0, order] - eigvecs[first - 1, order] > 0, -1.0, 1.0)
    U = U * signs
    D = np.empty((found, paths[0].shape[1]))
    for start, stop, block in _joint_column_blocks(paths, block_bytes):
        block -= block.mean(axis=0)
        D[:, start:stop] = _mm(U.T, block)
    explained = np.zeros(2)
    explained[:found] = values / total if found else 0.0
    return _complete_basis(D, seed), explained


def _complete_basis(D: np.ndarray, seed: int | None) -> np.ndarray:
    """``D`` (k, P), k <= 2 orthonormal rows, completed to 2 rows with seeded random unit
    directions orthogonal to the rows before them."""
    if D.shape[0] == 2:
        return D
    generator = np.random.default_rng(seed)
    rows = list(D)
    while len(rows) < 2:
        v = generator.standard_normal(D.shape[1])
        for r in rows:
            v -= (v @ r) * r
        rows.append(v / np.linalg.norm(v))
    return np.stack(rows)


def _joint_column_blocks(
    paths: Sequence[np.ndarray], block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Column blocks of the rows of all ``paths`` stacked vertically, as float64 copies of about
    ``block_bytes`` each. Every path is cut at the same columns, whatever its number of rows."""
    if len(paths) == 1:
        yield from iter_column_blocks(paths[0], block_bytes)
        return
    n_rows = sum(p.shape[0] for p in paths)
    n_cols = paths[0].shape[1]
    width = max(1, block_bytes // (8 * n_rows))
    for start in range(0, n_cols, width):
        stop = min(n_cols, start + width)
        yield start, stop, np.vstack([read_columns(p, start, stop) for p in paths])


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` through torch, so that every product runs on torch's one thread pool (numpy's
    BLAS keeps a second pool, and the two spinning against each other stall both)."""
    return (
        torch.from_numpy(np.ascontiguousarray(a)) @ torch.from_numpy(np.ascontiguousarray(b))
    ).numpy()


def _project_rows(
    params: np.ndarray, origin: np.ndarray, D: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane coordinates (T, 2) of each row and its distance from the plane (T,)."""
    T = params.shape[0]
    inner = np.zeros((T, 2))
    sq_norm = np.zeros(T)
    for start, stop, block in iter_column_blocks(params):
        block -= origin[start:stop]
        inner += _mm(block, D[:, start:stop].T)
        sq_norm += np.einsum("ij,ij->i", block, block)
    coords = np.linalg.solve(D @ D.T, inner.T).T
    residual = sq_norm - np.einsum("ij,ij->i", coords, inner)
    return coords, np.sqrt(np.clip(residual, 0.0, None))
