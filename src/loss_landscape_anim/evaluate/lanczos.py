"""The largest and smallest Hessian eigenvalues at many points at once: a Lanczos iteration
batched across points.

Each step costs one Hessian-vector product per point, computed for every point of the chunk in
one call, so the per-call overhead and the model's kernels are shared across points. Lanczos
(1950) builds an orthonormal basis of the Krylov space of a start vector; the extreme eigenvalues
of the small tridiagonal matrix it produces (the Ritz values) converge to the extreme eigenvalues
of the Hessian first. The basis is fully reorthogonalised (twice, Gram-Schmidt), so no spurious
copies of converged eigenvalues appear. The residual bound ``|beta_j s_ji|`` of a Ritz value
bounds its distance to an eigenvalue of the Hessian; a point is done when both extreme Ritz
values have residuals below ``tol`` times the larger of their magnitudes, when its Krylov space is
exhausted, or after ``max_steps`` steps. SciPy's ``eigsh`` (ARPACK) does the same for one point
with restarts; batching needs its own loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["LanczosResult", "batched_lanczos"]

#: Check convergence every this many steps (an eigendecomposition of K small matrices).
CHECK_EVERY = 4


@dataclass(frozen=True)
class LanczosResult:
    """Per point: the largest and smallest Ritz values, their residual bounds, the steps taken,
    and whether both reached the tolerance (or the Krylov space was exhausted)."""

    largest: torch.Tensor
    smallest: torch.Tensor
    residual_largest: torch.Tensor
    residual_smallest: torch.Tensor
    steps: torch.Tensor
    converged: torch.Tensor


def batched_lanczos(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    keep: Callable[[torch.Tensor], None],
    start: torch.Tensor,
    *,
    max_steps: int,
    tol: float,
) -> LanczosResult:
    """Extreme eigenvalues of K symmetric operators of size P.

    Args:
        matvec: ``H_k q_k`` (K', P) float64 for vectors (K', P), one per current point.
        keep: narrows the current points to the given indices (K',) of the current ones; called
            as points finish, so that later products skip them.
        start: (K, P) start vectors (normalised here).
        max_steps: at most this many products per point (capped at P).
        tol: relative residual at which an extreme Ritz value counts as converged.
    """
    K, P = start.shape
    steps_max = max(1, min(max_steps, P))
    q = start.double() / start.double().norm(dim=1, keepdim=True)
    # The basis grows by doubling: most points converge long before steps_max.
    basis = torch.zeros(K, min(steps_max + 1, 32), P, dtype=torch.float64, device=start.device)
    basis[:, 0] = q
    alpha = torch.zeros(K, steps_max, dtype=torch.float64, device=start.device)
    beta = torch.zeros(K, steps_max, dtype=torch.float64, device=start.device)
    out = {
        name: torch.full((K,), torch.nan, dtype=torch.float64, device=start.device)
        for name in ("largest", "smallest", "res_largest", "res_smallest")
    }
    steps = torch.zeros(K, dtype=torch.long, device=start.device)
    converged = torch.zeros(K, dtype=torch.bool, device=start.device)
    active = torch.arange(K, device=start.device)
    for j in range(steps_max):
        if j + 1 >= basis.shape[1]:
            size = min(2 * basis.shape[1], steps_max + 1)
            grown = basis.new_zeros(K, size, P)
            grown[:, : basis.shape[1]] = basis
            basis = grown
        w = matvec(basis[active, j])
        a = (basis[active, j] * w).sum(dim=1)
        alpha[active, j] = a
        w = w - a[:, None] * basis[active, j]
        if j > 0:
            w = w - beta[active, j - 1, None] * basis[active, j - 1]
        Q = basis[active, : j + 1]
        for _ in range(2):
            w = w - torch.einsum("kjp,kj->kp", Q, torch.einsum("kjp,kp->kj", Q, w))
        b = w.norm(dim=1)
        beta[active, j] = b
        scale = alpha[active, : j + 1].abs().amax(dim=1).clamp_min(torch.finfo(w.dtype).tiny)
        exhausted = b <= 1e-10 * scale
        basis[active, j + 1] = w / torch.where(exhausted, 1.0, b)[:, None]
        last = j + 1 == steps_max
        if not (last or exhausted.any() or (j + 1) % CHECK_EVERY == 0):
            continue
        done = _ritz(alpha[active, : j + 1], beta[active, : j + 1], tol, exhausted)
        finished = done.pop("done") | last
        index = active[finished]
        converged[index] = done["converged"][finished]
        for name in ("largest", "smallest", "res_largest", "res_smallest"):
            out[name][index] = done[name][finished]
        steps[index] = j + 1
        active = active[~finished]
        if active.numel() == 0:
            break
        keep(torch.nonzero(~finished).squeeze(1))
    return LanczosResult(
        out["largest"], out["smallest"], out["res_largest"], out["res_smallest"], steps, converged
    )


def _ritz(
    alpha: torch.Tensor, beta: torch.Tensor, tol: float, exhausted: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Extreme Ritz values of the tridiagonal matrices (alpha (K, j) on the diagonal, beta[:, :-1]
    beside it), their residual bounds ``beta_j |s_j|``, and which points are done (converged:
    both residuals within ``tol``, or the Krylov space ``exhausted``)."""
    j = alpha.shape[1]
    T = torch.diag_embed(alpha)
    if j > 1:
        off = torch.diag_embed(beta[:, : j - 1], offset=1)
        T = T + off + off.transpose(1, 2)
    theta, S = torch.linalg.eigh(T)
    res = beta[:, j - 1, None].abs() * S[:, j - 1, :].abs()
    largest, smallest = theta[:, -1], theta[:, 0]
    res_largest, res_smallest = res[:, -1], res[:, 0]
    scale = torch.maximum(largest.abs(), smallest.abs()).clamp_min(torch.finfo(theta.dtype).tiny)
    converged = (res_largest <= tol * scale) & (res_smallest <= tol * scale) | exhausted
    return {
        "largest": largest,
        "smallest": smallest,
        "res_largest": res_largest,
        "res_smallest": res_smallest,
        "converged": converged,
        "done": converged,
    }
