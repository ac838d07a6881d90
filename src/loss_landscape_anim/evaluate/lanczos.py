"""The largest and smallest Hessian eigenvalues at many points at once: a Lanczos iteration
batched across points.

Each step costs one Hessian-vector product per point, computed for every point of the chunk in
one call, so the per-call overhead and the model's kernels are shared across points. Lanczos
(1950) builds an orthonormal basis of the Krylov space of a start vector; the extreme eigenvalues
of the small tridiagonal matrix it produces (the Ritz values) converge to the extreme eigenvalues
of the Hessian first. The basis is fully reorthogonalised (classical Gram-Schmidt, a second pass
where the first removed much), so no spurious copies of converged eigenvalues appear. The
residual bound ``|beta_j s_ji|`` of a Ritz value bounds its distance to an eigenvalue of the
Hessian; a point is done when both extreme Ritz values have residuals below ``tol`` times the
larger of their magnitudes, when its Krylov space is exhausted, or after ``max_steps`` steps. SciPy's ``eigsh`` (ARPACK) does the same for one point
with restarts; batching needs its own loop.

:func:`lanczos_tridiagonals` runs a fixed number of steps and returns the tridiagonal matrices
themselves, from which stochastic Lanczos quadrature (:mod:`.slq`) reads a spectral density.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Krylov", "LanczosResult", "batched_lanczos", "lanczos_tridiagonals"]

#: Check convergence every this many steps (an eigendecomposition of K small matrices).
CHECK_EVERY = 4
#: Reorthogonalise a second time when the first pass left less than this share of the norm.
REORTHOGONALISE_AGAIN = 0.7071


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


class Krylov:
    """The state of K Lanczos iterations run side by side: the orthonormal bases of the runs
    still ``active`` (K', j + 1, P), in the order of ``active`` and grown by doubling, and the
    tridiagonal coefficients ``alpha`` (K, steps) on the diagonal and ``beta`` (K, steps) beside
    it, of every run."""

    def __init__(self, start: torch.Tensor, steps_max: int):
        K, P = start.shape
        self.steps_max = steps_max
        q = start.double() / start.double().norm(dim=1, keepdim=True)
        # The basis grows by doubling: most points converge long before steps_max.
        self.basis = torch.zeros(
            K, min(steps_max + 1, 32), P, dtype=torch.float64, device=start.device
        )
        self.basis[:, 0] = q
        self.alpha = torch.zeros(K, steps_max, dtype=torch.float64, device=start.device)
        self.beta = torch.zeros(K, steps_max, dtype=torch.float64, device=start.device)
        self.active = torch.arange(K, device=start.device)

    def step(self, matvec: Callable[[torch.Tensor], torch.Tensor], j: int) -> torch.Tensor:
        """Step ``j`` (from 0) of the active runs: one product each, the new coefficients and
        basis vector. Returns which active runs exhausted their Krylov space (a new vector of
        norm below 1e-10 times the largest ``|alpha|``)."""
        if j + 1 >= self.basis.shape[1]:
            K, size, P = self.basis.shape
            grown = self.basis.new_zeros(K, min(2 * size, self.steps_max + 1), P)
            grown[:, :size] = self.basis
            self.basis = grown
        active, basis = self.active, self.basis
        q = basis[:, j]
        w = matvec(q)
        a = torch.einsum("kp,kp->k", q, w)
        self.alpha[active, j] = a
        w = torch.addcmul(w, q, a[:, None], value=-1)  # a new array: updated in place below
        if j > 0:
            w.addcmul_(basis[:, j - 1], self.beta[active, j - 1, None], value=-1)
        Q = basis[:, : j + 1]  # a view: no copy of the basis per step
        before = w.norm(dim=1)
        w.sub_(torch.einsum("kjp,kj->kp", Q, torch.einsum("kjp,kp->kj", Q, w)))
        b = w.norm(dim=1)
        # A second pass where the first removed much (Daniel, Gragg, Kaufman & Stewart 1976):
        # twice is enough, and once is when the norm hardly changed.
        if bool((b < REORTHOGONALISE_AGAIN * before).any()):
            w.sub_(torch.einsum("kjp,kj->kp", Q, torch.einsum("kjp,kp->kj", Q, w)))
            b = w.norm(dim=1)
        self.beta[active, j] = b
        scale = self.alpha[active, : j + 1].abs().amax(dim=1).clamp_min(torch.finfo(w.dtype).tiny)
        exhausted = b <= 1e-10 * scale
        torch.div(w, torch.where(exhausted, 1.0, b)[:, None], out=basis[:, j + 1])
        return exhausted

    def finish(self, finished: torch.Tensor, keep: Callable[[torch.Tensor], None] | None) -> None:
        """Drop the active runs marked ``finished`` (a mask over the active runs), telling
        ``keep`` which of the current ones stay."""
        if not finished.any():
            return
        self.active = self.active[~finished]
        self.basis = self.basis[~finished]
        if keep is not None and self.active.numel():
            keep(torch.nonzero(~finished).squeeze(1))


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
    krylov = Krylov(start, steps_max)
    out = {
        name: torch.full((K,), torch.nan, dtype=torch.float64, device=start.device)
        for name in ("largest", "smallest", "res_largest", "res_smallest")
    }
    steps = torch.zeros(K, dtype=torch.long, device=start.device)
    converged = torch.zeros(K, dtype=torch.bool, device=start.device)
    for j in range(steps_max):
        exhausted = krylov.step(matvec, j)
        last = j + 1 == steps_max
        if not (last or exhausted.any() or (j + 1) % CHECK_EVERY == 0):
            continue
        active = krylov.active
        done = _ritz(krylov.alpha[active, : j + 1], krylov.beta[active, : j + 1], tol, exhausted)
        finished = done.pop("done") | last
        index = active[finished]
        converged[index] = done["converged"][finished]
        for name in ("largest", "smallest", "res_largest", "res_smallest"):
            out[name][index] = done[name][finished]
        steps[index] = j + 1
        krylov.finish(finished, keep)
        if krylov.active.numel() == 0:
            break
    return LanczosResult(
        out["largest"], out["smallest"], out["res_largest"], out["res_smallest"], steps, converged
    )


def lanczos_tridiagonals(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    *,
    n_steps: int,
    keep: Callable[[torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_steps`` Lanczos steps from each of K start vectors (K, P): the coefficients ``alpha``
    (K, m) and ``beta`` (K, m) of the tridiagonal matrices, m = min(n_steps, P), and the steps
    (K,) before each run's Krylov space was exhausted (m if never): only those coefficients
    count. ``matvec`` as for :func:`batched_lanczos`; with ``keep``, exhausted runs are dropped
    (as there), else every run takes every step, so that ``matvec`` always gets K vectors (an
    exhausted run's later coefficients describe an orthogonal complement it is decoupled from)."""
    K, P = start.shape
    steps_max = max(1, min(n_steps, P))
    krylov = Krylov(start, steps_max)
    steps = torch.full((K,), steps_max, dtype=torch.long, device=start.device)
    for j in range(steps_max - 1):
        exhausted = krylov.step(matvec, j)
        first = exhausted & (steps[krylov.active] == steps_max)
        steps[krylov.active[first]] = j + 1
        if keep is not None and exhausted.any():
            krylov.finish(exhausted, keep)
            if krylov.active.numel() == 0:
                return krylov.alpha, krylov.beta, steps
    krylov.step(matvec, steps_max - 1)
    return krylov.alpha, krylov.beta, steps


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
