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
    vector drawn from ``seed``, each within ``tol`` times the spectrum's scale.

    The largest come from ``eigsh``'s largest algebraic eigenvalues, whose relative tolerance is
    then relative to the scale. The smallest come from the largest of ``lambda_max I - H``, not
    from ``eigsh``'s smallest: ARPACK's tolerance is relative to each eigenvalue, which for
    eigenvalues near zero (a cluster of flat directions, features spanning decades) asks for
    an accuracy far below the spectrum's scale that it cannot reach; shifted, they converge to
    ``tol`` times ``lambda_max - lambda_min``.

    Raises :class:`~loss_landscape_anim.errors.ConvergenceError` (a ``RuntimeError``) when
    ``eigsh`` does not converge within ``max_iter`` restarts."""
    n_params = evaluator.n_params
    counter = _Counter(evaluator.operator(w))
    v0 = np.random.default_rng(seed).standard_normal(n_params)
    with evaluator.scope():
        largest, top_vectors = _largest(counter, counter, n_params, k, v0, tol, max_iter, "largest")
        shift = float(largest[0])

        def shifted(V: np.ndarray) -> np.ndarray:
            return shift * np.asarray(V) - counter(V)

        values, vectors = _largest(shifted, counter, n_params, k, v0, tol, max_iter, "smallest")
    return Eigenpairs(largest, top_vectors, shift - values, vectors, counter.count)


def _largest(
    apply: Callable[[np.ndarray], np.ndarray],
    counter: _Counter,
    n_params: int,
    k: int,
    v0: np.ndarray,
    tol: float,
    max_iter: int | None,
    end: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest algebraic eigenvalues (descending) of the operator ``apply`` and their
    vectors (k, P); ``counter`` counts the products spent, for the error."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    operator = LinearOperator((n_params, n_params), matvec=apply, matmat=apply, dtype=np.float64)
    try:
        values, vectors = eigsh(operator, k=k, which="LA", v0=v0, tol=tol, maxiter=max_iter)
    except ArpackNoConvergence as exc:
        raise ConvergenceError(
            f"eigsh did not converge to the {k} {end} eigenvalue(s) after {counter.count} "
            f"Hessian-vector products; raise max_iter (got {max_iter}) or tol (got {tol})"
        ) from exc
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order].T


class _Counter:
    """A matvec/matmat that counts the Hessian-vector products it computes."""

    def __init__(self, apply: Any):
        self.apply = apply
        self.count = 0

    def __call__(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V)
        self.count += 1 if V.ndim == 1 else V.shape[1]
        return self.apply(V)
