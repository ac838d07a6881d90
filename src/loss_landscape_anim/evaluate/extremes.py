"""The largest and smallest Hessian eigenvalue at many points: the job the curvature evaluator runs
on the scheduler, one chunk of points at a time.

Within a chunk the eigenvalues come from the dense Hessian of each point (P products per point,
then ``eigvalsh``: exact, the fastest for models with few parameters) or from a Lanczos iteration
batched across the chunk's points (:mod:`.lanczos`), all points started from one vector drawn from
``seed``, so that the same job gives the same numbers whatever its chunks and ranks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from .._validate import check_choice, check_positive_int, check_positive_number
from .hessian_products import HessianProducts
from .lanczos import batched_lanczos
from .points import Points

__all__ = [
    "CURVATURE_METHODS",
    "DEFAULT_TOL",
    "DENSE_MAX_PARAMS",
    "Extremes",
    "ExtremesSettings",
    "extremes_job",
]

logger = logging.getLogger(__name__)

#: How the extreme eigenvalues at many points are found: ``"dense"`` (the whole Hessian of each
#: point, then ``eigvalsh``), ``"lanczos"`` (batched Lanczos) or ``"auto"``.
CURVATURE_METHODS = ("auto", "dense", "lanczos")
#: With ``method="auto"``, models with at most this many parameters get dense Hessians (exact,
#: and about as fast as Lanczos there); above it batched Lanczos wins, by 2x at 100 parameters
#: and 8x at 200 (``benchmarks/bench_curvature.py`` measures the crossover).
DENSE_MAX_PARAMS = 32
#: Default relative residual at which the batched Lanczos iteration stops: the eigenvalues are
#: then within about this share of the largest one's magnitude.
DEFAULT_TOL = 1e-3
#: Lanczos takes at most this many steps per point by default (fewer when the basis of a point,
#: steps x P float64, would pass :data:`LANCZOS_BASIS_BYTES`; never fewer than
#: ``MIN_LANCZOS_STEPS``, never more than P).
MAX_LANCZOS_STEPS = 300
LANCZOS_BASIS_BYTES = 512 * 2**20
MIN_LANCZOS_STEPS = 30
#: The Lanczos bases of one chunk of points, at their most steps, may take the larger of this and
#: the memory budget. They grow by doubling as steps are taken, and points stop when they
#: converge (LeNet-5: after about 30 steps), so this much is rarely reached; products that share
#: work across points (:mod:`.hessian_conv`) gain from a dozen points per chunk.
LANCZOS_CHUNK_BYTES = 2 * 2**30
#: The columns of a job's values: largest, smallest, converged (1 or 0), products spent.
_LARGEST, _SMALLEST, _CONVERGED, _PRODUCTS = range(4)


class HessianSource(Protocol):
    """What the job needs of a :class:`~.curvature.CurvatureEvaluator`."""

    device: torch.device
    products: HessianProducts
    chunk_size: int | None
    memory_budget: int

    @property
    def n_params(self) -> int: ...

    def chunk_points(self, n_points: int, n_vectors: int = 1) -> int: ...

    def dense_hessians(self, W: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class ExtremesSettings:
    """How the extremes are found: ``method`` (resolved: ``"dense"`` or ``"lanczos"``), the
    Lanczos ``tol`` and ``max_steps`` per point, and the ``seed`` of its start vector (None:
    drawn)."""

    method: str
    tol: float
    max_steps: int
    seed: int | None

    @classmethod
    def of(
        cls,
        evaluator: HessianSource,
        *,
        method: str = "auto",
        tol: float = DEFAULT_TOL,
        max_steps: int | None = None,
        seed: int | None = None,
    ) -> ExtremesSettings:
        """The settings checked, with ``"auto"`` resolved and the step cap sized for
        ``evaluator``'s model."""
        return cls(
            resolve_method(method, evaluator.n_params),
            check_positive_number(tol, "tol"),
            _max_steps(max_steps, evaluator.n_params),
            seed,
        )

    def identity(self) -> dict[str, Any]:
        """The settings as JSON values, for a checkpoint's identity."""
        return {
            "method": self.method,
            "tol": self.tol,
            "max_steps": self.max_steps,
            "seed": self.seed,
        }

    def chunk(self, evaluator: HessianSource, n_points: int) -> int:
        """Points per chunk: the dense Hessians, or the Lanczos bases (steps x P float64 each),
        of a chunk within the evaluator's memory budget."""
        dense = self.method == "dense"
        chunk = evaluator.chunk_points(n_points, evaluator.n_params if dense else 1)
        if not dense:
            per_point = 8 * (self.max_steps + 1) * evaluator.n_params
            budget = max(evaluator.memory_budget, LANCZOS_CHUNK_BYTES)
            chunk = min(chunk, max(1, budget // per_point))
        return chunk


@dataclass(frozen=True)
class Extremes:
    """Per point: the largest and smallest Hessian eigenvalue (float64), whether Lanczos reached
    its tolerance there (dense Hessians always do), the number of Hessian-vector products spent
    in all, and the method used."""

    largest: np.ndarray
    smallest: np.ndarray
    converged: np.ndarray
    n_products: int
    method: str

    @classmethod
    def of(cls, values: np.ndarray, settings: ExtremesSettings) -> Extremes:
        """From a job's values (K, 4); logs a warning naming the points that did not converge."""
        converged = values[:, _CONVERGED] > 0.5
        unconverged = int((~converged).sum())
        if unconverged:
            logger.warning(
                "%d of %d points stopped after %d Lanczos steps before their extreme eigenvalues "
                "reached tol=%g; they are marked as not converged (raise max_iter or tol)",
                unconverged,
                len(values),
                settings.max_steps,
                settings.tol,
            )
        return cls(
            values[:, _LARGEST].copy(),
            values[:, _SMALLEST].copy(),
            converged,
            int(values[:, _PRODUCTS].sum()),
            settings.method,
        )

    @classmethod
    def empty(cls, method: str) -> Extremes:
        return cls(np.empty(0), np.empty(0), np.empty(0, dtype=bool), 0, method)


def extremes_job(evaluator: HessianSource, points: Points, settings: ExtremesSettings) -> Any:
    """The scheduler's job: the values (k, 4) of the chunk ``sl`` of ``points``."""
    start = _start_vector(evaluator, settings.seed)

    def job(sl: slice) -> torch.Tensor:
        W = points.weights(sl)
        k = W.shape[0]
        if settings.method == "dense":
            values = torch.linalg.eigvalsh(evaluator.dense_hessians(W))
            hi, lo = values[:, -1], values[:, 0]
            converged = torch.ones(k, dtype=torch.float64, device=hi.device)
            spent = torch.full_like(converged, float(evaluator.n_params))
        else:
            products = evaluator.products
            products.start(W)
            result = batched_lanczos(
                lambda q: products.products(q[:, None])[:, 0],
                products.keep,
                start.expand(k, -1),
                max_steps=settings.max_steps,
                tol=settings.tol,
            )
            hi, lo = result.largest, result.smallest
            converged, spent = result.converged.double(), result.steps.double()
        return torch.stack([hi, lo, converged.to(hi.device), spent.to(hi.device)], dim=1)

    return job


def resolve_method(method: str, n_params: int) -> str:
    """``method`` checked, with ``"auto"`` resolved for a model of ``n_params`` parameters."""
    method = check_choice(method, "method", CURVATURE_METHODS)
    if method == "auto":
        return "dense" if n_params <= DENSE_MAX_PARAMS else "lanczos"
    return method


def _max_steps(max_steps: int | None, n_params: int) -> int:
    if max_steps is not None:
        return min(check_positive_int(max_steps, "max_iter"), n_params)
    by_memory = max(MIN_LANCZOS_STEPS, LANCZOS_BASIS_BYTES // (8 * n_params))
    return min(n_params, MAX_LANCZOS_STEPS, by_memory)


def _start_vector(evaluator: HessianSource, seed: int | None) -> torch.Tensor:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    v = torch.randn(evaluator.n_params, generator=generator, dtype=torch.float64)
    return v.to(evaluator.device)
