"""``hessian_density``: the eigenvalue spectral density of the Hessian (or of the Gauss-Newton
matrix, or the empirical Fisher) at one weight vector, by stochastic Lanczos quadrature (Ghorbani,
Krishnan & Xiao 2019, *An Investigation into Neural Net Optimization via Hessian Eigenvalue
Density*; see :mod:`loss_landscape_anim.evaluate.slq`), and the densities at many weight vectors
at once (the path's, for the spectrum along training)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import progress_bar
from .._validate import check_positive_int
from ..evaluate import CurvatureEvaluator
from ..evaluate.extremes import LANCZOS_BASIS_BYTES
from ..evaluate.schedule import chunk_slices
from ..evaluate.slq import slq
from ..evaluate.trace_estimators import rademacher
from ..results import HessianDensity
from ._evaluators import curvature_evaluator
from ._operators import blocked_products, generator
from .curvature import flat_params

__all__ = [
    "DEFAULT_DENSITY_RUNS",
    "DEFAULT_DENSITY_STEPS",
    "Densities",
    "hessian_density",
    "spectral_densities",
]

#: Default number of independent Lanczos runs (random start vectors) of a density.
DEFAULT_DENSITY_RUNS = 10
#: Default Lanczos steps per run: the nodes of each run (Ghorbani et al. use 90).
DEFAULT_DENSITY_STEPS = 80


def hessian_density(
    model: nn.Module | None = None,
    data: Any = None,
    *,
    n_runs: int = DEFAULT_DENSITY_RUNS,
    n_steps: int = DEFAULT_DENSITY_STEPS,
    seed: int | None = 0,
    params: Any = None,
    evaluator: CurvatureEvaluator | None = None,
    **evaluator_options: Any,
) -> HessianDensity:
    """The eigenvalue spectral density of the Hessian of the mean loss over ``data``, at the
    model's weights or at ``params``, by stochastic Lanczos quadrature.

    Each of ``n_runs`` Lanczos runs, from a Rademacher start vector, takes ``n_steps`` products
    (at most P) and gives as many eigenvalue estimates with weights; ``HessianDensity.density``
    smooths them into a density. The extreme eigenvalues converge first (the outliers of a
    network's spectrum are exact after a few dozen steps); the bulk is resolved to about its
    width over ``n_steps``. The estimate's mean times P is Hutchinson's trace estimate with
    ``n_runs`` probes.

    Args:
        model, data, params, evaluator, evaluator_options: as for :func:`hessian_eigenvalues`;
            ``operator="ggn"`` (generalised Gauss-Newton) or ``"fisher"`` (empirical Fisher),
            an option of :class:`CurvatureEvaluator`, takes their densities.
        n_runs: independent runs (>= 1); more average the bulk's weights better.
        n_steps: Lanczos steps (products) per run (>= 1), capped at P.
        seed: seeds the start vectors; None draws fresh ones.
    """
    n_runs = check_positive_int(n_runs, "n_runs")
    n_steps = check_positive_int(n_steps, "n_steps")
    evaluator = curvature_evaluator(model, data, evaluator, evaluator_options)
    w = flat_params(evaluator.model.module, params)
    with evaluator.scope():
        found = spectral_densities(evaluator, w[None], n_runs=n_runs, n_steps=n_steps, seed=seed)
    return HessianDensity(
        found.nodes[0],
        found.weights[0],
        evaluator.n_params,
        operator=evaluator.operator_name,
        n_products=found.n_products,
        n_examples=evaluator.n_examples,
        precision=evaluator.precision,
    )


@dataclass(frozen=True)
class Densities:
    """Per point: the quadrature nodes and weights (K, R, m) of its R runs, and the products
    spent in all."""

    nodes: np.ndarray
    weights: np.ndarray
    n_products: int


def spectral_densities(
    evaluator: CurvatureEvaluator,
    W: torch.Tensor,
    *,
    n_runs: int,
    n_steps: int,
    seed: int | None,
    progress: bool = False,
    desc: str = "",
) -> Densities:
    """Stochastic Lanczos quadrature at each point of ``W`` (K, P), from the same ``n_runs``
    Rademacher start vectors (drawn from ``seed``) at every point, so that the densities of
    neighbouring points differ by the curvature, not by the draw. The runs of a chunk of points
    advance together: each Lanczos step is one call of products for all of them."""
    P = evaluator.n_params
    m = min(n_steps, P)
    start = rademacher(n_runs, P, generator(seed), evaluator.device)
    K = W.shape[0]
    basis_bytes = 8 * n_runs * (m + 1) * P
    chunk = min(evaluator.chunk_points(K, n_runs), max(1, LANCZOS_BASIS_BYTES // basis_bytes))
    nodes, weights = np.empty((K, n_runs, m)), np.empty((K, n_runs, m))
    with progress_bar(total=K, enabled=progress, desc=desc, unit="point") as bar:
        for sl in chunk_slices(K, chunk):
            Wc = W[sl].to(evaluator.device, evaluator.model.dtype)
            Kc = Wc.shape[0]
            evaluator.products.start(Wc)

            def matvec(Q: torch.Tensor, Kc: int = Kc) -> torch.Tensor:
                return blocked_products(evaluator, Q.view(Kc, n_runs, P)).view(Kc * n_runs, P)

            quad = slq(matvec, start.repeat(Kc, 1), n_steps=m)
            nodes[sl] = quad.nodes.view(Kc, n_runs, m).cpu().numpy()
            weights[sl] = quad.weights.view(Kc, n_runs, m).cpu().numpy()
            bar.update(Kc)
    return Densities(nodes, weights, K * n_runs * m)
