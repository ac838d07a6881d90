"""Randomised estimates of the trace of a symmetric operator known only through its products:
Hutchinson's and Hutch++, each with a standard error.

Both take ``matmat``: rows ``V`` (M, P) float64 -> rows ``(A V^T)^T`` (M, P) float64, and spend
exactly ``n_products`` products.

- **Hutchinson** (1989): the mean of ``v^T A v`` over Rademacher vectors ``v`` (entries +1 or
  -1), unbiased, with variance ``2 (||A||_F^2 - sum_i A_ii^2) / n``.
- **Hutch++** (Meyer, Musco, Musco & Woodruff 2021, *Hutch++: Optimal Stochastic Trace
  Estimation*): a third of the products find the range ``Q`` of ``A S`` for random ``S``; the
  trace of ``Q^T A Q`` is taken exactly (a third more products) and Hutchinson's estimator, with
  the last third, covers only what is left, ``(I - QQ^T) A (I - QQ^T)``. When a few eigenvalues
  dominate (as in the Hessians of trained networks), the remainder's Frobenius norm, hence the
  error, is far smaller than Hutchinson's at the same number of products.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["TRACE_METHODS", "TraceEstimate", "hutch_plus_plus", "hutchinson", "rademacher"]

#: The trace estimators by name.
TRACE_METHODS = ("hutchinson", "hutch++")

Matmat = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TraceEstimate:
    """An estimate of a trace, its standard error and the products spent."""

    estimate: float
    stderr: float
    n_products: int


def rademacher(
    n: int, n_params: int, generator: torch.Generator, device: torch.device | None = None
) -> torch.Tensor:
    """``n`` random vectors (n, P) float64 with entries +1 or -1, drawn on the CPU from
    ``generator`` (the same numbers on every device)."""
    signs = torch.randint(0, 2, (n, n_params), generator=generator)
    return (signs.to(torch.float64) * 2 - 1).to(device)


def hutchinson(
    matmat: Matmat,
    n_params: int,
    n_products: int,
    generator: torch.Generator,
    device: torch.device | None = None,
) -> TraceEstimate:
    """Hutchinson's estimate from ``n_products`` (>= 2) Rademacher probes."""
    probes = rademacher(n_products, n_params, generator, device)
    forms = (matmat(probes) * probes).sum(dim=1)
    return TraceEstimate(float(forms.mean()), _stderr(forms), n_products)


def hutch_plus_plus(
    matmat: Matmat,
    n_params: int,
    n_products: int,
    generator: torch.Generator,
    device: torch.device | None = None,
) -> TraceEstimate:
    """The Hutch++ estimate from ``n_products`` (>= 4) products: ``k = n_products // 3`` sketch
    vectors, at most ``k`` for the exact part, and the rest (at least 2) as Hutchinson probes of
    the deflated operator. The standard error is that of the deflated part (the exact part has
    none)."""
    k = n_products // 3
    sketch = rademacher(k, n_params, generator, device)
    # Q: an orthonormal basis (P, r) of the range of A S, r <= k; Householder QR is stable.
    Q, R = torch.linalg.qr(matmat(sketch).T)
    keep = R.diagonal().abs() > R.diagonal().abs().amax() * n_params * torch.finfo(R.dtype).eps
    Q = Q[:, keep]
    exact = float((matmat(Q.T.contiguous()) * Q.T).sum()) if Q.shape[1] else 0.0
    n_probes = n_products - k - Q.shape[1]
    probes = rademacher(n_probes, n_params, generator, device)
    deflated = probes - (probes @ Q) @ Q.T
    forms = (matmat(deflated) * deflated).sum(dim=1)
    return TraceEstimate(exact + float(forms.mean()), _stderr(forms), n_products)


def _stderr(values: torch.Tensor) -> float:
    """The standard error of the mean of ``values`` (sample standard deviation / sqrt(n))."""
    n = values.shape[0]
    return float(values.std(correction=1) / n**0.5) if n > 1 else float("nan")
