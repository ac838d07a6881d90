"""Stochastic Lanczos quadrature against exact spectra: the Gauss quadrature of each run matches
the moments ``q^T A^k q`` of its start vector up to degree 2m - 1 (exactly what m-point Gauss
quadrature guarantees), the weights sum to 1, an exhausted Krylov space stops a run."""

from __future__ import annotations

import numpy as np
import torch

from loss_landscape_anim.evaluate.lanczos import lanczos_tridiagonals
from loss_landscape_anim.evaluate.slq import gauss_quadrature, slq
from tolerance import EPS64, SAFETY


def symmetric(eigenvalues: np.ndarray, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """A symmetric matrix (P, P) float64 with the given eigenvalues, and its eigenvectors."""
    P = eigenvalues.size
    U, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((P, P)))
    return torch.as_tensor(U @ np.diag(eigenvalues) @ U.T), U


def moments_bound(norm: float, k: int, P: int, m: int) -> float:
    """Rounding bound of a degree-k moment from m Lanczos steps in float64 with full
    reorthogonalisation: the computed T is that of a matrix within about m P eps ||A|| of A
    (Paige 1976), which moves a degree-k moment by k times that times ||A||^(k-1); the sums
    themselves (degree 0 included) carry m P eps."""
    return SAFETY * (k + 1) * m * P * EPS64 * norm**k


def test_quadrature_matches_the_moments_up_to_degree_2m_minus_1():
    P, m, R = 40, 8, 3
    eigenvalues = np.concatenate([[9.0, 4.0, -2.0], np.linspace(-0.5, 1.0, P - 3)])
    A, _ = symmetric(eigenvalues)
    start = torch.as_tensor(np.random.default_rng(1).choice([-1.0, 1.0], size=(R, P)))
    quad = slq(lambda V: V @ A, start, n_steps=m)
    assert quad.nodes.shape == quad.weights.shape == (R, m)
    assert torch.equal(quad.steps, torch.full((R,), m))
    np.testing.assert_allclose(quad.weights.sum(dim=1).numpy(), 1.0, atol=SAFETY * m * EPS64)
    q = (start / start.norm(dim=1, keepdim=True)).numpy()
    An = A.numpy()
    norm = float(np.abs(eigenvalues).max())
    power = np.eye(P)
    for k in range(2 * m):
        expected = np.einsum("rp,pq,rq->r", q, power, q)
        found = (quad.weights * quad.nodes**k).sum(dim=1).numpy()
        np.testing.assert_allclose(found, expected, rtol=0, atol=moments_bound(norm, k, P, m))
        power = power @ An


def test_a_full_run_recovers_every_eigenvalue_with_its_weight():
    eigenvalues = np.array([-1.0, 0.5, 2.0, 3.0, 7.0, 11.0])
    A, U = symmetric(eigenvalues, seed=3)
    start = torch.as_tensor(np.random.default_rng(2).choice([-1.0, 1.0], size=(2, 6)))
    quad = slq(lambda V: V @ A, start, n_steps=50)  # capped at P = 6
    assert quad.nodes.shape == (2, 6)
    bound = moments_bound(11.0, 1, 6, 6)
    np.testing.assert_allclose(quad.nodes.numpy(), np.tile(eigenvalues, (2, 1)), atol=bound)
    q = start.numpy() / np.sqrt(6)
    np.testing.assert_allclose(quad.weights.numpy(), (q @ U) ** 2, atol=bound)


def test_an_exhausted_krylov_space_stops_the_run():
    # Rank 2: the Krylov space of any start vector has dimension at most 3.
    P = 12
    eigenvalues = np.zeros(P)
    eigenvalues[[0, 1]] = [5.0, -3.0]
    A, U = symmetric(eigenvalues, seed=4)
    start = torch.as_tensor(np.random.default_rng(3).choice([-1.0, 1.0], size=(2, P)))
    calls = []

    def matvec(V: torch.Tensor) -> torch.Tensor:
        calls.append(V.shape[0])
        return V @ A

    alpha, beta, steps = lanczos_tridiagonals(matvec, start, n_steps=8)
    assert steps.tolist() == [3, 3]
    assert calls == [2] * 8  # without keep, every run takes every step
    quad = gauss_quadrature(alpha, beta, steps)
    q = start.numpy() / np.sqrt(P)
    projections = (q @ U) ** 2
    for r in range(2):
        # Three nodes: -3, 0 (the null space) and 5, then zero weights on repeats of 5.
        bound = moments_bound(5.0, 1, P, 3)
        np.testing.assert_allclose(quad.nodes[r, :3].numpy(), [-3.0, 0.0, 5.0], atol=bound)
        np.testing.assert_allclose(quad.nodes[r, 3:].numpy(), 5.0, atol=bound)
        expected = [projections[r, 1], projections[r, 2:].sum(), projections[r, 0]]
        np.testing.assert_allclose(quad.weights[r, :3].numpy(), expected, atol=bound)
        assert torch.all(quad.weights[r, 3:] == 0)
    kept = []
    lanczos_tridiagonals(matvec, start, n_steps=8, keep=lambda index: kept.append(index))
    assert len(kept) == 0 or kept[-1].numel() < 2
