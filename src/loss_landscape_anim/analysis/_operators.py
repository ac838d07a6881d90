"""Products of a :class:`~loss_landscape_anim.evaluate.CurvatureEvaluator`'s operator as
plain tensor functions, for the estimators of :mod:`loss_landscape_anim.evaluate` that take a
matvec (stochastic Lanczos quadrature, Hutchinson, Hutch++)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..evaluate import CurvatureEvaluator

__all__ = ["blocked_products", "generator", "matmat_at"]


def blocked_products(evaluator: CurvatureEvaluator, V: torch.Tensor) -> torch.Tensor:
    """``H(w_k) V[k, m]`` (K, M, P) float64 at the evaluator's current points (``start`` was
    called with K points), computed in calls of as many vectors as the memory budget allows."""
    step = max(1, evaluator.vectors_per_call() // V.shape[0])
    if V.shape[1] <= step:
        return evaluator.products.products(V)
    blocks = [
        evaluator.products.products(V[:, lo : lo + step]) for lo in range(0, V.shape[1], step)
    ]
    return torch.cat(blocks, dim=1)


def matmat_at(
    evaluator: CurvatureEvaluator, w: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``V -> rows of H(w) V^T``: products at ``w`` (P,) of rows ``V`` (M, P) float64."""
    evaluator.products.start(w.to(evaluator.device, evaluator.model.dtype)[None])

    def apply(V: torch.Tensor) -> torch.Tensor:
        return blocked_products(evaluator, V.to(evaluator.device)[None])[0]

    return apply


def generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (None: a fresh random seed)."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g
