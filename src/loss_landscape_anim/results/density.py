"""``HessianDensity``: the eigenvalue spectral density of the loss's curvature at one weight
vector, as the nodes and weights of stochastic Lanczos quadrature."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._base import Result
from ._checks import array_field, check_finite, optional_number, optional_str

__all__ = ["CURVATURE_OPERATORS", "HessianDensity", "smoothed_density"]

#: What the curvature is of: the Hessian, the generalised Gauss-Newton matrix, the empirical
#: Fisher.
CURVATURE_OPERATORS = ("hessian", "ggn", "fisher")
#: Each run's weights sum to 1 within this (they are squares of a unit vector's components).
_WEIGHT_SUM_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class HessianDensity(Result):
    """The spectral density ``phi(t) = (1/P) sum_i delta(t - lambda_i)`` of the P eigenvalues of
    the Hessian (or ``operator``), estimated by stochastic Lanczos quadrature (Ghorbani, Krishnan
    & Xiao 2019): each of R runs gives m eigenvalue estimates (nodes) with weights summing to 1,
    and the estimate is their average, each node smoothed by a Gaussian (:meth:`density`).

    Attributes:
        nodes: (R, m) each run's nodes (Ritz values), ascending, in loss units per squared weight
            unit.
        weights: (R, m) their weights (>= 0), each row summing to 1.
        n_params: P, the size of the operator.
        operator: ``"hessian"``, ``"ggn"`` or ``"fisher"``.
        n_products: the operator-vector products spent in all.
        n_examples: how many examples the loss is the mean over (None: unknown).
        precision: the dtype the products were computed in (None: unknown).
    """

    nodes: np.ndarray
    weights: np.ndarray
    n_params: int
    operator: str = "hessian"
    n_products: int = 0
    n_examples: int | None = None
    precision: str | None = None

    ARRAYS = ("nodes", "weights")
    REQUIRED = ARRAYS
    REQUIRED_META = ("n_params",)

    def __post_init__(self) -> None:
        nodes = array_field(self.nodes, "nodes", (None, None))
        weights = array_field(self.weights, "weights", nodes.shape)
        check_finite(nodes, "nodes")
        check_finite(weights, "weights")
        if nodes.shape[0] == 0 or nodes.shape[1] == 0:
            raise ValueError(f"Expected nodes of at least one run and step but got {nodes.shape}")
        if (weights < 0).any():
            raise ValueError("Expected weights to be >= 0 but some are negative")
        sums = weights.sum(axis=1)
        if np.abs(sums - 1).max() > _WEIGHT_SUM_TOL:
            raise ValueError(f"Expected each run's weights to sum to 1 but got sums {sums}")
        n_params = optional_number(self.n_params, "n_params", low=1, integer=True)
        if n_params is None:
            raise TypeError("Expected n_params to be a positive integer but got None")
        if self.operator not in CURVATURE_OPERATORS:
            raise ValueError(
                f"Expected operator to be one of {CURVATURE_OPERATORS} but got {self.operator!r}"
            )
        optional_number(self.n_products, "n_products", low=0, integer=True)
        optional_number(self.n_examples, "n_examples", low=1, integer=True)
        optional_str(self.precision, "precision")
        object.__setattr__(self, "nodes", nodes.astype(np.float64, copy=False))
        object.__setattr__(self, "weights", weights.astype(np.float64, copy=False))

    @property
    def n_runs(self) -> int:
        return int(self.nodes.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.nodes.shape[1])

    @property
    def run_means(self) -> np.ndarray:
        """(R,) each run's mean eigenvalue ``sum_j w_j theta_j``: ``q^T H q`` for its unit start
        vector ``q``."""
        return (self.weights * self.nodes).sum(axis=1)

    @property
    def mean(self) -> float:
        """The mean eigenvalue (the trace over P), averaged over the runs."""
        return float(self.run_means.mean())

    @property
    def trace(self) -> float:
        """``P`` times :attr:`mean`: Hutchinson's estimate of the trace with one probe per run
        (the runs start from Rademacher vectors)."""
        return self.n_params * self.mean

    @property
    def trace_stderr(self) -> float:
        """The standard error of :attr:`trace` (NaN with one run)."""
        if self.n_runs < 2:
            return math.nan
        return float(self.n_params * self.run_means.std(ddof=1) / math.sqrt(self.n_runs))

    @property
    def support(self) -> tuple[float, float]:
        """The smallest and the largest node of positive weight."""
        used = self.nodes[self.weights > 0]
        return float(used.min()), float(used.max())

    def default_sigma(self) -> float:
        """A smoothing width that resolves the spectrum's shape: 1% of its extent (or of the
        largest magnitude when every node is the same)."""
        low, high = self.support
        extent = high - low or max(abs(low), abs(high)) or 1.0
        return 0.01 * extent

    def density(self, grid: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """The smoothed density at the eigenvalues ``grid`` (G,): ``(1/R) sum_r sum_j w_rj
        N(t; theta_rj, sigma^2)``, in probability per eigenvalue unit; it integrates to 1 over
        the real line. ``sigma`` defaults to :meth:`default_sigma`."""
        return smoothed_density(
            self.nodes, self.weights, grid, self.default_sigma() if sigma is None else sigma
        )


def smoothed_density(
    nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float
) -> np.ndarray:
    """``(1/R) sum_r sum_j weights[r, j] N(grid; nodes[r, j], sigma^2)`` (G,) for nodes and
    weights (R, m) and a grid (G,); ``sigma`` > 0."""
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"Expected sigma to be a finite number > 0 but got {sigma!r}")
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1:
        raise ValueError(f"Expected grid of shape (G,) but got {grid.shape}")
    flat_nodes, flat_weights = nodes.reshape(-1), weights.reshape(-1) / nodes.shape[0]
    used = flat_weights > 0
    flat_nodes, flat_weights = flat_nodes[used], flat_weights[used]
    out = np.zeros(grid.shape[0])
    step = max(1, 2**22 // max(flat_nodes.size, 1))  # bounded temporaries
    for lo in range(0, grid.shape[0], step):
        z = (grid[lo : lo + step, None] - flat_nodes[None]) / sigma
        out[lo : lo + step] = np.exp(-0.5 * z**2) @ flat_weights
    return out / (sigma * math.sqrt(2 * math.pi))
