"""``CurvatureGrid`` and ``PathCurvature``: the extreme Hessian eigenvalues over a plane, and along
a recorded path."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import IncompatibleFileError
from ._base import Result
from ._checks import (
    array_field,
    check_finite,
    check_increasing,
    optional_number,
    optional_str,
)
from .density import HessianDensity
from .plane import Plane

__all__ = ["CurvatureGrid", "PathCurvature", "eigenvalue_ratio", "shown"]


def eigenvalue_ratio(lambda_max: np.ndarray, lambda_min: np.ndarray) -> np.ndarray:
    """``|lambda_min / lambda_max|``, NaN where ``lambda_max`` is zero or either is not finite."""
    lambda_max = np.asarray(lambda_max, dtype=np.float64)
    lambda_min = np.asarray(lambda_min, dtype=np.float64)
    ok = np.isfinite(lambda_max) & np.isfinite(lambda_min) & (lambda_max != 0)
    out = np.full(np.broadcast(lambda_max, lambda_min).shape, np.nan)
    np.divide(np.abs(lambda_min), np.abs(lambda_max), out=out, where=ok)
    return out


@dataclass(frozen=True, eq=False)
class CurvatureGrid(Result):
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
        converged: (R, R) bool, False where the eigensolver stopped at its iteration limit
            before its tolerance: the values there are estimates, and the map leaves them blank
            (None: unknown, files of version 0.2).
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
    converged: np.ndarray | None = None

    ARRAYS = ("xs", "ys", "lambda_max", "lambda_min", "converged")
    REQUIRED = ("xs", "ys", "lambda_max", "lambda_min")

    def __post_init__(self) -> None:
        xs = array_field(self.xs, "xs", (None,))
        ys = array_field(self.ys, "ys", (None,))
        for name, axis in (("xs", xs), ("ys", ys)):
            check_finite(axis, name)
            check_increasing(axis, name)
        shape = (ys.shape[0], xs.shape[0])
        for name, value in (("xs", xs), ("ys", ys)):
            object.__setattr__(self, name, value)
        for name in ("lambda_max", "lambda_min"):
            values = array_field(getattr(self, name), name, shape)
            check_finite(values, name, allow_nan=True)
            object.__setattr__(self, name, values)
        _check_converged(self, shape)
        _check_provenance(self)
        object.__setattr__(self, "margin", optional_number(self.margin, "margin", low=0))
        optional_str(self.plane_fingerprint, "plane_fingerprint")
        optional_str(self.method, "method")
        n_products = optional_number(self.n_products, "n_products", low=0, integer=True)
        object.__setattr__(self, "n_products", n_products or 0)

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


@dataclass(frozen=True, eq=False)
class PathCurvature(Result):
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
        converged: (T',) bool, False where the eigensolver stopped at its iteration limit
            before its tolerance (the panel leaves those rows out; None: unknown).
        trajectory_fingerprint: :meth:`Trajectory.fingerprint` of the path (None: unknown).
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
    converged: np.ndarray | None = None
    trajectory_fingerprint: str | None = None
    density_nodes: np.ndarray | None = None
    density_weights: np.ndarray | None = None
    n_params: int | None = None

    ARRAYS = (
        "rows",
        "steps",
        "lambda_max",
        "lambda_min",
        "converged",
        "density_nodes",
        "density_weights",
    )
    REQUIRED = ("rows", "steps", "lambda_max", "lambda_min")

    def __post_init__(self) -> None:
        rows = array_field(self.rows, "rows", (None,), kind="int")
        check_increasing(rows, "rows")
        n = rows.shape[0]
        steps = array_field(self.steps, "steps", (n,), kind="int")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "steps", steps)
        for name in ("lambda_max", "lambda_min"):
            values = array_field(getattr(self, name), name, (n,))
            check_finite(values, name, allow_nan=True)
            object.__setattr__(self, name, values)
        if not isinstance(self.optimizer, str):
            raise TypeError(f"Expected optimizer to be a string but got {self.optimizer!r}")
        rate = math.nan if self.learning_rate is None else self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise TypeError(f"Expected learning_rate to be a number but got {rate!r}")
        object.__setattr__(self, "learning_rate", float(rate))
        _check_converged(self, (n,))
        _check_provenance(self)
        optional_str(self.trajectory_fingerprint, "trajectory_fingerprint")
        self._check_density(n)

    def _check_density(self, n: int) -> None:
        """Densities: both arrays or neither, one (R, m) set per row, with ``n_params``."""
        if (self.density_nodes is None) != (self.density_weights is None):
            raise ValueError("Expected both density_nodes and density_weights, or neither")
        n_params = optional_number(self.n_params, "n_params", low=1, integer=True)
        object.__setattr__(self, "n_params", n_params)
        if self.density_nodes is None:
            return
        nodes = array_field(self.density_nodes, "density_nodes", (n, None, None))
        weights = array_field(self.density_weights, "density_weights", nodes.shape)
        object.__setattr__(self, "density_nodes", nodes)
        object.__setattr__(self, "density_weights", weights)
        if n_params is None:
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


def _check_converged(result: CurvatureGrid | PathCurvature, shape: tuple[int, ...]) -> None:
    if result.converged is not None:
        converged = array_field(result.converged, "converged", shape, kind="bool")
        object.__setattr__(result, "converged", converged)


def shown(values: np.ndarray, converged: np.ndarray | None) -> np.ndarray:
    """``values`` with NaN where the eigensolver did not converge: what figures draw."""
    values = np.asarray(values, dtype=np.float64)
    return values if converged is None else np.where(converged, values, np.nan)


def _check_provenance(result: CurvatureGrid | PathCurvature) -> None:
    """``n_examples`` (None or a positive integer) and ``precision`` (None or a string)."""
    n_examples = optional_number(result.n_examples, "n_examples", low=1, integer=True)
    object.__setattr__(result, "n_examples", n_examples)
    optional_str(result.precision, "precision")
