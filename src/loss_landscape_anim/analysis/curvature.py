"""The curvature of the loss at one weight vector: the extreme eigenvalues of the Hessian (the
principal curvatures; Li et al. 2018, sec. 6) and its trace (Hutchinson's estimator, or Hutch++),
or those of the Gauss-Newton matrix or the empirical Fisher.

Only Hessian-vector products are computed (``torch.func`` forward-over-reverse, or the written-out
products for chains of Linear layers, see :mod:`loss_landscape_anim.evaluate.curvature`), never a
P x P matrix. The eigenvalues come from SciPy's ``eigsh`` (ARPACK's implicitly restarted Lanczos)
on a ``LinearOperator``; SciPy is imported when first needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import (
    check_choice,
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
)
from ..evaluate import CurvatureEvaluator
from ..evaluate.eigenpairs import eigenpairs
from ..evaluate.trace_estimators import TRACE_METHODS, hutch_plus_plus, hutchinson
from ..params.layout import ParamLayout
from ..results import HessianSpectrum, HessianTrace
from ._evaluators import curvature_evaluator
from ._operators import generator, matmat_at

__all__ = ["flat_params", "hessian_eigenvalues", "hessian_trace"]


def hessian_eigenvalues(
    model: nn.Module | None = None,
    data: Any = None,
    *,
    k: int = 1,
    params: Any = None,
    tol: float = 1e-4,
    max_iter: int | None = None,
    seed: int | None = None,
    return_vectors: bool = False,
    evaluator: CurvatureEvaluator | None = None,
    **evaluator_options: Any,
) -> HessianSpectrum:
    """The ``k`` largest and ``k`` smallest eigenvalues of the Hessian of the mean loss over
    ``data``, at the model's weights or at ``params``.

    The loss is the one :func:`compute_loss_grid` maps: the model's ``loss_fn`` (else
    cross-entropy) in eval mode, averaged over the evaluation data. Eigenvalues are in loss units
    per squared weight unit. The caller's model is not changed.

    Args:
        model: supplies the architecture (and buffers), and the weights unless ``params``.
        data: the evaluation data: a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``.
        k: how many eigenvalues at each end (1 <= k < P).
        params: flat weights (P,) in ``model.parameters()`` order (array or tensor).
        tol: relative accuracy of the eigenvalues asked of ``eigsh``.
        max_iter: at most this many restarts of ``eigsh`` (default: SciPy's, 10 P).
        seed: seeds the start vector; the same seed gives the same result. None draws one.
        return_vectors: also return the eigenvectors (k x P each).
        evaluator: a :class:`CurvatureEvaluator` already built (or a loss evaluator or
            preparation to share), instead of ``model``, ``data`` and ``evaluator_options``;
            without ``params`` the weights are those of its model.
        evaluator_options: the options of :class:`CurvatureEvaluator` (``device``,
            ``n_examples``, ``num_threads``, ...).
            The matrix is the evaluator's ``operator`` (an option of
            :class:`CurvatureEvaluator`): ``"hessian"`` (default), ``"ggn"`` (the generalised
            Gauss-Newton matrix ``J^T H_z J``, positive semi-definite) or ``"fisher"`` (the
            empirical Fisher); see :mod:`loss_landscape_anim.evaluate.gauss_newton`.

    Raises:
        ConvergenceError: (a ``RuntimeError``) when ``eigsh`` does not converge within
            ``max_iter``.
    """
    k = check_positive_int(k, "k")
    tol = check_positive_number(tol, "tol")
    max_iter = check_optional_positive_int(max_iter, "max_iter")
    evaluator = curvature_evaluator(model, data, evaluator, evaluator_options)
    n_params = evaluator.n_params
    if k >= n_params:
        raise ValueError(
            f"Expected k to be below the number of parameters ({n_params}) but got {k}"
        )
    w = flat_params(evaluator.model.module, params)
    found = eigenpairs(evaluator, w, k=k, tol=tol, max_iter=max_iter, seed=seed)
    return HessianSpectrum(
        largest=found.largest,
        smallest=found.smallest,
        largest_vectors=found.largest_vectors if return_vectors else None,
        smallest_vectors=found.smallest_vectors if return_vectors else None,
        n_products=found.n_products,
        n_examples=evaluator.n_examples,
        precision=evaluator.precision,
        operator=evaluator.operator_name,
    )


def hessian_trace(
    model: nn.Module | None = None,
    data: Any = None,
    *,
    n_samples: int = 100,
    seed: int | None = None,
    params: Any = None,
    evaluator: CurvatureEvaluator | None = None,
    method: str = "hutchinson",
    **evaluator_options: Any,
) -> HessianTrace:
    """A randomised estimate of the trace of the Hessian of the mean loss over ``data``, with its
    standard error. The trace is the sum of all eigenvalues (the mean curvature times P).

    ``method="hutchinson"`` (Hutchinson 1989): the mean of ``v^T H v`` over ``n_samples``
    Rademacher vectors ``v``. ``method="hutch++"`` (Meyer et al. 2021, *Hutch++: Optimal
    Stochastic Trace Estimation*): a third of the products find the top of the spectrum, whose
    trace is then taken exactly, and the rest estimate the remainder; with a few dominant
    eigenvalues (trained networks) its error is far lower at the same number of products.

    Args:
        model, data, params, evaluator, evaluator_options: as for :func:`hessian_eigenvalues`
            (``operator="ggn"`` or ``"fisher"`` there for their traces).
        n_samples: the number of Hessian-vector products to spend (>= 2 for Hutchinson, >= 4
            for Hutch++).
        seed: seeds the probes; None draws fresh ones.
        method: ``"hutchinson"`` or ``"hutch++"``.
    """
    method = check_choice(method, "method", TRACE_METHODS)
    n_samples = check_positive_int(n_samples, "n_samples")
    least = 2 if method == "hutchinson" else 4
    if n_samples < least:
        raise ValueError(
            f"Expected n_samples to be at least {least} but got {n_samples} (method={method!r} "
            f"needs {least} products)"
        )
    evaluator = curvature_evaluator(model, data, evaluator, evaluator_options)
    w = flat_params(evaluator.model.module, params)
    estimator = hutchinson if method == "hutchinson" else hutch_plus_plus
    with evaluator.scope():
        matmat = matmat_at(evaluator, w)
        found = estimator(matmat, evaluator.n_params, n_samples, generator(seed), evaluator.device)
    return HessianTrace(
        estimate=found.estimate,
        stderr=found.stderr,
        n_samples=n_samples,
        n_examples=evaluator.n_examples,
        method=method,
        operator=evaluator.operator_name,
    )


def flat_params(model: nn.Module, params: Any = None) -> torch.Tensor:
    """``params`` (or the model's weights) as a flat (P,) tensor in the model's dtype."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    layout = ParamLayout.of(model)
    dtype = next(model.parameters()).dtype
    if params is None:
        w = layout.flatten(model).to(dtype)
        if not torch.isfinite(w).all():
            raise ValueError(
                f"Expected the model's weights to be finite but {int((~torch.isfinite(w)).sum())} "
                "of them are NaN or inf (a diverged training?): pass finite params= instead"
            )
        return w
    try:
        w = torch.as_tensor(np.asarray(torch.as_tensor(params).detach().cpu()), dtype=dtype)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"Expected params to be a numeric vector: {exc}") from exc
    w = w.reshape(-1)
    if w.shape[0] != layout.n_params:
        raise ValueError(
            f"Expected params to have {layout.n_params} entries (the model's parameter count) "
            f"but got {w.shape[0]}"
        )
    if not torch.isfinite(w).all():
        raise ValueError("Expected params to be finite but they hold NaN or inf")
    return w
