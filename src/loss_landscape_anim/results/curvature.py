"""``CurvatureGrid`` and ``PathCurvature``: the extreme Hessian eigenvalues over a plane, and along
a recorded path."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import load_npz, save_npz
from ..errors import IncompatibleFileError
from ._checks import array_field
from .density import HessianDensity
from .plane import Plane

__all__ = ["CurvatureGrid", "PathCurvature", "eigenvalue_ratio"]


def eigenvalue_ratio(lambda_max: np.ndarray, lambda_min: np.ndarray) -> np.ndarray:
    """``|lambda_min / lambda_max|``, NaN where ``lambda_max`` is zero or either is not finite."""
    lambda_max = np.asarray(lambda_max, dtype=np.float64)
    lambda_min = np.asarray(lambda_min, dtype=np.float64)
    ok = np.isfinite(lambda_max) & np.isfinite(lambda_min) & (lambda_max != 0)
    out = np.full(np.broadcast(lambda_max, lambda_min).shape, np.nan)
    np.divide(np.abs(lambda_min), np.abs(lambda_max), out=out, where=ok)
    return out


@dataclass(frozen=True, eq=False)
class CurvatureGrid:
    """The largest and smallest Hessian eigenvalue on a regular grid of plane coordinates.

    Li et al. (2018, *Visualizing the Loss Landscape of Neural Nets*, end of sec. 6) map
    ``|lambda_min / lambda_max|``: near 0 where the surface is locally convex (negative
    curvature, if any, is tiny next to the positive curvature), large where strong negative
    curvature exists. The eigenvalues are those of the full Hessian in weight space, not of the
    2D slice: a slice can look convex where the network is not.

    Attributes:
        xs: (R,) coordinates along direction 0.
        ys: (R,) coordinates along direction 1.
        lambda_max: (R, R) the largest eigenvalue; ``[i, j]`` is at ``(xs[j], ys[i])``, as in
            :attr:`LossGrid.loss`.
        lambda_min: (R, R) the smallest eigenvalue.
        margin: the room left around the path(s), as a share of their extent (None: unknown).
        n_examples: how many examples each loss is the mean over (None: unknown).
        precision: the dtype the products were computed in (None: unknown).
        plane_fingerprint: :meth:`Plane.fingerprint` of the plane (None: unknown).
        method: ``"dense"`` or ``"lanczos"`` (None: unknown).
        n_products: Hessian-vector products used in all.
    """

    xs: np.ndarray
    ys: np.ndarray
    lambda_max: np.ndarray
    lambda_min: np.ndarray
    margin: float | None = None
    n_examples: int | None = None
    precision: str | None = None
    plane_fingerprint: str | None = None
    method: str | None = None
    n_products: int = 0

    @property
    def ratio(self) -> np.ndarray:
        """(R, R) ``|lambda_min / lambda_max|`` (NaN where undefined). Where ``lambda_min`` is
        positive too, the point is a local minimum of a convex piece whatever this says."""
        return eigenvalue_ratio(self.lambda_max, self.lambda_min)

    @property
    def resolution(self) -> int:
        return int(self.xs.shape[0])

    def check_plane(self, plane: Plane) -> None:
        """Raise :class:`IncompatibleFileError` unless this grid was computed on ``plane``."""
        if self.plane_fingerprint is not None and self.plane_fingerprint != plane.fingerprint():
            raise IncompatibleFileError(
                f"This curvature grid was computed on another plane (fingerprint "
                f"{self.plane_fingerprint}, this plane's is {plane.fingerprint()})"
            )

    def save(self, path: str | os.PathLike) -> Path:
        arrays = {
            "xs": self.xs,
            "ys": self.ys,
            "lambda_max": self.lambda_max,
            "lambda_min": self.lambda_min,
        }
        meta = {name: getattr(self, name) for name in _GRID_META}
        return save_npz(path, "CurvatureGrid", arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CurvatureGrid:
        arrays, meta = load_npz(path, "CurvatureGrid")
        values: dict[str, Any] = {name: meta.get(name) for name in _GRID_META}
        values["n_products"] = int(values["n_products"] or 0)
        return cls(arrays["xs"], arrays["ys"], arrays["lambda_max"], arrays["lambda_min"], **values)


_GRID_META = ("margin", "n_examples", "precision", "plane_fingerprint", "method", "n_products")


@dataclass(frozen=True, eq=False)
class PathCurvature:
    """The largest and smallest Hessian eigenvalue at recorded rows of a path.

    For full-batch gradient descent with step size ``eta`` the largest eigenvalue tends to rise
    to ``2 / eta`` and hover there (the "edge of stability", Cohen et al. 2021), the value above
    which gradient descent on a quadratic diverges.

    Attributes:
        rows: (T',) the trajectory rows evaluated, ascending; the first and last always.
        steps: (T',) their optimizer steps.
        lambda_max: (T',) the largest eigenvalue at each.
        lambda_min: (T',) the smallest.
        optimizer: the trajectory's optimizer name.
        learning_rate: its learning rate.
        n_examples: how many examples the loss is the mean over (None: unknown).
        precision: the dtype the products were computed in (None: unknown).
        density_nodes: (T', R, m) the spectral density at each row as the nodes of R runs of
            stochastic Lanczos quadrature (see :class:`HessianDensity`), or None.
        density_weights: (T', R, m) their weights, or None.
        n_params: P, the size of the Hessian (None: unknown; needed for densities).
    """

    rows: np.ndarray
    steps: np.ndarray
    lambda_max: np.ndarray
    lambda_min: np.ndarray
    optimizer: str = ""
    learning_rate: float = math.nan
    n_examples: int | None = None
    precision: str | None = None
    density_nodes: np.ndarray | None = None
    density_weights: np.ndarray | None = None
    n_params: int | None = None

    def __post_init__(self) -> None:
        if (self.density_nodes is None) != (self.density_weights is None):
            raise ValueError("Expected both density_nodes and density_weights, or neither")
        if self.density_nodes is None:
            return
        n = len(self)
        nodes = array_field(self.density_nodes, "density_nodes", (n, None, None))
        array_field(self.density_weights, "density_weights", nodes.shape)
        if self.n_params is None:
            raise ValueError("Expected n_params with densities but got None")

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def has_density(self) -> bool:
        return self.density_nodes is not None

    def density(self, i: int) -> HessianDensity:
        """The spectral density at the i-th evaluated row (``ValueError`` without densities)."""
        if self.density_nodes is None or self.density_weights is None or self.n_params is None:
            raise ValueError(
                "This PathCurvature has no densities: compute it with "
                "curvature_along_path(..., density=True)"
            )
        return HessianDensity(
            self.density_nodes[i],
            self.density_weights[i],
            self.n_params,
            n_examples=self.n_examples,
            precision=self.precision,
        )

    def densities(self, grid: np.ndarray, sigma: float) -> np.ndarray:
        """(T', G) the smoothed density of each row at the eigenvalues ``grid`` (G,), each
        integrating to 1 (see :meth:`HessianDensity.density`)."""
        return np.stack([self.density(i).density(grid, sigma) for i in range(len(self))])

    @property
    def stability_threshold(self) -> float | None:
        """``2 / learning_rate`` for plain SGD (the edge of stability of gradient descent), else
        None."""
        lr = self.learning_rate
        if self.optimizer.lower() != "sgd" or not math.isfinite(lr) or lr <= 0:
            return None
        return 2.0 / lr

    def save(self, path: str | os.PathLike) -> Path:
        arrays = {
            "rows": self.rows,
            "steps": self.steps,
            "lambda_max": self.lambda_max,
            "lambda_min": self.lambda_min,
            "density_nodes": self.density_nodes,
            "density_weights": self.density_weights,
        }
        meta = {name: getattr(self, name) for name in _PATH_META}
        return save_npz(path, "PathCurvature", arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PathCurvature:
        arrays, meta = load_npz(path, "PathCurvature")
        values = {name: meta.get(name) for name in _PATH_META}
        return cls(
            arrays["rows"],
            arrays["steps"],
            arrays["lambda_max"],
            arrays["lambda_min"],
            optimizer=values["optimizer"] or "",
            learning_rate=float(
                math.nan if values["learning_rate"] is None else values["learning_rate"]
            ),
            n_examples=values["n_examples"],
            precision=values["precision"],
            density_nodes=arrays.get("density_nodes"),
            density_weights=arrays.get("density_weights"),
            n_params=values["n_params"],
        )


_PATH_META = ("optimizer", "learning_rate", "n_examples", "precision", "n_params")
