"""Stochastic Lanczos quadrature (SLQ): the spectral density of a symmetric operator known only
through its products (Lin, Saad & Yang 2016; Ghorbani, Krishnan & Xiao 2019, *An Investigation
into Neural Net Optimization via Hessian Eigenvalue Density*; Yao et al. 2020, PyHessian).

The spectral density of a P x P symmetric matrix ``A`` with eigenpairs ``(lambda_i, u_i)`` is
``phi(t) = (1/P) sum_i delta(t - lambda_i)``. For a random unit vector ``q`` with
``E[q q^T] = I / P`` (a Rademacher vector over sqrt(P)), ``q^T f(A) q = sum_i (q . u_i)^2
f(lambda_i)`` has expectation ``(1/P) sum_i f(lambda_i) = integral f phi``: the spectral measure
of ``q`` is an unbiased estimate of ``phi``. Lanczos from ``q`` for m steps gives a tridiagonal
``T`` whose eigenvalues ``theta_j`` (the Ritz values) and squared first eigenvector components
``tau_j`` are the nodes and weights of the m-point Gauss quadrature of that measure, exact for
polynomials of degree up to 2m - 1 (Golub & Meurant, *Matrices, Moments and Quadrature*). Each
run thus gives m weighted nodes; averaging runs, and smoothing each node with a Gaussian, gives
the density estimate (:class:`~loss_landscape_anim.results.HessianDensity`).

The weights of a run sum to 1 and their mean ``sum_j tau_j theta_j = q^T A q``: with Rademacher
start vectors, ``P`` times a run's mean is one Hutchinson probe of the trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .lanczos import lanczos_tridiagonals

__all__ = ["Quadrature", "gauss_quadrature", "slq"]


@dataclass(frozen=True)
class Quadrature:
    """Per run: ``nodes`` (R, m) ascending and ``weights`` (R, m), each run's summing to 1; a
    run that stopped after ``steps[r]`` < m steps (its Krylov space exhausted) has weight 0 on
    its last m - steps[r] nodes, which repeat its largest one."""

    nodes: torch.Tensor
    weights: torch.Tensor
    steps: torch.Tensor


def gauss_quadrature(alpha: torch.Tensor, beta: torch.Tensor, steps: torch.Tensor) -> Quadrature:
    """The Gauss quadrature of each Lanczos run: the eigenvalues of its tridiagonal matrix
    (``alpha`` (R, m) on the diagonal, ``beta`` (R, m) beside it, the first ``steps[r]`` of
    each) and the squared first components of its unit eigenvectors."""
    R, m = alpha.shape
    nodes = torch.empty(R, m, dtype=torch.float64, device=alpha.device)
    weights = torch.zeros(R, m, dtype=torch.float64, device=alpha.device)
    for r in range(R):
        s = int(steps[r])
        off = beta[r, : s - 1].double()
        T = torch.diag(alpha[r, :s].double()) + torch.diag(off, 1) + torch.diag(off, -1)
        theta, S = torch.linalg.eigh(T)
        nodes[r, :s], nodes[r, s:] = theta, theta[-1]
        weights[r, :s] = S[0] ** 2
    return Quadrature(nodes, weights, steps)


def slq(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    *,
    n_steps: int,
) -> Quadrature:
    """``n_steps`` Lanczos steps from each start vector of ``start`` (R, P) (normalised here), and
    the Gauss quadrature of each run. ``matvec`` maps R vectors (R, P) float64 to their products
    (R, P) float64: the runs may belong to R operators (several points) or one. Every run takes
    every step (m = min(n_steps, P) products each), so ``matvec`` always gets all R vectors."""
    alpha, beta, steps = lanczos_tridiagonals(matvec, start, n_steps=n_steps)
    return gauss_quadrature(alpha, beta, steps)
