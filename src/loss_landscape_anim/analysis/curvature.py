"""The curvature of the loss at one weight vector: the extreme eigenvalues of the Hessian (the
principal curvatures; Li et al. 2018, sec. 6) and its trace (Hutchinson's estimator, or Hutch++),
or those of the Gauss-Newton matrix or the empirical Fisher.

Only Hessian-vector products are computed (``torch.func`` forward-over-reverse, or the written-out
products for chains of Linear layers, see :mod:`loss_landscape_anim.evaluate.hessian`), never a
P x P matrix. The eigenvalues come from SciPy's ``eigsh`` (ARPACK's implicitly restarted Lanczos)
on a ``LinearOperator``; SciPy is imported when first needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads
from .._validate import (
    check_choice,
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
)
from ..evaluate.hessian import HessianEvaluator
from ..evaluate.trace_estimators import TRACE_METHODS, hutch_plus_plus, hutchinson
from ..params.layout import ParamLayout
from ..results import HessianSpectrum, HessianTrace
from ._operators import generator, matmat_at

__all__ = ["flat_params", "hessian_eigenvalues", "hessian_trace"]


def hessian_eigenvalues(
    model: nn.Module,
    data: Any,
    *,
    k: int = 1,
    params: Any = None,
    n_examples: int | None = None,
    device: str | torch.device | None = None,
    tol: float = 1e-4,
    max_iter: int | None = None,
    seed: int | None = None,
    return_vectors: bool = False,
    num_threads: NumThreads = None,
    operator: str = "hessian",
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
        n_examples: use the first ``n_examples`` examples only.
        device: where to compute; default CPU.
        tol: relative accuracy of the eigenvalues asked of ``eigsh``.
        max_iter: at most this many restarts of ``eigsh`` (default: SciPy's, 10 P).
        seed: seeds the start vector; the same seed gives the same result. None draws one.
        return_vectors: also return the eigenvectors (k x P each).
        num_threads: CPU threads (restored afterwards); None leaves torch's setting.
        operator: the matrix: ``"hessian"``, ``"ggn"`` (the generalised Gauss-Newton matrix
            ``J^T H_z J``, positive semi-definite) or ``"fisher"`` (the empirical Fisher); see
            :mod:`loss_landscape_anim.evaluate.gauss_newton`.

    Raises:
        RuntimeError: when ``eigsh`` does not converge within ``max_iter``.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    n_params = ParamLayout.of(_module(model)).n_params
    k = check_positive_int(k, "k")
    if k >= n_params:
        raise ValueError(
            f"Expected k to be below the number of parameters ({n_params}) but got {k}"
        )
    tol = check_positive_number(tol, "tol")
    max_iter = check_optional_positive_int(max_iter, "max_iter")
    w = flat_params(model, params)
    evaluator = HessianEvaluator(
        model,
        data,
        device=device,
        n_examples=n_examples,
        num_threads=num_threads,
        operator=operator,
    )
    counter = _Counter(evaluator.operator(w))
    ends: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    v0 = np.random.default_rng(seed).standard_normal(n_params)
    with evaluator.threads():
        for which in ("LA", "SA"):
            apply: Any = counter
            shift = 0.0
            if which == "SA" and evaluator.operator_name != "hessian":
                # Positive semi-definite, with a large near-null space: eigsh cannot reach a
                # relative tolerance on eigenvalues near 0; the largest of shift - G can.
                shift = float(ends["LA"][0][0])
                apply = _Shifted(counter, shift)
            linear = LinearOperator((n_params, n_params), matvec=apply, matmat=apply, dtype=float)
            try:
                values, vectors = eigsh(
                    linear, k=k, which="LA" if shift else which, v0=v0, tol=tol, maxiter=max_iter
                )
            except ArpackNoConvergence as exc:
                raise RuntimeError(
                    f"eigsh did not converge to the {k} {'largest' if which == 'LA' else 'smallest'}"
                    f" eigenvalue(s) after {counter.count} Hessian-vector products; raise max_iter"
                    f" (got {max_iter}) or tol (got {tol})"
                ) from exc
            values = shift - values if shift else values
            order = np.argsort(values)[::-1] if which == "LA" else np.argsort(values)
            ends[which] = values[order], vectors[:, order].T
    return HessianSpectrum(
        largest=ends["LA"][0],
        smallest=ends["SA"][0],
        largest_vectors=ends["LA"][1] if return_vectors else None,
        smallest_vectors=ends["SA"][1] if return_vectors else None,
        n_products=counter.count,
        n_examples=evaluator.n_examples,
        precision=evaluator.precision,
        operator=evaluator.operator_name,
    )


def hessian_trace(
    model: nn.Module,
    data: Any,
    *,
    n_samples: int = 100,
    seed: int | None = None,
    params: Any = None,
    n_examples: int | None = None,
    device: str | torch.device | None = None,
    num_threads: NumThreads = None,
    method: str = "hutchinson",
    operator: str = "hessian",
) -> HessianTrace:
    """A randomised estimate of the trace of the Hessian of the mean loss over ``data``, with its
    standard error. The trace is the sum of all eigenvalues (the mean curvature times P).

    ``method="hutchinson"`` (Hutchinson 1989): the mean of ``v^T H v`` over ``n_samples``
    Rademacher vectors ``v``. ``method="hutch++"`` (Meyer et al. 2021, *Hutch++: Optimal
    Stochastic Trace Estimation*): a third of the products find the top of the spectrum, whose
    trace is then taken exactly, and the rest estimate the remainder; with a few dominant
    eigenvalues (trained networks) its error is far lower at the same number of products.

    Args:
        model, data, params, n_examples, device, num_threads, operator: as for
            :func:`hessian_eigenvalues`.
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
    w = flat_params(model, params)
    evaluator = HessianEvaluator(
        model,
        data,
        device=device,
        n_examples=n_examples,
        num_threads=num_threads,
        operator=operator,
    )
    estimator = hutchinson if method == "hutchinson" else hutch_plus_plus
    with evaluator.threads():
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
    module = _module(model)
    layout = ParamLayout.of(module)
    dtype = next(module.parameters()).dtype
    if params is None:
        return layout.flatten(module).to(dtype)
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


def _module(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    return model


class _Shifted:
    """``V -> shift V - A V`` for a matvec/matmat ``A``."""

    def __init__(self, apply: Any, shift: float):
        self.apply, self.shift = apply, shift

    def __call__(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V)
        return self.shift * V - self.apply(V)


class _Counter:
    """A matvec/matmat that counts the Hessian-vector products it computes."""

    def __init__(self, apply: Any):
        self.apply = apply
        self.count = 0

    def __call__(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V)
        self.count += 1 if V.ndim == 1 else V.shape[1]
        return self.apply(V)
