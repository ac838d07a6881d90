"""Hutchinson and Hutch++ on matrices of known trace: unbiased within their standard errors,
Hutch++ exact for low rank and more accurate than Hutchinson at the same number of products when
a few eigenvalues dominate; each spends exactly the products it is given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loss_landscape_anim.evaluate.trace_estimators import hutch_plus_plus, hutchinson, rademacher
from tolerance import sum_tolerance


def symmetric(eigenvalues: np.ndarray, seed: int = 0) -> torch.Tensor:
    P = eigenvalues.size
    U, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((P, P)))
    return torch.as_tensor(U @ np.diag(eigenvalues) @ U.T)


class Counting:
    def __init__(self, A: torch.Tensor):
        self.A, self.count = A, 0

    def __call__(self, V: torch.Tensor) -> torch.Tensor:
        self.count += V.shape[0]
        return V @ self.A


def dominant(P: int = 60) -> np.ndarray:
    """Three large eigenvalues over a bulk of small ones of both signs, like a trained network's
    Hessian (a few outliers, one per class, over a bulk near zero)."""
    return np.concatenate([[40.0, 25.0, 12.0], np.random.default_rng(9).uniform(-0.3, 0.6, P - 3)])


@pytest.mark.parametrize("estimator", [hutchinson, hutch_plus_plus])
def test_both_are_within_four_standard_errors_and_spend_what_they_are_given(estimator):
    eigenvalues = dominant()
    A = Counting(symmetric(eigenvalues))
    found = estimator(A, 60, 90, torch.Generator().manual_seed(0))
    assert A.count == found.n_products == 90
    assert found.stderr > 0
    assert abs(found.estimate - eigenvalues.sum()) <= 4 * found.stderr


def test_hutchinson_standard_error_matches_its_variance():
    # Var(v^T A v) = 2 (||A||_F^2 - sum_i A_ii^2) for Rademacher v.
    A = symmetric(dominant(), seed=2)
    found = hutchinson(lambda V: V @ A, 60, 4000, torch.Generator().manual_seed(1))
    variance = 2 * (float((A**2).sum()) - float((A.diagonal() ** 2).sum()))
    # The sample standard deviation of 4000 values is within ~10% of the true one.
    assert found.stderr == pytest.approx(np.sqrt(variance / 4000), rel=0.1)


def test_hutch_plus_plus_is_exact_for_low_rank():
    eigenvalues = np.zeros(50)
    eigenvalues[:4] = [7.0, -3.0, 2.0, 0.5]
    A = symmetric(eigenvalues, seed=3)
    found = hutch_plus_plus(lambda V: V @ A, 50, 15, torch.Generator().manual_seed(0))
    # k = 5 sketch vectors cover the rank-4 range: only rounding is left.
    bound = sum_tolerance(np.abs(eigenvalues).sum() * 50, 50 * 15)
    assert abs(found.estimate - 2 * 3.25) <= bound
    assert found.stderr <= bound


def test_hutch_plus_plus_beats_hutchinson_at_the_same_products():
    eigenvalues = dominant()
    A = symmetric(eigenvalues, seed=5)
    trace = eigenvalues.sum()
    errors: dict[str, list[float]] = {"hutchinson": [], "hutch++": []}
    for seed in range(30):
        for name, estimator in (("hutchinson", hutchinson), ("hutch++", hutch_plus_plus)):
            found = estimator(lambda V: V @ A, 60, 30, torch.Generator().manual_seed(seed))
            errors[name].append(abs(found.estimate - trace))
    mean = {name: float(np.mean(e)) for name, e in errors.items()}
    # Hutchinson's error scales with ||A||_F (dominated by the three outliers); Hutch++'s with
    # the Frobenius norm of the bulk alone: an order of magnitude here, not a coin flip.
    assert mean["hutch++"] < mean["hutchinson"] / 5


def test_rademacher_vectors():
    V = rademacher(100, 30, torch.Generator().manual_seed(0))
    assert V.shape == (100, 30) and V.dtype == torch.float64
    assert set(V.unique().tolist()) == {-1.0, 1.0}
    again = rademacher(100, 30, torch.Generator().manual_seed(0))
    assert torch.equal(V, again)
