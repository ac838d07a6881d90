"""The extreme eigenpairs of the Hessian at one weight vector, by SciPy's ``eigsh`` (ARPACK's
implicitly restarted Lanczos) on a ``LinearOperator`` of Hessian-vector products. SciPy is
imported when first needed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import ConvergenceError

__all__ = ["Eigenpairs", "eigenpairs"]


@dataclass(frozen=True)
class Eigenpairs:
    """The ``k`` largest eigenvalues (descending) and ``k`` smallest (ascending) with their unit
    eigenvectors (k, P), and the Hessian-vector products spent."""

    largest: np.ndarray
    largest_vectors: np.ndarray
    smallest: np.ndarray
    smallest_vectors: np.ndarray
    n_products: int


class HessianSource(Protocol):
    """What :func:`eigenpairs` needs of a :class:`~.curvature.CurvatureEvaluator`."""

    @property
    def n_params(self) -> int: ...

    def operator(self, w: Any) -> Callable[[np.ndarray], np.ndarray]: ...

    def scope(self) -> contextlib.AbstractContextManager[None]: ...


def eigenpairs(
    evaluator: HessianSource,
    w: Any,
    *,
    k: int,
    tol: float,
    max_iter: int | None,
    seed: int | None,
) -> Eigenpairs:
    """The ``k`` largest and smallest eigenpairs of the Hessian at ``w`` (P,), from one start
    vector drawn from ``seed``.

    Raises :class:`~loss_landscape_anim.errors.ConvergenceError` (a ``RuntimeError``) when ``eigsh`` does not converge within ``max_iter`` restarts."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    n_params = evaluator.n_params
    counter = _Counter(evaluator.operator(w))
    operator = LinearOperator(
        (n_params, n_params), matvec=counter, matmat=counter, dtype=np.float64
    )
    v0 = np.random.default_rng(seed).standard_normal(n_params)
    ends: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with evaluator.scope():
        for which in ("LA", "SA"):
            try:
                values, vectors = eigsh(
                    operator, k=k, which=which, v0=v0, tol=tol, maxiter=max_iter
                )
            except ArpackNoConvergence as exc:
                end = "largest" if which == "LA" else "smallest"
                raise ConvergenceError(
                    f"eigsh did not converge to the {k} {end} eigenvalue(s) after "
                    f"{counter.count} Hessian-vector products; raise max_iter (got {max_iter}) or "
                    f"tol (got {tol})"
                ) from exc
            order = np.argsort(values)[::-1] if which == "LA" else np.argsort(values)
            ends[which] = values[order], vectors[:, order].T
    return Eigenpairs(*ends["LA"], *ends["SA"], counter.count)


class _Counter:
    """A matvec/matmat that counts the Hessian-vector products it computes."""

    def __init__(self, apply: Any):
        self.apply = apply
        self.count = 0

    def __call__(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V)
        self.count += 1 if V.ndim == 1 else V.shape[1]
        return self.apply(V)
